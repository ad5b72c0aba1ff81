"""Issue 18: `DEMO-` ticket ids are reserved for `run --demo` (a later `run` silences such tickets,
`run --reset-demo` deletes them): an API client outside the demo is refused with a 422 naming
`ticket`, nothing stored; in the demo they are accepted."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from supervisor.application import Supervisor
from supervisor.core.clock import SystemClock
from supervisor.server.api import make_app
from supervisor.server.metrics import Metrics
from supervisor.storage.pg import PgStore
from tests.helpers import every_type, runtime

AUTH = {"Authorization": "Bearer demo-ids-token"}


async def _client(pool, demo: bool) -> TestClient:
    async def health():
        return True, {}

    sup = Supervisor(PgStore(pool), runtime(), SystemClock())
    app = make_app(sup, tokens=["demo-ids-token"], metrics=Metrics(), health=health, demo=demo)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.mark.parametrize("demo", [False, True])
async def test_demo_ids_only_in_the_demo(pool, demo):
    client = await _client(pool, demo)
    try:
        batch = every_type("DEMO-7")[:2]
        resp = await client.post("/api/v1/events", json=batch, headers=AUTH)
        body = await resp.json()
        stored = await pool.fetchval("SELECT count(*) FROM events WHERE ticket = 'DEMO-7'")
        if demo:
            assert resp.status == 200 and stored == 2
        else:
            assert resp.status == 422 and stored == 0
            assert body["error"].startswith("event 0: ticket: 'DEMO-7': the prefix DEMO- is reserved")
            assert body["problems"][0]["field"] == "ticket"
        # a real ticket that merely contains the word is fine
        ok = await client.post("/api/v1/events", json=every_type("X-DEMO-7")[:1], headers=AUTH)
        assert ok.status == 200
    finally:
        await client.close()
