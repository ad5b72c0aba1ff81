"""Urgent first on PostgreSQL: the scheduler claims due steps of urgent tickets before the others
(timers.urgent, migration 005), whatever their due times; and (issue 23) urgent work has lanes of
its own in the scheduler and the dispatcher, and goes first at the send rate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from notifiers.base import Outgoing, SendResult
from supervisor.application import Supervisor
from supervisor.config.delivery import DeliverySettings
from supervisor.core.clock import SystemClock, VirtualClock
from supervisor.delivery.outbox import Dispatcher
from supervisor.delivery.sending import TokenBucket
from supervisor.storage.pg import PgStore
from tests.helpers import ev, runtime, sh


async def test_due_steps_of_urgent_tickets_are_claimed_first(pool):
    start = sh(2026, 11, 23, 9, 0)
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(start))
    events = []
    for i in range(5):  # ordinary tickets, due first
        t = f"N{i}"
        events += [
            ev(t, 1, "created", start, kind="complaint", category="市容环境", grid="G01"),
            ev(t, 2, "dispatched", start, unit="城管执法中队"),
        ]
    later = sh(2026, 11, 23, 11, 0)
    events += [
        ev("U1", 1, "created", later, kind="complaint", category="市容环境", grid="G01",
           urgent=True),
        ev("U1", 2, "dispatched", later, unit="城管执法中队"),
    ]  # fmt: skip
    await sup.ingest(events)
    urgent_due = await pool.fetchval("SELECT min(due_at) FROM timers WHERE ticket = 'U1'")
    ordinary_due = await pool.fetchval("SELECT min(due_at) FROM timers WHERE ticket LIKE 'N%'")
    assert ordinary_due < urgent_due  # without urgency the ordinary steps would go first
    # 11:15: ordinary steps are due since 10:30, the urgent ticket's first step since 11:00 (and
    # not yet its second, which would supersede it)
    out = await sup.fire_due(limit=1, now=sh(2026, 11, 23, 11, 15))
    assert out.fired == 1
    assert {n.ticket for n in out.notifications} == {"U1"}


# -- lanes (issue 23) ---------------------------------------------------------------------------


async def test_the_scheduler_lanes_claim_their_own_timers(pool):
    start = sh(2026, 11, 23, 9, 0)
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(start))
    events = []
    for t, urgent in (("N1", False), ("U1", True)):
        events += [
            ev(t, 1, "created", start, kind="complaint", category="市容环境", urgent=urgent),
            ev(t, 2, "dispatched", start, unit="城管执法中队"),
        ]
    await sup.ingest(events)
    store = PgStore(pool)
    first = "SELECT min(due_at) FROM timers WHERE ticket = $1"
    assert await store.next_due("urgent") == await pool.fetchval(first, "U1")
    assert await store.next_due("ordinary") == await pool.fetchval(first, "N1")
    at = max(await store.next_due("urgent"), await store.next_due("ordinary"))
    urgent = await sup.fire_due(now=at, lane="urgent")
    assert urgent.fired and {n.ticket for n in urgent.notifications} == {"U1"}
    ordinary = await sup.fire_due(now=at, lane="ordinary")
    assert ordinary.fired and {n.ticket for n in ordinary.notifications} == {"N1"}
    assert (await sup.fire_due(now=at)).fired == 0


class GatedNotifier:
    """Records what it sends; the third ordinary message waits until an urgent one has gone,
    as a slow provider would hold a long pass of ordinary messages."""

    name = "gated"
    channels = frozenset({"sms"})
    required_settings: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.urgent_sent = asyncio.Event()

    async def send(self, msg: Outgoing) -> SendResult:
        if not msg.urgent and len(self.sent) == 2:
            await asyncio.wait_for(self.urgent_sent.wait(), 10)
        self.sent.append(msg.text)
        if msg.urgent:
            self.urgent_sent.set()
        return SendResult("sent", provider_id=f"id-{len(self.sent)}")

    async def find_sent(self, msg: Outgoing, since: datetime, known: frozenset[str]) -> str | None:
        return None

    async def close(self) -> None:
        return None


async def queue_row(pool, i: int, *, urgent: bool, at: datetime) -> None:
    await pool.execute(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, address, channel, text,
                              urgent, not_before, created_at)
           VALUES ($1, 'sign-off', 1, 0, 'liaison', $2, $3, 'sms', $1, $4, $5, $5)""",
        f"{'U' if urgent else 'N'}{i:03d}", f"p{i}", f"+86138{i:08d}", urgent, at,
    )  # fmt: skip


async def test_an_urgent_message_does_not_wait_for_a_pass_of_ordinary_ones(pool):
    """The dispatcher's urgent lane: an urgent row queued while the ordinary lane is in the middle
    of a pass (its provider slow) goes at once, beside it; the ordinary rows keep their order."""
    now = datetime.now(UTC)
    for i in range(20):
        await queue_row(pool, i, urgent=False, at=now - timedelta(seconds=20 - i))
    notifier = GatedNotifier()
    settings = DeliverySettings.model_validate(
        {"quiet_hours": None, "group_window_s": 0, "rate_per_s": {"sms": 1000}}
    )
    d = Dispatcher(PgStore(pool), {"sms": notifier}, settings, SystemClock(), worker_id="w1")
    stop, wake, urgent_wake = asyncio.Event(), asyncio.Event(), asyncio.Event()
    lanes = asyncio.create_task(d.run(stop, wake, urgent_wake=urgent_wake))
    try:
        for _ in range(100):  # the ordinary pass is under way, held at its third message
            if len(notifier.sent) == 2:
                break
            await asyncio.sleep(0.05)
        await queue_row(pool, 99, urgent=True, at=datetime.now(UTC))
        wake.set()
        urgent_wake.set()
        for _ in range(200):
            if len(notifier.sent) == 21:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        wake.set()
        urgent_wake.set()
        await lanes
    assert notifier.sent[:3] == ["N000", "N001", "U099"]
    assert notifier.sent[3:] == [f"N{i:03d}" for i in range(2, 20)]  # ordinary order kept


class ManualClock(VirtualClock):
    """Moves only when the test says so; sleepers wait for it."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.moved = asyncio.Condition()

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        async with self.moved:
            await self.moved.wait_for(lambda: self.now() >= when)

    async def move(self, delta: timedelta) -> None:
        async with self.moved:
            self.advance(delta)
            self.moved.notify_all()
        for _ in range(5):
            await asyncio.sleep(0)


async def test_the_rate_lets_an_urgent_send_go_before_waiting_ordinary_ones():
    clock = ManualClock(sh(2026, 11, 23, 9, 0))
    bucket = TokenBucket(1.0, clock)  # one a second
    order: list[str] = []
    await bucket.take()  # the token of this second is gone

    async def take(name: str, urgent: bool) -> None:
        await bucket.take(urgent)
        order.append(name)

    tasks = [asyncio.create_task(take("n", False))]  # an ordinary send waits first
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(take("u", True)))
    await asyncio.sleep(0)
    for _ in range(4):
        await clock.move(timedelta(seconds=1))
    await asyncio.gather(*tasks)
    assert order == ["u", "n"]
