"""A fast path for valid event bodies: the same checks as events.py's pydantic models, in plain
Python.

`fast_body` answers only when it is sure the body is valid, and then returns exactly the `data`
that `events.parse_event`'s pydantic path would (the same values in the same order). On anything
else (a problem, or a construct it does not know) it returns None and the pydantic path runs, so
every error message stays that path's own. The envelope (id, ticket, type, at) and the text checks
stay in parse_event, whatever it checks. The checks are read from the models themselves (annotations,
length limits, literals, defaults, `after` field validators), so a field added to a model is
covered or, if the reader does not understand it, sends that event type to the slow path; a model
with a config or validator it cannot follow is never fast. A property test keeps the two paths
equal (tests/unit/test_fastevents.py).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from annotated_types import MaxLen, MinLen
from pydantic import BaseModel
from pydantic.functional_validators import BeforeValidator

from supervisor.core import events as ev

ENABLED = True  # tests switch it off to compare with the pydantic path
_FAIL = object()
Check = Callable[[Any], Any]  # the JSON-ready value, or _FAIL


def _text(lo: int, hi: int | None) -> Check:
    def check(v: Any) -> Any:
        if type(v) is not str or len(v) < lo or (hi is not None and len(v) > hi):
            return _FAIL
        if not v.isascii() and not ev._encodes(v):
            return _FAIL  # a lone surrogate: pydantic refuses it (parse_event does first)
        return v

    return check


def _literal(values: tuple[Any, ...]) -> Check | None:
    if not all(type(x) is str for x in values):
        return None
    allowed = frozenset(values)

    def check(v: Any) -> Any:
        return v if type(v) is str and v in allowed else _FAIL

    return check


def _boolean(v: Any) -> Any:
    return v if type(v) is bool else _FAIL


def _stamp(parse: Callable[[Any], date | datetime]) -> Check:
    def check(v: Any) -> Any:
        try:
            return parse(v).isoformat()
        except ValueError:
            return _FAIL

    return check


def _list_of(item: Check) -> Check:
    def check(v: Any) -> Any:
        if type(v) is not list:
            return _FAIL
        for x in v:
            if item(x) is _FAIL:
                return _FAIL
        return list(v)

    return check


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """Annotated[T, *meta] -> (T, meta); nested Annotated flattened."""
    meta: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation, meta = args[0], [*meta, *args[1:]]
    out: list[Any] = []
    for m in meta:  # a FieldInfo inside Annotated carries its own metadata (Field(max_length=...))
        out.extend(getattr(m, "metadata", None) or ([] if hasattr(m, "metadata") else [m]))
    return annotation, out


def _checker(annotation: Any, metadata: list[Any]) -> tuple[Check, bool] | None:
    """(check, accepts None), or None when the annotation is not one this module follows."""
    annotation, meta = _split(annotation)
    meta = [*metadata, *meta]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if set(rest) == {date, datetime} and len(args) == 2:
            return _stamp_for(meta, annotation)
        if len(rest) != 1 or len(args) != 2:
            return None
        got = _checker(rest[0], meta)
        return None if got is None else (got[0], True)
    befores = [m for m in meta if isinstance(m, BeforeValidator)]
    others = [m for m in meta if not isinstance(m, BeforeValidator | MinLen | MaxLen)]
    if others:
        return None
    if befores:
        return _stamp_for(meta, annotation)
    if origin is typing.Literal:
        lit = _literal(typing.get_args(annotation))
        return None if lit is None else (lit, False)
    if annotation is bool and not meta:
        return _boolean, False
    if annotation is str:
        lo = max((m.min_length for m in meta if isinstance(m, MinLen)), default=0)
        his = [m.max_length for m in meta if isinstance(m, MaxLen)]
        return _text(lo, min(his) if his else None), False
    if origin is list and not meta:
        (item,) = typing.get_args(annotation)
        got = _checker(item, [])
        if got is None or got[1]:
            return None
        return _list_of(got[0]), False
    return None


def _stamp_for(meta: list[Any], annotation: Any) -> tuple[Check, bool] | None:
    befores = [m for m in meta if isinstance(m, BeforeValidator)]
    if len(befores) != 1 or len(meta) != 1:
        return None
    func = befores[0].func
    if func is ev._parse_timestamp and annotation is datetime:
        return _stamp(ev._parse_timestamp), False
    if func is ev._parse_date_or_timestamp:
        return _stamp(ev._parse_date_or_timestamp), False
    return None


_Field = tuple[str, Check, bool, bool, Any, list[Callable[[Any], Any]]]


def _compile(model: type[BaseModel]) -> list[_Field] | None:
    cfg = model.model_config
    if cfg.get("extra") != "forbid" or not cfg.get("strict"):
        return None
    decos = model.__pydantic_decorators__
    if decos.model_validators or decos.field_serializers or decos.model_serializers:
        return None
    after: dict[str, list[Callable[[Any], Any]]] = {}
    for name, d in decos.field_validators.items():
        if d.info.mode != "after":
            return None
        for f in d.info.fields:
            after.setdefault(f, []).append(getattr(model, name))
    out: list[_Field] = []
    for name, info in model.model_fields.items():
        if info.alias not in (None, name):
            return None
        got = _checker(info.annotation, list(info.metadata))
        if got is None:
            return None
        check, nullable = got
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if default is not None and not isinstance(default, bool | list | str):
            return None
        out.append((name, check, nullable, info.is_required(), default, after.get(name, [])))
    return out


_MODELS: dict[str, tuple[list[_Field], frozenset[str]]] = {}
for _type, _model in ev.BODIES.items():
    _fields = _compile(_model)
    if _fields is not None:
        _MODELS[_type] = (_fields, frozenset(f[0] for f in _fields))


def fast_body(etype: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The `data` parse_event's pydantic path would make of a valid body (the fields other than
    id, ticket, type, at), or None: let that path decide (and word any problem)."""
    if not ENABLED:
        return None
    spec = _MODELS.get(etype)
    if spec is None:
        return None
    fields, names = spec
    for key in body:
        if key not in names:
            return None
    data: dict[str, Any] = {}
    for name, check, nullable, required, default, validators in fields:
        if name in body:
            value = body[name]
            if value is None:
                if not nullable:
                    return None
                continue
            out = check(value)
            if out is _FAIL:
                return None
            for validate in validators:
                try:
                    validate(value)
                except (ValueError, AssertionError):
                    return None
            data[name] = out
        elif required:
            return None
        elif default is not None:
            data[name] = list(default) if isinstance(default, list) else default
    return data
