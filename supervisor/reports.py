"""Periodic reports (回头看 look-back, the liaisons' morning digest). Pure: when a report runs,
and what it says, from ticket states and an explicit time. The shell makes sure each period runs
once (a UNIQUE key on report_runs), whichever daemon gets there first."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from . import deadlines as dl
from .clock import SHANGHAI
from .message import state_fields
from .notify import Notification, ticket_context
from .rulebook import Report
from .state import TicketState
from .workcal import CalendarGapError, WorkCalendar

WEEKDAY = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
ACTIVE = ("dispatched", "signed", "reopened")


def _runs_on(report: Report, day: date, calendar: WorkCalendar) -> bool:
    if report.days == "every_day":
        return True
    if report.days == "working_days":
        try:
            return calendar.is_workday(day)
        except CalendarGapError:
            return day.weekday() < 5  # a digest on a guessed day beats no digest; check warns
    return day.weekday() == WEEKDAY[report.days]


def occurrences(
    report: Report, after: datetime, until: datetime, calendar: WorkCalendar
) -> list[datetime]:
    """Run times in (after, until]."""
    out = []
    hh, mm = (int(x) for x in report.at.split(":"))
    day = after.astimezone(SHANGHAI).date()
    last = until.astimezone(SHANGHAI).date()
    while day <= last:
        at = datetime.combine(day, time(hh, mm), tzinfo=SHANGHAI)
        if after < at <= until and _runs_on(report, day, calendar):
            out.append(at)
        day += timedelta(days=1)
    return out


def period(at: datetime) -> int:
    return int(at.astimezone(SHANGHAI).strftime("%Y%m%d"))


def _deadlines(state: TicketState, runtime) -> dl.Deadlines:
    return dl.compute(state, runtime.policy.deadlines, runtime.policy.calendar, state_fields(state))


def build(
    report: Report, at: datetime, states: Iterable[TicketState] = (), *, runtime
) -> list[Notification]:
    states = list(states)
    if report.kind == "look_back":
        return _look_back(report, at, states, runtime)
    return _digest(report, at, states, runtime)


def _notifications(
    report: Report, at: datetime, subject: str, role_unit: str | None, context: dict, runtime
) -> list[Notification]:
    out = []
    for role in report.to:
        for rec in runtime.directory.resolve(role, unit=role_unit, grid=None):
            text = runtime.templates.render(
                report.template, {**context, "recipient_name": rec.name}
            )
            for channel in report.channels:
                ch = (
                    channel
                    if channel in rec.channels
                    else (rec.channels[0] if rec.channels else channel)
                )
                out.append(
                    Notification(
                        at,
                        subject,
                        report.id,
                        period(at),
                        0,
                        0,
                        role,
                        rec.person,
                        rec.name,
                        rec.phone,
                        ch,
                        text,
                        False,
                        rec.fallback_reason,
                    )
                )
    return out


def _look_back(
    report: Report, at: datetime, states: list[TicketState], runtime
) -> list[Notification]:
    since = at - timedelta(days=7) if report.window is None else at - report.window.as_timedelta()
    picked = [
        s for s in states
        if (s.dissatisfied_count or s.reopened_count) and s.last_event_at is not None and s.last_event_at >= since
    ]  # fmt: skip
    tickets = []
    for s in sorted(picked, key=lambda s: s.ticket):
        d = _deadlines(s, runtime)
        tickets.append(
            {
                **ticket_context(s, d, runtime.directory),
                "deadline": d.reply_by,
                "overdue_by": "",
                "text": s.status,
            }
        )
    context = {"tickets": tickets, "count": len(tickets), "rule": report.id, "step": 0}
    return _notifications(report, at, "-", None, context, runtime)


def _digest(report: Report, at: datetime, states: list[TicketState], runtime) -> list[Notification]:
    today = at.astimezone(SHANGHAI).date()
    by_unit: dict[str, dict[str, list[dict]]] = {}
    for s in states:
        if s.unit is None or s.status not in ACTIVE:
            continue
        d = _deadlines(s, runtime)
        item = {**ticket_context(s, d, runtime.directory), "deadline": d.reply_by, "overdue_by": ""}
        sections = by_unit.setdefault(s.unit, {"awaiting_sign": [], "due_today": [], "overdue": []})
        if s.status == "dispatched":
            sections["awaiting_sign"].append({**item, "text": "待签收"})
        if d.reply_by is not None and d.reply_by < at:
            sections["overdue"].append({**item, "text": "已超期"})
        elif d.reply_by is not None and d.reply_by.astimezone(SHANGHAI).date() == today:
            sections["due_today"].append(
                {**item, "text": f"今日{d.reply_by.astimezone(SHANGHAI):%H:%M}到期"}
            )
    out = []
    for unit in sorted(by_unit):
        sections = by_unit[unit]
        merged: dict[str, dict] = {}
        for item in sections["overdue"] + sections["due_today"] + sections["awaiting_sign"]:
            if item["id"] in merged:  # one line per ticket: "已超期、待签收"
                merged[item["id"]]["text"] += "、" + item["text"]
            else:
                merged[item["id"]] = dict(item)
        tickets = list(merged.values())
        if not tickets:
            continue
        context = {
            "tickets": tickets,
            "count": len(tickets),
            "counts": {k: len(v) for k, v in sections.items()},
            "rule": report.id,
            "step": 0,
            "target_unit": unit,
            "target_unit_name": runtime.directory.unit_name(unit),
        }
        out += _notifications(report, at, f"unit:{unit}", unit, context, runtime)
    return out
