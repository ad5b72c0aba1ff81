"""A ticket's effective deadlines: what the platform sent wins; then the office's defaults.

reply_by: an approved extension, else the platform's reply_by (from the last dispatch, or from
the re-opening), else the first default whose condition holds, counted from its start time.
sign_by: the platform's, else the first matching default. commitment_due: the promised date; a
bare date means the end of that day's office hours
(of the next working day's, when that day is not a working day).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from supervisor.core.state import TicketState
from supervisor.core.workcal import WorkCalendar
from supervisor.policy.matchcache import MemoMatcher
from supervisor.policy.matcher import PythonMatcher

if TYPE_CHECKING:
    from supervisor.policy.rulebook import DeadlineDefault


@dataclass(frozen=True)
class Deadlines:
    sign_by: datetime | None = None
    reply_by: datetime | None = None
    commitment_due: datetime | None = None
    sign_by_source: str | None = None
    reply_by_source: str | None = None

    def anchor(self, name: str) -> datetime | None:
        return getattr(self, name)


def compute(
    state: TicketState,
    defaults: Mapping[str, Sequence[DeadlineDefault]],
    calendar: WorkCalendar,
    state_message: dict[str, Any],
) -> Deadlines:
    sign_by: datetime | None = state.platform_sign_by
    sign_src: str | None = "platform"
    reply_by: datetime | None
    reply_src: str | None
    if state.dispatched_at is None:
        sign_by, sign_src = None, None
    elif sign_by is None:
        sign_by, sign_src = (
            _default(state, defaults.get("sign_by", ()), calendar, state_message),
            "default",
        )
    if state.extension_until is not None:
        reply_by, reply_src = state.extension_until, "extension"
    elif state.platform_reply_by is not None:
        reply_by, reply_src = state.platform_reply_by, "platform"
    elif state.dispatched_at is not None:
        reply_by, reply_src = (
            _default(state, defaults.get("reply_by", ()), calendar, state_message),
            "default",
        )
    else:
        reply_by, reply_src = None, None
    # Deadlines(...) without the frozen dataclass's __init__ (one per message): every field given
    out = _new(Deadlines)
    out.__dict__.update(
        sign_by=sign_by,
        reply_by=reply_by,
        commitment_due=_commitment(state.commitment_due, calendar),
        sign_by_source=sign_src if sign_by else None,
        reply_by_source=reply_src if reply_by else None,
    )
    return out


_new = object.__new__


def _default(
    state: TicketState,
    entries: Sequence[DeadlineDefault],
    calendar: WorkCalendar,
    msg: dict[str, Any],
) -> datetime | None:
    holding = None  # which entries' conditions hold: asked once, of a memo (matchcache.py)
    for i, entry in enumerate(entries):
        start = getattr(state, entry.start)
        if start is None:
            continue
        if holding is None:
            holding = _memo(entries).match(msg)
        if str(i) in holding:
            return calendar.add(start, entry.after)
    return None


_memos: dict[int, tuple[Sequence[DeadlineDefault], MemoMatcher]] = {}


def _memo(entries: Sequence[DeadlineDefault]) -> MemoMatcher:
    hit = _memos.get(id(entries))
    if hit is not None and hit[0] is entries:
        return hit[1]
    conditions = {str(i): e.when for i, e in enumerate(entries)}
    memo = MemoMatcher(PythonMatcher(conditions), conditions)
    if len(_memos) >= 32:  # a few policies at once (reloads, tests)
        _memos.clear()
    _memos[id(entries)] = (entries, memo)
    return memo


def _commitment(due: str | None, calendar: WorkCalendar) -> datetime | None:
    if due is None:
        return None
    if len(due) == 10:
        return calendar.due_on(date.fromisoformat(due))
    return datetime.fromisoformat(due)
