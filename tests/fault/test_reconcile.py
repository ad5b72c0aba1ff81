"""Minimal, deterministic reproductions of the two ways the kill -9 run lost or duplicated a
reminder. Both were bugs, now fixed, in the shipped code (notifiers/twilio_sms.py, notifiers/twilio_voice.py,
supervisor/dispatcher.py) and these tests FAIL until they are fixed; they are kept failing on
purpose (see docs/RELIABILITY.md, "Known defects").

Real PostgreSQL, the real twilio SDK, the in-process FakeTwilio, a VirtualClock shared by both."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifiers.registry import build_notifiers, close_all
from notifiers.settings import NotifierSettings
from supervisor.core.clock import VirtualClock
from supervisor.delivery.outbox import Dispatcher
from supervisor.delivery.policy import DeliverySettings
from supervisor.storage.pg import PgStore
from tests.fakes.fake_twilio import FakeTwilio

SH = ZoneInfo("Asia/Shanghai")
SID = "AC" + "0" * 32
TOKEN = "test-token"
FROM = "+8610000000000"
HEAD = "+8613800138012"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
async def fake(clock: VirtualClock) -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(SID, TOKEN, now=clock.now) as f:
        yield f


@pytest.fixture
async def notifiers(fake: FakeTwilio):
    settings = NotifierSettings.model_validate(
        {"twilio": {"from_number": FROM, "base_url": fake.base_url}}
    )
    built = build_notifiers(
        settings, {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}, stream=io.StringIO()
    )
    yield built
    await close_all(built)


def dispatcher(pool, notifiers, clock, worker: str) -> Dispatcher:
    settings = DeliverySettings.model_validate(
        {"quiet_hours": None, "group_window_s": 0, "rate_per_s": {"sms": 1000, "voice": 1000}}
    )
    return Dispatcher(PgStore(pool), notifiers, settings, clock, worker_id=worker, rng=random.Random(1))


async def insert(pool, ticket: str, channel: str, address: str, text: str) -> int:
    return await pool.fetchval(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, name, address, channel, text, urgent, not_before, created_at)
           VALUES ($1, 'sign-off-urgent', 1, 1, 'head', 'zhao-gang', '赵刚', $2, $3, $4, true, $5, $5) RETURNING id""",
        ticket, address, channel, text, T0,
    )  # fmt: skip


async def test_sms_accepted_before_a_crash_is_not_sent_again_after_50_newer_sms(
    pool, fake, notifiers, clock
):
    """Regression test, was a bug (notifiers/twilio_sms.py find_sent, `limit=50`): reconciliation looks only at the 50
    newest messages to the number. A daemon killed between Twilio accepting an SMS and recording
    it leaves the row 'sending'; if 50 more SMS reach that person before the row is reconciled
    (reconcile_after_s later: 60 s by default; a supervisor or a unit head gets one per ticket in
    a burst), the accepted SMS is not found and is sent a second time. None of the four duplicate
    cases in dispatcher.py's docstring covers this. Seen twice in the kill -9 run."""
    lost_answer = await insert(
        pool, "20261125000", "sms", HEAD, "【12345催办】工单20261125000 签收时限已到"
    )
    fake.script("500-after-accept")  # accepted, answer lost: as a kill after Twilio accepted
    d = dispatcher(pool, notifiers, clock, "w1")
    assert (await d.run_once(limit=1)).unknown == 1
    for i in range(1, 51):  # the burst goes on: 50 other reminders to the same head
        await insert(
            pool, f"2026112500{i:02d}"[-11:], "sms", HEAD, f"【12345催办】工单{i} 签收时限已到"
        )
    clock.advance(timedelta(seconds=1))
    await d.run_once(limit=100)
    clock.advance(timedelta(seconds=61))
    await d.run_once(limit=100)  # reconciles the ambiguous row

    copies = [m for m in fake.messages if m["body"].startswith("【12345催办】工单20261125000")]
    assert (await pool.fetchval("SELECT status FROM outbox WHERE id = $1", lost_answer)) == "sent"
    assert len(copies) == 1, f"the same SMS was accepted {len(copies)} times"


async def test_a_call_claimed_but_never_placed_is_placed_after_a_crash(
    pool, fake, notifiers, clock
):
    """Regression test, was a bug (supervisor/dispatcher.py _claim_stale/_reconcile with notifiers/twilio_voice.py
    find_sent): a daemon claims a batch of up to 100 rows ('sending') and sends them one by one;
    killed half-way, the rows it never sent (attempts still 0: TOUCH never ran) are reconciled
    like ambiguous sends. For voice, find_sent accepts ANY call to the number since claimed_at
    minus 60 s, so a head who was just called about another ticket makes every unsent call to
    him count as placed: marked 'sent' with another call's SID, never placed, nothing logged as
    lost. A row with attempts = 0 was never handed to Twilio and needs no reconciliation.
    The kill -9 run lost 121 escalation calls this way (of 3,334)."""
    placed = await insert(pool, "20261125001", "voice", HEAD, "工单20261125001签收时限已到")
    never = await insert(pool, "20261125002", "voice", HEAD, "工单20261125002签收时限已到")
    d = dispatcher(pool, notifiers, clock, "w1")
    # the crashed worker: claimed both, placed the first, died before touching the second
    assert (await d.run_once(limit=1)).sent == 1
    await pool.execute(
        "UPDATE outbox SET status = 'sending', claimed_at = $1, claimed_by = 'dead', group_id = id WHERE id = $2",
        clock.now(), never,
    )  # fmt: skip
    clock.advance(timedelta(seconds=61))
    await dispatcher(pool, notifiers, clock, "w2").run_once()

    row = await pool.fetchrow(
        "SELECT status, attempts, provider_id FROM outbox WHERE id = $1", never
    )
    first_sid = await pool.fetchval("SELECT provider_id FROM outbox WHERE id = $1", placed)
    assert row["status"] == "sent"
    assert len(fake.calls) == 2, (
        f"the second call was never placed, yet its row is {row['status']!r} with the first call's SID "
        f"({row['provider_id'] == first_sid}) and attempts={row['attempts']}"
    )
