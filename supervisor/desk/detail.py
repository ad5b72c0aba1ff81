"""工单详情 as data (pure): timeline, deadlines in working time, ladders with their next steps,
every message with its acknowledgement, and what the viewer may acknowledge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from supervisor.core.state import TicketState
from supervisor.core.workcal import CalendarGapError
from supervisor.desk import format as fmt
from supervisor.desk.ack import may_ack
from supervisor.desk.users import User
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.engine.policy import Policy

HIDDEN = frozenset({"caller_hash", "caller"})  # never shown, whoever asks


def _deadlines(state: TicketState, policy: Policy, now: datetime) -> list[dict[str, Any]]:
    try:
        d = dl.compute(state, policy.deadlines, policy.calendar, state_fields(state))
    except CalendarGapError as exc:
        return [
            {
                "name": "calendar",
                "label": "时限",
                "at": None,
                "at_text": "",
                "source": "",
                "text": str(exc),
                "overdue": False,
            }
        ]
    out = []
    cal = policy.calendar
    if d.sign_by:
        done = state.status != "dispatched"
        st = fmt.deadline_state("sign_by", d.sign_by, now, cal, done=done, natural=state.urgent)
        out.append({**st.to_json(), "label": st.label, "at_text": fmt.bj(d.sign_by),
                    "source": fmt.SOURCE_LABELS.get(d.sign_by_source or "", "")})  # fmt: skip
    if d.reply_by:
        done = state.replied_at is not None or state.status in ("replied", "visited", "closed")
        st = fmt.deadline_state("reply_by", d.reply_by, now, cal, done=done, natural=state.urgent)
        out.append({**st.to_json(), "label": st.label, "at_text": fmt.bj(d.reply_by),
                    "source": fmt.SOURCE_LABELS.get(d.reply_by_source or "", "")})  # fmt: skip
    if d.commitment_due:
        st = fmt.deadline_state(
            "commitment_due", d.commitment_due, now, cal, done=state.status == "closed"
        )
        out.append(
            {
                **st.to_json(),
                "label": st.label,
                "at_text": fmt.bj(d.commitment_due),
                "source": "单位承诺",
            }
        )
    return out


def _event(e: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in (e["data"] or {}).items() if k not in HIDDEN}
    return {"id": e["id"], "type": e["type"], "label": fmt.EVENT_LABELS.get(e["type"], e["type"]),
            "at": fmt.bj_iso(e["at"]), "at_text": fmt.bj(e["at"]), "data": data,
            "fields": fmt.event_fields(data)}  # fmt: skip


def build_detail(
    raw: dict[str, Any], policy: Policy, directory: Any, now: datetime, user: User
) -> dict[str, Any]:
    state = (
        TicketState.from_json(raw["state"])
        if raw["state"].get("event_count")
        else TicketState(raw["ticket"])
    )
    shown = {k: v for k, v in state.to_json().items() if k not in HIDDEN}
    rules = policy.rules_by_id
    acked_steps: dict[tuple[str, int], set[int]] = {}
    for a in raw["desk_acks"]:
        acked_steps.setdefault((a["rule"], a["cycle"]), set()).update(a["steps"] or [])
    ladders_by_key = {(lad["rule"], lad["cycle"]): lad for lad in raw["ladders"]}

    messages = []
    for m in raw["messages"]:
        lad = ladders_by_key.get((m["rule"], m["cycle"]))
        ack = None
        if lad and lad["status"] == "acked":
            ack = {
                "by": lad["acked_by"],
                "by_text": fmt.acker(lad["acked_by"], directory),
                "at": fmt.bj_iso(lad["acked_at"]),
                "at_text": fmt.bj(lad["acked_at"]),
            }
        elif m["step"] in acked_steps.get((m["rule"], m["cycle"]), set()):
            who = next(a for a in reversed(raw["desk_acks"])
                       if a["rule"] == m["rule"] and a["cycle"] == m["cycle"] and m["step"] in (a["steps"] or []))  # fmt: skip
            ack = {"by": who["actor"], "by_text": fmt.acker(who["actor"], directory),
                   "at": fmt.bj_iso(who["at"]), "at_text": fmt.bj(who["at"])}  # fmt: skip
        messages.append({
            "id": m["id"], "rule": m["rule"], "cycle": m["cycle"], "step": m["step"], "rep": m["rep"],
            "role": m["role"], "role_label": fmt.ROLE_LABELS.get(m["role"], m["role"]),
            "to": m["recipient"], "name": m["name"] or m["recipient"], "channel": m["channel"],
            "channel_label": fmt.CHANNEL_LABELS.get(m["channel"], m["channel"]), "text": m["text"],
            "status": m["status"], "status_label": fmt.OUTBOX_LABELS.get(m["status"], m["status"]),
            "delivery_status": m["delivery_status"], "attempts": m["attempts"], "error": m["last_error"],
            "note": m["note"], "created_at": fmt.bj_iso(m["created_at"]), "created_text": fmt.bj(m["created_at"]),
            "sent_at": fmt.bj_iso(m["sent_at"]), "sent_text": fmt.bj(m["sent_at"]), "ack": ack,
            "planned": fmt.bj(m["not_before"]) if m["status"] == "pending" else None,
            # the key pressed during a call (issue 19): "1" and what it did, when
            "keypress": None if m.get("keypress") is None else {
                "digits": m["keypress"], "result": m["keypress_result"],
                "at": fmt.bj_iso(m["keypress_at"]), "at_text": fmt.bj(m["keypress_at"]),
            },
        })  # fmt: skip

    ladders = []
    for lad in raw["ladders"]:
        rule = rules.get(lad["rule"])
        timers = [
            t for t in raw["timers"] if t["rule"] == lad["rule"] and t["cycle"] == lad["cycle"]
        ]
        sent_roles = {m["role"] for m in messages if m["rule"] == lad["rule"] and m["cycle"] == lad["cycle"]
                      and m["status"] != "cancelled"}  # fmt: skip
        steps = []
        for t in timers:
            step = rule.steps[t["step"]] if rule and t["step"] < len(rule.steps) else None
            steps.append({
                "step": t["step"], "rep": t["rep"], "due_at": fmt.bj_iso(t["due_at"]), "due_text": fmt.bj(t["due_at"]),
                "status": t["status"], "roles": [fmt.ROLE_LABELS.get(r, r) for r in (step.roles if step else ())],
                "channels": [fmt.CHANNEL_LABELS.get(c, c) for c in (step.channels if step else ())],
            })  # fmt: skip
        can_ack = bool(
            rule
            and lad["status"] == "active"
            and may_ack(
                user,
                rules,
                lad["rule"],
                sent_roles,
                acked_steps.get((lad["rule"], lad["cycle"]), set()),
            )
        )
        ladders.append({
            "rule": lad["rule"], "name": (rule.name or rule.id) if rule else "（规则已删除）",
            "cycle": lad["cycle"], "description": rule.description if rule else "（规则已删除）",
            "status": lad["status"], "status_label": fmt.LADDER_LABELS.get(lad["status"], lad["status"]),
            "anchor_text": fmt.bj(lad["anchor_at"]), "reason": lad["reason"], "acked_by": lad["acked_by"],
            "acked_by_text": fmt.acker(lad["acked_by"], directory),
            "acked_text": fmt.bj(lad["acked_at"]) if lad["acked_at"] else None, "steps": steps,
            "next": next((s for s in steps if s["status"] == "pending"), None), "can_ack": can_ack,
        })  # fmt: skip

    return {
        "ticket": raw["ticket"],
        "status": raw["status"],
        "status_label": fmt.STATUS_LABELS.get(raw["status"], raw["status"]),
        "unit": raw["unit"],
        "unit_name": directory.unit_name(raw["unit"]) if raw["unit"] else None,
        "state": shown,
        "deadlines": _deadlines(state, policy, now),
        "timeline": [_event(e) for e in raw["events"]],
        "ladders": ladders,
        "messages": messages,
        "acks": [
            {
                "rule": a["rule"],
                "cycle": a["cycle"],
                "by": a["by_whom"],
                "via": a["via"],
                "at": fmt.bj_iso(a["at"]),
                "at_text": fmt.bj(a["at"]),
            }
            for a in raw["acks"]
        ],  # fmt: skip
        "linked": [
            {
                "ticket": t["ticket"],
                "status": t["status"],
                "unit": t["unit"],
                "created_text": fmt.bj(t["created_at"]),
            }
            for t in raw["linked"]
            if user.sees_all or t["unit"] == user.unit
        ],  # fmt: skip
        "now_text": fmt.bj(now),
    }
