"""The supervisor: validation, the pure core and a store, wired together. The daemon, `simulate`,
`ingest` and the tests all go through this one class, so they cannot disagree."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from supervisor.config.contacts import Directory
from supervisor.config.templates import Templates
from supervisor.core.clock import Clock
from supervisor.core.events import Event, EventInvalid, FieldProblem, parse_event
from supervisor.core.matter import MatterSpec, matter_context
from supervisor.core.privacy import redact
from supervisor.core.state import TicketState
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.engine.firing import Notification, fire_step
from supervisor.engine.planner import Ladder, Plan, plan
from supervisor.engine.policy import Policy
from supervisor.errors import HotlineError
from supervisor.reviewing import Result as ReviewResult
from supervisor.reviewing import Reviewer
from supervisor.reviewing import returned as reviewed_events
from supervisor.storage.base import (
    DueTimer,
    FireFn,
    FireOutcome,
    FirePolicy,
    IngestOutcome,
    Lane,
    LinkedTicket,
    PlanFn,
    Store,
)

if TYPE_CHECKING:
    from supervisor.config.delivery import DeliverySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """Everything the office configures, loaded and checked; swapped whole on reload."""

    policy: Policy
    directory: Directory
    templates: Templates
    caller_key: bytes
    catch_up_grace: timedelta = timedelta(minutes=5)
    # when a queued message may go (quiet hours, grouping); None: as soon as it is produced
    delivery: DeliverySettings | None = None

    @property
    def workday(self) -> Callable[[date], bool]:
        """The office calendar's working days: messages wait through non-working days."""
        return self.policy.calendar.is_workday


def runtime_from(loaded: Any, key: bytes) -> Runtime:
    """A Runtime from config.load_all's result."""
    return Runtime(
        policy=loaded.policy,
        directory=loaded.directory,
        templates=loaded.templates,
        caller_key=key,
        catch_up_grace=timedelta(seconds=loaded.settings.scheduler.catch_up_grace_s),
        delivery=loaded.settings.delivery,
    )


@dataclass
class BatchRejected(HotlineError):
    problems: list[tuple[int, FieldProblem]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"index": i, "field": p.field, "message": p.message} for i, p in self.problems]


def validate_batch(raws: Sequence[Any], caller_key: bytes) -> list[Event]:
    """All or nothing: every event is checked; one bad event rejects the batch (nothing stored)."""
    events: list[Event] = []
    problems: list[tuple[int, FieldProblem]] = []
    for index, raw in enumerate(raws):
        try:
            events.append(redact(parse_event(raw), caller_key))
        except EventInvalid as exc:
            problems.extend((index, p) for p in exc.problems)
    if problems:
        raise BatchRejected(problems)
    return events


class Supervisor:
    def __init__(self, store: Store, runtime: Runtime, clock: Clock) -> None:
        self.store = store
        self.runtime = runtime
        self.clock = clock
        self.reviewer = Reviewer()  # 答复审核 (reviewing.py)

    # --- events in ---------------------------------------------------------------------------

    async def ingest(self, raws: Sequence[Any]) -> IngestOutcome:
        events = validate_batch(raws, self.runtime.caller_key)
        return await self.ingest_events(events)

    async def ingest_events(
        self, events: Sequence[Event], *, planning: Callable[[], None] | None = None
    ) -> IngestOutcome:
        """`planning`: called as the batch's planning starts (its locks held, its cross-ticket
        counts read), for a caller that orders batches (imports/command.py). The reviews'
        findings (`reviewed` events) are stored, folded and texted like any event, in the batch's
        own transaction: a batch is never stored without them."""
        rt = self.runtime
        reviews: dict[str, ReviewResult] = {}

        def findings() -> tuple[Sequence[Event], PlanFn]:
            derived = reviewed_events(reviews.values())
            if derived:
                log.debug("review: %d sent back", len(derived))
            return derived, self._plan_fn(rt, replan=False)

        outcome = await self.store.ingest(
            events,
            self._plan_fn(rt, replan=False, reviews=reviews, planning=planning),
            rt.policy.windows,
            matter=self._matter(rt),
            follow_up=findings,
        )
        return outcome

    @staticmethod
    def _matter(rt: Runtime) -> MatterSpec | None:
        """Same-matter matching (core/matter.py), only when the rules use it."""
        spec = rt.policy.matter_spec
        return spec if spec.active else None

    def _plan_fn(
        self,
        rt: Runtime,
        *,
        replan: bool,
        reviews: dict[str, ReviewResult] | None = None,
        planning: Callable[[], None] | None = None,
    ) -> PlanFn:
        def plan_fn(
            *,
            ticket: str,
            events: list[Event],
            ladders: list[Ladder],
            new_ids: set[str],
            repeat_counts: dict[str, dict[str, int]],
            start: TicketState | None,
        ) -> Plan:
            if planning is not None:
                planning()
            if reviews is not None and rt.policy.review.active:
                for r in self.reviewer.review_ticket(
                    events, new_ids, start, rt.policy, rt.directory, rt.caller_key
                ):
                    reviews[r.event.id] = r
            return plan(
                ticket,
                events,
                ladders,
                rt.policy,
                new_event_ids=new_ids,
                windows=repeat_counts,
                replan=replan,
                start=start,
            )

        return plan_fn

    async def replan(self) -> int:
        return await self.store.replan(self._plan_fn(self.runtime, replan=True))

    # --- timers out --------------------------------------------------------------------------

    async def fire_due(
        self, limit: int = 200, now: datetime | None = None, lane: Lane = None
    ) -> FireOutcome:
        rt = self.runtime
        now = now or self.clock.now()
        policy = FirePolicy(
            grace=rt.catch_up_grace,
            linked_rules=frozenset(r.id for r in rt.policy.rules if r.lists_linked),
            linked_window=timedelta(minutes=max(rt.policy.windows, default=0)),
            matter=self._matter(rt),
            delivery=rt.delivery,
            workday=rt.workday,
        )
        return await self.store.fire_due(now, limit, self._fire_fn(rt, now), policy, lane)

    def _fire_fn(self, rt: Runtime, now: datetime) -> FireFn:
        rules = rt.policy.rules_by_id

        window = timedelta(minutes=max(rt.policy.windows, default=0))
        known: dict[str, dl.Deadlines] = {}  # per claimed batch: fire_fn lives for one call

        def fire_fn(
            *,
            timer: DueTimer,
            ladder: Ladder,
            state: TicketState | None,
            linked: list[LinkedTicket],
        ) -> list[Notification]:
            rule = rules.get(timer.rule)
            if rule is None or state is None or timer.step >= len(rule.steps):
                return []

            def deadlines() -> dl.Deadlines:
                # only when the step's templates read a deadline (fire_step asks); once a ticket:
                # several steps of one ticket often fire together
                assert state is not None
                found = known.get(state.ticket)
                if found is None:
                    found = known[state.ticket] = dl.compute(
                        state, rt.policy.deadlines, rt.policy.calendar, state_fields(state)
                    )
                return found

            extra = None
            if rule.lists_matter and state.created_at is not None:
                extra = matter_context(linked, state.created_at, rule.matter_window_m)
            elif state.created_at is not None and window:
                # repeat callers: the same caller's tickets in the same category within the window
                recent = [
                    x.ticket
                    for x in linked
                    if state.created_at - window < x.created_at <= state.created_at
                ]
                if len(recent) > 1:
                    extra = {"tickets": [{"id": t} for t in recent], "count": len(recent)}
            return fire_step(
                rule=rule,
                step=rule.steps[timer.step],
                rep=timer.rep,
                cycle=timer.cycle,
                anchor_at=ladder.anchor_at,
                state=state,
                deadlines=deadlines,
                directory=rt.directory,
                templates=rt.templates,
                at=now,
                extra=extra,
                calendar=rt.policy.calendar,
            )

        return fire_fn

    async def matter_links(self, ticket: str) -> list[str]:
        """Tickets about the same matter as `ticket`, both ways (for the ticket view)."""
        spec = self.runtime.policy.matter_spec
        return await self.store.matter_links(ticket, spec) if spec.active else []

    async def ticket_view(self, ticket: str) -> dict[str, Any] | None:
        """The store's ticket view plus `same_matter`: the tickets linked as the same matter."""
        view = await self.store.ticket_view(ticket)
        if view is not None:
            view["same_matter"] = await self.matter_links(ticket)
        return view

    # No `ack` here: an acknowledgement goes through supervisor/acking.acknowledge, which applies the
    # rank rule (core.acks) and hands the store a scope; nothing may end a ladder around it.

    async def run_report(self, report: Any, period: int, at: datetime) -> list[Notification] | None:
        """One period of a periodic report, once across all daemons; its messages are queued."""
        return await self.store.run_report(report, period, at, self.runtime)
