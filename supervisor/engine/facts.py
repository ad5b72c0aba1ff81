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
        "unsigned_co_unit_count": len([u for u in state.co_units if u not in state.signed_units]),
        "dissatisfied_count": state.dissatisfied_count,
        "reopened_count": state.reopened_count,
        "extension_count": state.extension_count,
        "contacted_before": state.contacted_before,
        "contacted_after": state.contacted_after,
        "has_commitment": state.commitment_due is not None,
        "commitment_kept": state.commitment_kept_at is not None,
        "resolved": bool(state.resolved),
    }


def event_fields(
    state: TicketState, event: Event, deadlines: Deadlines, calendar: WorkCalendar
) -> dict[str, Any]:
    d = event.data
    since_wm = since_m = NO_DURATION
    if state.dispatched_at is not None and event.at >= state.dispatched_at:
        since_m = int((event.at - state.dispatched_at).total_seconds() // 60)
        since_wm = calendar.working_minutes_between(state.dispatched_at, event.at)
    return {
        "event": event.type,
        "event_unit": d.get("unit", "") or "",
        "event_approved": bool(d.get("approved", False)),
        "event_satisfaction": d.get("satisfaction", "") or "",
        "event_review": _review(event),
        "event_after_sign_by": _after(event.at, deadlines.sign_by),
        "event_after_reply_by": _after(event.at, deadlines.reply_by),
        duration_key("since_dispatch", True): since_wm,
        duration_key("since_dispatch", False): since_m,
    }


def _review(event: Event) -> str:
    if event.type == "reviewed":
        return str(event.data["outcome"])
    if event.type == "review_decided":
        return "returned" if event.data["decision"] == "return" else "passed"
    return ""


def _after(at: datetime, deadline: datetime | None) -> bool:
    return deadline is not None and at > deadline
