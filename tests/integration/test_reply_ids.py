"""Issue 23: a reply names its ticket by any valid id, digits or not ("1 RA"), matched against
the replier's open ladders; a word that is none of their tickets is not taken as an id. Through
Twilio's inbound webhook, wired as the daemon wires it (acking.reply_ack), with the shipped rules
and contacts on real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

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
LIAISON = "+8613800138011"  # config/contacts.yaml: 城管执法中队's liaison (wang-qiang)


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[tuple[Supervisor, VirtualClock, TestClient]]:
    clock = VirtualClock(sh(2026, 11, 23, 9, 0))
    store = PgStore(pool)
    sup = Supervisor(store, runtime(), clock)
    app = web.Application()
    setup_twilio_hooks(app, store=store, clock=clock, auth_token=TOKEN, public_url=PUBLIC,
                       ack=reply_ack(sup), dispatcher=None, settings=DeliverySettings())  # fmt: skip
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield sup, clock, client
    finally:
        await client.close()


async def reply(client: TestClient, body: str, sender: str = LIAISON) -> str:
    form = {"From": sender, "To": "+8610000000000", "Body": body, "MessageSid": "SM" + "d" * 32}
    path = "/twilio/inbound"
    resp = await client.post(
        URL(path, encoded=True), data=form,
        headers={"X-Twilio-Signature": sign(PUBLIC + path, form, TOKEN)},
    )  # fmt: skip
    assert resp.status == 200
    return await resp.text()


async def two_tickets_reminded(sup: Supervisor, clock: VirtualClock, pool: asyncpg.Pool) -> None:
    """Tickets RA and RB (ids of letters only), both dispatched to 城管执法中队: its liaison is
    reminded of both; RB's reminder is the latest, so a bare "1" would answer RB."""
    await sup.ingest([
        ev("RA", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
        ev("RA", 2, "dispatched", sh(2026, 11, 23, 9, 5), unit="城管执法中队"),
        ev("RB", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
        ev("RB", 2, "dispatched", sh(2026, 11, 23, 9, 6), unit="城管执法中队"),
    ])  # fmt: skip
    for at in (sh(2026, 11, 23, 10, 35), sh(2026, 11, 23, 10, 36)):
        clock.set(at)
        await sup.fire_due(now=at)
        await pool.execute(
            "UPDATE outbox SET status = 'sent', sent_at = $1 WHERE status = 'pending'", at
        )
    sent = await pool.fetch(
        "SELECT ticket, role FROM outbox WHERE status = 'sent' ORDER BY sent_at"
    )
    assert [(r["ticket"], r["role"]) for r in sent] == [("RA", "liaison"), ("RB", "liaison")]


async def liaison_step(pool: asyncpg.Pool, ticket: str) -> str:
    return await pool.fetchval(
        "SELECT status FROM timers WHERE ticket = $1 AND rule = 'sign-off' AND step = 0", ticket
    )


async def test_one_ra_acknowledges_ticket_ra_for_its_recipient(pool, world) -> None:
    sup, clock, client = world
    await two_tickets_reminded(sup, clock, pool)

    answer = await reply(client, "1 RA")

    assert "已确认，工单RA" in answer
    acks = await pool.fetch("SELECT ticket, by_whom, via FROM acks")
    assert [(a["ticket"], a["by_whom"], a["via"]) for a in acks] == [("RA", "wang-qiang", "sms")]
    assert await liaison_step(pool, "RA") == "fired"  # already fired; its messages stop
    # the head's step of RA goes on (rank rule), RB is untouched
    assert (
        await pool.fetchval(
            "SELECT status FROM timers WHERE ticket = 'RA' AND rule = 'sign-off' AND step = 1"
        )
        == "pending"
    )
    assert await pool.fetchval("SELECT count(*) FROM acks WHERE ticket = 'RB'") == 0


async def test_a_lower_case_id_finds_the_ticket(pool, world) -> None:
    sup, clock, client = world
    await two_tickets_reminded(sup, clock, pool)

    answer = await reply(client, "收到，ra")

    assert "工单RA" in answer
    assert [r["ticket"] for r in await pool.fetch("SELECT ticket FROM acks")] == ["RA"]


async def test_a_word_that_is_none_of_their_tickets_is_not_an_id(pool, world) -> None:
    sup, clock, client = world
    await two_tickets_reminded(sup, clock, pool)

    for body in ("1 RC", "收到 好的"):
        answer = await reply(client, body)
        assert "请回复“收到”确认" in answer, body  # the help text; nothing acknowledged
    assert await pool.fetchval("SELECT count(*) FROM acks") == 0
    # an id with digits that is not theirs is answered as such
    assert "工单RA1没有发给您的待确认督办" in await reply(client, "1 RA1")
    # and the ticket another person was sent is not theirs either
    assert "请回复" in await reply(client, "1 RA", sender="+8613900000009")
    assert await pool.fetchval("SELECT count(*) FROM acks") == 0
