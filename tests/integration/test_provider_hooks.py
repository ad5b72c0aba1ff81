"""The Aliyun and Tencent webhooks in-process (aiohttp test server) on real PostgreSQL: the URL
token, delivery receipts (回执) with fallback on failure, and replies (上行短信) that acknowledge
an escalation through the same path as Twilio's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from supervisor.acking import AckOutcome, reply_ack
from supervisor.application import Supervisor
from supervisor.config.delivery import DeliverySettings
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.core.clock import VirtualClock
from supervisor.delivery.outbox import Dispatcher
from supervisor.server.provider_hooks import e164, setup_provider_hooks
from supervisor.storage.memory import MemoryStore
from supervisor.storage.pg import PgStore
from tests.fakes import fake_aliyun, fake_tencent
from tests.helpers import ev, runtime, sh

SH = ZoneInfo("Asia/Shanghai")
PHONE = "+8613800000001"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
TICKET = "20261125001"
ENV = {"ALIYUN_HOOK_TOKEN": "al-secret-token", "TENCENT_HOOK_TOKEN": "tc-secret-token"}


async def start(pool: asyncpg.Pool, provider: str) -> TestClient:
    clock = VirtualClock(T0)
    settings = DeliverySettings()
    store = PgStore(pool)

    async def ack(ticket: str, rule: str | None, by: str, via: str, roles: frozenset[str]) -> AckOutcome:
        # no policy here: the whole ladder, as a head acknowledging a head-only rule would (the
        # rank rule through these hooks: test_provider_replies_keep_the_rank_rule below)
        n = await store.ack(ticket, rule, by, via, clock.now())
        return AckOutcome("ok", acknowledged=n, ended=[rule] if n and rule else [])

    cfg = (
        {"aliyun": {"callback_token_env": "ALIYUN_HOOK_TOKEN"}}
        if provider == "aliyun"
        else {"tencent": {"sdk_app_id": "1400000001", "callback_token_env": "TENCENT_HOOK_TOKEN"}}
    )
    app = web.Application()
    served = setup_provider_hooks(
        app, store=store, clock=clock, notifiers=NotifierSettings.model_validate(cfg), env=ENV,
        ack=ack, dispatcher=Dispatcher(store, {}, settings, clock, worker_id="hooks"),
        settings=settings,
    )  # fmt: skip
    assert served == [provider]
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def aliyun(pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    c = await start(pool, "aliyun")
    yield c
    await c.close()


@pytest.fixture
async def tencent(pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    c = await start(pool, "tencent")
    yield c
    await c.close()


async def sent_row(pool: asyncpg.Pool, provider_id: str | None, status: str = "sent") -> int:
    return await pool.fetchval(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, address, channel, text,
                               not_before, status, provider_id, sent_at, attempts)
           VALUES ($1, 'reply-deadline', 1, 2, 'head', 'head-a', $2, 'sms', '【12345督办】工单超期', $3, $4,
                   $5, $3, 1) RETURNING id""",
        TICKET, PHONE, T0, status, provider_id,
    )  # fmt: skip


async def active_ladder(pool: asyncpg.Pool) -> int:
    await pool.execute(
        "INSERT INTO ladders (ticket, rule, cycle, anchor_at, status) VALUES ($1, 'reply-deadline', 1, $2, 'active')",
        TICKET, T0,
    )  # fmt: skip
    return await sent_row(pool, "biz-1")


def aliyun_message(out_id: str | None, biz_id: str = "biz-1") -> dict:
    return {"PhoneNumbers": "13800000001", "at": T0, "BizId": biz_id, "OutId": out_id}


# -- the token ----------------------------------------------------------------------------------


async def test_a_wrong_token_is_refused_and_changes_nothing(pool, aliyun) -> None:
    oid = await sent_row(pool, "biz-1")
    item = fake_aliyun.report(aliyun_message(f"outbox:{oid}"), success=False, err_code="MK:0001")

    resp = await aliyun.post("/providers/aliyun/not-the-token/report", json=[item])

    assert resp.status == 403
    row = await pool.fetchrow("SELECT status, delivery_status FROM outbox WHERE id = $1", oid)
    assert (row["status"], row["delivery_status"]) == ("sent", None)


def test_a_provider_without_a_token_gets_no_webhook() -> None:
    app = web.Application()
    served = setup_provider_hooks(
        app, store=MemoryStore(), clock=VirtualClock(T0),
        notifiers=NotifierSettings.model_validate({"aliyun": {}}), env={},
        ack=None, dispatcher=None, settings=DeliverySettings(),  # type: ignore[arg-type]
    )  # fmt: skip
    assert served == [] and len(app.router.routes()) == 0


# -- receipts -----------------------------------------------------------------------------------


async def test_aliyun_receipt_marks_delivered_by_out_id(pool, aliyun) -> None:
    oid = await sent_row(pool, None, status="sending")  # the SendSms answer was lost
    item = fake_aliyun.report(aliyun_message(f"outbox:{oid}", "biz-9"))

    resp = await aliyun.post("/providers/aliyun/al-secret-token/report", json=[item])

    assert resp.status == 200 and await resp.json() == {"code": 0, "msg": "成功"}
    row = await pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert (row["status"], row["delivery_status"], row["provider_id"]) == (
        "sent",
        "delivered",
        "biz-9",
    )
    assert row["delivered_at"] is not None


async def test_aliyun_failed_receipt_falls_back_to_a_call_once(pool, aliyun) -> None:
    oid = await sent_row(pool, "biz-1")
    item = fake_aliyun.report(aliyun_message(f"outbox:{oid}"), success=False, err_code="MK:0001")

    for _ in range(2):  # Aliyun re-pushes a receipt it got no answer to
        resp = await aliyun.post("/providers/aliyun/al-secret-token/report", json=[item])
        assert resp.status == 200

    rows = await pool.fetch("SELECT channel, status, last_error, note FROM outbox ORDER BY id")
    assert [(r["channel"], r["status"]) for r in rows] == [("sms", "failed"), ("voice", "pending")]
    assert rows[0]["last_error"] == "aliyun MK:0001"
    assert "fallback from sms" in rows[1]["note"]


async def test_tencent_receipt_is_matched_by_serial_no(pool, tencent) -> None:
    delivered = await sent_row(pool, "2433:0000000001")
    failed = await pool.fetchval(
        "INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, address, channel, text, not_before, status, provider_id, sent_at)"
        " VALUES ($1, 'reply-deadline', 1, 3, 'head', 'head-a', $2, 'sms', '第二条', $3, 'sent', '2433:0000000002', $3) RETURNING id",
        TICKET, PHONE, T0,
    )  # fmt: skip
    ok = fake_tencent.report({"PhoneNumber": PHONE, "SerialNo": "2433:0000000001"})
    bad = fake_tencent.report({"PhoneNumber": PHONE, "SerialNo": "2433:0000000002"}, success=False)

    resp = await tencent.post("/providers/tencent/tc-secret-token/report", json=[ok, bad])

    assert resp.status == 200 and await resp.json() == {"result": 0, "errmsg": "OK"}
    got = {r["id"]: r for r in await pool.fetch("SELECT * FROM outbox")}
    assert got[delivered]["delivery_status"] == "delivered"
    assert (got[failed]["status"], got[failed]["last_error"]) == ("failed", "tencent MK:0001")
    assert [r["channel"] for r in got.values() if r["id"] not in (delivered, failed)] == ["voice"]


async def test_a_receipt_for_no_known_message_changes_nothing(pool, tencent) -> None:
    oid = await sent_row(pool, "2433:1")
    item = fake_tencent.report({"PhoneNumber": PHONE, "SerialNo": "2433:404"}, success=False)

    resp = await tencent.post("/providers/tencent/tc-secret-token/report", json=[item])

    assert resp.status == 200
    assert await pool.fetchval("SELECT status FROM outbox WHERE id = $1", oid) == "sent"
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_malformed_push_is_refused(pool, aliyun) -> None:
    resp = await aliyun.post("/providers/aliyun/al-secret-token/report", data="not json")
    assert resp.status == 400
    resp = await aliyun.post("/providers/aliyun/al-secret-token/report", json=["x"])
    assert resp.status == 400


# -- replies ------------------------------------------------------------------------------------


async def test_aliyun_reply_shou_dao_acknowledges_the_escalation(pool, aliyun) -> None:
    await active_ladder(pool)
    pending = await pool.fetchval(
        "INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, address, channel, text, not_before)"
        " VALUES ($1, 'reply-deadline', 1, 4, 'head', 'head-a', $2, 'sms', '下一条', $3) RETURNING id",
        TICKET, PHONE, T0,
    )  # fmt: skip

    resp = await aliyun.post(
        "/providers/aliyun/al-secret-token/reply", json=[fake_aliyun.reply("13800000001", "收到。")]
    )

    assert resp.status == 200
    ladder = await pool.fetchrow("SELECT status, acked_by FROM ladders WHERE ticket = $1", TICKET)
    assert (ladder["status"], ladder["acked_by"]) == ("acked", "head-a")
    assert await pool.fetchval("SELECT status FROM outbox WHERE id = $1", pending) == "cancelled"
    ack = await pool.fetchrow("SELECT by_whom, via FROM acks")
    assert (ack["by_whom"], ack["via"]) == ("head-a", "sms")


async def test_tencent_reply_acknowledges_and_other_words_do_not(pool, tencent) -> None:
    await active_ladder(pool)

    resp = await tencent.post(
        "/providers/tencent/tc-secret-token/reply", json=fake_tencent.reply(PHONE, "好的")
    )
    assert resp.status == 200
    assert await pool.fetchval("SELECT status FROM ladders") == "active"

    resp = await tencent.post(
        "/providers/tencent/tc-secret-token/reply", json=fake_tencent.reply(PHONE, "1")
    )
    assert resp.status == 200
    assert await pool.fetchval("SELECT status FROM ladders") == "acked"


async def test_a_reply_from_another_number_acknowledges_nothing(pool, aliyun) -> None:
    await active_ladder(pool)

    resp = await aliyun.post(
        "/providers/aliyun/al-secret-token/reply", json=[fake_aliyun.reply("13900000009", "收到")]
    )

    assert resp.status == 200
    assert await pool.fetchval("SELECT status FROM ladders") == "active"


# -- replies keep the rank rule (core.acks) -------------------------------------------------------

# config/contacts.yaml: 城管执法中队's liaison and head, the street's supervisor
LIAISON, HEAD, SUPERVISOR = "+8613800138011", "+8613800138012", "+8613800138001"


@pytest.fixture
async def ranked_world(
    pool: asyncpg.Pool, provider: str
) -> AsyncIterator[tuple[Supervisor, VirtualClock, TestClient]]:
    """The provider's hooks wired as the daemon wires them (acking.reply_ack), with the shipped
    rules and contacts on real PostgreSQL."""
    clock = VirtualClock(sh(2026, 11, 23, 9, 0))
    store = PgStore(pool)
    sup = Supervisor(store, runtime(), clock)
    cfg = {
        "aliyun": {"callback_token_env": "ALIYUN_HOOK_TOKEN"},
        "tencent": {"sdk_app_id": "1400000001", "callback_token_env": "TENCENT_HOOK_TOKEN"},
    }
    app = web.Application()
    served = setup_provider_hooks(
        app, store=store, clock=clock, notifiers=NotifierSettings.model_validate({provider: cfg[provider]}),
        env=ENV, ack=reply_ack(sup), dispatcher=None, settings=DeliverySettings(),
    )  # fmt: skip
    assert served == [provider]
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


async def provider_reply(client: TestClient, provider: str, phone: str, text: str) -> None:
    if provider == "aliyun":
        path, body = "/providers/aliyun/al-secret-token/reply", [fake_aliyun.reply(phone[3:], text)]
    else:
        path, body = "/providers/tencent/tc-secret-token/reply", fake_tencent.reply(phone, text)
    resp = await client.post(path, json=body)
    assert resp.status == 200


async def sign_off_steps(pool: asyncpg.Pool) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT step, status FROM timers WHERE ticket = 'S1' AND rule = 'sign-off' ORDER BY step"
    )
    return [(r["step"], r["status"]) for r in rows]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_provider_replies_keep_the_rank_rule(pool, ranked_world, provider) -> None:
    """Issue 9 defect 4 through the domestic providers: a liaison's "收到" via Aliyun or Tencent
    stops the liaison's reminders, never the head's SMS and call nor the supervisor's
    escalation; the head's reply ends the head's part; only the supervisor ends the ladder."""
    sup, clock, client = ranked_world
    await sup.ingest([
        ev("S1", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
        ev("S1", 2, "dispatched", sh(2026, 11, 23, 9, 5), unit="城管执法中队"),
    ])  # fmt: skip  (sign-off by 11:05; the liaison is reminded at 10:35)
    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 10, 35))
    assert await pool.fetchval("SELECT role FROM outbox WHERE status = 'sent'") == "liaison"

    await provider_reply(client, provider, LIAISON, "收到")

    assert await sign_off_steps(pool) == [(0, "fired"), (1, "pending"), (2, "pending")]
    assert await pool.fetchval("SELECT status FROM ladders WHERE rule = 'sign-off'") == "active"
    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 11, 5))  # the head's SMS and call
    sent = await pool.fetch("SELECT role, channel FROM outbox WHERE step = 1 ORDER BY channel")
    assert [(r["role"], r["channel"]) for r in sent] == [("head", "sms"), ("head", "voice")]

    await provider_reply(client, provider, HEAD, "1")
    assert (await sign_off_steps(pool))[2] == (2, "pending")  # the supervisor's escalation stays
    assert await pool.fetchval("SELECT status FROM ladders WHERE rule = 'sign-off'") == "active"

    await fire_and_send(sup, clock, pool, sh(2026, 11, 23, 14, 35))
    await provider_reply(client, provider, SUPERVISOR, "收到")
    assert await pool.fetchval("SELECT status FROM ladders WHERE rule = 'sign-off'") == "acked"
    acks = await pool.fetch("SELECT by_whom, via FROM acks ORDER BY at, by_whom")
    assert [(a["by_whom"], a["via"]) for a in acks] == [
        ("wang-qiang", "sms"), ("zhao-gang", "sms"), ("zhang-min", "sms")
    ]


def test_aliyun_numbers_become_e164() -> None:
    assert e164("13800000001") == PHONE
    assert e164("8613800000001") == PHONE
    assert e164("+8613800000001") == PHONE
    assert e164("008613800000001") == PHONE
