"""Ticket state is a fold over its events ordered by `at`, then by arrival.

The fold knows the lifecycle, not the office's policy: computed deadlines (the rules' defaults)
are worked out later, in deadlines.py, so that a rules edit never needs a re-fold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import Any

from supervisor.core.clock import SHANGHAI
from supervisor.core.events import Event


@dataclass(frozen=True)
class TicketState:
    ticket: str
    status: str = "new"
    created_at: datetime | None = None
    channel: str | None = None
    category: str | None = None
    kind: str | None = None
    urgent: bool = False
    caller_hash: str | None = None
    caller_masked: str | None = None
    address: str | None = None
    grid: str | None = None
    summary: str | None = None
    unit: str | None = None
    co_units: tuple[str, ...] = ()
    signed_units: tuple[str, ...] = ()
    returned_units: tuple[str, ...] = ()
    dispatch_count: int = 0
    return_count: int = 0
    dispatched_at: datetime | None = None
    signed_at: datetime | None = None
    returned_at: datetime | None = None
    platform_sign_by: datetime | None = None
    platform_reply_by: datetime | None = None
    extension_requested_at: datetime | None = None
    extension_requested_until: datetime | None = None
    extension_reason: str | None = None
    extension_count: int = 0
    extension_until: datetime | None = None
    commitment_due: str | None = None  # a date or a timestamp, as sent
    commitment_at: datetime | None = None
    commitment_kept_at: datetime | None = None
    contacted_before: bool = False
    contacted_after: bool = False
    replied_at: datetime | None = None
    visited_at: datetime | None = None
    satisfaction: str | None = None
    resolved: bool | None = None
    dissatisfied_count: int = 0
    reopened_count: int = 0
    reopened_at: datetime | None = None
    closed_at: datetime | None = None
    last_event_at: datetime | None = None
    event_count: int = 0
    # the handlings in brief, oldest first, for texts that tell a ticket's history (last few)
    history: tuple[str, ...] = ()
    # 答复审核: the last review (core/review.py) and the staff's decision on it. A reply sent
    # back (退回) is no reply: the status returns to what it was, so the reply deadline's
    # reminders go on; `review_reply_at` keeps the returned reply's time for a later pass.
    pre_reply_status: str | None = None
    review_of: str | None = None
    review_kind: str | None = None
    review_outcome: str | None = None  # passed | returned
    review_findings: tuple[str, ...] = ()
    review_decision: str | None = None  # pass | return | accept
    review_note: str | None = None
    review_reply_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.status != "closed"

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict (it deep-copies every value) nor a getattr per field: a copy of
        # the instance dict, then only the datetime and tuple fields converted. Runs per ingest.
        out = _fields_of(self)
        for name in _DATETIME_FIELDS_ORDERED:
            value = out[name]
            if value is not None:
                # one zone, so the same instant always reads the same (events come with any offset)
                out[name] = value.astimezone(SHANGHAI).isoformat()
        for name in _TUPLE_FIELDS:
            out[name] = list(out[name])
        return out

    def to_json_native(self) -> dict[str, Any]:
        """`to_json` for an encoder that writes datetimes and tuples itself (storage's orjson):
        the datetimes in Shanghai time but not yet text, the tuples as they are. orjson writes
        such a datetime exactly as `isoformat` does, except an offset with seconds (Shanghai's
        local mean time, until 1901): those are text already."""
        out = _fields_of(self)
        for name in _DATETIME_FIELDS_ORDERED:
            value = out[name]
            if value is not None:
                local = value.astimezone(SHANGHAI)
                out[name] = local if local.year > 1901 else local.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TicketState:
        # The defaults, the stored values over them, the datetimes parsed; no __init__ call (a
        # frozen dataclass's __init__ sets each of 44 fields through object.__setattr__).
        values = {**_DEFAULTS, **data}
        if len(values) != len(_DEFAULTS):  # keys of no field (an older or newer version): out
            values = {k: v for k, v in values.items() if k in _DEFAULTS}
        for name in _DATETIME_FIELDS_ORDERED:
            value = values[name]
            if value is not None:
                values[name] = datetime.fromisoformat(value)
        for name in _TUPLE_FIELDS:
            value = values[name]
            if isinstance(value, list):
                values[name] = tuple(value)
        if not isinstance(values["ticket"], str):
            raise TypeError("a stored ticket state needs its ticket id")
        new = object.__new__(cls)
        new.__dict__.update(values)
        return new


_FIELD_NAMES = tuple(f.name for f in fields(TicketState))
_DATETIME_FIELDS = frozenset(f.name for f in fields(TicketState) if f.type == "datetime | None")
_DATETIME_FIELDS_ORDERED = tuple(n for n in _FIELD_NAMES if n in _DATETIME_FIELDS)
_TUPLE_FIELDS = tuple(f.name for f in fields(TicketState) if f.type.startswith("tuple["))
_FIELD_LIST = list(_FIELD_NAMES)


def _fields_of(state: TicketState) -> dict[str, Any]:
    """The fields as a new dict, in field order. Every way a state is made (__init__, from_json,
    initial_state, the fold's _evolve) fills its instance dict with exactly the fields in that
    order, so the copy is it (a C copy); anything else is rebuilt field by field."""
    d = state.__dict__
    if len(d) == len(_FIELD_LIST) and list(d) == _FIELD_LIST:
        return d.copy()
    return {name: d[name] for name in _FIELD_NAMES}


# every field's default; `ticket` has none: a stored state always carries it
_DEFAULTS: dict[str, Any] = {
    f.name: (None if f.default is MISSING else f.default) for f in fields(TicketState)
}


def initial_state(ticket: str) -> TicketState:
    """TicketState(ticket=ticket), built without the frozen dataclass's __init__ (which sets each
    of its 44 fields through object.__setattr__): the state every new ticket folds from."""
    new = object.__new__(TicketState)
    new.__dict__.update(_DEFAULTS)
    new.__dict__["ticket"] = ticket
    return new


def _add(seq: tuple[str, ...], item: str | None) -> tuple[str, ...]:
    return seq if item is None or item in seq else (*seq, item)


def apply(state: TicketState, event: Event) -> TicketState:
    """One step of the fold. Unknown combinations (a reply before dispatch, say) are recorded as
    they come: the hotline platform is the source of truth, we only watch it."""
    changes = _changes(state, event)
    entry = _history_entry(state, event)
    if entry:
        changes["history"] = (*state.history, entry)[-HISTORY_KEEP:]
    changes["last_event_at"] = event.at
    changes["event_count"] = state.event_count + 1
    return _evolve(state, changes)


def _evolve(state: TicketState, changes: dict[str, Any]) -> TicketState:
    """dataclasses.replace without its generic machinery (the fold's main cost): a copy of the
    instance dict with the changes. Only the fold calls it, with field names it spells itself."""
    new = object.__new__(TicketState)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new


def _changes(s: TicketState, event: Event) -> dict:
    d = event.data
    at = event.at
    t = event.type
    if t == "created":
        return dict(
            created_at=at,
            channel=d.get("channel"),
            category=d.get("category"),
            kind=d.get("kind"),
            urgent=bool(d.get("urgent", False)),
            caller_hash=d.get("caller_hash"),
            caller_masked=d.get("caller_masked"),
            address=d.get("address"),
            grid=d.get("grid"),
            summary=d.get("summary"),
        )
    if t == "dispatched":
        return dict(
            status="dispatched",
            unit=d["unit"],
            co_units=tuple(d.get("co_units", ())),
            signed_units=(),
            dispatch_count=s.dispatch_count + 1,
            dispatched_at=at,
            signed_at=None,
            platform_sign_by=_ts(d.get("sign_by")),
            platform_reply_by=_ts(d.get("reply_by")),
            extension_until=None,
        )
    if t == "signed":
        unit = d["unit"]
        signed = _add(s.signed_units, unit)
        if unit == s.unit and s.status in ("dispatched", "new"):
            return dict(status="signed", signed_units=signed, signed_at=at)
        return dict(signed_units=signed)
    if t == "returned":
        unit = d["unit"]
        returned = _add(s.returned_units, unit)
        if unit == s.unit:
            return dict(
                status="returned",
                returned_units=returned,
                return_count=s.return_count + 1,
                returned_at=at,
            )
        # a co-handling unit leaving the ticket
        return dict(
            co_units=tuple(u for u in s.co_units if u != unit),
            returned_units=returned,
            return_count=s.return_count + 1,
            returned_at=at,
        )
    if t == "extension_requested":
        return dict(
            extension_requested_at=at,
            extension_requested_until=_ts(d["until"]),
            extension_reason=d.get("reason"),
        )
    if t == "extension_decided":
        if d["approved"]:
            until = _ts(d.get("until")) or s.extension_requested_until
            return dict(extension_until=until, extension_count=s.extension_count + 1)
        return {}
    if t == "commitment_made":
        # a new promise (a later date, say) is tracked afresh
        return dict(commitment_due=d["due"], commitment_at=at, commitment_kept_at=None)
    if t == "commitment_kept":
        return dict(commitment_kept_at=at)
    if t == "contacted":
        if d.get("phase") == "after":
            return dict(contacted_after=True)
        return dict(contacted_before=True)
    if t == "replied":
        before = s.status if s.status != "replied" else s.pre_reply_status
        return dict(status="replied", replied_at=at, pre_reply_status=before)
    if t == "reviewed":
        out: dict[str, Any] = dict(
            review_of=d["of"],
            review_kind=d["kind"],
            review_outcome=d["outcome"],
            review_findings=tuple(d.get("findings", ())),
            review_decision=None,
            review_note=None,
        )
        if d["outcome"] == "returned" and d["kind"] == "replied" and s.status == "replied":
            out.update(_unreply(s))
        return out
    if t == "review_decided":
        decision = d["decision"]
        out = dict(review_decision=decision, review_note=d.get("note"))
        if decision == "return":
            out["review_outcome"] = "returned"
            if s.status == "replied" and s.review_kind in (None, "replied"):
                out.update(_unreply(s))
        else:
            out["review_outcome"] = "passed"
            if s.review_reply_at is not None and s.status != "replied" and s.replied_at is None:
                out.update(status="replied", replied_at=s.review_reply_at)
        return out
    if t == "visited":
        dissatisfied = d["satisfaction"] == "dissatisfied"
        return dict(
            status="visited",
            visited_at=at,
            satisfaction=d["satisfaction"],
            resolved=d.get("resolved"),
            dissatisfied_count=s.dissatisfied_count + (1 if dissatisfied else 0),
        )
    if t == "reopened":
        return dict(
            status="reopened",
            reopened_count=s.reopened_count + 1,
            reopened_at=at,
            replied_at=None,
            visited_at=None,
            contacted_before=False,
            contacted_after=False,
            platform_reply_by=_ts(d.get("reply_by")),
            extension_until=None,
            # the promise belonged to the handling that was replied; re-handling makes its own
            commitment_due=None,
            commitment_at=None,
            commitment_kept_at=None,
        )
    if t == "closed":
        return dict(status="closed", closed_at=at)
    if t == "commitment_kept":
        return {}  # in the contract (docs/api.md); what it changes is the rules' side
    raise ValueError(f"unknown event type {t!r}")


def _unreply(s: TicketState) -> dict[str, Any]:
    """A reply sent back: the ticket is as before the reply, the reply's time kept aside."""
    return dict(
        status=s.pre_reply_status or "signed", replied_at=None, review_reply_at=s.replied_at
    )


HISTORY_KEEP = 8
_SATISFACTION_ZH = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
}


_HISTORY_TYPES = frozenset(["dispatched", "returned", "replied", "visited", "reopened", "reviewed"])


def _history_entry(s: TicketState, event: Event) -> str | None:
    """One short line of history (Chinese: it goes into texts), or None for minor events."""
    d = event.data
    if event.type not in _HISTORY_TYPES:
        return None  # most events: no line, no date to format
    local = event.at.astimezone(SHANGHAI)
    when = f"{local.month}月{local.day}日"
    if event.type == "dispatched":
        return f"{when}派{d['unit']}"
    if event.type == "returned":
        return f"{when}{d['unit']}退单"
    if event.type == "replied":
        return f"{when}回复"
    if event.type == "visited":
        return f"{when}回访{_SATISFACTION_ZH.get(d['satisfaction'], d['satisfaction'])}"
    if event.type == "reopened":
        return f"{when}第{s.reopened_count + 1}次重办"
    if event.type == "reviewed" and d["outcome"] == "returned":
        return f"{when}答复审核退回"
    return None


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def order(events: Iterable[Event]) -> list[Event]:
    """Events sorted by `at`; Python's sort is stable, so ties keep arrival order."""
    return sorted(events, key=lambda e: e.at)


def fold(ticket: str, events: Iterable[Event]) -> TicketState:
    state = TicketState(ticket=ticket)
    for event in order(events):
        state = apply(state, event)
    return state
