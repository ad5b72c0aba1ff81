"""The dispatcher's working values: one pass's figures, a message being sent, the send rate."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, cast

from notifiers.base import Notifier
from supervisor.config.delivery import DeliverySettings, compose_group, is_report, split_groups
from supervisor.core.clock import Clock
from supervisor.core.spoken import compose_call, speakable
from supervisor.storage.base import OutboxRow, person

PHONE_CHANNELS = frozenset({"sms", "voice"})

# Told when a provider goes down (True) or comes back (False), with the channels it serves.
OutageFn = Callable[[str, bool, frozenset[str]], Awaitable[None]]
# Told when a provider limits a recipient (per number): the contact id and the provider's answer.
LimitedFn = Callable[[str, str], Awaitable[None]]
# Does this contact take this channel? (contact id, channel); unknown contacts: True.
TakesFn = Callable[[str, str], bool]


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
    line_busy: int = 0  # calls put back: another call to the number is unconfirmed
    limited: int = 0  # messages put back: the provider limits this recipient (per number)

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
    advances instead of sleeping. A burst of one: messages are spaced evenly.

    Urgent sends come first (issue 23): an urgent taker waits only for the next token, never
    behind ordinary takers, and no ordinary taker gets a token while an urgent one waits; the
    ordinary lane's share is what the urgent lane leaves."""

    def __init__(self, rate_per_s: float, clock: Clock) -> None:
        self._rate = rate_per_s
        self._clock = clock
        self._tokens = 1.0
        self._at: datetime | None = None
        self._locks = {True: asyncio.Lock(), False: asyncio.Lock()}  # one waiter per kind
        self._urgent_waiting = 0

    async def take(self, urgent: bool = False) -> None:
        async with self._locks[urgent]:
            self._urgent_waiting += urgent
            try:
                while True:
                    now = self._clock.now()
                    if self._at is not None:
                        elapsed = max(0.0, (now - self._at).total_seconds())
                        self._tokens = min(1.0, self._tokens + elapsed * self._rate)
                    self._at = now
                    if self._tokens >= 1.0 and (urgent or not self._urgent_waiting):
                        self._tokens -= 1.0
                        return
                    wait = max(1.0 - self._tokens, 0.0 if urgent else 1.0) / self._rate
                    await self._clock.sleep_until(now + timedelta(seconds=wait))
            finally:
                self._urgent_waiting -= urgent


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
    channel, cut to the SMS budget (policy.split_groups); reports go alone. Each message's first
    row is its lead."""
    out: list[list[OutboxRow]] = []
    together: dict[tuple[str, str], list[OutboxRow]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["id"]):
        # a periodic report (look-back, digest) is a message of its own, never an item
        if (
            r["urgent"]
            or not settings.group_window_s
            or r["channel"] in solo
            or is_report(r["ticket"])
        ):
            out.append([r])
        else:
            together[(r["channel"], person(r))].append(r)
    for (channel, _), group in together.items():
        if channel == "voice":  # one call counts them all (compose): no SMS budget to cut to
            out.append(group)
            continue
        for chunk in split_groups(group, settings.group_max_segments):
            out.append([cast(OutboxRow, r) for r in chunk])
    return out


def compose(rows: Sequence[Mapping[str, Any]]) -> str:
    """The text of one message carrying `rows`: a call counts its items (core/spoken.py), never
    reads the grouped SMS aloud; other channels get the grouped text (policy.compose_group)."""
    if rows and rows[0]["channel"] == "voice":
        if len(rows) > 1:
            return compose_call(rows)
        text = str(rows[0]["text"])
        # a call with no script of its own (an SMS text: a notice, a row queued before scripts)
        # is made speakable rather than read with its 【】 and whole ids
        return speakable(text, str(rows[0]["ticket"])) if text.startswith("【") else text
    return compose_group(rows)
