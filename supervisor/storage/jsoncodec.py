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
from datetime import datetime, timezone
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
_STATE_DATETIMES = frozenset(f.name for f in fields(TicketState) if f.type == "datetime | None")
_STATE_TUPLES = frozenset(f.name for f in fields(TicketState) if f.type.startswith("tuple["))
_PLAIN = (str, int, bool, type(None))


def read_back(state: TicketState) -> TicketState | None:
    """What `TicketState.from_json(loads(state_text(state)))` gives, without the text: the
    datetimes in Shanghai time with the fixed offset `fromisoformat` gives (fold 0), the tuple
    fields as tuples. None for a state holding anything else (a float, a list, a type JSON does
    not keep): only the caller's cache misses it, it is read back from the table as before."""
    values: dict[str, Any] = {}
    d = state.__dict__
    for name in _STATE_FIELDS:
        v = d[name]
        t = type(v)
        if name in _STATE_DATETIMES:
            if v is None:
                values[name] = v
                continue
            if t is not datetime or v.tzinfo is None:
                return None
            local = v.astimezone(SHANGHAI)
            offset = local.utcoffset()
            assert offset is not None
            v = local.replace(tzinfo=timezone(offset), fold=0)
        elif name in _STATE_TUPLES:
            if t is not tuple or any(type(x) is not str for x in v):
                return None
        elif t not in _PLAIN:
            return None
        values[name] = v
    if len(d) != len(values):
        return None  # an attribute of no field: from_json would not keep it
    new = object.__new__(TicketState)
    new.__dict__.update(values)
    return new
