"""Test fixtures. PostgreSQL tests run on a real server: TEST_DATABASE_URL, else the machine's
server at 127.0.0.1:5432, else an embedded pgserver started for the session. They are never
skipped: if no PostgreSQL can be had, they fail."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from supervisor.storage.db import create_pool, migrate

pytest_plugins = ["tests.parallel"]  # the suite on xdist workers: `serial` tests alone, the longest first

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
_embedded = None


async def _reachable(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@pytest.fixture(scope="session")
async def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    global _embedded
    url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_URL
    if not await _reachable(url):
        if os.environ.get("TEST_DATABASE_URL"):
            pytest.fail(f"TEST_DATABASE_URL is set but unreachable: {url}")
        from supervisor.storage.db import EmbeddedPostgres

        _embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pgdata"))
        url = _embedded.start()
    yield url
    if _embedded is not None:
        _embedded.stop()


@pytest.fixture(scope="session")
async def pg_template(pg_admin_url: str) -> AsyncIterator[str]:
    """A migrated template database, built once per session and cloned per test."""
    name = f"hs_tpl_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_with_db(pg_admin_url, name))
    await migrate(conn)
    await conn.close()
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def _with_db(url: str, db: str) -> str:
    """Swap the database name in a postgresql:// URL (keeping any ?host=/socket query)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


@pytest.fixture
async def pg_url(pg_admin_url: str, pg_template: str) -> AsyncIterator[str]:
    """A fresh migrated database for one test."""
    name = f"hs_t_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield _with_db(pg_admin_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(pg_url, max_size=5)
    yield p
    await p.close()
