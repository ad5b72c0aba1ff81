"""The message a rule condition sees, built: one flat, total dict per (ticket state, event).

The fields and their types are the rule language's (policy/facts.py: FIELDS); their values come
from the core's ticket state and event, the engine's deadlines and the office's calendar.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from supervisor.core.events import Event
from supervisor.core.state import TicketState
from supervisor.core.workcal import WorkCalendar
from supervisor.engine.deadlines import Deadlines
from supervisor.policy.facts import NO_DURATION, duration_key


def state_fields(state: TicketState) -> dict[str, Any]:
    return {
        "status": state.status,
        "kind": state.kind or "",
        "category": state.category or "",
        "channel": state.channel or "",
        "urgent": state.urgent,
        "unit": state.unit or "",
        "grid": state.grid or "",
        "satisfaction": state.satisfaction or "",
        "dispatch_count": state.dispatch_count,
        "return_count": state.return_count,
        "returned_unit_count": len(state.returned_units),
        "co_unit_count": len(state.co_units),
        "unsigned_co_unit_count": _unsigned(state.co_units, state.signed_units),
        "dissatisfied_count": state.dissatisfied_count,
        "reopened_count": state.reopened_count,
        "extension_count": state.extension_count,
        "contacted_before": state.contacted_before,
        "contacted_after": state.contacted_after,
        "has_commitment": state.commitment_due is not None,
        "commitment_kept": state.commitment_kept_at is not None,
        "resolved": bool(state.resolved),
    }


def _unsigned(co_units: tuple[str, ...], signed: tuple[str, ...]) -> int:
    if not co_units:  # most tickets: no co-handling unit
        return 0
    return len([u for u in co_units if u not in signed])


def event_fields(
    state: TicketState, event: Event, deadlines: Deadlines, calendar: WorkCalendar
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    add_event_fields(out, state, event, deadlines, calendar)
    return out


def add_event_fields(
    msg: dict[str, Any],
    state: TicketState,
    event: Event,
    deadlines: Deadlines,
    calendar: WorkCalendar,
    working_minutes: bool = True,
) -> None:
    """The event's fields, set in `msg` (the planner's message: no dict to build and merge).
    Without `working_minutes`, `since_dispatch` in working minutes is left at NO_DURATION (the
    planner asks so where no condition reading it can hold)."""
    d = event.data
    at = event.at
    since_wm = since_m = NO_DURATION
    dispatched_at = state.dispatched_at
    if dispatched_at is not None and at >= dispatched_at:
        since_m = int((at - dispatched_at).total_seconds() // 60)
        if working_minutes:
            since_wm = calendar.working_minutes_between(dispatched_at, at)
    msg["event"] = event.type
    msg["event_unit"] = d.get("unit", "") or ""
    msg["event_approved"] = bool(d.get("approved", False))
    msg["event_satisfaction"] = d.get("satisfaction", "") or ""
    msg["event_review"] = _review(event)
    msg["event_after_sign_by"] = _after(at, deadlines.sign_by)
    msg["event_after_reply_by"] = _after(at, deadlines.reply_by)
    msg[_SINCE_WM] = since_wm
    msg[_SINCE_M] = since_m


_SINCE_WM = duration_key("since_dispatch", True)
_SINCE_M = duration_key("since_dispatch", False)


def _review(event: Event) -> str:
    if event.type == "reviewed":
        return str(event.data["outcome"])
    if event.type == "review_decided":
        return "returned" if event.data["decision"] == "return" else "passed"
    return ""


def _after(at: datetime, deadline: datetime | None) -> bool:
    return deadline is not None and at > deadline
