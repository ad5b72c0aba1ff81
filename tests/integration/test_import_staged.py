"""Big ingest batches (an import's) go through COPY into a temporary table, then one INSERT ...
ON CONFLICT (storage/pg.py STAGE_FROM): the same states, ladders and idempotency as the arrays."""

from __future__ import annotations

import asyncpg

import supervisor.storage.pg as pg_module
from tests.integration import test_import as plain


async def test_every_batch_staged_with_copy_round_trips_the_same(pool, tmp_path, monkeypatch):
    copies: list[str] = []
    real = asyncpg.Connection.copy_records_to_table

    async def counted(self, table, **kwargs):
        copies.append(table)
        return await real(self, table, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "copy_records_to_table", counted)
    monkeypatch.setattr(pg_module, "STAGE_FROM", 1)
    await plain.test_export_round_trips_into_the_same_states_as_jsonl(pool, tmp_path)
    assert copies and set(copies) == {"events_stage"}
