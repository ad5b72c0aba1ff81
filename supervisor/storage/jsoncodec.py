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
from typing import Any

import orjson

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
