"""A ticket's effective deadlines: what the platform sent wins; then the office's defaults.

reply_by: an approved extension, else the platform's reply_by (from the last dispatch, or from
the re-opening), else the first default whose condition holds, counted from its start time.
sign_by: the platform's, else the first matching default. commitment_due: the promised date; a
bare date means the end of that day's office hours
(of the next working day's, when that day is not a working day).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter, itemgetter
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
    """The ticket's deadlines. Memoised per (defaults, calendar) on exactly what `_compute` reads:
    the state's deadline fields and the defaults' start fields (the datetimes passed through
    as they are with their tzinfo too), and the values and types of the message fields the
    defaults' conditions read. A ticket's deadlines are asked again for each of its events
    with the same inputs; the answer is the same (frozen) Deadlines object."""
    memo = _deadline_memo(defaults, calendar)
    try:
        key = memo.key(state, state_message)
    except (KeyError, TypeError):  # a field the conditions read is missing, or unhashable
        return _compute(state, defaults, calendar, state_message)
    hit = memo.answers.get(key)
    if hit is None:
        hit = _compute(state, defaults, calendar, state_message)
        if len(memo.answers) >= DEADLINE_MEMO_SIZE:
            memo.answers.clear()  # bounded: cleared when full, like WorkCalendar.add's memo
        memo.answers[key] = hit
    return hit


DEADLINE_MEMO_SIZE = 8_192  # Deadlines kept per (defaults, calendar): about 900 bytes each, 7 MB
# the state's datetimes _compute returns as they are (so their zone is part of the key)
_PASSED = ("platform_sign_by", "extension_until", "platform_reply_by")
_READ = ("dispatched_at", "commitment_due")  # read by _compute besides _PASSED and the starts


class _DeadlineMemo:
    def __init__(
        self, defaults: Mapping[str, Sequence[DeadlineDefault]], calendar: WorkCalendar
    ) -> None:
        self.defaults, self.calendar = defaults, calendar
        starts: list[str] = []
        fields: list[str] = []
        for target in ("sign_by", "reply_by"):
            entries = defaults.get(target, ())
            starts += [e.start for e in entries]
            fields += _memo(entries).reads
        attrs = list(dict.fromkeys([*_READ, *starts]))
        self._attrs: Callable[[TicketState], Any] = attrgetter(
            *[a for a in attrs if a not in _PASSED]
        )
        self._passed = attrgetter(*_PASSED)
        names = sorted(set(fields))
        self._fields: Callable[[dict[str, Any]], Any] = (
            itemgetter(*names) if names else (lambda message: ())
        )
        self._one_field = len(names) == 1  # itemgetter of one name gives the value, not a tuple
        self.answers: dict[tuple[Any, ...], Deadlines] = {}

    def key(self, state: TicketState, message: dict[str, Any]) -> tuple[Any, ...]:
        values = self._fields(message)
        if self._one_field:
            values = (values,)
        sign_by, until, reply_by = passed = self._passed(state)
        return (
            self._attrs(state),
            passed,
            sign_by and sign_by.tzinfo,  # datetimes are true; None stays None
            until and until.tzinfo,
            reply_by and reply_by.tzinfo,
            values,
            tuple(map(type, values)),  # True == 1 in Python, not in a condition
        )


_deadline_memos: dict[tuple[int, int], _DeadlineMemo] = {}


def _deadline_memo(
    defaults: Mapping[str, Sequence[DeadlineDefault]], calendar: WorkCalendar
) -> _DeadlineMemo:
    hit = _deadline_memos.get((id(defaults), id(calendar)))
    if hit is not None and hit.defaults is defaults and hit.calendar is calendar:
        return hit
    if len(_deadline_memos) >= 8:  # a few policies at once (reloads, tests): keep it small
        _deadline_memos.clear()
    memo = _deadline_memos[(id(defaults), id(calendar))] = _DeadlineMemo(defaults, calendar)
    return memo


def _compute(
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
