"""The storage interface: one Protocol for everything the service keeps, and its value types.

A store only moves data. Decisions are made by pure code and handed in as named values:
- `PlanFn` (events -> ladders and timers: planner.plan) and `FireFn` (a due step -> messages:
  firing.fire_step) run inside the store's transaction, so a ticket's events, state, ladders and
  timers change together, and a step's outbox rows are written in the transaction that marks its
  timer fired;
- what becomes of a due timer is `core.timers.verdict`; when a message may go is
  `delivery.policy.not_before` with the `DeliverySettings` in `FirePolicy`;
- the outbox's state machine (pending -> sending -> sent | failed, fallback rows) is carried out
  by the store's outbox methods; the dispatcher (delivery/outbox.py) decides when to call which.

Two stores keep this contract: PgStore (storage/pg.py, the real one) and MemoryStore
(storage/memory.py, for `simulate` and fast tests); tests/contract runs the same tests on both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypedDict

from supervisor.core.events import Event
from supervisor.core.firing import Notification
from supervisor.core.planner import Ladder, Plan
from supervisor.core.state import TicketState

if TYPE_CHECKING:
    from supervisor.delivery.policy import DeliverySettings
    from supervisor.policy.rulebook import Report


# --- tickets and timers ----------------------------------------------------------------------


@dataclass(frozen=True)
class DueTimer:
    id: int
    ticket: str
    rule: str
    cycle: int
    step: int
    rep: int
    due_at: datetime
    superseded: bool  # a later step of the same ladder is due too and this one is late


class LinkedTicket(NamedTuple):
    """Another ticket of the same caller in the same category (repeat callers)."""

    ticket: str
    created_at: datetime


class PlanFn(Protocol):
    """Plans one ticket: its events (all of them, or only the new ones when `start` is the stored
    state they fold onto), its ladders, the ids of the new events and the repeat-call counts
    per new `created` event."""

    def __call__(
        self,
        *,
        ticket: str,
        events: list[Event],
        ladders: list[Ladder],
        new_ids: set[str],
        repeat_counts: dict[str, dict[str, int]],
        start: TicketState | None,
    ) -> Plan: ...


class FireFn(Protocol):
    """The messages of one due step that fires (its ladder is active)."""

    def __call__(
        self,
        *,
        timer: DueTimer,
        ladder: Ladder,
        state: TicketState | None,
        linked: list[LinkedTicket],
    ) -> list[Notification]: ...


@dataclass(frozen=True)
class FirePolicy:
    """The settings a firing pass applies."""

    grace: timedelta = timedelta(minutes=5)  # catch-up grace before a late step is superseded
    linked_rules: frozenset[str] = frozenset()  # rules whose messages list linked tickets
    linked_window: timedelta = timedelta(0)
    delivery: DeliverySettings | None = None  # None: a message may go when it is produced


@dataclass
class IngestOutcome:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)


@dataclass
class FireOutcome:
    fired: int = 0
    cancelled: int = 0
    superseded: int = 0
    notifications: list[Notification] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)


def release_time(note: Notification, delivery: DeliverySettings | None) -> datetime:
    """When a new message may go: the delivery policy decides (quiet hours, grouping)."""
    if delivery is None:
        return note.at
    from supervisor.delivery.policy import not_before

    return not_before(note.at, note.urgent, delivery)


# --- the outbox --------------------------------------------------------------------------------


class OutboxRow(TypedDict):
    """One message row as the dispatcher sees it."""

    id: int
    ticket: str
    rule: str
    cycle: int
    step: int
    rep: int
    role: str
    recipient: str
    name: str | None
    address: str | None
    channel: str
    text: str
    urgent: bool
    attempts: int
    claimed_at: datetime | None
    last_error: str | None
    in_flight: bool


class Grouper(Protocol):
    """Cuts claimed rows into messages (lists of rows sent as one); each message's first row is
    its lead."""

    def __call__(self, rows: list[OutboxRow]) -> list[list[OutboxRow]]: ...


@dataclass(frozen=True)
class FallbackOutcome:
    failed: list[int]  # the rows marked failed (a whole group)
    channel: str | None  # their channel
    target: str | None  # the fallback channel, if one is configured
    created: int  # fallback rows inserted


class Reply(NamedTuple):
    """The message an SMS reply answers."""

    ticket: str
    rule: str
    recipient: str


class HeldMessage(NamedTuple):
    recipient: str
    channel: str
    text: str
    not_before: datetime


# Status callback vocabulary: after these, nothing more will happen to a message or call.
DELIVERED = frozenset({"delivered", "completed", "read"})
NOT_DELIVERED = frozenset({"failed", "undelivered", "busy", "no-answer", "canceled"})
FINAL = DELIVERED | NOT_DELIVERED


class Store(Protocol):
    # tickets, ladders, timers
    async def ingest(
        self, events: Sequence[Event], plan_fn: PlanFn, windows: frozenset[int]
    ) -> IngestOutcome: ...
    async def fire_due(
        self, now: datetime, limit: int, fire_fn: FireFn, policy: FirePolicy
    ) -> FireOutcome: ...
    async def next_due(self) -> datetime | None: ...
    async def ack(self, ticket: str, rule: str | None, by: str, via: str, at: datetime) -> int: ...
    async def replan(self, plan_fn: PlanFn) -> int: ...
    async def ticket_view(self, ticket: str) -> dict[str, Any] | None: ...
    async def run_report(
        self, report: Report, period: int | str, at: datetime, runtime: Any
    ) -> list[Notification] | None: ...
    async def heartbeat(self, daemon: str, at: datetime) -> None: ...
    async def ping(self) -> None: ...

    # the outbox
    async def enqueue(
        self, notes: Sequence[Notification], delivery: DeliverySettings | None
    ) -> None: ...
    async def claim_ready(
        self, now: datetime, limit: int, worker: str, window: timedelta, group: Grouper
    ) -> list[list[OutboxRow]]: ...
    async def claim_stale(
        self, now: datetime, cutoff: datetime, limit: int, worker: str
    ) -> dict[int, list[OutboxRow]]: ...
    async def touch(self, lead: int, now: datetime, worker: str) -> bool: ...
    async def record_sent(self, lead: int, provider_id: str | None, at: datetime) -> None: ...
    async def record_retry(self, lead: int, when: datetime, error: str, worker: str) -> None: ...
    async def record_unknown(self, lead: int, error: str, worker: str) -> None: ...
    async def fail_group(
        self,
        outbox_id: int,
        reason: str,
        statuses: Sequence[str],
        fallback: Mapping[str, str],
        now: datetime,
        held: datetime,
    ) -> FallbackOutcome: ...
    async def overlapping(
        self, address: str | None, channel: str, lead: int, lo: datetime, hi: datetime
    ) -> int: ...
    async def known_ids(
        self, address: str | None, channel: str, since: datetime
    ) -> frozenset[str]: ...
    async def next_ready(self, stale_after: timedelta) -> datetime | None: ...
    async def record_status(
        self, outbox_id: int | None, sid: str | None, state: str, at: datetime
    ) -> int | None: ...
    async def mark_failed(self, outbox_id: int, reason: str) -> None: ...
    async def latest_sent_to(self, address: str) -> Reply | None: ...
    async def outbox_summary(self, now: datetime) -> tuple[int, list[HeldMessage]]: ...
