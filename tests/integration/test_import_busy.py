"""An import while PostgreSQL's lock table is full (SQLSTATE 53200): a refused batch rolled back
whole and is tried again after a pause; if the database stays busy the import stops with a clear
error, what was stored stays, and running it again completes it. Real PostgreSQL, no mock."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.imports import command
from supervisor.imports.command import DatabaseBusy, import_file
from supervisor.storage.pg import PgStore
from tests.helpers import runtime, sh
from tests.integration.test_api_busy import _fill_lock_table
from tests.integration.test_import import MAPPING, write_export

pytestmark = pytest.mark.serial  # fills the whole server's lock table (test_api_busy.py)


async def _events(pool) -> int:  # the import's own (not the service's 答复审核 `reviewed`)
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM events WHERE type <> 'reviewed'")


async def test_a_busy_batch_is_tried_again_and_stored_once(pool, pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(command, "BUSY_RETRY_S", (0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3))
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 30, 12)))
    path = tmp_path / "export.xlsx"
    write_export(path, "BZ")
    hog = await asyncpg.connect(pg_url)
    tx = hog.transaction()
    await tx.start()
    try:
        assert await _fill_lock_table(hog) > 1000
        importing = asyncio.create_task(import_file(sup, path, MAPPING))
        await asyncio.sleep(0.8)  # the first attempts are refused while the table is full
        assert not importing.done()  # (no query can run here: the lock table is full)
    finally:
        await tx.rollback()
        await hog.close()
    summary = await importing
    assert summary.stored and summary.problems == []
    assert (summary.events_new, summary.events_known) == (13, 0)
    assert await _events(pool) == 13


async def test_a_database_that_stays_busy_stops_the_import_clearly(
    pool, pg_url, tmp_path, monkeypatch
):
    monkeypatch.setattr(command, "BUSY_RETRY_S", (0.05, 0.05))
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 30, 12)))
    path = tmp_path / "export.xlsx"
    write_export(path, "BY")
    hog = await asyncpg.connect(pg_url)
    tx = hog.transaction()
    await tx.start()
    try:
        assert await _fill_lock_table(hog) > 1000
        with pytest.raises(DatabaseBusy, match="53200") as caught:
            await import_file(sup, path, MAPPING)
        assert "重新导入" in str(caught.value) and "13812345678" not in str(caught.value)
    finally:
        await tx.rollback()
        await hog.close()
    assert await _events(pool) == 0  # the refused batches rolled back whole
    again = await import_file(sup, path, MAPPING)  # run again: everything stored, once
    assert (again.events_new, again.events_known) == (13, 0) and await _events(pool) == 13


async def _reviewed(pool, prefix: str) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM events WHERE type = 'reviewed' AND ticket LIKE $1", prefix + "%"
        )


async def test_a_review_step_refused_rolls_its_batch_back_and_the_retry_makes_the_reviews(
    pool, tmp_path, monkeypatch
):
    """The reviews' `reviewed` events are stored in their batch's transaction (base.FollowUp):
    refused there, the whole batch rolls back, so the import's retry finds its events new and
    reviews them again (a batch stored without its reviews would never get them)."""
    monkeypatch.setattr(command, "BUSY_RETRY_S", (0.05, 0.05))
    for prefix, refuse in (("BV", False), ("BU", True)):
        store = PgStore(pool)
        refused = []
        ingest_on = store._ingest_on

        async def flaky(conn, xid, events, *a, _on=ingest_on, _refuse=refuse, _refused=refused):
            if _refuse and not _refused and events and events[0].type == "reviewed":
                _refused.append(1)
                raise asyncpg.exceptions.InsufficientResourcesError("out of shared memory")
            return await _on(conn, xid, events, *a)

        monkeypatch.setattr(store, "_ingest_on", flaky)
        sup = Supervisor(store, runtime(), VirtualClock(sh(2026, 11, 30, 12)))
        path = tmp_path / f"{prefix}.xlsx"
        write_export(path, prefix)
        summary = await import_file(sup, path, MAPPING)
        # nothing of the refused batch was kept: the retry stored every event as new
        assert summary.stored and (summary.events_new, summary.events_known) == (13, 0)
        assert refused == ([1] if refuse else [])
    assert await _reviewed(pool, "BU") == await _reviewed(pool, "BV") > 0
