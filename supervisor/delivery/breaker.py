"""A circuit breaker per provider, and the notices that tell the supervisors about an outage.

Pure state with an explicit `now`: the dispatcher asks `allow(now)` before each send and reports
each outcome. Closed: everything goes. After `threshold` consecutive provider failures (a refused
connection, a 429, a 5xx or a time-out; an invalid number is the provider working) it opens: no
send for `cool_s`, doubled at each consecutive opening up to `cool_cap_s`. Then it lets one probe
through at a time (half-open): a success closes it, a failure opens it again. So an outage costs
one request per cool-down, not a storm, and nothing is given up meanwhile (rows wait, pending)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from supervisor.config.contacts import Recipient
from supervisor.engine.firing import Notification

State = Literal["closed", "open", "half_open"]


@dataclass
class Breaker:
    provider: str
    threshold: int = 3
    cool_s: float = 5.0
    cool_cap_s: float = 300.0
    state: State = "closed"
    failures: int = 0  # consecutive
    trips: int = 0  # consecutive openings without a success between them
    retry_at: datetime | None = None  # when an open breaker lets a probe through
    down_since: datetime | None = None
    probing: bool = False

    def allow(self, now: datetime) -> bool:
        """May a send to this provider start now? In half-open, only one probe at a time."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self.retry_at is not None and now < self.retry_at:
                return False
            self.state = "half_open"
        if self.probing:
            return False
        self.probing = True
        return True

    def succeeded(self, now: datetime) -> bool:
        """The provider answered. Returns True when this ends an outage."""
        ended = self.state != "closed" and self.down_since is not None
        self.state, self.failures, self.trips = "closed", 0, 0
        self.retry_at, self.probing = None, False
        if ended:
            self.down_since = None
        return ended

    def failed(self, now: datetime) -> bool:
        """The provider did not answer usefully. Returns True when this begins an outage."""
        self.probing = False
        self.failures += 1
        if self.state == "closed" and self.failures < self.threshold:
            return False
        began = self.down_since is None
        self.trips += 1
        self.state = "open"
        cool = min(self.cool_cap_s, self.cool_s * 2 ** (self.trips - 1))
        self.retry_at = now + timedelta(seconds=cool)
        if began:
            self.down_since = now
        return began

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def next_try(self, now: datetime) -> datetime:
        """When a message held back by this breaker should be looked at again: when the probe
        may go, or (a probe is in flight) a cool-down from now, never at once (no busy loop)."""
        if self.retry_at is not None and self.retry_at > now:
            return self.retry_at
        return now + timedelta(seconds=self.cool_s)


OUTAGE_RULE = "provider-outage"  # the outbox rule id of outage notices (no ladder: never cancelled)


def outage_notices(
    provider: str,
    down: bool,
    channels: frozenset[str],
    recipients: list[Recipient],
    usable: frozenset[str],
    at: datetime,
    serial: int,
) -> list[Notification]:
    """What the supervisors are told when `provider` (serving `channels`) goes down or comes back:
    one message each on the first of their channels that still works (`usable`), else on the
    console. `serial` keeps one outage's notices apart from the next one's (the outbox key)."""
    names = "、".join(sorted(channels)) or provider
    if down:
        text = f"【12345督办】{provider}（{names}）暂时无法发送，提醒将在恢复后补发，紧急事项请电话联系。"
    else:
        text = f"【12345督办】{provider}（{names}）已恢复，积压的提醒正在补发。"
    out = []
    for rec in recipients:
        channel = next((c for c in rec.channels if c in usable), "console")
        out.append(
            Notification(
                at=at,
                ticket="-",
                rule=OUTAGE_RULE,
                cycle=serial,
                step=0 if down else 1,
                rep=0,
                role="supervisor",
                to=rec.person,
                name=rec.name,
                address=rec.phone if channel in ("sms", "voice") else None,
                channel=channel,
                text=text,
                urgent=True,
            )  # fmt: skip
        )
    return out
