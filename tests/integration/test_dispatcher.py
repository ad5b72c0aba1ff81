"""The dispatcher on real PostgreSQL, with the real twilio SDK talking to the fake Twilio server.
Time is a VirtualClock shared with the fake, so backoffs, quiet hours and reconciliation windows
pass without waiting."""

from __future__ import annotations

import asyncio
import io
import random
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from notifiers.base import Notifier, Outgoing
from notifiers.registry import build_notifiers, close_all
from supervisor.config.delivery import DeliverySettings, not_before
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.core.clock import VirtualClock
from supervisor.delivery.outbox import Dispatcher
from supervisor.storage.pg import PgStore
from tests.fakes.fake_twilio import FakeTwilio
from tests.helpers import loaded

SH = ZoneInfo("Asia/Shanghai")
SID = "AC" + "0" * 32
TOKEN = "test-token"
FROM = "+8610000000000"
PHONE = "+8613800000001"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)  # a Wednesday morning: no quiet hours


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
async def fake(clock: VirtualClock) -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(SID, TOKEN, now=clock.now) as f:
        yield f


@pytest.fixture
async def notifiers(fake: FakeTwilio) -> AsyncIterator[dict[str, Notifier]]:
    settings = NotifierSettings.model_validate(
        {
            "twilio": {
                "from_number": FROM,
                "base_url": fake.base_url,
                "status_callback_url": "https://hotline.example/twilio/status",
            }
        }
    )
    env = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}
    built = build_notifiers(settings, env, stream=io.StringIO())
    yield built
    await close_all(built)


def make(
    pool, notifiers, clock, worker: str = "w1", workday=None, **settings: object
) -> Dispatcher:
    return Dispatcher(
        PgStore(pool),
        notifiers,
        DeliverySettings.model_validate(settings),
        clock,
        worker_id=worker,
        rng=random.Random(1),
        workday=workday,
    )


async def insert(
    pool: asyncpg.Pool,
    *,
    ticket: str = "20261125001",
    rule: str = "sign_off",
    step: int = 0,
    recipient: str = "liaison-a",
    address: str | None = PHONE,
    channel: str = "sms",
    text: str | None = None,
    urgent: bool = False,
    at: datetime = T0,
    ready: datetime | None = None,
) -> int:
    text = text or f"【12345催办】工单{ticket}（市容）请于11月25日 14:30前签收。"
    return await pool.fetchval(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, name, address, channel,
                               text, urgent, not_before, created_at)
           VALUES ($1, $2, 1, $3, 'liaison', $4, '张三', $5, $6, $7, $8, $9, $10) RETURNING id""",
        ticket, rule, step, recipient, address, channel, text, urgent, ready or at, at,
    )  # fmt: skip


async def row(pool: asyncpg.Pool, outbox_id: int) -> asyncpg.Record:
    return await pool.fetchrow("SELECT * FROM outbox WHERE id = $1", outbox_id)


def message_posts(fake: FakeTwilio) -> list:
    return [p for p in fake.posts() if p.path.endswith("/Messages.json")]


# -- the plain path -----------------------------------------------------------------------------


async def test_a_message_is_sent_once_with_its_body(pool, fake, notifiers, clock) -> None:
    oid = await insert(pool, urgent=True)
    d = make(pool, notifiers, clock)

    stats = await d.run_once()
    again = await d.run_once()

    assert (stats.claimed, stats.sent) == (1, 1)
    assert again.claimed == 0
    [post] = message_posts(fake)
    assert post.form["To"] == PHONE
    assert post.form["Body"] == "【12345催办】工单20261125001（市容）请于11月25日 14:30前签收。"
    assert post.form["StatusCallback"].endswith(f"key=outbox%3A{oid}")
    r = await row(pool, oid)
    assert r["status"] == "sent"
    assert r["provider_id"] == fake.messages[0]["sid"]
    assert r["attempts"] == 1 and r["sent_at"] is not None


async def test_a_429_is_retried_after_backoff_and_delivered(pool, fake, notifiers, clock) -> None:
    fake.retry_after = "5"
    fake.script("429")
    oid = await insert(pool, urgent=True)
    d = make(pool, notifiers, clock)

    first = await d.run_once()
    r = await row(pool, oid)
    assert first.retried == 1
    assert r["status"] == "pending" and "429" in r["last_error"]
    assert r["not_before"] >= T0 + timedelta(seconds=5)  # Retry-After is honoured
    assert (await d.run_once()).claimed == 0  # not before its time

    clock.set(r["not_before"])
    second = await d.run_once()

    assert second.sent == 1
    assert len(message_posts(fake)) == 2 and len(fake.messages) == 1
    r = await row(pool, oid)
    assert r["status"] == "sent" and r["attempts"] == 2 and r["last_error"] is None


async def test_a_rejected_number_falls_back_to_a_call(pool, fake, notifiers, clock) -> None:
    fake.script("400")
    oid = await insert(pool, urgent=True)
    d = make(pool, notifiers, clock)

    stats = await d.run_once()

    assert (stats.failed, stats.fallbacks) == (1, 1)
    r = await row(pool, oid)
    assert r["status"] == "failed" and "HTTP 400" in r["last_error"]
    fb = await pool.fetchrow("SELECT * FROM outbox WHERE channel = 'voice'")
    assert (fb["ticket"], fb["rule"], fb["step"], fb["recipient"]) == (
        r["ticket"],
        r["rule"],
        0,
        "liaison-a",
    )
    assert fb["status"] == "pending" and fb["text"] == r["text"]
    assert fb["note"].startswith("fallback from sms: twilio HTTP 400")
    assert PHONE not in fb["note"]  # the provider's message quoted the number: redacted

    await d.run_once()

    [call] = fake.calls
    # a row without a call script (the SMS text) is read made speakable (issue 19)
    assert call["to"] == PHONE and "尾号五零零幺的工单" in call["twiml"] and "【" not in call["twiml"]
    assert (await row(pool, fb["id"]))["status"] == "sent"
    assert (await d.run_once()).claimed == 0  # the failed SMS is not tried again


async def test_repeated_500s_fall_back_after_max_attempts(pool, fake, notifiers, clock) -> None:
    fake.script("500", "500")
    oid = await insert(pool, urgent=True)
    d = make(pool, notifiers, clock, max_attempts=2)

    assert (await d.run_once()).unknown == 1  # a 500 may have been accepted: reconcile first
    clock.advance(timedelta(seconds=61))
    assert (await d.run_once()).unknown == 1  # not found at Twilio: sent again
    clock.advance(timedelta(seconds=61))
    gave_up = await d.run_once()  # not found again, and no attempts left

    assert (gave_up.failed, gave_up.fallbacks) == (1, 1)
    assert len(message_posts(fake)) == 2
    r = await row(pool, oid)
    assert r["status"] == "failed"
    assert r["last_error"].startswith("gave up after 2 attempts: twilio HTTP 500")
    fb = await pool.fetchrow("SELECT * FROM outbox WHERE channel = 'voice'")
    assert "gave up after 2 attempts" in fb["note"]
    await d.run_once()
    assert len(fake.calls) == 1


async def test_429s_are_retried_past_five_attempts_within_the_horizon(
    pool, fake, notifiers, clock
) -> None:
    """Retries follow a time horizon, not a count (issue 9): eight 429s, then accepted."""
    fake.script(*["429"] * 8)
    oid = await insert(pool, urgent=True)
    d = make(pool, notifiers, clock, breaker_threshold=100)
    for _ in range(20):
        await d.run_once()
        if (await row(pool, oid))["status"] == "sent":
            break
        clock.advance(timedelta(seconds=301))  # past the capped backoff
    r = await row(pool, oid)
    assert r["status"] == "sent" and r["attempts"] == 9
    assert len(message_posts(fake)) == 9 and len(fake.messages) == 1


async def test_past_its_horizon_a_message_falls_back(pool, fake, notifiers, clock) -> None:
    fake.script(*["429"] * 50)
    oid = await insert(pool, urgent=True)
    d = make(pool, notifiers, clock, retry_horizon_s={"sms": 120}, breaker_threshold=100)
    for _ in range(10):
        await d.run_once()
        clock.advance(timedelta(seconds=61))
        if (await row(pool, oid))["status"] == "failed":
            break
    r = await row(pool, oid)
    assert r["status"] == "failed" and r["last_error"].startswith("gave up after")
    fb = await pool.fetchrow("SELECT * FROM outbox WHERE channel = 'voice'")
    assert fb is not None and "429" in fb["note"]


async def test_while_twilio_is_down_sms_fall_back_to_a_channel_that_works(
    pool, fake, notifiers, clock
) -> None:
    """The circuit breaker opens; the next messages go on the fallback channel (here the console,
    whose provider is up) instead of waiting; the first stays for a probe (no loss either way)."""
    first = await insert(pool, ticket="20261125001", urgent=True)
    second = await insert(pool, ticket="20261125002", urgent=True, recipient="liaison-b")
    await fake.go_away()
    d = make(pool, notifiers, clock, breaker_threshold=1, fallback={"sms": "console"})
    stats = await d.run_once()
    assert stats.retried == 1 and stats.failed == 1 and stats.fallbacks == 1
    assert set(d.outages()) == {"twilio"}
    assert (await row(pool, first))["status"] == "pending"  # refused: waits for the provider
    held = await row(pool, second)
    assert held["status"] == "failed" and "twilio unavailable" in held["last_error"]
    await d.run_once()
    console = await pool.fetchrow("SELECT * FROM outbox WHERE channel = 'console'")
    assert console["status"] == "sent" and console["ticket"] == "20261125002"


# -- ambiguous sends and crashes ------------------------------------------------------------------


async def test_an_ambiguous_send_is_reconciled_without_a_second_post(
    pool, fake, notifiers, clock
) -> None:
    fake.script("500-after-accept")
    oid = await insert(pool, urgent=True)
    d = make(pool, notifiers, clock)

    assert (await d.run_once()).unknown == 1
    r = await row(pool, oid)
    assert r["status"] == "sending" and "500" in r["last_error"]
    assert (await d.run_once()).claimed == 0  # too early to reconcile

    clock.advance(timedelta(seconds=61))
    stats = await d.run_once()

    assert (stats.reconciled, stats.sent) == (1, 0)
    assert len(message_posts(fake)) == 1
    r = await row(pool, oid)
    assert r["status"] == "sent" and r["provider_id"] == fake.messages[0]["sid"]


async def test_a_new_worker_reconciles_a_crashed_workers_rows(pool, fake, notifiers, clock) -> None:
    accepted = await insert(
        pool, ticket="20261125001", recipient="a", address="+8613800000001", urgent=True
    )
    lost = await insert(
        pool, ticket="20261125002", recipient="b", address="+8613800000002", urgent=True
    )
    # The crashed worker had sent the first (Twilio accepted it) and died before recording it,
    # and had claimed the second but died before sending it.
    text = (await row(pool, accepted))["text"]
    first = await notifiers["sms"].send(
        Outgoing(f"outbox:{accepted}", "sms", "+8613800000001", text)
    )
    assert first.outcome == "sent"
    await pool.execute(
        """UPDATE outbox SET status = 'sending', claimed_at = $1, claimed_by = 'dead', group_id = id,
                  attempts = 1, in_flight = true WHERE id = ANY($2::bigint[])""",
        clock.now(), [accepted, lost],
    )  # fmt: skip
    clock.advance(timedelta(minutes=2))
    d = make(pool, notifiers, clock, worker="w2")

    stats = await d.run_once()

    assert (stats.reconciled, stats.sent) == (1, 1)
    posts = message_posts(fake)
    assert len(posts) == 2  # the crashed worker's one, and the lost one re-sent once
    assert posts[1].form["To"] == "+8613800000002"
    a, b = await row(pool, accepted), await row(pool, lost)
    assert a["status"] == "sent" and a["provider_id"] == first.provider_id
    assert b["status"] == "sent" and b["provider_id"] == fake.messages[1]["sid"]
    assert (await d.run_once()).claimed == 0


async def test_two_dispatchers_at_once_send_each_message_once(pool, fake, notifiers, clock) -> None:
    ids = [
        await insert(
            pool,
            ticket=f"2026112500{i}",
            recipient=f"p{i}",
            address=f"+86138000000{i:02d}",
            urgent=True,
        )
        for i in range(8)
    ]
    d1 = make(pool, notifiers, clock, worker="w1", rate_per_s={"sms": 100})
    d2 = make(pool, notifiers, clock, worker="w2", rate_per_s={"sms": 100})

    s1, s2 = await asyncio.gather(d1.run_once(limit=5), d2.run_once(limit=5))
    rest = await d1.run_once()

    assert s1.sent + s2.sent + rest.sent == 8
    bodies = [m["body"] for m in fake.messages]
    assert len(bodies) == 8 and len(set(bodies)) == 8
    statuses = await pool.fetch("SELECT status FROM outbox WHERE id = ANY($1::bigint[])", ids)
    assert {r["status"] for r in statuses} == {"sent"}


# -- timing: quiet hours, grouping, rate ------------------------------------------------------------


async def test_quiet_hours_hold_non_urgent_until_morning(pool, fake, notifiers, clock) -> None:
    night = datetime(2026, 11, 25, 23, 0, tzinfo=SH)
    clock.set(night)
    policy = DeliverySettings()
    calm = await insert(
        pool, ticket="20261125001", at=night, ready=not_before(night, False, policy)
    )
    urgent = await insert(pool, ticket="20261125002", recipient="b", address="+8613800000002",
                          urgent=True, at=night, ready=not_before(night, True, policy))  # fmt: skip
    d = make(pool, notifiers, clock)

    assert (await row(pool, calm))["not_before"] == datetime(2026, 11, 26, 7, 30, tzinfo=SH)
    assert (await d.run_once()).sent == 1  # the urgent one, at once
    assert (await row(pool, urgent))["status"] == "sent"

    clock.set(datetime(2026, 11, 25, 23, 30, tzinfo=SH))
    assert (await d.run_once()).claimed == 0
    assert await d.next_ready() == datetime(2026, 11, 26, 7, 30, tzinfo=SH)

    clock.set(datetime(2026, 11, 26, 7, 31, tzinfo=SH))
    assert (await d.run_once()).sent == 1
    assert (await row(pool, calm))["status"] == "sent"
    assert len(fake.messages) == 2


async def test_retries_and_fallbacks_wait_through_non_working_days(
    pool, fake, notifiers, clock
) -> None:
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=SH)
    monday = datetime(2026, 11, 30, 7, 30, tzinfo=SH)  # the end of quiet hours, next working day
    clock.set(saturday)
    fake.retry_after = "5"
    fake.script("429", "400")
    d = make(pool, notifiers, clock, workday=loaded().calendar.is_workday)

    retried = await insert(pool, ticket="20261128001", at=saturday)
    assert (await d.run_once()).retried == 1
    assert (await row(pool, retried))["not_before"] == monday  # not Saturday 10:00:05

    rejected = await insert(pool, ticket="20261128002", at=saturday)
    assert (await d.run_once()).fallbacks == 1
    assert (await row(pool, rejected))["status"] == "failed"
    fb = await pool.fetchrow("SELECT * FROM outbox WHERE channel = 'voice'")
    assert fb["status"] == "pending" and fb["not_before"] == monday
    assert (await d.run_once()).claimed == 0  # nothing goes before Monday


async def test_reminders_to_one_person_within_the_window_go_as_one_sms(
    pool, fake, notifiers, clock
) -> None:
    policy = DeliverySettings()
    ids = []
    for i, offset in enumerate((0, 10, 20), 1):
        at = T0 + timedelta(seconds=offset)
        ids.append(await insert(pool, ticket=f"2026112500{i}", rule=f"r{i}", at=at,
                                ready=not_before(at, False, policy)))  # fmt: skip
    other = await insert(pool, ticket="20261125009", recipient="b", address="+8613800000002",
                         ready=not_before(T0, False, policy))  # fmt: skip
    d = make(pool, notifiers, clock)

    clock.set(T0 + timedelta(seconds=30))
    assert (await d.run_once()).claimed == 0  # the first one waits for the others to join
    clock.set(T0 + timedelta(seconds=60))
    stats = await d.run_once()

    assert stats.claimed == 4 and stats.sent == 2
    mine = [m for m in fake.messages if m["to"] == PHONE]
    assert len(mine) == 1
    body = mine[0]["body"]
    assert body.startswith("【12345催办】您有3条提醒：")
    for i in (1, 2, 3):
        assert f"2026112500{i}" in body
    rows = await pool.fetch("SELECT * FROM outbox WHERE id = ANY($1::bigint[])", ids)
    assert {(r["status"], r["provider_id"], r["group_id"]) for r in rows} == {
        ("sent", mine[0]["sid"], ids[0])
    }
    assert (await row(pool, other))["group_id"] == other


async def test_sms_are_spaced_at_the_channel_rate(pool, fake, notifiers, clock) -> None:
    for i in range(3):
        await insert(
            pool,
            ticket=f"2026112500{i}",
            recipient=f"p{i}",
            address=f"+86138000000{i:02d}",
            urgent=True,
        )
    d = make(pool, notifiers, clock, rate_per_s={"sms": 0.5})

    await d.run_once()

    sent = sorted(r["sent_at"] for r in await pool.fetch("SELECT sent_at FROM outbox"))
    assert [(b - a).total_seconds() >= 2 for a, b in zip(sent, sent[1:], strict=False)] == [
        True,
        True,
    ]
    assert clock.now() >= T0 + timedelta(seconds=4)  # the virtual clock moved; nothing slept


async def test_messages_of_an_acknowledged_ladder_are_not_sent(
    pool, fake, notifiers, clock
) -> None:
    await pool.execute(
        "INSERT INTO ladders (ticket, rule, cycle, anchor_at, status) VALUES ('20261125001', 'sign_off', 1, $1, 'acked')",
        T0,
    )
    oid = await insert(pool, urgent=True)

    await make(pool, notifiers, clock).run_once()

    assert fake.posts() == []
    r = await row(pool, oid)
    assert r["status"] == "cancelled" and r["last_error"] == "ladder acked"


async def test_a_row_without_a_phone_number_fails_without_a_request(
    pool, fake, notifiers, clock
) -> None:
    oid = await insert(pool, address=None, urgent=True)

    stats = await make(pool, notifiers, clock).run_once()

    assert stats.failed == 1 and fake.posts() == []
    assert "no phone number for recipient liaison-a" in (await row(pool, oid))["last_error"]


# -- the loop ---------------------------------------------------------------------------------------


async def test_the_loop_survives_a_failed_pass_and_stops(pool, fake, notifiers, clock) -> None:
    oid = await insert(pool, urgent=True)
    d = make(pool, notifiers, clock)
    real_run_once = d.run_once
    calls = 0

    async def flaky(limit: int = 100, lane=None):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return await real_run_once(limit, lane)

    d.run_once = flaky  # type: ignore[method-assign]
    stop, wake = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(d.run(stop, wake))
    for _ in range(500):
        if (await row(pool, oid))["status"] == "sent":
            break
        wake.set()
        await asyncio.sleep(0.01)
    stop.set()
    await task

    assert calls >= 2
    assert (await row(pool, oid))["status"] == "sent"


async def test_a_fallback_call_goes_only_to_people_who_take_calls(pool, fake, notifiers, clock) -> None:
    """Issue 19: SMS -> voice only for people whose `channels` include voice; the call reads
    the script rendered for it when the step fired, not the SMS."""
    takes = {"liaison-a": ("sms", "voice"), "sms-only": ("sms",)}
    d = Dispatcher(
        PgStore(pool), notifiers, DeliverySettings(), clock, worker_id="w1",
        rng=random.Random(1), takes=lambda person, ch: ch in takes.get(person, (ch,)),
    )  # fmt: skip
    fake.script("400", "400")
    spoken = "您好，这里是幺二三四五热线督办。城管执法中队尾号零零零幺的工单请签收。详情请查看短信。"
    first = await insert(pool, urgent=True)
    await pool.execute(
        "UPDATE outbox SET params = $2 WHERE id = $1",
        first, {"voice": spoken, "call": {"tail": "零零零幺", "item": "签收超时", "notes": []}},
    )  # fmt: skip
    second = await insert(pool, urgent=True, ticket="20261125002", recipient="sms-only",
                          address="+8613800000002")  # fmt: skip

    stats = await d.run_once()

    assert stats.failed == 2 and stats.fallbacks == 1
    [fb] = await pool.fetch("SELECT * FROM outbox WHERE channel = 'voice'")
    assert fb["recipient"] == "liaison-a" and fb["text"] == spoken
    assert fb["params"] == {"call": {"tail": "零零零幺", "item": "签收超时", "notes": []}}
    assert (await row(pool, second))["status"] == "failed"  # no call for an SMS-only person


async def test_two_items_for_one_person_make_one_counting_call(pool, fake, notifiers, clock) -> None:
    """Issue 19: grouped calls count their items; the grouped SMS is never read aloud."""
    for ticket, tail in (("20261125001", "零零零幺"), ("20261125002", "零零零二")):
        oid = await insert(pool, ticket=ticket, channel="voice", text=f"您好。工单{ticket}签收超时。")
        await pool.execute(
            "UPDATE outbox SET params = $2 WHERE id = $1",
            oid, {"call": {"tail": tail, "item": "签收超时", "notes": []}},
        )  # fmt: skip
    d = make(pool, notifiers, clock)

    stats = await d.run_once()

    assert stats.messages == 1 and stats.sent == 1
    [call] = fake.calls
    assert (
        "您好，这里是幺二三四五热线督办。您有2件工单签收超时，尾号零零零幺、零零零二。详情请查看短信。"
        in call["twiml"]
    )
    said = "".join(re.findall(r"<Say[^>]*>([^<]*)</Say>", call["twiml"]))
    assert "【" not in said and "1." not in said and "：" not in said
