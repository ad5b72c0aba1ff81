"""Firing a ladder step: who gets what text on which channel. Pure: state, policy, contacts and
templates in, Notification values out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from supervisor.config.contacts import Directory, Recipient
from supervisor.config.templates import Templates
from supervisor.core.clock import SHANGHAI
from supervisor.core.deadlines import Deadlines
from supervisor.core.state import TicketState
from supervisor.policy.rulebook import Rule, Step

ROLE_ZH = {
    "liaison": "联络员",
    "head": "负责人",
    "supervisor": "热线专员",
    "leader": "分管领导",
    "grid": "网格员",
}


@dataclass(frozen=True)
class Notification:
    at: datetime
    ticket: str
    rule: str
    cycle: int
    step: int
    rep: int
    role: str
    to: str | None  # contact (person) id; None when nobody could be resolved
    name: str | None
    address: str | None  # E.164 phone; never printed by simulate or logged
    channel: str
    text: str
    urgent: bool
    note: str | None = None  # e.g. why the supervisor stands in for a missing contact
    # parameters of the provider-registered SMS templates (config/sms_templates.yaml), or None
    params: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        """The JSON line simulate prints (no phone numbers)."""
        out = {
            "at": self.at.astimezone(SHANGHAI).isoformat(),
            "ticket": self.ticket,
            "rule": self.rule,
            "step": self.step,
            "role": self.role,
            "to": self.to,
            "channel": self.channel,
            "text": self.text,
        }
        if self.rep:
            out["repeat"] = self.rep
        if self.cycle != 1:
            out["cycle"] = self.cycle
        if self.urgent:
            out["urgent"] = True
        if self.note:
            out["note"] = self.note
        return out


def channel_for(rec: Recipient, wanted: str) -> str:
    """The channel a message goes on: the one asked for, if the person takes it, else the
    person's first."""
    if wanted in rec.channels or not rec.channels:
        return wanted
    return rec.channels[0]


def ticket_context(
    state: TicketState, deadlines: Deadlines, directory: Directory
) -> dict[str, Any]:
    """What templates may see of a ticket. The caller's number is not in it, masked or not."""
    return {
        "id": state.ticket,
        "category": state.category or "未分类",
        "kind": state.kind or "",
        "urgent": state.urgent,
        "unit": state.unit or "",
        "unit_name": directory.unit_name(state.unit) if state.unit else "",
        "status": state.status,
        "summary": (state.summary or "")[:40],
        "address": state.address or "",
        "grid": state.grid or "",
        "dispatch_count": state.dispatch_count,
        "returned_units": list(state.returned_units),
        "commitment_due": deadlines.commitment_due,
        "satisfaction": state.satisfaction or "",
        "dissatisfied_count": state.dissatisfied_count,
        "sign_by": deadlines.sign_by,
        "reply_by": deadlines.reply_by,
    }


def _overdue(at: datetime, deadline: datetime | None) -> str:
    if deadline is None or at <= deadline:
        return ""
    minutes = int((at - deadline).total_seconds() // 60)
    days, rem = divmod(minutes, 1440)
    hours, mins = divmod(rem, 60)
    parts = [
        f"{days}天" if days else "",
        f"{hours}小时" if hours else "",
        f"{mins}分钟" if mins and not days else "",
    ]
    return "".join(parts) or "0分钟"


def fire_step(
    *,
    rule: Rule,
    step: Step,
    rep: int,
    cycle: int,
    anchor_at: datetime,
    state: TicketState,
    deadlines: Deadlines,
    directory: Directory,
    templates: Templates,
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> list[Notification]:
    ticket = ticket_context(state, deadlines, directory)
    urgent = state.urgent if step.urgent is None else step.urgent
    units: list[str | None]
    if step.units == "co_unsigned":
        units = [u for u in state.co_units if u not in state.signed_units]
        if not units:
            return []
    else:
        units = [state.unit]
    out: list[Notification] = []
    seen: set[tuple[str | None, str, str | None]] = set()
    for unit in units:
        for role in step.roles:
            recipients: list[Recipient] = directory.resolve(role, unit=unit, grid=state.grid)
            if not recipients:
                # Nobody at all, not even a supervisor: still produce a visible notification.
                recipients = [
                    Recipient(
                        None,
                        "(无联系人)",
                        role,
                        None,
                        ("console",),
                        f"no contact for {role} and no supervisor",
                    )
                ]
            for rec in recipients:
                text: str | None = None  # one text per recipient: a call speaks the SMS's words
                params: dict[str, Any] | None = None
                for channel in step.channels:
                    ch = channel_for(rec, channel)
                    key = (rec.person, ch, unit)
                    if key in seen:
                        continue
                    seen.add(key)
                    if text is None:
                        text, params = _text(
                            rule,
                            step,
                            templates,
                            directory,
                            ticket,
                            rec,
                            role,
                            unit,
                            anchor_at,
                            at,
                            extra,
                        )
                    out.append(
                        Notification(
                            at,
                            state.ticket,
                            rule.id,
                            cycle,
                            step.index,
                            rep,
                            role,
                            rec.person,
                            rec.name,
                            rec.phone,
                            ch,
                            text,
                            urgent,
                            rec.fallback_reason,
                            params if ch == "sms" else None,
                        )  # fmt: skip
                    )
    return out


def _text(
    rule: Rule,
    step: Step,
    templates: Templates,
    directory: Directory,
    ticket: dict[str, Any],
    rec: Recipient,
    role: str,
    unit: str | None,
    anchor_at: datetime,
    at: datetime,
    extra: dict[str, Any] | None,
) -> tuple[str, dict[str, Any] | None]:
    context = {
        "ticket": ticket,
        "deadline": anchor_at,
        "overdue_by": _overdue(at, anchor_at),
        "rule": rule.id,
        "rule_description": rule.description,
        "step": step.index,
        "recipient_name": rec.name,
        "target_unit": unit or "",
        "target_unit_name": directory.unit_name(unit) if unit else "",
        **(extra or {}),
    }
    text = templates.render(step.template, context)
    params = templates.sms_params(step.template, context)
    if rec.fallback_reason and rec.role != "supervisor":
        # the supervisor stands in for a missing contact: say so in the text
        who = context["target_unit_name"] or "该工单"
        text = f"（{who}未配置{ROLE_ZH.get(role, role)}，转您处理）{text}"
    return text, params
