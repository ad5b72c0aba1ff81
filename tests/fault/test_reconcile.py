"""Minimal, deterministic reproductions of the ways the kill -9 run lost or duplicated a reminder.
Each was a bug, now fixed (notifiers/twilio_sms.py, notifiers/twilio_voice.py,
supervisor/delivery/outbox.py, storage KNOWN_IDS); see docs/RELIABILITY.md, "Defects found by the
suite, and fixed".

Real PostgreSQL, the real twilio SDK, the in-process FakeTwilio, a VirtualClock shared by both."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifiers.registry import build_notifiers, close_all
from supervisor.config.delivery import DeliverySettings
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.core.clock import VirtualClock
from supervisor.delivery.outbox import Dispatcher
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


class _KilledBeforeRecordingSent(PgStore):
    """A daemon killed between writing an attempt's SID to the ledger (record_attempt) and marking
    the row sent (record_sent): two statements, so kill -9 can fall between them."""

    async def record_sent(self, lead: int, provider_id: str | None, at: datetime) -> None:
        raise _Killed


class _Killed(Exception):
    pass


async def test_sms_whose_sid_reached_the_ledger_before_a_crash_is_not_sent_again(
    pool, fake, notifiers, clock
):
    """Regression test for the kill -9 duplicates (cause: KNOWN_IDS took every provider id in the
    attempts ledger as another row's, including the row's OWN attempt's SID, so find_sent was told
    to exclude the very message it looked for and the SMS was sent a second time)."""
    row = await insert(
        pool, "20261125003", "sms", HEAD, "【12345催办】工单20261125003 签收时限已到"
    )
    settings = DeliverySettings.model_validate(
        {"quiet_hours": None, "group_window_s": 0, "rate_per_s": {"sms": 1000, "voice": 1000}}
    )
    crashing = Dispatcher(
        _KilledBeforeRecordingSent(pool), notifiers, settings, clock, worker_id="w1"
    )
    with pytest.raises(_Killed):
        await crashing.run_once()
    assert len(fake.messages) == 1
    ledger = await pool.fetchval("SELECT provider_id FROM outbox_attempts WHERE lead = $1", row)
    assert ledger == fake.messages[0]["sid"]  # the SID reached the ledger, the row did not
    assert await pool.fetchval("SELECT status FROM outbox WHERE id = $1", row) == "sending"

    clock.advance(timedelta(seconds=61))
    stats = await dispatcher(pool, notifiers, clock, "w2").run_once()

    assert stats.reconciled == 1
    assert len(fake.messages) == 1, f"the same SMS was accepted {len(fake.messages)} times"
    got = await pool.fetchrow("SELECT status, provider_id FROM outbox WHERE id = $1", row)
    assert (got["status"], got["provider_id"]) == ("sent", fake.messages[0]["sid"])


@pytest.mark.parametrize("channel", ["sms", "voice"])
async def test_a_reconciler_killed_before_asking_does_not_move_the_attempt_time(
    pool, fake, notifiers, clock, channel
):
    """A reconciler that takes a stale row over re-stamps its claim (claimed_at) and may be killed
    before it asks Twilio. The next one must still look from the ATTEMPT's start (the ledger), not
    from that re-stamp: 61 s later, with the default reconcile_after_s, the accepted SMS lay
    before the 60 s slack (and a call outside its seconds-wide window), and was sent again."""
    row = await insert(
        pool, "20261125004", channel, HEAD, "【12345催办】工单20261125004 签收时限已到"
    )
    fake.script("500-after-accept")  # accepted, answer lost: the row stays 'sending', in flight
    assert (await dispatcher(pool, notifiers, clock, "w1").run_once()).unknown == 1
    clock.advance(timedelta(seconds=61))
    store = PgStore(pool)
    cutoff = clock.now() - timedelta(seconds=60)
    assert list(await store.claim_stale(clock.now(), cutoff, 10, "w2")) == [row]  # then killed
    clock.advance(timedelta(seconds=61))
    stats = await dispatcher(pool, notifiers, clock, "w3").run_once()

    accepted = fake.messages if channel == "sms" else fake.calls
    assert len(accepted) == 1, f"accepted {len(accepted)} times"
    assert stats.reconciled == 1
    got = await pool.fetchrow("SELECT status, provider_id FROM outbox WHERE id = $1", row)
    assert (got["status"], got["provider_id"]) == ("sent", accepted[0]["sid"])
