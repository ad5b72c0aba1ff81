"""The storage interface: one Protocol for everything the service keeps, and its value types.

A store only moves data. Decisions are made by pure code and handed in as named values:
- `PlanFn` (events -> ladders and timers: planner.plan) and `FireFn` (a due step -> messages:
  firing.fire_step) run inside the store's transaction, so a ticket's events, state, ladders and
  timers change together, and a step's outbox rows are written in the transaction that marks its
  timer fired;
- what becomes of a due timer is `engine.timers.verdict`; when a message may go is
  `config.delivery.not_before` with the `DeliverySettings` in `FirePolicy`;
- the outbox's state machine (pending -> sending -> sent | failed, fallback rows) is carried out
  by the store's outbox methods; the dispatcher (delivery/outbox.py) decides when to call which;
  `claim_ready` joins no rows of the `solo` channels into groups (template-only SMS providers,
  which send each message alone with its own template and `params`).

Same-matter matching (core/matter.py) is a concern of its own: a `MatterSpec` handed to `ingest`
(the counts rules see on `created` events) and to `fire_due` in `FirePolicy` (the tickets a
same-matter message lists), and `matter_links` for the ticket view. Its PostgreSQL side is
storage/pg_matter.py (table matter_keys), its memory side storage/memory_matter.py.

Two stores keep this contract: PgStore (storage/pg.py, the real one) and MemoryStore
(storage/memory.py, for `simulate` and fast tests); tests/contract runs the same tests on both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypedDict

from supervisor.core.acks import AckScope
from supervisor.core.events import Event
from supervisor.core.matter import MatterSpec
from supervisor.core.state import TicketState
from supervisor.engine.firing import Notification
from supervisor.engine.planner import Ladder, Plan

if TYPE_CHECKING:
    from supervisor.config.delivery import DeliverySettings, Workday
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
    """Another ticket linked to this one: of the same caller in the same category (repeat
    callers), or, for same-matter rules, about the same matter, with its caller's keyed hash."""

    ticket: str
    created_at: datetime
    caller: str | None = None  # keyed hash; set for same-matter links only


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


# Urgent work has a lane of its own in the scheduler and the dispatcher (issue 23): "urgent"
# claims only urgent timers/rows, "ordinary" only the others, None everything, urgent first.
Lane = Literal["urgent", "ordinary"] | None


@dataclass(frozen=True)
class FirePolicy:
    """The settings a firing pass applies."""

    grace: timedelta = timedelta(minutes=5)  # catch-up grace before a late step is superseded
    linked_rules: frozenset[str] = frozenset()  # rules whose messages list linked tickets
    linked_window: timedelta = timedelta(0)
    # same matter: rules in `matter.rules` list the matter's tickets (None: no rule does)
    matter: MatterSpec | None = None
    delivery: DeliverySettings | None = None  # None: a message may go when it is produced
    workday: Workday | None = None  # the office calendar: non-working days are quiet all day


# Events a batch's planning found to add (the reply review's `reviewed` events), asked for after
# the batch is planned, with the plan function for them: stored, folded and planned in the
# batch's own transaction, so that no outage between the two can store the one without the other.
FollowUp = Callable[[], "tuple[Sequence[Event], PlanFn]"]


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


def release_time(
    note: Notification, delivery: DeliverySettings | None, workday: Workday | None = None
) -> datetime:
    """When a new message may go: the delivery policy decides (quiet hours, grouping, and with
    `workday` the office's non-working days)."""
    if delivery is None:
        return note.at
    from supervisor.config.delivery import not_before

    return not_before(note.at, note.urgent, delivery, workday)


# --- the outbox --------------------------------------------------------------------------------


LineClaim = Literal["ok", "busy", "lost"]


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
    created_at: datetime  # when the message was produced: its retry horizon starts here
    # the parameters of the provider-registered SMS templates (migration 007,
    # config/sms_templates.yaml), rendered when the step fired; None for other channels
    params: dict[str, Any] | None


def person(row: Mapping[str, Any]) -> str:
    """Whom a message goes to: phone channels by number (two contact ids may share a phone),
    robots by contact."""
    return str(row["address"] or row["recipient"])


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


class AckSubject(NamedTuple):
    """What an acknowledgement is about: the ticket's state and its open (active) rules; when
    none is open, the rules whose ladders were acknowledged (a repeat is told apart)."""

    state: TicketState
    open_rules: list[str]
    acked_rules: list[str] = []


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
        self,
        events: Sequence[Event],
        plan_fn: PlanFn,
        windows: frozenset[int],
        matter: MatterSpec | None = None,
        follow_up: FollowUp | None = None,
    ) -> IngestOutcome: ...
    async def fire_due(
        self, now: datetime, limit: int, fire_fn: FireFn, policy: FirePolicy, lane: Lane = None
    ) -> FireOutcome: ...
    async def next_due(self, lane: Lane = None) -> datetime | None: ...
    async def matter_links(self, ticket: str, matter: MatterSpec) -> list[str]: ...
    async def ack(
        self,
        ticket: str,
        rule: str | None,
        by: str,
        via: str,
        at: datetime,
        scope: AckScope | None = None,
    ) -> int:
        """Acknowledge the active ladders of a ticket (one rule, or all); returns how many.
        Without `scope`, they stop whole. With a `scope` (core.acks: the rank rule), only what it
        covers ends: the ladders of its `whole` rules stop; in the others, the pending timers of
        its `steps` and the pending messages addressed to its `roles` are cancelled and the
        ladder runs on. Callers from the outside go through supervisor/acking.acknowledge."""
        ...

    async def ack_subject(self, ticket: str, rule: str | None) -> AckSubject | None:
        """The ticket's state and its active rules (one rule, or all); None: no such ticket."""
        ...

    async def stored_events(self, ids: Sequence[str]) -> list[Event]:
        """The stored events with these ids (to tell a duplicate from a reused id)."""
        ...
    async def replan(self, plan_fn: PlanFn) -> int: ...
    async def ticket_view(self, ticket: str) -> dict[str, Any] | None: ...
    async def run_report(
        self, report: Report, period: int | str, at: datetime, runtime: Any
    ) -> list[Notification] | None: ...
    async def heartbeat(self, daemon: str, at: datetime) -> None: ...
    async def ping(self) -> None: ...

    # the outbox
    async def enqueue(
        self,
        notes: Sequence[Notification],
        delivery: DeliverySettings | None,
        workday: Workday | None = None,
    ) -> None: ...
    async def claim_ready(
        self,
        now: datetime,
        limit: int,
        worker: str,
        window: timedelta,
        group: Grouper,
        solo: frozenset[str] = frozenset(),
        lane: Lane = None,
    ) -> list[list[OutboxRow]]: ...
    async def claim_stale(
        self, now: datetime, cutoff: datetime, limit: int, worker: str
    ) -> dict[int, list[OutboxRow]]: ...
    async def touch(self, lead: int, now: datetime, worker: str) -> bool: ...
    async def touch_line(self, lead: int, now: datetime, worker: str) -> LineClaim:
        """`touch` for a channel whose provider cannot tell two messages to one person apart
        (calls): "busy" (and nothing changed) while another group's message to the same address
        on the same channel is in flight, unconfirmed; "lost" when the claim is no longer ours."""
        ...
    async def record_attempt(self, lead: int, outcome: str, provider_id: str | None) -> None: ...
    async def record_sent(self, lead: int, provider_id: str | None, at: datetime) -> None: ...
    async def record_retry(self, lead: int, when: datetime, error: str, worker: str) -> None: ...
    async def record_unknown(self, lead: int, error: str, worker: str) -> None: ...
    async def release_held(
        self, channels: frozenset[str], reason: str, now: datetime, within: timedelta
    ) -> int: ...
    async def fail_group(
        self,
        outbox_id: int,
        reason: str,
        statuses: Sequence[str],
        fallback: Mapping[str, str],
        now: datetime,
        held: datetime,
        takes: Callable[[str, str], bool] | None = None,
    ) -> FallbackOutcome: ...
    async def overlapping(
        self,
        address: str | None,
        channel: str,
        lead: int,
        lo: datetime,
        hi: datetime,
        text: str | None = None,
    ) -> int: ...
    async def known_ids(
        self, address: str | None, channel: str, since: datetime, lead: int | None = None
    ) -> frozenset[str]:
        """Provider ids learnt since `since` for messages to this person, except those of the
        group led by `lead`."""
        ...
    async def attempt_started(self, lead: int) -> datetime | None:
        """When the group's latest hand-over to the provider began (the attempts ledger), None
        if it was never handed over: the `since` of a reconciliation."""
        ...
    async def next_ready(self, stale_after: timedelta, lane: Lane = None) -> datetime | None: ...
    async def record_status(
        self, outbox_id: int | None, sid: str | None, state: str, at: datetime
    ) -> int | None: ...
    async def mark_failed(self, outbox_id: int, reason: str) -> None: ...
    async def call_rows(self, outbox_id: int) -> list[OutboxRow]:
        """The rows of the message (group) `outbox_id` belongs to, whatever their status."""
        ...
    async def record_keypress(
        self, outbox_id: int, digits: str, result: str, at: datetime
    ) -> None: ...
    async def latest_sent_to(self, address: str, ticket: str | None = None) -> Reply | None:
        """The latest message sent to `address` (of `ticket`, when given) whose ladder still
        runs: the one an SMS reply answers."""
        ...

    async def roles_sent(self, ticket: str, recipient: str) -> frozenset[str]:
        """The roles `recipient` was sent messages of `ticket` as."""
        ...
    async def outbox_summary(self, now: datetime) -> tuple[int, list[HeldMessage]]: ...
