"""The store contract: every test here runs on both stores, MemoryStore and PgStore (on a fresh
real database from tests/conftest.py)."""

from __future__ import annotations

import pytest

from supervisor.storage.base import Store
from supervisor.storage.memory import MemoryStore
from supervisor.storage.pg import PgStore


@pytest.fixture(params=["memory", "postgres"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return PgStore(request.getfixturevalue("pool"))
