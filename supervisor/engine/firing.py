"""Firing a ladder step: who gets what text on which channel. Pure: state, policy, contacts and
templates in, Notification values out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from supervisor.config.contacts import Directory, Recipient
from supervisor.config.templates import Templates
from supervisor.core.clock import SHANGHAI
from supervisor.core.spoken import call_info, speakable, with_spoken_notes
from supervisor.core.state import TicketState
from supervisor.core.workcal import WorkCalendar
from supervisor.engine.deadlines import Deadlines
from supervisor.policy.rulebook import Rule, Step
from supervisor.vocabulary.durations import Duration

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
    state: TicketState,
    deadlines: Deadlines,
    directory: Directory,
    keys: frozenset[str] | None = None,
) -> dict[str, Any]:
    """What templates may see of a ticket. The caller's number is not in it, masked or not.
    With `keys` (Templates.ticket_keys: all a template reads of it), only those, and "id" and
    "unit_name" (which firing itself reads), each the same value, in the same order."""
    if keys is not None:
        getters = _GETTERS.get(keys)
        if getters is None:
            getters = _GETTERS[keys] = tuple(
                (key, get) for key, get in _TICKET_FIELDS.items() if key in keys or key in _ALWAYS
            )
        return {key: get(state, deadlines, directory) for key, get in getters}
    return {
        "id": state.ticket,
        "category": state.category or "未分类",
        "kind": state.kind or "",
        "urgent": state.urgent,
        "unit": state.unit or "",
        "unit_name": directory.unit_name(state.unit) if state.unit else "",
        "status": state.status,
        "summary": (state.summary or "")[:40],
        "address": tidy_address(state.address or ""),
        "grid": state.grid or "",
        "dispatch_count": state.dispatch_count,
        "returned_units": list(state.returned_units),
        "commitment_due": deadlines.commitment_due,
        "satisfaction": state.satisfaction or "",
        "dissatisfied_count": state.dissatisfied_count,
        "sign_by": deadlines.sign_by,
        "reply_by": deadlines.reply_by,
        "reopened_count": state.reopened_count,
        "extension_until": state.extension_requested_until,
        "extension_reason": state.extension_reason or "",
        "history": list(state.history),
        # 答复审核: the last review's findings ("名称：what to add or fix"), their names, the
        # staff's note, and what was reviewed (答复, 退单, 延期申请)
        "review_findings": list(state.review_findings),
        "review_names": [f.split("：", 1)[0] for f in state.review_findings],
        "review_note": state.review_note or "",
        "review_kind": _REVIEW_KIND_ZH.get(state.review_kind or "", "答复"),
    }


_REVIEW_KIND_ZH = {"replied": "答复", "returned": "退单申请", "extension_requested": "延期申请"}
# the same keys, in the same order, one at a time (tests/unit/test_template_uses.py compares)
_Getter = Callable[[TicketState, Deadlines, Directory], Any]
_TICKET_FIELDS: dict[str, _Getter] = {
    "id": lambda s, d, dr: s.ticket,
    "category": lambda s, d, dr: s.category or "未分类",
    "kind": lambda s, d, dr: s.kind or "",
    "urgent": lambda s, d, dr: s.urgent,
    "unit": lambda s, d, dr: s.unit or "",
    "unit_name": lambda s, d, dr: dr.unit_name(s.unit) if s.unit else "",
    "status": lambda s, d, dr: s.status,
    "summary": lambda s, d, dr: (s.summary or "")[:40],
    "address": lambda s, d, dr: tidy_address(s.address or ""),
    "grid": lambda s, d, dr: s.grid or "",
    "dispatch_count": lambda s, d, dr: s.dispatch_count,
    "returned_units": lambda s, d, dr: list(s.returned_units),
    "commitment_due": lambda s, d, dr: d.commitment_due,
    "satisfaction": lambda s, d, dr: s.satisfaction or "",
    "dissatisfied_count": lambda s, d, dr: s.dissatisfied_count,
    "sign_by": lambda s, d, dr: d.sign_by,
    "reply_by": lambda s, d, dr: d.reply_by,
    "reopened_count": lambda s, d, dr: s.reopened_count,
    "extension_until": lambda s, d, dr: s.extension_requested_until,
    "extension_reason": lambda s, d, dr: s.extension_reason or "",
    "history": lambda s, d, dr: list(s.history),
    "review_findings": lambda s, d, dr: list(s.review_findings),
    "review_names": lambda s, d, dr: [f.split("：", 1)[0] for f in s.review_findings],
    "review_note": lambda s, d, dr: s.review_note or "",
    "review_kind": lambda s, d, dr: _REVIEW_KIND_ZH.get(s.review_kind or "", "答复"),
}
_ALWAYS = frozenset({"id", "unit_name"})
# the keys read from the deadlines (the only ones; tests/unit/test_template_uses.py checks)
DEADLINE_KEYS = frozenset({"commitment_due", "sign_by", "reply_by"})
_GETTERS: dict[frozenset[str], tuple[tuple[str, _Getter], ...]] = {}  # per set of keys asked


_SPACES = re.compile(r"\s+")
_CJK_SPACE = re.compile(r" (?=[^\x00-\x7f])|(?<=[^\x00-\x7f]) ")


def tidy_address(address: str) -> str:
    """An address as a text prints it: runs of spaces become one, and none is kept next to a
    Chinese character ("幸福路 12号 502室" -> "幸福路12号502室"; "Block A" keeps its space)."""
    return _CJK_SPACE.sub("", _SPACES.sub(" ", address).strip())


def overdue_words(
    at: datetime, deadline: datetime | None, calendar: WorkCalendar | None, working: bool = True
) -> str:
    """Time past `deadline` in words: in working time ("1个工作小时45分钟", "3个工作日") when the
    rule counts working time, so nights and holidays are never counted against a unit; in
    natural time ("1小时") for natural-time steps (urgent tickets). "" before the deadline."""
    if deadline is None or at <= deadline:
        return ""
    if not working or calendar is None:
        minutes = int((at - deadline).total_seconds() // 60)
        days, rem = divmod(minutes, 1440)
        hours, mins = divmod(rem, 60)
        parts = [f"{days}天" if days else "", f"{hours}小时" if hours else ""]
        parts.append(f"{mins}分钟" if mins and not days else "")
        return "".join(parts) or "不足1分钟"
    days, mark = whole_working_days(deadline, at, calendar)
    minutes = calendar.working_minutes_between(mark, at)
    hours, mins = divmod(minutes, 60)
    parts = [f"{days}个工作日" if days else "", f"{hours}个工作小时" if hours else ""]
    parts.append(f"{mins}分钟" if mins and not days else "")
    return "".join(parts) or "不足1个工作分钟"


def whole_working_days(
    deadline: datetime, at: datetime, calendar: WorkCalendar
) -> tuple[int, datetime]:
    """The most whole working days N after `deadline` that end by `at`, and where the N-th ends
    (`deadline` itself for none): the largest N with calendar.add(deadline, N working days) <= at.

    The N-th working day after a moment is that moment's clock time (moved into office hours) on
    the N-th working day after its day (WorkCalendar.add), so only the first is asked of the
    calendar; the others are counted over the days up to `at`, one is_workday look-up a day,
    where asking add for each N walks the days from the deadline again every time. The last add
    (the first N past `at`) is still asked, so the answer is always the calendar's own."""
    days, mark = 0, deadline
    first = calendar.add(deadline, _ONE_DAY)
    if first <= at:
        days, mark = 1, first
        tz = first.tzinfo
        # first's clock time, as WorkCalendar.add builds the N-th: that day's midnight + offset
        off = first - datetime.combine(first.date(), time(0), tzinfo=tz)
        last = at.astimezone(tz).date()
        day = first.date() + _DAY
        while day <= last:
            if calendar.is_workday(day):
                nxt = datetime.combine(day, time(0), tzinfo=tz) + off
                if nxt > at:
                    break
                days, mark = days + 1, nxt
            day += _DAY
    while True:  # the calendar's word on N + 1 (and on more, should the count have fallen short)
        n = days + 1
        nxt = calendar.add(deadline, _N_DAYS[n] if n < len(_N_DAYS) else Duration.working_days(n))
        if nxt > at:
            return days, mark
        days, mark = days + 1, nxt


_DAY = timedelta(days=1)
_N_DAYS = tuple(Duration.working_days(n) for n in range(64))  # built once, not per message
_ONE_DAY = _N_DAYS[1]


def with_note(text: str, note: str | None) -> str:
    """`note` placed after the text's 【12345…】 tag, which always comes first."""
    if not note:
        return text
    m = _TAG.match(text)
    return f"{m.group(0)}{note}{text[m.end() :]}" if m else f"{note}{text}"


_TAG = re.compile(r"^【[^】]{1,12}】")


def fire_step(
    *,
    rule: Rule,
    step: Step,
    rep: int,
    cycle: int,
    anchor_at: datetime,
    state: TicketState,
    deadlines: Deadlines | Callable[[], Deadlines],
    directory: Directory,
    templates: Templates,
    at: datetime,
    extra: dict[str, Any] | None = None,
    calendar: WorkCalendar | None = None,
) -> list[Notification]:
    """One message per role and person: each role of the step gets its own text under its own
    role. A role without contacts falls back to the supervisor with a note saying why; when the
    supervisor is also a recipient of the step, that is one message, recorded as the
    supervisor's, carrying the note. `deadlines` may be a function computing them: it is called
    only when the step's templates read a deadline of the ticket (or may read anything)."""
    # only what the template reads of the ticket (all of it when unsure)
    keys = templates.ticket_keys(step.template)
    if not isinstance(deadlines, Deadlines):
        # the deadlines feed only the ticket's context (ticket_context), and only these keys
        deadlines = deadlines() if keys is None or not keys.isdisjoint(DEADLINE_KEYS) else _UNREAD
    ticket = ticket_context(state, deadlines, directory, keys)
    urgent = state.urgent if step.urgent is None else step.urgent
    units: list[str | None]
    if step.units == "co_unsigned":
        units = [u for u in state.co_units if u not in state.signed_units]
        if not units:
            return []
    else:
        units = [state.unit]
    # the words only when a text or parameter of the step's template reads them (most do not);
    # in working time unless the rule counts natural time only (urgent tickets)
    overdue = (
        overdue_words(
            at, anchor_at, calendar, step.offset.working or any(s.offset.working for s in rule.steps)
        )
        if templates.uses(step.template, "overdue_by")
        else ""
    )
    out: list[Notification] = []
    for unit in units:
        # (role, person, texts' notes, reasons) in step order, one entry per person
        merged: list[tuple[str, Recipient, list[str], list[str]]] = []
        for role in step.roles:
            recipients: list[Recipient] = directory.resolve(role, unit=unit, grid=state.grid)
            if not recipients:
                # Nobody at all, not even a supervisor: still produce a visible notification.
                recipients = [
                    Recipient(None, "(无联系人)", role, None, ("console",),
                              f"no contact for {role} and no supervisor")
                ]  # fmt: skip
            for rec in recipients:
                if rec.fallback_reason is None and (not merged or rec.person is None):
                    # (the common case: nobody stands in, nobody is asked twice)
                    merged.append((role, rec, [], []))
                    continue
                note = stand_in_note(rec, role, unit, state.grid, directory)
                notes = [note] if note else []
                reasons = [rec.fallback_reason] if rec.fallback_reason else []
                i = (
                    next((i for i, m in enumerate(merged) if m[1].person == rec.person), None)
                    if merged and rec.person is not None
                    else None
                )
                if i is None:
                    merged.append((role, rec, notes, reasons))
                    continue
                # The same person twice in one step: a supervisor standing in for a missing role
                # who is also asked in their own role. One message, the supervisor's, with the note.
                o_role, o_rec, o_notes, o_reasons = merged[i]
                keep = (role, rec) if role == "supervisor" else (o_role, o_rec)
                merged[i] = (*keep, o_notes + notes, o_reasons + reasons)
        for role, rec, notes, reasons in merged:
            seen: set[str] = set()
            wanted: set[str] | None = None  # the channels this person gets, when asked
            unique = list(dict.fromkeys(notes)) if notes else []
            why = "; ".join(dict.fromkeys(reasons)) if reasons else None
            for channel in step.channels:
                ch = channel_for(rec, channel)
                if ch in seen:
                    continue
                seen.add(ch)
                text, params = _text(rule, step, templates, directory, ticket, rec, role, unit,
                                     anchor_at, overdue, extra, ch)  # fmt: skip
                if ch in ("sms", "voice") and "voice" in rec.channels:
                    # what a call about this says when it counts several items (core/spoken.py)
                    call = call_info(ticket=state.ticket, item=templates.call_item(step.template),
                                     unit_name=ticket["unit_name"], notes=unique)  # fmt: skip
                    params = {**(params or {}), "call": call}
                if ch == "voice":  # spoken: the greeting first, then why this person is called
                    text = with_spoken_notes(text, unique)
                else:
                    if params is not None and "call" in params and wanted is None:
                        wanted = {channel_for(rec, c) for c in step.channels}
                    if params is not None and "call" in params and "voice" not in (wanted or ()):
                        # an SMS that may fall back to a call: the call reads its own script (a
                        # template without one: this very text made speakable, no second render)
                        if templates.has_voice(step.template):
                            spoken, _ = _text(rule, step, templates, directory, ticket, rec, role,
                                              unit, anchor_at, overdue, extra, "voice")  # fmt: skip
                        else:
                            spoken = speakable(text, state.ticket)
                        params["voice"] = with_spoken_notes(spoken, unique)
                    text = with_note(text, "".join(unique) or None)
                n = _new(Notification)  # Notification(...) without the frozen __init__
                n.__dict__.update(
                    at=at, ticket=state.ticket, rule=rule.id, cycle=cycle, step=step.index,
                    rep=rep, role=role, to=rec.person, name=rec.name, address=rec.phone,
                    channel=ch, text=text, urgent=urgent,
                    note=why or None, params=params,
                )  # fmt: skip
                out.append(n)
    return out


# Notifications built without the frozen dataclass's generated __init__ (which sets each of
# the 15 fields through object.__setattr__): every field is given, in field order, so the object
# is the same (eq, repr, asdict); tests/unit/test_notify.py compares them.
_new = object.__new__
# what ticket_context is given when it reads no deadline (ticket_keys said so): never read
_UNREAD = Deadlines()


def stand_in_note(
    rec: Recipient, role: str, unit: str | None, grid: str | None, directory: Directory
) -> str | None:
    """Why the supervisor gets a message meant for `role` ("（老旧小区改造办未配置联络员，转您处理）"),
    or None when `rec` plays the role itself."""
    if not rec.fallback_reason or role == "supervisor":
        return None
    if role == "grid":
        return f"（网格{grid}未配置网格员，转您处理）" if grid else "（工单未标明网格，转您处理）"
    who = directory.unit_name(unit) if unit else "该工单"
    return f"（{who}未配置{ROLE_ZH.get(role, role)}，转您处理）"


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
    overdue: str,
    extra: dict[str, Any] | None,
    channel: str,
) -> tuple[str, dict[str, Any] | None]:
    context = {
        "ticket": ticket,
        "deadline": anchor_at,
        "overdue_by": overdue,
        "rule": rule.id,
        "rule_description": rule.description,
        "step": step.index,
        "role": role,
        "recipient_name": rec.name,
        "target_unit": unit or "",
        "target_unit_name": directory.unit_name(unit) if unit else "",
        **(extra or {}),
    }
    if channel == "sms":  # the text and the provider parameters, in one pass when they can be
        return templates.render_sms(step.template, context)
    return templates.render(step.template, context, channel=channel), None
