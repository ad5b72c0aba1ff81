"""A circuit breaker per provider (the notices that tell people about an outage: outage.py).

Pure state with an explicit `now`: the dispatcher asks `allow(now)` before each send and reports
each outcome. Closed: everything goes. After `threshold` consecutive provider failures (a refused
connection, a 429, a 5xx or a time-out; an invalid number is the provider working) it opens: no
send for `probe_s`. Then it lets one probe through at a time (half-open): a success closes it, a
failure opens it again for another `probe_s`. The interval is fixed, not doubled: an outage costs
one request per `probe_s` (10 s by default), not a storm, and the provider's return is noticed
within about `probe_s` however long the outage lasted (a doubling cool-down reached minutes).
Nothing is given up meanwhile (rows wait, pending)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# The outage notices live in outage.py; re-exported for their callers of old.
from supervisor.delivery.outage import OUTAGE_RULE, outage_notices

__all__ = ["OUTAGE_RULE", "Breaker", "held_reason", "outage_notices"]


State = Literal["closed", "open", "half_open"]


@dataclass
class Breaker:
    provider: str
    threshold: int = 3
    probe_s: float = 10.0  # while open: one probe this often
    state: State = "closed"
    failures: int = 0  # consecutive
    trips: int = 0  # consecutive openings (failed probes) without a success between them
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
        self.retry_at = now + timedelta(seconds=self.probe_s)
        if began:
            self.down_since = now
        return began

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def next_try(self, now: datetime) -> datetime:
        """When a message held back by this breaker should be looked at again: when the probe
        may go, or (a probe is in flight) a probe interval from now, never at once (no busy
        loop). When the probe succeeds, the dispatcher releases the held rows at once."""
        if self.retry_at is not None and self.retry_at > now:
            return self.retry_at
        return now + timedelta(seconds=self.probe_s)


def held_reason(provider: str) -> str:
    """The `last_error` of a row waiting for `provider` to come back (the outage's release
    finds the rows by it)."""
    return f"{provider} unavailable"
