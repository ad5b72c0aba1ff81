"""Rule conditions: YAML in, durable_rules JSON out, and a pure-Python evaluator of that same JSON.

The YAML form, as office staff write it:

    when:
      status: dispatched                 # equality
      kind: {in: [consultation, help]}   # operators: eq ne in not_in lt lte gt gte
      since_dispatch: {gt: 1 working day}
      repeat_calls: {within: 30d, gte: 3}
      any: [{urgent: true}, {dispatch_count: {gte: 3}}]    # also all: [...] and not: {...}

Compiled form: durable_rules' JSON condition language restricted to what behaves there
(`$and`, `$or`, equality, `$neq`, `$lt`, `$lte`, `$gt`, `$gte`; never `$nex`/`$ex`). `not` is pushed
down to the leaves (De Morgan), which is exact because every message field is always present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supervisor.policy.facts import FIELDS, duration_key, window_key
from supervisor.vocabulary.durations import DurationError, parse_duration

Path = tuple[str | int, ...]
Compiled = dict[str, Any]

OPS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte")
_DR_OP = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
_NEGATE = {
    "eq": "ne",
    "ne": "eq",
    "lt": "gte",
    "gte": "lt",
    "gt": "lte",
    "lte": "gt",
    "in": "not_in",
    "not_in": "in",
}
ALWAYS: Compiled = {"_": 1}  # every message carries `_: 1`


@dataclass
class CompileResult:
    condition: Compiled
    errors: list[tuple[Path, str]] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)
    windows: set[int] = field(default_factory=set)  # minutes of the repeat_calls windows used
    # (field, minutes) of every window field used (same_matter, matter_callers, repeat_calls)
    field_windows: set[tuple[str, int]] = field(default_factory=set)


def compile_condition(raw: Any, path: Path, minutes_per_day: int) -> CompileResult:
    res = CompileResult(ALWAYS)
    if raw is None:
        return res
    res.condition = _compile(raw, path, False, res, minutes_per_day)
    return res


def _compile(raw: Any, path: Path, negate: bool, res: CompileResult, mpd: int) -> Compiled:
    if not isinstance(raw, dict) or not raw:
        res.errors.append((path, "a condition is a mapping of fields to values (or all/any/not)"))
        return ALWAYS
    parts: list[Compiled] = []
    for key, value in raw.items():
        p = (*path, key)
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                res.errors.append((p, f"'{key}' takes a non-empty list of conditions"))
                continue
            subs = [_compile(v, (*p, i), negate, res, mpd) for i, v in enumerate(value)]
            is_and = (key == "all") != negate
            parts.append(_join("$and" if is_and else "$or", subs))
        elif key == "not":
            parts.append(_compile(value, p, not negate, res, mpd))
        elif key in FIELDS:
            parts.append(_compile_field(key, value, p, negate, res, mpd))
        else:
            res.errors.append(
                (
                    p,
                    f"unknown field '{key}' (fields: {', '.join(sorted(FIELDS))}; or all, any, not)",
                )
            )
    return _join("$or" if negate else "$and", parts)


def _join(op: str, parts: list[Compiled]) -> Compiled:
    parts = [p for p in parts if p]
    if not parts:
        return ALWAYS
    if len(parts) == 1:
        return parts[0]
    return {op: parts}


def _compile_field(
    name: str, value: Any, path: Path, negate: bool, res: CompileResult, mpd: int
) -> Compiled:
    spec = FIELDS[name]
    res.fields.add(name)
    ops: dict[str, Any]
    if isinstance(value, dict):
        ops = dict(value)
    else:
        ops = {"eq": value}
    key = name
    if spec.type == "window":
        within = ops.pop("within", None)
        if within is None:
            res.errors.append((path, f"'{name}' needs 'within' (e.g. {{within: 30d, gte: 3}})"))
            return ALWAYS
        try:
            d = parse_duration(within)
        except DurationError as exc:
            res.errors.append(((*path, "within"), str(exc)))
            return ALWAYS
        if d.working or d.total_minutes(mpd) <= 0:
            res.errors.append(
                ((*path, "within"), "must be a positive natural duration such as 30d")
            )
            return ALWAYS
        minutes = d.total_minutes(mpd)
        if name == "repeat_calls":
            res.windows.add(minutes)
        res.field_windows.add((name, minutes))
        key = window_key(name, minutes)
    if not ops:
        res.errors.append((path, f"'{name}' needs an operator ({', '.join(OPS)})"))
        return ALWAYS
    parts = []
    for op, operand in ops.items():
        p = (*path, op)
        if op not in OPS:
            res.errors.append((p, f"unknown operator '{op}' (one of: {', '.join(OPS)})"))
            continue
        if negate:
            op = _NEGATE[op]
        leaf = _leaf(name, key, spec.type, spec.values, op, operand, p, res, mpd)
        if leaf:
            parts.append(leaf)
    return _join("$or" if negate else "$and", parts)


def _leaf(
    name: str,
    key: str,
    ftype: str,
    values: tuple[str, ...],
    op: str,
    operand: Any,
    path: Path,
    res: CompileResult,
    mpd: int,
) -> Compiled | None:
    if op in ("in", "not_in"):
        if not isinstance(operand, list) or not operand:
            res.errors.append((path, f"'{op}' takes a non-empty list"))
            return None
        leaves = [
            _leaf(name, key, ftype, values, "eq" if op == "in" else "ne", v, (*path, i), res, mpd)
            for i, v in enumerate(operand)
        ]
        return _join("$or" if op == "in" else "$and", [leaf for leaf in leaves if leaf])
    if ftype == "duration":
        try:
            d = parse_duration(operand)
        except DurationError as exc:
            res.errors.append((path, str(exc)))
            return None
        key = duration_key(name, d.working)
        operand = d.total_minutes(mpd)
    elif ftype == "bool":
        if not isinstance(operand, bool):
            res.errors.append((path, f"'{name}' is true or false, not {operand!r}"))
            return None
        if op not in ("eq", "ne"):
            res.errors.append((path, f"'{name}' is true or false: only eq/ne apply"))
            return None
    elif ftype in ("int", "window"):
        if isinstance(operand, bool) or not isinstance(operand, int):
            res.errors.append((path, f"'{name}' is a whole number, not {operand!r}"))
            return None
    elif ftype == "str":
        if not isinstance(operand, str):
            res.errors.append((path, f"'{name}' is text; quote {operand!r}"))
            return None
        if values and operand not in values:
            res.errors.append(
                (
                    path,
                    f"'{operand}' is not a value of '{name}' (one of: {', '.join(v for v in values if v)})",
                )
            )
            return None
        if op not in ("eq", "ne"):
            res.errors.append((path, f"'{name}' is text: only eq, ne, in, not_in apply"))
            return None
    if op == "eq":
        return {key: operand}
    return {_DR_OP[op]: {key: operand}}


# --- the pure-Python evaluator of the compiled form -------------------------------------------


def evaluate(cond: Compiled, msg: dict[str, Any]) -> bool:
    """Evaluate a compiled condition the way durable_rules does, for a total message."""
    ((key, value),) = cond.items()
    if key == "$and":
        return all(evaluate(c, msg) for c in value)
    if key == "$or":
        return any(evaluate(c, msg) for c in value)
    if key in ("$neq", "$lt", "$lte", "$gt", "$gte"):
        ((fname, operand),) = value.items()
        actual = msg[fname]
        if key == "$neq":
            return actual != operand
        if key == "$lt":
            return actual < operand
        if key == "$lte":
            return actual <= operand
        if key == "$gt":
            return actual > operand
        return actual >= operand
    return msg[key] == value


def pinned(cond: Compiled, name: str) -> frozenset[str] | None:
    """The text values of message field `name` at which the compiled `cond` can hold, or None
    when it can hold at any value (as far as this says: None is always a safe answer).

    Exact for the compiled form's semantics (`evaluate`, durable_rules alike): an equality leaf on
    `name` with a text operand holds only where the field has that value; `$and` holds only where
    every part holds, so only at values every part allows (their intersection, the parts that
    allow any value left out); `$or` holds only where some part holds (the union, and any value
    as soon as one part allows any). Every other leaf (another field, `$neq`, an order, `_`) says
    nothing of `name`. `not` was pushed down to the leaves by the compiler, so a negated equality
    is a `$neq` here and pins nothing. Anything not of the compiled form: None."""
    if not isinstance(cond, dict) or len(cond) != 1:
        return None
    ((key, value),) = cond.items()
    if key == "$and":
        if not isinstance(value, list):
            return None
        out: frozenset[str] | None = None
        for part in value:
            values = pinned(part, name)
            if values is not None:
                out = values if out is None else out & values
        return out
    if key == "$or":
        if not isinstance(value, list):
            return None
        union: set[str] = set()
        for part in value:
            values = pinned(part, name)
            if values is None:
                return None
            union |= values
        return frozenset(union)
    if key == name and type(value) is str:
        return frozenset((value,))
    return None


def fields_read(cond: Compiled) -> set[str]:
    """The message fields a compiled condition reads (its keys: `since_dispatch__wm`, ...)."""
    out: set[str] = set()
    stack = [cond]
    while stack:
        ((key, value),) = stack.pop().items()
        if key in ("$and", "$or"):
            stack.extend(value)
        elif key in _DR_OP.values():
            out.update(value)
        else:
            out.add(key)
    return out
