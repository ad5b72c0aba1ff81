"""The integrator's edges of the API (issue 13) and bad input that used to be a 500 (issue 9):
ack answers and who acknowledged, reused ids, future events, one zone in the ticket view,
deeply nested bodies, out-of-range timestamps, ticket ids the router cannot reach."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.server.api import make_app
from supervisor.server.metrics import Metrics
from supervisor.storage.pg import PgStore
from tests.helpers import ev, every_type, runtime, sh

NOW = sh(2026, 12, 1, 9, 0)
TOKENS = [("zhang-min", "tok-supervisor"), ("wang-qiang", "tok-liaison"), ("api", "tok-bare")]


def auth(token: str = "tok-bare") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(pool):
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(NOW))

    async def health():
        return True, {}

    app = make_app(sup, tokens=TOKENS, metrics=Metrics(), health=health)
    async with TestClient(TestServer(app)) as c:
        yield c


async def table_counts(pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        return {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("events", "tickets", "ladders", "timers", "acks")
        }


def dispatched(ticket: str = "T1") -> list[dict]:
    return [
        ev(ticket, 1, "created", sh(2026, 12, 1, 8, 0), kind="complaint", grid="G01"),
        ev(ticket, 2, "dispatched", sh(2026, 12, 1, 8, 5), unit="城管执法中队"),
    ]


# --- ack ---------------------------------------------------------------------------------------


async def test_ack_of_an_unknown_ticket_is_404(client):
    resp = await client.post("/api/v1/tickets/NOPE/ack", json={}, headers=auth())
    assert resp.status == 404 and "NOPE" in (await resp.json())["error"]


async def test_ack_of_a_rule_with_no_open_escalation_is_422(client, pool):
    await client.post("/api/v1/events", json=dispatched(), headers=auth())
    resp = await client.post("/api/v1/tickets/T1/ack", json={"rule": "sign-of"}, headers=auth())
    assert resp.status == 422
    assert "no open escalation for rule 'sign-of'" in (await resp.json())["error"]
    assert (await table_counts(pool))["acks"] == 0


async def test_ack_records_the_tokens_name_not_the_body(client, pool):
    await client.post("/api/v1/events", json=dispatched(), headers=auth())
    resp = await client.post(
        "/api/v1/tickets/T1/ack", json={"rule": "sign-off", "by": "某人"}, headers=auth("tok-supervisor")
    )
    assert resp.status == 200 and (await resp.json())["by"] == "zhang-min"
    assert await pool.fetchval("SELECT by_whom FROM acks") == "zhang-min"
    assert await pool.fetchval("SELECT acked_by FROM ladders WHERE rule = 'sign-off'") == "zhang-min"


async def test_a_liaisons_ack_ends_only_the_liaisons_steps(client, pool):
    await client.post("/api/v1/events", json=dispatched(), headers=auth())
    resp = await client.post(
        "/api/v1/tickets/T1/ack", json={"rule": "sign-off"}, headers=auth("tok-liaison")
    )
    assert resp.status == 200
    assert (await resp.json())["still_open"] == ["sign-off"]
    rows = await pool.fetch(
        "SELECT step, status FROM timers WHERE ticket = 'T1' AND rule = 'sign-off' ORDER BY step"
    )
    assert [(r["step"], r["status"]) for r in rows] == [
        (0, "cancelled"), (1, "pending"), (2, "pending")
    ]  # the head's call and the supervisor's escalation stay
    assert await pool.fetchval("SELECT status FROM ladders WHERE rule = 'sign-off'") == "active"


async def test_a_liaison_cannot_ack_what_is_addressed_above_them(client, pool):
    events = [*dispatched(), ev("T1", 3, "signed", sh(2026, 12, 1, 8, 10), unit="城管执法中队"),
              ev("T1", 4, "replied", sh(2026, 12, 1, 8, 30), unit="城管执法中队")]  # fmt: skip
    await client.post("/api/v1/events", json=events, headers=auth())
    assert await pool.fetchval(
        "SELECT status FROM ladders WHERE rule = 'callback-missing'"
    ) == "active"  # its one step is the supervisor's
    resp = await client.post(
        "/api/v1/tickets/T1/ack", json={"rule": "callback-missing"}, headers=auth("tok-liaison")
    )
    assert resp.status == 403
    assert "wang-qiang (liaison) cannot acknowledge what is addressed to supervisor" in (
        await resp.json()
    )["error"]
    assert await pool.fetchval("SELECT status FROM ladders WHERE rule = 'callback-missing'") == "active"
    assert (await table_counts(pool))["acks"] == 0


@pytest.mark.parametrize("depth", [990])
async def test_a_deeply_nested_ack_body_is_4xx(client, depth: int):
    body = "[" * depth + "]" * depth
    resp = await client.post("/api/v1/tickets/T1/ack", data=body, headers=auth())
    assert 400 <= resp.status < 500, await resp.text()
    body = '{"rule": ' + "[" * depth + "]" * depth + "}"
    resp = await client.post("/api/v1/tickets/T1/ack", data=body, headers=auth())
    assert 400 <= resp.status < 500, await resp.text()


# --- reused ids, future events -----------------------------------------------------------------


async def test_a_reused_id_with_other_content_is_409_and_stores_nothing(client, pool):
    assert (await client.post("/api/v1/events", json=dispatched(), headers=auth())).status == 200
    before = await table_counts(pool)
    other = dict(dispatched("T2")[1], id="T1-2")  # T1's dispatch id, for another ticket
    fresh = ev("T2", 1, "created", sh(2026, 12, 1, 8, 0))
    resp = await client.post("/api/v1/events", json=[fresh, other], headers=auth())
    assert resp.status == 409
    body = await resp.json()
    assert body["id"] == "T1-2" and "'T1-2'" in body["error"]
    assert body["stored"]["ticket"] == "T1" and body["stored"]["type"] == "dispatched"
    assert await table_counts(pool) == before


async def test_a_reused_id_within_a_batch_is_409(client, pool):
    a = ev("T3", 1, "created", sh(2026, 12, 1, 8, 0))
    b = dict(a, at=sh(2026, 12, 1, 8, 1).isoformat())
    resp = await client.post("/api/v1/events", json=[a, b], headers=auth())
    assert resp.status == 409 and (await table_counts(pool))["events"] == 0


async def test_the_same_content_again_is_still_a_duplicate(client):
    await client.post("/api/v1/events", json=dispatched(), headers=auth())
    resp = await client.post("/api/v1/events", json=dispatched(), headers=auth())
    assert resp.status == 200 and (await resp.json())["duplicates"] == 2


async def test_an_event_beyond_the_future_tolerance_is_refused(client, pool):
    late = ev("T4", 1, "created", sh(2026, 12, 1, 9, 6))  # 6 minutes ahead of the clock
    resp = await client.post("/api/v1/events", json=late, headers=auth())
    assert resp.status == 422
    assert "in the future: more than 5 minutes ahead" in (await resp.json())["error"]
    assert (await table_counts(pool))["events"] == 0
    near = ev("T4", 1, "created", sh(2026, 12, 1, 9, 4))
    assert (await client.post("/api/v1/events", json=near, headers=auth())).status == 200


async def test_historical_events_are_accepted(client):
    old = ev("T5", 1, "created", sh(2021, 3, 1, 9, 0))
    assert (await client.post("/api/v1/events", json=old, headers=auth())).status == 200


# --- bad input that was a 500 -------------------------------------------------------------------


@pytest.mark.parametrize("levels", [700, 900])
async def test_deep_nesting_inside_a_field_is_422_naming_it(client, levels: int):
    raw = ev("T6", 1, "created", sh(2026, 12, 1, 8, 0))
    raw["summary"] = json.loads("[" * levels + "]" * levels)
    resp = await client.post("/api/v1/events", json=raw, headers=auth())
    assert resp.status == 422 and "summary" in (await resp.json())["error"]


@pytest.mark.parametrize(
    "events",
    [
        [{"id": "y1", "ticket": "Y", "type": "created", "at": "9999-12-31T20:00:00+00:00"},
         {"id": "y2", "ticket": "Y", "type": "dispatched", "at": "9999-12-31T20:00:00+00:00", "unit": "U"}],
        [{"id": "y3", "ticket": "Y", "type": "created", "at": "0001-01-01T00:00:00+23:59"}],
        [{"id": "y4", "ticket": "Y", "type": "extension_requested", "at": "2026-12-01T08:00:00+08:00",
          "until": "9999-12-31T17:00:00+08:00"}],
    ],
)  # fmt: skip
async def test_timestamps_out_of_range_are_422(client, pool, events):
    resp = await client.post("/api/v1/events", json=events, headers=auth())
    assert resp.status == 422, await resp.text()
    assert "outside the accepted range" in (await resp.json())["error"]
    assert (await table_counts(pool))["events"] == 0


@pytest.mark.parametrize("ticket", ["A{1}", "a/b", "x y", "T\u0007"])
async def test_unroutable_ticket_ids_are_refused_at_ingest(client, ticket: str):
    raw = {"id": "z", "ticket": ticket, "type": "created", "at": "2026-12-01T08:00:00+08:00"}
    resp = await client.post("/api/v1/events", json=raw, headers=auth())
    assert resp.status == 422 and (await resp.json())["error"].startswith("ticket: ")


# --- one zone in the ticket view ---------------------------------------------------------------


async def test_the_ticket_view_is_in_beijing_time_with_the_deadlines(client):
    await client.post("/api/v1/events", json=every_type()[:2], headers=auth())
    await client.post("/api/v1/tickets/T1/ack", json={"rule": "sign-off"}, headers=auth("tok-supervisor"))
    view = await (await client.get("/api/v1/tickets/T1", headers=auth())).json()
    stamps = []

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and len(value) >= 20 and value[10:11] == "T":
            stamps.append(value)

    walk({k: view[k] for k in ("state", "timeline", "ladders", "timers", "messages")})
    assert len(stamps) > 5 and all(s.endswith("+08:00") for s in stamps), stamps
    assert view["state"]["sign_by"] == "2026-11-23T11:05:00+08:00"
    assert view["state"]["reply_by"].startswith("2026-11-30T09:05")
    assert view["timers"][0]["due_at"].endswith("+08:00")
    acked = [lad for lad in view["ladders"] if lad["rule"] == "sign-off"]
    assert acked[0]["acked_at"].endswith("+08:00")


async def test_the_openapi_document_is_served_without_a_token(client):
    from supervisor.server.openapi import openapi_document

    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200 and await resp.json() == openapi_document()


@pytest.mark.parametrize(
    "events",
    [
        [{"id": "e1", "ticket": "E1", "type": "created", "at": "2000-01-01T00:00:00+14:00", "kind": "complaint"},
         {"id": "e2", "ticket": "E1", "type": "dispatched", "at": "2000-01-01T00:00:00+14:00", "unit": "U"}],
        [{"id": "e3", "ticket": "E2", "type": "created", "at": "2026-11-30T09:00:00+08:00", "kind": "complaint"},
         {"id": "e4", "ticket": "E2", "type": "dispatched", "at": "2026-11-30T09:00:00+08:00", "unit": "U",
          "reply_by": "2099-12-31T23:59:59-14:00", "sign_by": "2099-12-31T23:59:59-14:00"},
         {"id": "e5", "ticket": "E2", "type": "extension_requested", "at": "2026-11-30T10:00:00+08:00",
          "until": "2099-12-31T23:59:59-14:00"},
         {"id": "e6", "ticket": "E2", "type": "extension_decided", "at": "2026-11-30T11:00:00+08:00", "approved": True},
         {"id": "e7", "ticket": "E2", "type": "commitment_made", "at": "2026-11-30T11:00:00+08:00", "due": "2099-12-31"},
         {"id": "e8", "ticket": "E2", "type": "reopened", "at": "2026-11-30T12:00:00+08:00",
          "reply_by": "2099-12-31T23:59:59-14:00"}],
    ],
)  # fmt: skip
async def test_the_edges_of_the_accepted_range_are_stored_and_viewable(client, events):
    """The range is chosen so that everything inside it works end to end: the calendar, the
    planner, PostgreSQL and the view (the issue's 500s came from years 1 and 9999)."""
    resp = await client.post("/api/v1/events", json=events, headers=auth())
    assert resp.status == 200, await resp.text()
    view = await client.get(f"/api/v1/tickets/{events[0]['ticket']}", headers=auth())
    assert view.status == 200, await view.text()
