"""The event API when PostgreSQL is busy: its lock table full (SQLSTATE 53200). The ingest takes
transaction-scoped advisory locks per ticket, caller and matter key; a large import holds
thousands. A batch that cannot take its locks rolls back: the API answers 503 (retry), stores
nothing, and the same batch is accepted once the locks are free. Real PostgreSQL, no mock."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.server.api import make_app
from supervisor.server.metrics import Metrics
from supervisor.storage.pg import PgStore
from tests.helpers import ev, runtime, sh

# the whole server's lock table: nothing else may run on the server meanwhile
pytestmark = pytest.mark.serial

TOKEN = "busy-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _fill_lock_table(conn: asyncpg.Connection) -> int:
    """Take advisory locks in this open transaction, in ever smaller chunks, until not one more
    fits in the server's lock table (a refused chunk's savepoint gives its locks back). Leaving
    a few slots free made the tests depend on how many locks an ingest happens to need."""
    taken, chunk, key = 0, 4096, 0
    while chunk >= 1:
        await conn.execute("SAVEPOINT fill")
        try:
            await conn.execute(
                "SELECT count(pg_advisory_xact_lock(424242, g)) FROM generate_series($1::int, $2::int) AS g",
                key,
                key + chunk - 1,
            )
        except asyncpg.exceptions.OutOfMemoryError:
            await conn.execute("ROLLBACK TO SAVEPOINT fill")
            chunk //= 2
            continue
        await conn.execute("RELEASE SAVEPOINT fill")
        taken += chunk
        key += chunk
    return taken


async def test_a_full_lock_table_answers_503_and_loses_nothing(pool, pg_url):
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 12, 1, 9, 0)))

    async def health():
        return True, {}

    app = make_app(sup, tokens=[TOKEN], metrics=Metrics(), health=health)
    batch = [
        ev(f"BUSY-{i}", 1, "created", sh(2026, 11, 30, 9, 0), channel="phone", category="市容环境",
           kind="complaint", urgent=False, caller=f"1380000{i:04d}", address=f"幸福路{i + 1}号",
           grid="G01", summary="占道经营")
        for i in range(300)
    ]
    hog = await asyncpg.connect(pg_url)
    try:
        async with TestClient(TestServer(app)) as client:
            tx = hog.transaction()
            await tx.start()
            try:
                assert await _fill_lock_table(hog) > 1000
                resp = await client.post("/api/v1/events", json=batch, headers=AUTH)
                body = await resp.text()
                assert resp.status == 503, body
                assert "busy" in body and "13800000" not in body
            finally:
                await tx.rollback()  # the import is over: its locks are free again
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM events WHERE ticket LIKE 'BUSY-%'") == 0
            resp = await client.post("/api/v1/events", json=batch, headers=AUTH)
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["accepted"] == 300
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM events WHERE ticket LIKE 'BUSY-%'") == 300
    finally:
        await hog.close()
