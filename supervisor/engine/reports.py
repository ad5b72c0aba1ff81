"""Periodic reports (回头看 look-back, the liaisons' morning digest). Pure: when a report runs,
and what it says, from ticket states and an explicit time. The shell makes sure each period runs
once (a UNIQUE key on report_runs), whichever daemon gets there first."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from supervisor.core.clock import SHANGHAI
from supervisor.core.state import TicketState
from supervisor.core.workcal import CalendarGapError, WorkCalendar
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.engine.firing import (
    Notification,
    channel_for,
    stand_in_note,
    ticket_context,
    with_note,
)
from supervisor.policy.rulebook import Report

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
    if report.days == "first_working_day_of_month":  # the monthly statistics (supervisor/stats)
        return _first_working_day_of_month(day, calendar)
    if report.days == "every_day":
        return True
    try:
        if report.days == "working_days":
            return calendar.is_workday(day)
        if report.days == "first_working_day_of_week":
            return calendar.first_workday_of_week(day) == day
        if report.days == "first_working_day_of_month":
            return calendar.first_workday_of_month(day) == day
    except CalendarGapError:  # a report on a guessed day beats no report; check warns
        return day.weekday() < 5 and (report.days == "working_days" or day.weekday() == 0)
    return day.weekday() == WEEKDAY[report.days]


def _first_working_day_of_month(day: date, calendar: WorkCalendar) -> bool:
    def working(d: date) -> bool:
        try:
            return calendar.is_workday(d)
        except CalendarGapError:
            return d.weekday() < 5

    first = day.replace(day=1)
    return working(day) and not any(
        working(first + timedelta(days=i)) for i in range((day - first).days)
    )


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


KEEP = 10  # tickets listed per section: a text message shows a handful, the count says the rest


def builder(report: Report, at: datetime, runtime) -> _LookBack | _Digest:
    """A report fed ticket states one at a time (`add`), then `finish`ed into messages: memory
    stays bounded by the number of units, not of tickets."""
    return (_LookBack if report.kind == "look_back" else _Digest)(report, at, runtime)


def build(
    report: Report, at: datetime, states: Iterable[TicketState] = (), *, runtime
) -> list[Notification]:
    b = builder(report, at, runtime)
    for s in states:
        b.add(s)
    return b.finish()


def _notifications(
    report: Report, at: datetime, subject: str, role_unit: str | None, context: dict, runtime
) -> list[Notification]:
    out = []
    for role in report.to:
        for rec in runtime.directory.resolve(role, unit=role_unit, grid=None):
            for channel in report.channels:
                ch = channel_for(rec, channel)
                ctx = {**context, "recipient_name": rec.name, "role": role}
                text = runtime.templates.render(report.template, ctx, ch)
                # a supervisor standing in for a unit's missing liaison is told why
                note = stand_in_note(rec, role, role_unit, None, runtime.directory)
                if note:
                    text = (
                        with_note(text, note) if ch != "voice" else f"{note.strip('（）')}。{text}"
                    )
                params = runtime.templates.sms_params(report.template, ctx) if ch == "sms" else None
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
                        params,
                    )
                )
    return out


class _LookBack:
    def __init__(self, report: Report, at: datetime, runtime) -> None:
        self.report, self.at, self.runtime = report, at, runtime
        window = report.window.as_timedelta() if report.window is not None else timedelta(days=7)
        nominal = at
        if report.days == "first_working_day_of_week":
            # run late because Monday was a holiday: still "last week", counted from Monday
            local = at.astimezone(SHANGHAI)
            nominal = at - timedelta(days=local.weekday())
        self.since = nominal - window
        self.count = 0
        self.kept: list[TicketState] = []

    def add(self, s: TicketState) -> None:
        if not (s.dissatisfied_count or s.reopened_count):
            return
        if s.last_event_at is None or s.last_event_at < self.since:
            return
        self.count += 1
        self.kept.append(s)
        if len(self.kept) > 5 * KEEP:  # the first tickets by id, bounded
            self.kept = sorted(self.kept, key=lambda x: x.ticket)[: 5 * KEEP]

    def finish(self) -> list[Notification]:
        rt = self.runtime
        tickets = []
        for s in sorted(self.kept, key=lambda s: s.ticket):
            d = _deadlines(s, rt)
            ctx = ticket_context(s, d, rt.directory)
            tickets.append({**ctx, "deadline": d.reply_by, "overdue_by": "", "text": s.status})
        context = {"tickets": tickets, "count": self.count, "rule": self.report.id, "step": 0}
        return _notifications(self.report, self.at, "-", None, context, rt)


_SECTIONS = ("overdue", "sign_overdue", "due_today", "awaiting_sign")


class _Digest:
    def __init__(self, report: Report, at: datetime, runtime) -> None:
        self.report, self.at, self.runtime = report, at, runtime
        self.today = at.astimezone(SHANGHAI).date()
        self.counts: dict[str, dict[str, int]] = {}
        self.totals: dict[str, int] = {}
        self.listed: dict[str, list[tuple[int, str, dict]]] = {}

    def add(self, s: TicketState) -> None:
        if s.unit is None or s.status not in ACTIVE:
            return
        d = _deadlines(s, self.runtime)
        labels: list[tuple[str, str]] = []
        if d.reply_by is not None and d.reply_by < self.at:
            labels.append(("overdue", "已超期"))
        elif d.reply_by is not None and d.reply_by.astimezone(SHANGHAI).date() == self.today:
            labels.append(("due_today", f"今日{d.reply_by.astimezone(SHANGHAI):%H:%M}到期"))
        if s.status == "dispatched":
            # past the sign-off deadline is counted apart: 待签收 includes it (its 其中)
            if d.sign_by is not None and d.sign_by < self.at:
                labels.insert(0, ("sign_overdue", "已超时签收"))
            else:
                labels.append(("awaiting_sign", "待签收"))
        if not labels:
            return
        unit_counts = self.counts.setdefault(s.unit, dict.fromkeys(_SECTIONS, 0))
        for section, _ in labels:
            unit_counts[section] += 1
            if section == "sign_overdue":
                unit_counts["awaiting_sign"] += 1
        self.totals[s.unit] = self.totals.get(s.unit, 0) + 1
        item = {
            **ticket_context(s, d, self.runtime.directory), "deadline": d.reply_by, "overdue_by": "",
            "text": "、".join(text for _, text in labels),
        }  # fmt: skip
        items = self.listed.setdefault(s.unit, [])
        items.append((_SECTIONS.index(labels[0][0]), s.ticket, item))
        if len(items) > 2 * KEEP:
            items.sort(key=lambda x: (x[0], x[1]))
            del items[KEEP:]

    def finish(self) -> list[Notification]:
        out = []
        for unit in sorted(self.totals):
            items = sorted(self.listed[unit], key=lambda x: (x[0], x[1]))[:KEEP]
            context = {
                "tickets": [item for _, _, item in items],
                "count": self.totals[unit],
                "counts": self.counts[unit],
                "rule": self.report.id,
                "step": 0,
                "target_unit": unit,
                "target_unit_name": self.runtime.directory.unit_name(unit),
            }
            out += _notifications(self.report, self.at, f"unit:{unit}", unit, context, self.runtime)
        return out
