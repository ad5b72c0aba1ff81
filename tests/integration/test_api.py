"""The event API on real PostgreSQL."""

from __future__ import annotations

import json
import random

import pytest
from aiohttp.test_utils import TestClient, TestServer

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.server.api import make_app
from supervisor.server.metrics import Metrics
from supervisor.storage.pg import PgStore
from tests.helpers import ev, every_type, runtime, sh

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(pool):
    # after every_type()'s events: the API refuses events ahead of its clock
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 12, 1, 9, 0)))

    async def health():
        return True, {}

    app = make_app(
        sup, tokens=[TOKEN, "other"], metrics=Metrics(), health=health, max_body_bytes=64 * 1024
    )
    async with TestClient(TestServer(app)) as c:
        yield c


async def counts(pool) -> tuple[int, int, int]:
    async with pool.acquire() as conn:
        return (
            await conn.fetchval("SELECT count(*) FROM events"),
            await conn.fetchval("SELECT count(*) FROM tickets"),
            await conn.fetchval("SELECT count(*) FROM timers"),
        )


async def test_every_event_type_accepted_and_folded(client, pool):
    resp = await client.post("/api/v1/events", json=every_type(), headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["accepted"] == 16 and body["duplicates"] == 0  # every type, commitment_kept too
    resp = await client.get("/api/v1/tickets/T1", headers=AUTH)
    view = await resp.json()
    assert view["state"]["status"] == "closed"
    assert view["state"]["dissatisfied_count"] == 1 and view["state"]["reopened_count"] == 1
    assert [e["type"] for e in view["timeline"]][:3] == ["created", "dispatched", "signed"]
    assert "13812345678" not in json.dumps(view, ensure_ascii=False)
    assert view["state"]["caller_masked"] == "138****5678"


async def test_the_ticket_view_links_the_same_matter_both_ways(client, pool):
    events = [
        ev(t, 1, "created", sh(2026, 11, d, 10, 0), kind="complaint", category=c, caller=p,
           address=a, grid="G02")
        for t, d, c, p, a in (
            ("M1", 2, "市容环境", "13900001111", "幸福路12号"),
            ("M2", 10, "环境污染", "13900002222", "幸福路１２號3栋"),
            ("OTHER", 11, "市容环境", "13900004444", "光明路7号"),
        )
    ]  # fmt: skip
    resp = await client.post("/api/v1/events", json=events, headers=AUTH)
    assert resp.status == 200, await resp.text()
    m1 = await (await client.get("/api/v1/tickets/M1", headers=AUTH)).json()
    m2 = await (await client.get("/api/v1/tickets/M2", headers=AUTH)).json()
    other = await (await client.get("/api/v1/tickets/OTHER", headers=AUTH)).json()
    assert (m1["same_matter"], m2["same_matter"], other["same_matter"]) == (["M2"], ["M1"], [])
    assert (await client.get("/api/v1/tickets/NOPE", headers=AUTH)).status == 404


async def test_duplicate_id_is_stored_once(client, pool):
    one = every_type()[:2]
    for _ in range(2):
        resp = await client.post("/api/v1/events", json=one, headers=AUTH)
        assert resp.status == 200
    body = await resp.json()
    assert body == {
        "accepted": 0,
        "duplicates": 2,
        "results": [{"id": "T1-1", "status": "duplicate"}, {"id": "T1-2", "status": "duplicate"}],
    }
    # and a repeat inside one batch
    resp = await client.post(
        "/api/v1/events", json=[every_type()[2], every_type()[2]], headers=AUTH
    )
    assert (await resp.json())["accepted"] == 1
    assert (await counts(pool))[0] == 3


async def test_out_of_order_delivery_folds_to_the_same_state(client, pool):
    events = every_type("IN") + every_type("OUT")
    ordered = [e for e in events if e["ticket"] == "IN"]
    shuffled = [e for e in events if e["ticket"] == "OUT"]
    random.Random(7).shuffle(shuffled)
    for e in ordered:
        assert (await client.post("/api/v1/events", json=e, headers=AUTH)).status == 200
    for e in shuffled:
        assert (await client.post("/api/v1/events", json=e, headers=AUTH)).status == 200
    a = (await (await client.get("/api/v1/tickets/IN", headers=AUTH)).json())["state"]
    b = (await (await client.get("/api/v1/tickets/OUT", headers=AUTH)).json())["state"]
    a.pop("ticket"), b.pop("ticket")
    a.pop("review_of"), b.pop("review_of")  # the reviewed event's id names its own ticket
    assert a == b


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'{"id": "x", "ticket": ', 400, "not JSON"),
        (
            json.dumps(
                [
                    ev("T9", 1, "created", sh(2026, 11, 23, 9)),
                    {
                        "id": "y",
                        "ticket": "T9",
                        "type": "escalated",
                        "at": "2026-11-23T10:00:00+08:00",
                    },
                ]
            ).encode(),
            422,
            "event 1: type: unknown type 'escalated'",
        ),
        (
            json.dumps(
                {"id": "y", "ticket": "T9", "type": "dispatched", "at": "2026-11-23T10:00:00+08:00"}
            ).encode(),
            422,
            "unit: is required",
        ),
        (
            json.dumps(
                {"id": "y", "ticket": "T9", "type": "closed", "at": "2026-11-23T10:00:00"}
            ).encode(),
            422,
            "at: '2026-11-23T10:00:00' has no UTC offset",
        ),
        (json.dumps([]).encode(), 400, "empty batch"),
        (
            b"["
            + b",".join(
                [
                    json.dumps(
                        ev("T9", i, "closed", sh(2026, 11, 23, 9)), ensure_ascii=False
                    ).encode()
                    for i in range(2000)
                ]
            )
            + b"]",
            413,
            "too large",
        ),
    ],
    ids=["malformed", "unknown-type-in-batch", "missing-field", "no-offset", "empty", "oversized"],
)
async def test_bad_input_gets_a_4xx_naming_the_problem_and_nothing_is_stored(
    client, pool, body, status, needle
):
    resp = await client.post(
        "/api/v1/events", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status == status
    assert needle in (await resp.json())["error"]
    assert await counts(pool) == (0, 0, 0)


async def test_without_a_valid_token_401(client, pool):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        resp = await client.post("/api/v1/events", json=every_type()[:1], headers=headers)
        assert resp.status == 401
        assert (await client.get("/api/v1/tickets/T1", headers=headers)).status == 401
    assert await counts(pool) == (0, 0, 0)
    assert (await client.get("/healthz")).status == 200
    metrics = await (await client.get("/metrics")).text()
    assert (
        "hotline_events_accepted_total" in metrics
        and "hotline_http_request_duration_seconds" in metrics
    )


async def test_metrics_count_accepted_and_rejected(client, pool):
    await client.post("/api/v1/events", json=every_type()[:2], headers=AUTH)
    await client.post("/api/v1/events", json={"id": "z"}, headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert "hotline_events_accepted_total 2.0" in text
    assert 'hotline_events_rejected_total{reason="invalid"} 1.0' in text


async def test_ack_api_stops_the_ladder(client, pool):
    await client.post("/api/v1/events", json=every_type()[:2], headers=AUTH)
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM timers WHERE ticket='T1' AND rule='sign-off' AND status='pending'"
            )
            == 3
        )
    resp = await client.post(
        "/api/v1/tickets/T1/ack", json={"rule": "sign-off", "by": "zhang-min"}, headers=AUTH
    )
    assert (await resp.json()) == {
        "acknowledged": 1, "by": "api", "ended": ["sign-off"], "still_open": []
    }
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM timers WHERE ticket='T1' AND rule='sign-off' AND status='pending'"
            )
            == 0
        )
        assert (
            await conn.fetchval(
                "SELECT acked_by FROM ladders WHERE ticket='T1' AND rule='sign-off'"
            )
            == "api"  # the token's name, not the body's `by`
        )
