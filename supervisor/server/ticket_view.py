"""The ticket view in one zone: every timestamp in Beijing time with its offset (+08:00), and the
computed sign_by and reply_by shown in the state (the platform's, or the rules' defaults)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from supervisor.application import Runtime
from supervisor.core.clock import SHANGHAI
from supervisor.core.state import TicketState
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields


def to_beijing(value: Any) -> Any:
    """A timestamp (datetime or RFC 3339 text with an offset) in +08:00; anything else as is.
    Dates (`2026-12-03`) stay dates."""
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, str) and len(value) >= 20 and value[10:11] == "T":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is not None:
            return parsed.astimezone(SHANGHAI).isoformat()
    return value


def _zone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _zone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_zone(v) for v in value]
    return to_beijing(value)


def computed_deadlines(state: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """sign_by and reply_by as the rules compute them, with where each came from."""
    try:
        ts = TicketState.from_json(state)
        d = dl.compute(ts, runtime.policy.deadlines, runtime.policy.calendar, state_fields(ts))
    except (ValueError, TypeError, KeyError) as exc:  # e.g. a year the calendar refuses
        return {"deadlines_error": str(exc)}
    return {
        "sign_by": to_beijing(d.sign_by) if d.sign_by else None,
        "sign_by_source": d.sign_by_source,
        "reply_by": to_beijing(d.reply_by) if d.reply_by else None,
        "reply_by_source": d.reply_by_source,
    }


def beijing_view(view: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """PgStore.ticket_view's answer with one zone throughout and the deadlines in the state.
    The structure stays the same (state, linked, timeline, ladders, timers, messages)."""
    out = dict(view)
    state = dict(view.get("state") or {})
    state.update(computed_deadlines(state, runtime))
    out["state"] = state
    return {k: (_zone(v) if k != "ticket" else v) for k, v in out.items()}
