"""What any input from outside may hold, checked before it reaches PostgreSQL or date arithmetic.

PostgreSQL text cannot hold U+0000, and a lone surrogate (U+D800-U+DFFF, which JSON's `\\ud800`
escape and Python's surrogateescape can produce) cannot be encoded as UTF-8: either one reaching a
query is a 500 with a stack trace. Dates outside the years the service accepts (core.events:
MIN_YEAR-MAX_YEAR) overflow PostgreSQL's timestamp arithmetic or Python's `date` at the edges,
and integers past a column's type (int4, int8) make asyncpg raise. These helpers refuse them
first, with a message naming the field, so the caller answers 400. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

from supervisor.core.events import MAX_YEAR, MIN_YEAR

INT4_MAX = 2**31 - 1  # PostgreSQL `int` (ladder cycles, steps)
INT8_MAX = 2**63 - 1  # PostgreSQL `bigint` (outbox ids, cursors)

_BAD = re.compile("[\x00\ud800-\udfff]")


class InputRefused(ValueError):
    """A value from outside that cannot be used; `field` names it, `reason` says why (English,
    `reason_zh` for the desk)."""

    def __init__(self, field: str, reason: str, reason_zh: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.reason_zh = field, reason, reason_zh

    @property
    def english(self) -> str:
        return f"{self.field}: {self.reason}"

    @property
    def chinese(self) -> str:
        return f"{self.field}: {self.reason_zh}"


def text_problem(value: str) -> tuple[str, str] | None:
    """Why `value` cannot be stored as text (English, Chinese), or None when it can."""
    m = _BAD.search(value)
    if m is None:
        return None
    if m.group() == "\x00":
        return "contains a NUL character", "含有 NUL 字符，无法接受"
    return (
        "is not valid Unicode text (a lone surrogate)",
        "含有无效的 Unicode 字符（孤立代理项），无法接受",
    )


def check_text(field: str, value: str) -> str:
    """`value`, or InputRefused naming `field`."""
    problem = text_problem(value)
    if problem is not None:
        raise InputRefused(field, *problem)
    return value


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in parsed JSON (keys too) with its dotted path; an explicit stack, so junk
    nested a thousand levels deep does not exhaust Python's."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for k, v in item.items():
                key = str(k)
                named = f"{where}.{escaped(key)}" if where else escaped(key)
                yield named, key
                stack.append((v, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(item))


def check_json_text(value: Any, path: str = "") -> Any:
    """`value` (parsed JSON), or InputRefused naming the first field whose text (or key) holds a
    NUL or a lone surrogate."""
    for where, text in _walk(value, path):
        problem = text_problem(text)
        if problem is not None:
            raise InputRefused(where or "(body)", *problem)
    return value


def bounded_int(field: str, text: str, lo: int, hi: int) -> int:
    """A decimal integer in [lo, hi], or InputRefused naming `field`."""
    value = text.strip()
    if not re.fullmatch(r"[+-]?\d{1,30}", value):
        raise InputRefused(field, "must be a whole number", "应为整数")
    n = int(value)
    if not lo <= n <= hi:
        raise InputRefused(field, f"must be between {lo} and {hi}", f"应在 {lo} 到 {hi} 之间")
    return n


def _in_years(field: str, day: date) -> date:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InputRefused(
            field,
            f"years {MIN_YEAR} to {MAX_YEAR} only",
            f"只接受 {MIN_YEAR} 年到 {MAX_YEAR} 年",
        )
    return day


def bounded_date(field: str, text: str) -> date:
    """A YYYY-MM-DD date in the accepted years, or InputRefused naming `field`."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InputRefused(
            field, "must be a date (YYYY-MM-DD)", "日期格式应为 YYYY-MM-DD"
        ) from None
    return _in_years(field, day)


def bounded_month(field: str, text: str) -> date:
    """A YYYY-MM month (its first day) in the accepted years, or InputRefused naming `field`."""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise InputRefused(field, "must be a month (YYYY-MM)", "月份格式应为 YYYY-MM")
    return _in_years(field, date(int(m.group(1)), int(m.group(2)), 1))


def escaped(value: str, limit: int = 64) -> str:
    """`value` cut to `limit` characters with every NUL and lone surrogate written as `\\uXXXX`:
    storable text to record what was refused (a sign-in name in the audit)."""
    return _BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", value[:limit])
