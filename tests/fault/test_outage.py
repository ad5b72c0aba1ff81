"""Issue 9, defect 2: a Twilio outage of a minute or more turned reminders into permanent failures.

Twilio refuses connections for 90 s, or answers 429 to everything for 60 s, or both one after
the other, then recovers: longer than the old budget (5 attempts with 2·2ᵏ s backoff gave up within 15-30 s, and the call
fallback failed the same way). Now retries follow a time horizon (hours), a circuit breaker per
provider lets one probe through at a time while Twilio is down, the supervisors are told (on the
console, the one channel still working) and nothing is lost when Twilio is back.

Virtual time: the dispatcher runs pass after pass as the daemon would, the clock jumping to the
next thing to do, so the 150 s outage takes a few seconds."""

from __future__ import annotations

import io
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web

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
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
MESSAGES = 300  # 200 SMS and 100 calls, a third of them urgent


class OutageTwilio(FakeTwilio):
    """Answers 429 to every create while `throttled`; counts the creates it is sent."""

    def __init__(self, now) -> None:
        super().__init__(SID, TOKEN, now=now)
        self.throttled = False
        self.creates: Counter[str] = Counter()

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        self.creates["throttled" if self.throttled else "normal"] += 1
        if self.throttled:
            self.script("429")
        return await super()._create_message(request)

    async def _create_call(self, request: web.Request) -> web.StreamResponse:
        self.creates["throttled" if self.throttled else "normal"] += 1
        if self.throttled:
            self.script("429")
        return await super()._create_call(request)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
async def fake(clock: VirtualClock) -> AsyncIterator[OutageTwilio]:
    async with OutageTwilio(clock.now) as f:
        yield f


async def queue(pool: asyncpg.Pool) -> None:
    for i in range(MESSAGES):
        channel = "voice" if i % 3 == 2 else "sms"
        await pool.execute(
            """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, name, address,
                                   channel, text, urgent, not_before, created_at)
               VALUES ($1, 'sign-off', 1, 0, 'liaison', $2, '联络员', $3, $4, $5, $6, $7, $7)""",
            f"T{i:04d}", f"p{i}", f"+86138{i:08d}", channel, f"工单T{i:04d}请签收", i % 3 == 0,
            T0 + timedelta(seconds=i % 30),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("refused_s", "throttled_s"),
    [(90, 0), (0, 60), (90, 60)],
    ids=["refused-90s", "429-60s", "refused-90s-then-429-60s"],
)
async def test_a_twilio_outage_loses_nothing(
    pool: asyncpg.Pool, fake: OutageTwilio, clock: VirtualClock, refused_s: int, throttled_s: int
) -> None:
    refused, throttled = timedelta(seconds=refused_s), timedelta(seconds=throttled_s)
    await queue(pool)
    notifiers = build_notifiers(
        NotifierSettings.model_validate({"twilio": {"from_number": "+8610000000000",
                                                    "base_url": fake.base_url}}),
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN},
        stream=io.StringIO(),
    )  # fmt: skip
    settings = DeliverySettings.model_validate(
        # one probe every 10 s (the default), so the 429 minute is probed too
        {"quiet_hours": None, "group_window_s": 0, "rate_per_s": {"sms": 50, "voice": 50}}
    )  # fmt: skip
    d = Dispatcher(PgStore(pool), notifiers, settings, clock, worker_id="w1", rng=random.Random(7))
    told: list[tuple[str, bool, frozenset[str], datetime]] = []

    async def tell(provider: str, down: bool, channels: frozenset[str]) -> None:
        told.append((provider, down, channels, clock.now()))

    d.on_outage = tell
    seen_down: dict[str, datetime] = {}
    phase = "refused"
    if refused:
        await fake.go_away()  # refusing connections from the start
    try:
        while clock.now() < T0 + timedelta(hours=1):
            now = clock.now()
            if phase == "refused" and now >= T0 + refused:
                if refused:
                    await fake.come_back()
                fake.throttled, phase = True, "throttled"
            if phase == "throttled" and now >= T0 + refused + throttled:
                fake.throttled, phase = False, "normal"
            await d.run_once(limit=500)
            seen_down.update(d.outages())
            if phase == "normal" and not await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
            ):
                break
            nxt = await d.next_ready()
            step = (nxt - clock.now()) if nxt is not None else timedelta(seconds=10)
            clock.advance(min(max(step, timedelta(seconds=1)), timedelta(seconds=10)))
    finally:
        await close_all(notifiers)

    statuses = Counter(r["status"] for r in await pool.fetch("SELECT status FROM outbox"))
    print(  # noqa: T201 - the figures for docs/RELIABILITY.md (pytest -s)
        f"outage: {statuses}, creates {dict(fake.creates)}, told {[(p, d) for p, d, _, _ in told]}"
        f", all sent by {clock.now() - T0}"
    )
    assert statuses == Counter({"sent": MESSAGES}), f"not delivered: {statuses}"
    accepted = Counter(m["to"] for m in fake.messages) + Counter(c["to"] for c in fake.calls)
    assert len(accepted) == MESSAGES, "a message never reached Twilio"
    assert max(accepted.values()) == 1, "a message was accepted twice"
    # while Twilio answered 429: the failures that open the breaker, then one probe every 10 s,
    # not a storm of 300 messages
    probes = throttled_s // settings.breaker_probe_s + 1
    assert fake.creates["throttled"] <= settings.breaker_threshold + probes, fake.creates
    if throttled:
        assert fake.creates["throttled"] >= 1  # the 429 minute was probed
    # the outage showed (health/metrics read outages()) and the supervisors were told, twice
    assert set(seen_down) == {"twilio"} and d.outages() == {}
    assert [(p, down) for p, down, _, _ in told] == [("twilio", True), ("twilio", False)]
    assert told[0][2] == frozenset({"sms", "voice"})
    assert told[0][3] < T0 + timedelta(seconds=30) and told[1][3] >= T0 + refused + throttled
