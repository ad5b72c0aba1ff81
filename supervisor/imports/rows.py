"""One export row -> the events its filled cells imply (pure).

Event ids are derived from the ticket, the column's field and, for timed facts, the time:
`imp:T123:replied:20261105T100000`. So the same export imported twice stores nothing the second
time, and a later export that overlaps it adds only what changed (a new reply, a callback).
"""

from __future__ import annotations

import _strptime
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from supervisor.core.clock import SHANGHAI
from supervisor.core.events import Event, EventInvalid, parse_event
from supervisor.imports.mapping import DATE_FIELDS, FIELDS, Mapping

EXCEL_EPOCH = datetime(1899, 12, 30)
_SPACES = re.compile(r"[\s\u3000]+")
_SERIAL = re.compile(r"\d{5}(\.\d+)?")


@dataclass(frozen=True)
class Problem:
    row: int
    column: str
    message: str

    def where(self, file: str) -> str:
        return f"{file}:{self.row}:{self.column}: {self.message}"


class Header:
    """Where each field is: the header row's number and field -> (column index, header text)."""

    def __init__(self, row: int, cells: list[Any], mapping: Mapping) -> None:
        self.row = row
        text = [_SPACES.sub("", str(c)) for c in cells]
        self.columns: dict[str, tuple[int, str]] = {}
        for name, headers in mapping.headers().items():
            for h in headers:
                key = _SPACES.sub("", h)
                if key in text:
                    self.columns[name] = (text.index(key), h)
                    break


def find_header(rows: list[tuple[int, list[Any]]], mapping: Mapping) -> Header | None:
    """The first row holding a ticket column header (title rows above it are skipped)."""
    for number, cells in rows[: mapping.header_search_rows]:
        header = Header(number, cells, mapping)
        if "ticket" in header.columns:
            return header
    return None


def blank(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a ticket number or phone typed as a number
    text = str(value).replace("\u3000", " ").strip()
    return text or None


def _name(value: Any) -> str | None:
    """A unit or grid name: every space removed (exports pad with full-width spaces)."""
    text = _text(value)
    return _SPACES.sub("", text) if text else None


def parse_time(value: Any, formats: list[str], text: str | None = None) -> datetime:
    """A cell as a Beijing time: a date/datetime cell, an Excel serial number, or text (`text`:
    the cell's `_text`, when the caller has it)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=SHANGHAI)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _serial(float(value))
    if text is None:
        text = _text(value) or ""
    if _SERIAL.fullmatch(text):
        return _serial(float(text))
    at = _strptime_first(text, formats)
    if at is not None:
        return at.replace(tzinfo=SHANGHAI)
    raise ValueError(f"{text!r} is not a time in any of the date_formats of the mapping")


# A format of numeric fields only (%Y %m %d %H %M %S, each at most once, and literal text): matched
# with strptime's own regular expression, the datetime built from its groups. What strptime does,
# without its exception for every format that does not fit (an import tries several per cell).
_NUMERIC = re.compile(r"(?:%[YmdHMS]|[^%])*")


@lru_cache(maxsize=64)
def _pattern(fmt: str) -> re.Pattern[str] | None:
    directives = re.findall(r"%(.)", fmt)
    if not _NUMERIC.fullmatch(fmt) or len(set(directives)) != len(directives):
        return None
    return _strptime._TimeRE_cache.compile(fmt)  # type: ignore[attr-defined]


def _strptime_first(text: str, formats: list[str]) -> datetime | None:
    """datetime.strptime(text, f) for the first format f that fits, or None."""
    for fmt in formats:
        rx = _pattern(fmt)
        if rx is None:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
        m = rx.match(text)
        if m is None or m.end() != len(text):
            continue
        g = m.groupdict()
        try:
            return datetime(
                int(g.get("Y") or 1900), int(g.get("m") or 1), int(g.get("d") or 1),
                int(g.get("H") or 0), int(g.get("M") or 0), int(g.get("S") or 0),
            )  # fmt: skip
        except ValueError:
            continue
    return None


def _serial(n: float) -> datetime:
    if not 1 <= n < 2958466:
        raise ValueError(f"{n} is not an Excel date serial number")
    naive = EXCEL_EPOCH + timedelta(days=n)
    # serials carry float noise: round to the second
    naive = (naive + timedelta(microseconds=500_000)).replace(microsecond=0)
    return naive.replace(tzinfo=SHANGHAI)


def _stamp(at: datetime) -> str:
    """%Y%m%dT%H%M%S in Beijing time (cut from isoformat: strftime costs four times as much)."""
    local = at if at.tzinfo is SHANGHAI else at.astimezone(SHANGHAI)
    if local.year < 1000:
        return local.strftime("%Y%m%dT%H%M%S")
    iso = local.isoformat()  # YYYY-MM-DDTHH:MM:SS[.ffffff]+08:00
    return f"{iso[0:4]}{iso[5:7]}{iso[8:10]}T{iso[11:13]}{iso[14:16]}{iso[17:19]}"


def row_events(
    number: int,
    cells: list[Any],
    header: Header,
    mapping: Mapping,
    parsed: list[Event] | None = None,
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The events of one row, or the problems that make it bad (then no events). A good row's
    events, as the contract's check parsed them, are appended to `parsed` when given (the import
    stores those instead of parsing every event a second time)."""
    problems: list[Problem] = []
    v: dict[str, Any] = {}
    for name in FIELDS:
        if name not in header.columns:
            continue
        index, column = header.columns[name]
        raw = cells[index] if index < len(cells) else None
        text = _text(raw)
        if text is None or text in mapping.empty_values:
            continue
        try:
            v[name] = _value(name, raw, mapping, text)
        except ValueError as exc:
            problems.append(Problem(number, column, str(exc)))
    ticket = v.get("ticket")
    if ticket is None and not problems:
        col = header.columns["ticket"][1]
        problems.append(Problem(number, col, "is empty: every row needs its ticket number"))
    if problems:
        return [], problems
    events: list[dict[str, Any]] = []
    columns: list[str] = []

    def add(
        etype: str, field: str, at: datetime, fields: dict[str, Any], stamp: bool = True
    ) -> None:
        eid = f"imp:{ticket}:{etype}" + (f":{_stamp(at)}" if stamp else "")
        body = {k: x for k, x in fields.items() if x is not None}
        events.append({"id": eid, "ticket": ticket, "type": etype, "at": at.isoformat(), **body})
        columns.append(header.columns[field][1])

    def need(field: str, for_field: str) -> bool:
        if field in v:
            return True
        problems.append(Problem(number, header.columns[for_field][1],
                                f"is filled but {_column_names(mapping, field)} is empty"))  # fmt: skip
        return False

    if "created_at" in v:
        add("created", "created_at", v["created_at"], {
            "channel": v.get("channel"), "kind": v.get("kind"), "category": v.get("category"),
            "urgent": v.get("urgent"), "caller": v.get("caller"), "address": v.get("address"),
            "grid": v.get("grid"), "summary": v.get("summary"),
        }, stamp=False)  # fmt: skip
    if "dispatched_at" in v and need("unit", "dispatched_at"):
        add("dispatched", "dispatched_at", v["dispatched_at"], {
            "unit": v["unit"], "co_units": v.get("co_units"), "sign_by": _iso(v.get("sign_by")),
            "reply_by": _iso(v.get("reply_by")),
        })  # fmt: skip
    if "signed_at" in v and need("unit", "signed_at"):
        add("signed", "signed_at", v["signed_at"], {"unit": v["unit"]})
    if "replied_at" in v:
        add(
            "replied",
            "replied_at",
            v["replied_at"],
            {"unit": v.get("unit"), "result": v.get("result"), "text": v.get("reply_text"),
             "handler": v.get("handler"), "contact": v.get("contact")},  # fmt: skip
        )
    if "visited_at" in v and need("satisfaction", "visited_at"):
        add(
            "visited",
            "visited_at",
            v["visited_at"],
            {"satisfaction": v["satisfaction"], "resolved": v.get("resolved")},
        )
    if "closed_at" in v:
        add("closed", "closed_at", v["closed_at"], {}, stamp=False)
    checked = []
    for e, column in zip(events, columns, strict=True):
        try:
            checked.append(parse_event(e))  # the contract's own check: a bad cell is named here
        except EventInvalid as exc:
            problems.extend(
                Problem(number, column, f"{p.field}: {p.message}") for p in exc.problems
            )
    if parsed is not None and not problems:
        parsed.extend(checked)
    return ([] if problems else events), problems


# The cells an event id is made of: the ticket, the times, and the unit and the callback's
# result, which decide whether a dispatch, a signature and a callback are events of the row.
_ID_FIELDS = ("ticket", "created_at", "unit", "dispatched_at", "signed_at", "replied_at",
              "satisfaction", "visited_at", "closed_at")  # fmt: skip
_STAMPED = (("dispatched", "dispatched_at", "unit"), ("signed", "signed_at", "unit"),
            ("replied", "replied_at", None), ("visited", "visited_at", "satisfaction"))  # fmt: skip


def row_ids(
    cells: list[Any], header: Header, mapping: Mapping, units: set[str] | None = None
) -> list[str] | None:
    """The ids of the events `row_events` gives this row when it is good, in its order, read
    from the few cells they are made of (a re-import asks the database which exist before
    checking anything else). None when one of those cells is bad, or empty where it is needed,
    or the row has no events: `row_events` then names the problem. The units those events name
    (承办单位, 协办单位) are added to `units` when given."""
    columns = header.columns
    v: dict[str, Any] = {}
    for name in _ID_FIELDS:
        where = columns.get(name)
        if where is None:
            continue
        raw = cells[where[0]] if where[0] < len(cells) else None
        text = _text(raw)
        if text is None or text in mapping.empty_values:
            continue
        try:
            v[name] = _value(name, raw, mapping, text)
        except ValueError:
            return None
    ticket = v.get("ticket")
    if ticket is None:
        return None
    prefix = f"imp:{ticket}:"
    ids = [prefix + "created"] if "created_at" in v else []
    for etype, field, needs in _STAMPED:
        if field in v:
            if needs is not None and needs not in v:
                return None
            ids.append(f"{prefix}{etype}:{_stamp(v[field])}")
    if "closed_at" in v:
        ids.append(prefix + "closed")
    if units is not None and ids:
        if "unit" in v and ("dispatched_at" in v or "signed_at" in v or "replied_at" in v):
            units.add(v["unit"])
        where = columns.get("co_units")
        if "dispatched_at" in v and where is not None and where[0] < len(cells):
            text = _text(cells[where[0]])
            if text is not None and text not in mapping.empty_values:
                units.update(_value("co_units", cells[where[0]], mapping, text) or ())
    return ids or None


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _column_names(mapping: Mapping, field: str) -> str:
    names = mapping.headers()[field]
    return "/".join(names[:2]) if names else field


def _value(name: str, raw: Any, mapping: Mapping, text: str) -> Any:
    """The cell's value for the field; `text` is `_text(raw)` (not None)."""
    if name in DATE_FIELDS:
        return parse_time(raw, mapping.date_formats, text)
    if name in ("unit", "grid"):
        return _SPACES.sub("", text)
    if name == "co_units":
        parts = re.split(f"[{re.escape(mapping.list_separators)}]", text)
        units = [u for u in (_name(p) for p in parts) if u]
        return list(dict.fromkeys(units)) or None
    if name in ("channel", "kind", "satisfaction"):
        table: dict[str, Any] = getattr(mapping.values, name)
        return _lookup(table, text, name)
    if name in ("urgent", "resolved"):
        if isinstance(raw, bool):
            return raw
        return _lookup(mapping.values.boolean, text, "boolean")
    if name == "reopen_count":
        if not text.isdigit():
            raise ValueError(f"{text!r} is not a count")
        return int(text)
    return text


def _lookup(table: dict[str, Any], text: str, name: str) -> Any:
    if text in table:
        return table[text]
    if text in table.values() and not isinstance(text, bool):
        return text  # already the contract's code
    known = "、".join(table) or "(none)"
    raise ValueError(f"{text!r} is not in values.{name} of the mapping (known: {known})")
