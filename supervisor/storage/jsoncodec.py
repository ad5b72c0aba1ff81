"""JSON in and out of PostgreSQL (jsonb), with orjson where it gives exactly what `json` gives.

Ingest decodes every stored ticket state it folds onto and encodes every new state and event;
orjson does both several times faster. Where its answer could differ from the standard library's
(an integer past 64 bits, which orjson reads as a float and refuses to write; a non-string key;
a type it does not know), the standard library does the work, so the stored text and the values
read back are the same as before. One difference is left: a non-finite float (NaN, Infinity),
which json.dumps writes as a token PostgreSQL's jsonb refuses, is written as null. Nothing the
store writes holds floats (states and event data are validated text, booleans and counts).
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from operator import itemgetter
from typing import Any

import orjson

from supervisor.core.clock import SHANGHAI
from supervisor.core.state import TicketState

# what json.dumps refuses, orjson must refuse too (then json.dumps raises its own error)
_PASS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is (json.dumps(ensure_ascii=False, separators=...))."""
    try:
        return orjson.dumps(value, option=_PASS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_NATIVE = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def state_text(state: TicketState) -> str:
    """`dumps(state.to_json())`, the same text, with orjson writing the datetimes and tuples
    (`TicketState.to_json_native`); what orjson refuses goes the usual way."""
    try:
        return orjson.dumps(state.to_json_native(), option=_NATIVE).decode()
    except TypeError:
        return dumps(state.to_json())


def loads(text: str | bytes) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    # orjson reads an integer past 64 bits as a float, json as an int: any float, and json decides
    return json.loads(text) if has_float(value) else value


# bytes.translate table: each digit stays a "0", anything else becomes a space
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_RUN = b"0" * 19


def loads_jsonb(data: bytes) -> Any:
    """`loads` of a jsonb value as `jsonb_send` gives it to a client whose encoding is UTF-8 (as
    asyncpg's always is): a version byte (1), then the value's text. Without has_float's walk
    where the text shows that no float can be in it: orjson reads a number as a float only if it
    has a fraction or an exponent, or is an integer outside 64 bits (at least 19 digits), and
    jsonb writes its numbers in plain notation, never with an exponent. So no "." and no run of
    19 digits anywhere (strings included) means no float: the value is orjson's. Otherwise as
    `loads`."""
    if data[:1] != b"\x01":
        raise ValueError("not jsonb_send's format 1")
    text = data[1:]
    if b"." in text or _LONG_RUN in text.translate(_DIGITS):
        return loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def has_float(value: Any) -> bool:
    """Whether a decoded JSON value holds a float anywhere (cheaper than a regex over the text).
    Only non-empty containers go on the stack; scalars are looked at where they are (a stored
    state is one dict of some fifty scalars and a few short lists)."""
    t = type(value)
    if t is not dict and t is not list:
        return t is float
    stack = [value]
    while stack:
        v = stack.pop()
        for x in v.values() if type(v) is dict else v:
            tx = type(x)
            if tx is float:
                return True
            if (tx is dict or tx is list) and x:
                stack.append(x)
    return False


_STATE_FIELDS = tuple(f.name for f in fields(TicketState))
_DATETIME_FIELDS = tuple(f.name for f in fields(TicketState) if f.type == "datetime | None")
_TUPLE_FIELDS = tuple(f.name for f in fields(TicketState) if f.type.startswith("tuple["))
_OTHER_FIELDS = tuple(n for n in _STATE_FIELDS if n not in _DATETIME_FIELDS + _TUPLE_FIELDS)
_datetimes = itemgetter(*_DATETIME_FIELDS)
_tuples = itemgetter(*_TUPLE_FIELDS)
_others = itemgetter(*_OTHER_FIELDS)
_PLAIN = frozenset({str, int, bool, type(None)})
_STR = frozenset({str})
# what `fromisoformat` gives for "+08:00": Shanghai's offset at every instant from 1992 on
_CST = timezone(timedelta(hours=8))


def read_back(state: TicketState) -> TicketState | None:
    """What `TicketState.from_json(loads(state_text(state)))` gives, without the text: the
    datetimes in Shanghai time at the fixed offset `fromisoformat` gives (fold 0), the tuple
    fields as tuples of text (the state itself when it is so already, as usual). None for a
    state holding anything else (a float, a list, a type JSON does not keep): the caller's
    cache does not hold it, it is read back from the table as before."""
    d = state.__dict__
    if len(d) != len(_STATE_FIELDS):
        return None  # an attribute of no field: from_json would not keep it
    try:
        others, times, tuples = _others(d), _datetimes(d), _tuples(d)
    except KeyError:
        return None
    if not _PLAIN.issuperset(map(type, others)):
        return None
    for tup in tuples:
        if type(tup) is not tuple or not _STR.issuperset(map(type, tup)):
            return None
    moved: dict[str, datetime] = {}
    for name, v in zip(_DATETIME_FIELDS, times, strict=True):
        if v is None:
            continue
        if type(v) is not datetime:
            return None
        tz = v.tzinfo
        if (
            type(tz) is timezone
            and tz == _CST
            and v.fold == 0
            and v.year >= 1992
            and tz.tzname(None) == "UTC+08:00"
        ):
            continue  # as read back already
        if tz is None:
            return None
        local = v.astimezone(SHANGHAI)
        offset = local.utcoffset()
        assert offset is not None
        moved[name] = local.replace(tzinfo=timezone(offset), fold=0)
    if not moved:
        return state
    new = object.__new__(TicketState)
    new.__dict__.update(d)
    new.__dict__.update(moved)
    return new
