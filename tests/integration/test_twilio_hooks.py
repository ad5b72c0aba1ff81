"""Twilio's webhooks in-process (aiohttp test server) on real PostgreSQL: signatures, delivery
status, fallback on undelivered, and acknowledgement by SMS reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from supervisor.acking import AckOutcome
from supervisor.config.delivery import DeliverySettings
from supervisor.core.clock import VirtualClock
from supervisor.delivery.outbox import Dispatcher
from supervisor.server.twilio_hooks import setup_twilio_hooks
from supervisor.storage.pg import PgStore
from tests.fakes.fake_twilio import sign

SH = ZoneInfo("Asia/Shanghai")
TOKEN = "hook-token"
PUBLIC = "https://hotline.example"
PHONE = "+8613800000001"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
TICKET = "20261125001"


async def start_client(pool: asyncpg.Pool, public_url: str | None) -> TestClient:
    clock = VirtualClock(T0)
    settings = DeliverySettings()
    store = PgStore(pool)

    async def ack(ticket: str, rule: str | None, by: str, via: str, roles: frozenset[str]) -> AckOutcome:
        # no policy here: the whole ladder, as a head acknowledging a head-only rule would
        n = await store.ack(ticket, rule, by, via, clock.now())
        return AckOutcome("ok", acknowledged=n, ended=[rule] if n and rule else [])

    app = web.Application()
    dispatcher = Dispatcher(store, {}, settings, clock, worker_id="hooks")
    setup_twilio_hooks(app, store=store, clock=clock, auth_token=TOKEN, public_url=public_url, ack=ack,
                       dispatcher=dispatcher, settings=settings)  # fmt: skip
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    c = await start_client(pool, PUBLIC)
    yield c
    await c.close()


async def sent_row(
    pool: asyncpg.Pool, *, channel: str = "sms", sid: str = "SM" + "a" * 32, status: str = "sent"
) -> int:
    return await pool.fetchval(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, address, channel, text,
                               not_before, status, provider_id, sent_at, group_id, attempts)
           VALUES ($1, 'reply_deadline', 1, 0, 'head', 'head-a', $2, $3, '【12345督办】工单超期', $4, $5,
                   $6, $4, NULL, 1) RETURNING id""",
        TICKET, PHONE, channel, T0, status, sid if status == "sent" else None,
    )  # fmt: skip


async def post(
    client: TestClient, path: str, form: dict[str, str], *, signature: str | None
) -> web.Response:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    # encoded=True: send the query exactly as Twilio would (the signature covers it)
    return await client.post(URL(path, encoded=True), data=form, headers=headers)


def status_form(status: str, sid: str = "SM" + "a" * 32, **more: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32, **more}


# -- status callbacks ---------------------------------------------------------------------------


async def test_a_forged_or_missing_signature_is_refused(pool, client) -> None:
    oid = await sent_row(pool)
    path = f"/twilio/status?key=outbox%3A{oid}"
    form = status_form("undelivered")

    forged = await post(client, path, form, signature=sign(PUBLIC + path, form, "wrong-token"))
    missing = await post(client, path, form, signature=None)
    tampered = await post(client, path, {**form, "MessageStatus": "failed"},
                          signature=sign(PUBLIC + path, form, TOKEN))  # fmt: skip

    assert [r.status for r in (forged, missing, tampered)] == [403, 403, 403]
    r = await pool.fetchrow("SELECT status, delivery_status FROM outbox WHERE id = $1", oid)
    assert (r["status"], r["delivery_status"]) == ("sent", None)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_delivered_is_recorded(pool, client) -> None:
    oid = await sent_row(pool)
    path = f"/twilio/status?key=outbox%3A{oid}"
    form = status_form("delivered")

    resp = await post(client, path, form, signature=sign(PUBLIC + path, form, TOKEN))

    assert resp.status == 204
    r = await pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert (r["status"], r["delivery_status"]) == ("sent", "delivered")
    assert r["delivered_at"] is not None
    # a late interim status does not overwrite the final one
    late = status_form("sent")
    await post(client, path, late, signature=sign(PUBLIC + path, late, TOKEN))
    assert (
        await pool.fetchval("SELECT delivery_status FROM outbox WHERE id = $1", oid) == "delivered"
    )


async def test_a_callback_settles_a_send_whose_answer_was_lost(pool, client) -> None:
    oid = await sent_row(pool, status="sending")
    path = f"/twilio/status?key=outbox%3A{oid}"
    form = status_form("sent", sid="SM" + "b" * 32)

    await post(client, path, form, signature=sign(PUBLIC + path, form, TOKEN))

    r = await pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert (r["status"], r["provider_id"], r["delivery_status"]) == (
        "sent",
        "SM" + "b" * 32,
        "sent",
    )


async def test_undelivered_falls_back_to_a_call_once(pool, client) -> None:
    oid = await sent_row(pool)
    path = f"/twilio/status?key=outbox%3A{oid}"
    form = status_form("undelivered", ErrorCode="30003")
    signature = sign(PUBLIC + path, form, TOKEN)

    first = await post(client, path, form, signature=signature)
    retried = await post(client, path, form, signature=signature)  # Twilio retries webhooks

    assert (first.status, retried.status) == (204, 204)
    r = await pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert (r["status"], r["delivery_status"]) == ("failed", "undelivered")
    assert r["last_error"] == "twilio undelivered (error 30003)"
    [fb] = await pool.fetch("SELECT * FROM outbox WHERE channel = 'voice'")
    assert fb["status"] == "pending" and fb["address"] == PHONE
    assert fb["note"] == "fallback from sms: twilio undelivered (error 30003)"


async def test_an_unanswered_call_is_matched_by_its_sid(pool, client) -> None:
    sid = "CA" + "c" * 32
    oid = await sent_row(pool, channel="voice", sid=sid)
    path = "/twilio/status"
    form = {"CallSid": sid, "CallStatus": "no-answer"}

    resp = await post(client, path, form, signature=sign(PUBLIC + path, form, TOKEN))

    assert resp.status == 204
    r = await pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert (r["status"], r["last_error"]) == ("failed", "twilio no-answer")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1  # voice has no fallback


# -- SMS replies --------------------------------------------------------------------------------


async def active_ladder(pool: asyncpg.Pool) -> int:
    await pool.execute(
        "INSERT INTO ladders (ticket, rule, cycle, anchor_at) VALUES ($1, 'reply_deadline', 1, $2)",
        TICKET,
        T0,
    )
    await pool.execute(
        "INSERT INTO timers (ticket, rule, cycle, step, due_at) VALUES ($1, 'reply_deadline', 1, 1, $2)",
        TICKET,
        T0,
    )
    oid = await sent_row(pool)
    # the next step's message, already queued: the acknowledgement must stop it too
    await pool.execute(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, address, channel, text, not_before)
           VALUES ($1, 'reply_deadline', 1, 1, 'head', 'head-a', $2, 'sms', '第二次', $3)""",
        TICKET, PHONE, T0,
    )  # fmt: skip
    return oid


def inbound_form(body: str) -> dict[str, str]:
    return {"From": PHONE, "To": "+8610000000000", "Body": body, "MessageSid": "SM" + "d" * 32}


async def test_replying_shou_dao_acknowledges_the_ladder(pool, client) -> None:
    await active_ladder(pool)
    form = inbound_form(" 收到。")
    path = "/twilio/inbound"

    resp = await post(client, path, form, signature=sign(PUBLIC + path, form, TOKEN))

    assert resp.status == 200 and resp.content_type == "text/xml"
    reply = await resp.text()
    assert "<Message>已确认，工单20261125001的督办已停止。</Message>" in reply
    assert PHONE not in reply and "13800000001" not in reply
    ladder = await pool.fetchrow("SELECT status, acked_by FROM ladders WHERE ticket = $1", TICKET)
    assert (ladder["status"], ladder["acked_by"]) == ("acked", "head-a")
    assert await pool.fetchval("SELECT status FROM timers WHERE ticket = $1", TICKET) == "cancelled"
    assert await pool.fetchval("SELECT status FROM outbox WHERE step = 1") == "cancelled"
    ack = await pool.fetchrow("SELECT by_whom, via FROM acks")
    assert (ack["by_whom"], ack["via"]) == ("head-a", "sms")


async def test_a_forged_reply_is_refused(pool, client) -> None:
    await active_ladder(pool)
    form = inbound_form("收到")
    path = "/twilio/inbound"

    resp = await post(client, path, form, signature=sign(PUBLIC + path, form, "not-our-token"))

    assert resp.status == 403
    assert await pool.fetchval("SELECT status FROM ladders") == "active"
    assert await pool.fetchval("SELECT count(*) FROM acks") == 0


async def test_any_other_reply_gets_help_and_changes_nothing(pool, client) -> None:
    await active_ladder(pool)
    form = inbound_form("这是哪个单位？")
    path = "/twilio/inbound"

    resp = await post(client, path, form, signature=sign(PUBLIC + path, form, TOKEN))

    assert resp.status == 200
    assert "请回复“收到”确认" in await resp.text()
    assert await pool.fetchval("SELECT status FROM ladders") == "active"


async def test_nothing_to_acknowledge(pool, client) -> None:
    form = inbound_form("1")
    path = "/twilio/inbound"

    resp = await post(client, path, form, signature=sign(PUBLIC + path, form, TOKEN))

    assert "没有需要确认的督办提醒" in await resp.text()


async def test_without_public_url_the_request_url_is_signed(pool) -> None:
    client = await start_client(pool, None)
    try:
        await active_ladder(pool)
        form = inbound_form("OK")
        path = "/twilio/inbound"
        url = str(client.make_url(path))  # http://127.0.0.1:<port>/twilio/inbound

        good = await post(client, path, form, signature=sign(url, form, TOKEN))
        assert good.status == 200
        assert await pool.fetchval("SELECT status FROM ladders") == "acked"
        # a signature for the public URL does not fit this server's URL
        bad = await post(client, path, form, signature=sign(PUBLIC + path, form, TOKEN))
        assert bad.status == 403
    finally:
        await client.close()


async def test_undelivered_group_falls_back_for_every_reminder_in_it(pool, client) -> None:
    ids = []
    for step in range(3):
        ids.append(await pool.fetchval(
            """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, address, channel, text,
                                   not_before, status, provider_id, sent_at)
               VALUES ($1, 'reply_deadline', 1, $2, 'head', 'head-a', $3, 'sms', $4, $5, 'sent', 'SMgroup', $5)
               RETURNING id""",
            TICKET, step, PHONE, f"提醒{step}", T0,
        ))  # fmt: skip
    await pool.execute("UPDATE outbox SET group_id = $1", ids[0])
    path = f"/twilio/status?key=outbox%3A{ids[0]}"
    form = status_form("undelivered", sid="SMgroup")

    await post(client, path, form, signature=sign(PUBLIC + path, form, TOKEN))

    assert {
        r["status"] for r in await pool.fetch("SELECT status FROM outbox WHERE channel = 'sms'")
    } == {"failed"}
    voice = await pool.fetch("SELECT step, text FROM outbox WHERE channel = 'voice' ORDER BY step")
    assert [(r["step"], r["text"]) for r in voice] == [(0, "提醒0"), (1, "提醒1"), (2, "提醒2")]
