"""The dispatcher's working values: one pass's figures, a message being sent, the send rate."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, cast

from notifiers.base import Notifier
from supervisor.config.delivery import DeliverySettings, split_groups
from supervisor.core.clock import Clock
from supervisor.storage.base import OutboxRow, person

PHONE_CHANNELS = frozenset({"sms", "voice"})

# Told when a provider goes down (True) or comes back (False), with the channels it serves.
OutageFn = Callable[[str, bool, frozenset[str]], Awaitable[None]]


def provider_of(notifier: Notifier) -> str:
    """The service behind a notifier (Twilio's SMS and calls share one): a breaker's key."""
    return str(getattr(notifier, "provider", notifier.name))


@dataclass
class DispatchStats:
    claimed: int = 0  # rows taken (new and reconciled)
    messages: int = 0  # messages handled (a group is one)
    sent: int = 0  # messages the provider accepted
    reconciled: int = 0  # messages found already accepted: marked sent, not resent
    retried: int = 0  # messages put back to pending
    unknown: int = 0  # ambiguous sends left for reconciliation
    failed: int = 0  # messages given up on this channel
    fallbacks: int = 0  # rows created on a fallback channel
    skipped: int = 0  # claims lost to another worker before sending
    held: int = 0  # messages put back because their provider is down (circuit open)

    def add(self, other: DispatchStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class Batch:
    """One message to send: one row, or a group of rows for the same person and channel."""

    lead: int
    rows: list[OutboxRow]
    text: str
    since: datetime | None = None  # set when reconciling: the time of the last attempt
    ids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = [r["id"] for r in self.rows]

    @property
    def first(self) -> OutboxRow:
        return self.rows[0]

    @property
    def channel(self) -> str:
        return str(self.first["channel"])

    @property
    def urgent(self) -> bool:
        return bool(self.first["urgent"])

    @property
    def attempts(self) -> int:
        return max(int(r["attempts"]) for r in self.rows)

    def log_extra(self, **more: object) -> dict[str, object]:
        return {
            "outbox": self.ids,
            "recipient": self.first["recipient"],
            "channel": self.channel,
            **more,
        }


class TokenBucket:
    """Per-channel send rate for this process. Waits on the clock, so a VirtualClock in tests
    advances instead of sleeping. A burst of one: messages are spaced evenly."""

    def __init__(self, rate_per_s: float, clock: Clock) -> None:
        self._rate = rate_per_s
        self._clock = clock
        self._tokens = 1.0
        self._at: datetime | None = None
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = self._clock.now()
                if self._at is not None:
                    elapsed = max(0.0, (now - self._at).total_seconds())
                    self._tokens = min(1.0, self._tokens + elapsed * self._rate)
                self._at = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self._rate
                await self._clock.sleep_until(now + timedelta(seconds=wait))


def address_for(row: Mapping[str, Any], notifier: Notifier) -> str | None:
    """What the notifier is given as `to`."""
    if notifier.name == "console":
        # The console prints `to` as given: give it the contact id, never a number.
        return str(row["recipient"])
    if row["channel"] in PHONE_CHANNELS:
        return row["address"] or None
    return row["address"] or str(row["recipient"])


def solo_channels(notifiers: Mapping[str, Notifier]) -> frozenset[str]:
    """Channels whose every message goes alone: a provider that sends only registered templates
    (Aliyun, Tencent) cannot send a group composed as free text, only one template with its
    parameters per message."""
    return frozenset(ch for ch, n in notifiers.items() if getattr(n, "templated", False))


def group_rows(
    rows: list[OutboxRow], settings: DeliverySettings, solo: frozenset[str] = frozenset()
) -> list[list[OutboxRow]]:
    """Claimed rows as messages: urgent rows go alone, and so do those on a `solo` channel (a
    template-only provider cannot send a group composed as free text); the others by person and
    channel, cut to the SMS budget (policy.split_groups). Each message's first row is its lead."""
    out: list[list[OutboxRow]] = []
    together: dict[tuple[str, str], list[OutboxRow]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["id"]):
        if r["urgent"] or not settings.group_window_s or r["channel"] in solo:
            out.append([r])
        else:
            together[(r["channel"], person(r))].append(r)
    for group in together.values():
        for chunk in split_groups(group, settings.group_max_segments):
            out.append([cast(OutboxRow, r) for r in chunk])
    return out
