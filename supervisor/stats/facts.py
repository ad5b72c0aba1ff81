"""Statistics facts of one ticket: a pure walk over its events with the office's deadline rules.

The monthly figures are SQL aggregates; what SQL cannot know by itself is which deadline applied
(the platform's, the rules' default counted in working time, or an approved extension). This
module works that out once per ticket, with the same fold (core.state) and the same deadline
arithmetic (engine.deadlines) the reminders use, and yields plain rows for the stats_* tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from supervisor.core.events import Event
from supervisor.core.matter import normalise_address
from supervisor.core.state import TicketState, apply
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.engine.policy import Policy


@dataclass
class Dispatch:
    n: int
    at: datetime
    unit: str
    sign_due: datetime | None
    signed_at: datetime | None = None


@dataclass
class Handling:
    n: int
    unit: str | None = None
    reply_due: datetime | None = None
    replied_at: datetime | None = None
    reply_unit: str | None = None
    # the deadline before reply_due and since when reply_due holds: a month that ended before
    # an extension was approved still sees the deadline it had (one change back)
    prev_due: datetime | None = None
    due_since: datetime | None = None


@dataclass
class Callback:
    event_id: str
    at: datetime
    unit: str | None
    satisfaction: str
    resolved: bool | None


@dataclass
class Commitment:
    n: int
    made_at: datetime
    unit: str | None
    due: datetime | None
    kept_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass
class TicketFacts:
    ticket: str
    created_at: datetime | None = None
    unit: str | None = None
    category: str | None = None
    caller_hash: str | None = None
    address_key: str | None = None
    dispute_at: datetime | None = None
    handled3_at: datetime | None = None
    overdue_due: datetime | None = None
    dispatches: list[Dispatch] = field(default_factory=list)
    handlings: list[Handling] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    commitments: list[Commitment] = field(default_factory=list)


ACTIVE = ("dispatched", "signed", "returned", "reopened")
# the events after which a handling's reply deadline may change
DEADLINE_EVENTS = frozenset(("created", "dispatched", "extension_decided", "reopened"))


def _deadlines(state: TicketState, policy: Policy) -> dl.Deadlines:
    return dl.compute(state, policy.deadlines, policy.calendar, state_fields(state))


def ticket_facts(ticket: str, events: Iterable[Event], policy: Policy) -> TicketFacts:
    """Facts of one ticket from all its events, in stored order (by `at`, then arrival).

    - a dispatch's sign_due: the deadline right after the dispatch; signed_at: the first
      `signed` by the dispatched unit before the next dispatch or re-opening;
    - a handling's reply_due: the deadline in force at its first reply (so an extension
      approved before the reply counts, a refused one moves nothing); unreplied, the deadline
      after its last event;
    - a callback is credited to the unit whose reply it rates (the current handling's);
    - a commitment is kept by the first `commitment_kept` after it.
    """
    facts = TicketFacts(ticket=ticket)
    state = TicketState(ticket=ticket)
    handling = Handling(n=0)
    facts.handlings.append(handling)
    open_dispatch: Dispatch | None = None
    open_commitment: Commitment | None = None
    returned_units: set[str] = set()
    before_reopen: TicketState | None = None
    for event in events:
        etype, d = event.type, event.data
        try:
            state = apply(state, event)
        except ValueError:  # a type this fold does not know (commitment_kept): state unchanged
            pass
        if etype in ("closed", "reopened") and open_commitment is not None:
            # closing (or re-handling) ends the promise: it can no longer be broken
            if open_commitment.kept_at is None and open_commitment.ended_at is None:
                open_commitment.ended_at = event.at
            open_commitment = None
        if etype == "created":
            facts.created_at = event.at
            facts.category = d.get("category")
            facts.caller_hash = d.get("caller_hash")
            facts.address_key = normalise_address(d.get("address"), policy.matter_spec.config)
        elif etype == "dispatched":
            open_dispatch = Dispatch(
                n=len(facts.dispatches) + 1,
                at=event.at,
                unit=d["unit"],
                sign_due=_deadlines(state, policy).sign_by,
            )
            facts.dispatches.append(open_dispatch)
            handling.unit = d["unit"]
            if open_dispatch.n == 3 and facts.dispute_at is None:
                facts.dispute_at = event.at
        elif etype == "signed":
            if (
                open_dispatch
                and open_dispatch.signed_at is None
                and d["unit"] == open_dispatch.unit
            ):
                open_dispatch.signed_at = event.at
        elif etype == "returned":
            returned_units.add(d["unit"])
            if len(returned_units) == 2 and facts.dispute_at is None:
                facts.dispute_at = event.at
        elif etype == "replied":
            if handling.replied_at is None:
                handling.replied_at = event.at
                handling.reply_unit = d.get("unit") or state.unit
                # the deadline in force when the reply came (the fold cleared nothing of it)
                handling.reply_due = _deadlines(state, policy).reply_by
        elif etype in ("reviewed", "review_decided"):
            # 答复审核: a reply sent back is no reply (办结量 and on time count the reply that
            # passes); passed or accepted by the staff, it counts from its own time (the fold
            # un-replies and re-replies the state, see core/state.py)
            if handling.replied_at is not None and state.replied_at is None:
                handling.replied_at, handling.reply_unit = None, None
            elif handling.replied_at is None and state.replied_at is not None:
                handling.replied_at = state.replied_at
                handling.reply_unit = state.unit
        elif etype == "visited":
            facts.callbacks.append(
                Callback(
                    event.id,
                    event.at,
                    handling.reply_unit or state.unit,
                    d["satisfaction"],
                    d.get("resolved"),
                )
            )
        elif etype == "reopened":
            if handling.replied_at is None and before_reopen is not None:
                handling.reply_due = _deadlines(before_reopen, policy).reply_by
            handling = Handling(n=handling.n + 1, unit=state.unit)
            facts.handlings.append(handling)
            open_dispatch = None
            if handling.n == 2:
                facts.handled3_at = event.at
        elif etype == "commitment_made":
            open_commitment = Commitment(
                n=len(facts.commitments) + 1,
                made_at=event.at,
                unit=d.get("unit") or state.unit,
                due=_deadlines(state, policy).commitment_due,
            )
            facts.commitments.append(open_commitment)
        elif etype == "commitment_kept":
            if open_commitment and open_commitment.kept_at is None:
                open_commitment.kept_at = event.at
        if handling.replied_at is None:
            handling.unit = state.unit or handling.unit
            if etype in DEADLINE_EVENTS:
                due = _deadlines(state, policy).reply_by
                if due != handling.reply_due:
                    handling.prev_due, handling.reply_due, handling.due_since = (
                        handling.reply_due,
                        due,
                        event.at,
                    )
        before_reopen = state  # the state a re-opening closes the handling on
    if handling.replied_at is None:
        handling.reply_due = _deadlines(state, policy).reply_by
        if state.open and state.status in ACTIVE:
            facts.overdue_due = handling.reply_due
    facts.unit = state.unit
    # a handling that never got a dispatch, a deadline or a reply says nothing: drop it
    facts.handlings = [h for h in facts.handlings if h.replied_at or h.reply_due or h.unit]
    return facts


def rows(facts: TicketFacts) -> dict[str, list[tuple[Any, ...]]]:
    """The facts as rows of the stats_* tables (column order of the migration)."""
    t = facts.ticket
    return {
        "stats_tickets": [
            (
                t, facts.created_at, facts.unit, facts.category, facts.caller_hash,
                facts.address_key, facts.dispute_at, facts.handled3_at, facts.overdue_due,
            )
        ],
        "stats_dispatches": [
            (t, x.n, x.at, x.unit, x.sign_due, x.signed_at) for x in facts.dispatches
        ],
        "stats_handlings": [
            (t, h.n, h.unit, h.reply_due, h.replied_at, h.reply_unit, h.prev_due, h.due_since)
            for h in facts.handlings
        ],
        "stats_callbacks": [
            (c.event_id, t, c.at, c.unit, c.satisfaction, c.resolved) for c in facts.callbacks
        ],
        "stats_commitments": [
            (t, c.n, c.made_at, c.unit, c.due, c.kept_at, c.ended_at) for c in facts.commitments
        ],
    }  # fmt: skip


COLUMNS = {
    "stats_tickets": (
        "ticket", "created_at", "unit", "category", "caller_hash", "address_key", "dispute_at",
        "handled3_at", "overdue_due",
    ),
    "stats_dispatches": ("ticket", "n", "at", "unit", "sign_due", "signed_at"),
    "stats_handlings": (
        "ticket", "n", "unit", "reply_due", "replied_at", "reply_unit", "prev_due", "due_since",
    ),
    "stats_callbacks": ("event_id", "ticket", "at", "unit", "satisfaction", "resolved"),
    "stats_commitments": ("ticket", "n", "made_at", "unit", "due", "kept_at", "ended_at"),
}  # fmt: skip
