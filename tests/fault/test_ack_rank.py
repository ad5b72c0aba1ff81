"""Issue 9, defect 4: the unit being chased cannot silence its own escalation.

Reproduction: a ticket's sign-off ladder has sent its first reminder to the unit's liaison; the
liaison replies "1" with a valid Twilio signature. Before the fix this acknowledged the whole
ladder and cancelled the head's SMS and call and the supervisor's escalation. Now it stops only
the liaison's reminders; the head's "1" stops the head's; only the supervisor ends the rest.
Real PostgreSQL, the real rules and contacts, the webhook handler as the daemon wires it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from supervisor.acking import reply_ack
from supervisor.application import Supervisor
from supervisor.config.delivery import DeliverySettings
from supervisor.core.clock import VirtualClock
from supervisor.server.twilio_hooks import setup_twilio_hooks
from supervisor.storage.pg import PgStore
from tests.fakes.fake_twilio import sign
from tests.helpers import ev, runtime, sh

TOKEN = "hook-token"
PUBLIC = "https://hotline.example"
LIAISON, HEAD, SUPERVISOR = "+8613800138011", "+8613800138012", "+8613800138001"  # contacts.yaml


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[tuple[Supervisor, VirtualClock, TestClient]]:
    clock = VirtualClock(sh(2026, 11, 23, 9, 0))
    sup = Supervisor(PgStore(pool), runtime(), clock)

    app = web.Application()
    setup_twilio_hooks(app, store=sup.store, clock=clock, auth_token=TOKEN, public_url=PUBLIC,
                       ack=reply_ack(sup), dispatcher=None, settings=DeliverySettings())  # fmt: skip
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield sup, clock, client
    finally:
        await client.close()


async def fire_and_send(sup: Supervisor, clock: VirtualClock, pool: asyncpg.Pool, at) -> None:
    """Fire what is due at `at` and mark its messages sent, as the dispatcher would."""
    clock.set(at)
    await sup.fire_due(now=at)
    await pool.execute(
        "UPDATE outbox SET status = 'sent', sent_at = $1 WHERE status = 'pending'", at
    )


async def reply(client: TestClient, phone: str, body: str) -> str:
    form = {"From": phone, "To": "+8610000000000", "Body": body, "MessageSid": "SM" + "d" * 32}
    resp = await client.post("/twilio/inbound", data=form,
                             headers={"X-Twilio-Signature": sign(PUBLIC + "/twilio/inbound", form, TOKEN)})  # fmt: skip
    assert resp.status == 200
    return await resp.text()


async def steps(pool: asyncpg.Pool) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT step, status FROM timers WHERE ticket = 'S1' AND rule = 'sign-off' ORDER BY step"
    )
    return [(r["step"], r["status"]) for r in rows]


async def test_a_liaisons_reply_does_not_cancel_the_heads_call_or_the_supervisor(world, pool):
    sup, clock, client = world
    await sup.ingest([
        ev("S1", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
        ev("S1", 2, "dispatched", sh(2026, 11, 23, 9, 5), unit="城管执法中队"),
    ])  # fmt: skip  (sign-off by 11:05; the liaison is reminded at 10:35)
    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 10, 35))
    assert await pool.fetchval("SELECT role FROM outbox WHERE status = 'sent'") == "liaison"

    text = await reply(client, LIAISON, "1")

    assert "更高一级的督办不受影响" in text
    assert await steps(pool) == [(0, "fired"), (1, "pending"), (2, "pending")]
    assert await pool.fetchval("SELECT status FROM ladders WHERE rule = 'sign-off'") == "active"
    # the head's SMS and call go out at the deadline
    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 11, 5))
    sent = await pool.fetch("SELECT role, channel FROM outbox WHERE step = 1 ORDER BY channel")
    assert [(r["role"], r["channel"]) for r in sent] == [("head", "sms"), ("head", "voice")]

    # the head's "1", naming the ticket: ends the head's part, not the supervisor's
    assert "更高一级的督办不受影响" in await reply(client, HEAD, "1 S1")
    assert (await steps(pool))[2] == (2, "pending")

    # the supervisor's escalation goes out, and only the supervisor ends the ladder
    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 14, 35))
    assert "督办已停止" in await reply(client, SUPERVISOR, "收到")
    assert await pool.fetchval("SELECT status FROM ladders WHERE rule = 'sign-off'") == "acked"
    acks = await pool.fetch("SELECT by_whom FROM acks ORDER BY at, by_whom")
    assert [a["by_whom"] for a in acks] == ["wang-qiang", "zhao-gang", "zhang-min"]


async def test_a_liaisons_second_reply_changes_nothing(world, pool):
    sup, clock, client = world
    await sup.ingest([
        ev("S1", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
        ev("S1", 2, "dispatched", sh(2026, 11, 23, 9, 5), unit="城管执法中队"),
    ])  # fmt: skip
    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 10, 35))
    await reply(client, LIAISON, "1")
    await reply(client, LIAISON, "1")
    assert await steps(pool) == [(0, "fired"), (1, "pending"), (2, "pending")]
    assert await pool.fetchval("SELECT status FROM ladders WHERE rule = 'sign-off'") == "active"


async def test_a_reply_naming_a_ticket_acknowledges_that_ticket_a_bare_one_the_latest(world, pool):
    sup, clock, client = world
    await sup.ingest([
        ev("S1", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
        ev("S1", 2, "dispatched", sh(2026, 11, 23, 9, 5), unit="城管执法中队"),
        ev("S2", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
        ev("S2", 2, "dispatched", sh(2026, 11, 23, 9, 15), unit="城管执法中队"),
    ])  # fmt: skip
    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 10, 35))  # S1's liaison reminder
    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 10, 45))  # S2's: the latest
    assert "工单NOPE1没有发给您的待确认督办" in await reply(client, LIAISON, "1 NOPE1")
    await reply(client, LIAISON, "1 S1")
    assert [r["ticket"] for r in await pool.fetch("SELECT ticket FROM acks")] == ["S1"]
    await reply(client, LIAISON, "1")
    assert [r["ticket"] for r in await pool.fetch("SELECT ticket FROM acks ORDER BY at, ticket")] == ["S1", "S2"]
