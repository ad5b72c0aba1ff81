"""The event contract (docs/api.md): validation at the boundary, frozen values inside.

Validation is strict: an unknown type, an unknown field, a missing required field or a timestamp
without an offset is an error that names the field. Nothing of an invalid event is kept.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from supervisor.errors import InputError
from supervisor.vocabulary import EVENT_TYPES  # re-exported: the contract's types

MAX_TEXT = 2000  # free-text fields (summary, reason, result): the hotline's own limits are lower
MAX_DEPTH = 16  # no field nests; deeper JSON is junk (and would exhaust the stack when walked)

# The sane range of every timestamp (docs/api.md). `at` is further bounded by the clock (the API's
# future tolerance); deadline-like fields (sign_by, reply_by, until, due) may lie years ahead,
# never past MAX_YEAR: beyond it working-time arithmetic, PostgreSQL and JSON disagree.
MIN_YEAR = 2000
MAX_YEAR = 2099
MAX_OFFSET = timedelta(hours=14)
# Ticket ids of `run --demo` (tools/demo_data.py): API clients outside the demo may not use it.
DEMO_PREFIX = "DEMO-"  # the widest UTC offset in use (Pacific/Kiritimati)

# Ticket ids become URL path segments (/api/v1/tickets/{id}): letters (any script, Chinese and
# full-width included), digits and `-_.:`, starting with a letter or digit, at most 64
# characters. No `/`, braces, whitespace or control characters, which the router cannot reach
# and logs cannot show.
#
# One definition for the server and the OpenAPI document: `\w` means Unicode letters to Python
# but ASCII only to JSON Schema's ECMA-262 regexes (a client validating against the document
# refused `工单1` and `１２３`), so the document's pattern writes Python's own `[^\W_]` out as
# explicit \uXXXX ranges (from the running Python's Unicode tables), which both dialects read
# alike. Both are limited to the Basic Multilingual Plane (U+0000-U+FFFF): ECMA-262 without the
# `u` flag cannot name a character beyond it in a class. The server keeps the short form (the
# long one takes a noticeable time to compile); tests/unit/test_ticket_id_dialects.py checks
# that the two accept the same ids.
TICKET_ID = re.compile(r"(?=[\x00-\uffff]*\Z)[^\W_][\w.:-]{0,63}")


@cache
def ticket_id_pattern() -> str:
    """TICKET_ID for JSON Schema (ECMA-262) and Python alike, anchored: `^...$`."""

    def one(cp: int) -> str:
        return chr(cp) if cp < 0x80 else f"\\u{cp:04x}"

    bmp = array("I", range(0x10000)).tobytes().decode("utf-32", "surrogatepass")
    alnum = "".join(
        one(m.start()) if m.end() - m.start() == 1 else f"{one(m.start())}-{one(m.end() - 1)}"
        for m in re.finditer(r"[^\W_]+", bmp)
    )
    return f"^[{alnum}][{alnum}_.:-]{{0,63}}$"


TICKET_ID_RULE = (
    "must be 1-64 characters: letters, digits and - _ . :, starting with a letter or digit "
    "(letters and digits of any script, in Unicode's Basic Multilingual Plane)"
)


def _parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset (write e.g. 2026-11-25T10:00:00+08:00)")
    _check_range(value, parsed)
    offset = parsed.utcoffset()
    assert offset is not None
    if abs(offset) > MAX_OFFSET:
        raise ValueError(f"{value!r} has a UTC offset beyond ±14:00")
    return parsed


def _check_range(value: str, parsed: date) -> None:
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(
            f"{value!r} is outside the accepted range (years {MIN_YEAR} to {MAX_YEAR})"
        )


def _parse_date_or_timestamp(value: Any) -> date | datetime:
    if isinstance(value, str) and len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        _check_range(value, day)
        return day
    if not isinstance(value, str):
        raise ValueError("must be a date (YYYY-MM-DD) or an RFC 3339 timestamp string")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp"
        ) from None
    return _parse_timestamp(value)


Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]
DateOrTimestamp = Annotated[date | datetime, BeforeValidator(_parse_date_or_timestamp)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Created(_Body):
    channel: (
        Literal["phone", "provincial", "wechat", "web", "sms", "app", "visit", "grid"] | None
    ) = None
    category: Name | None = None
    kind: Literal["complaint", "help", "consultation", "suggestion", "praise"] | None = None
    urgent: bool = False
    caller: Annotated[str, Field(max_length=40)] | None = None
    address: Text | None = None
    grid: Name | None = None
    summary: Text | None = None


class Dispatched(_Body):
    unit: Name
    co_units: list[Name] = []
    sign_by: Timestamp | None = None
    reply_by: Timestamp | None = None

    @field_validator("co_units")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("lists a unit twice")
        return v


class Signed(_Body):
    unit: Name
    by: Name | None = None


class Returned(_Body):
    unit: Name
    reason: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class ExtensionRequested(_Body):
    unit: Name | None = None
    until: Timestamp
    reason: Text | None = None


class ExtensionDecided(_Body):
    approved: bool
    until: Timestamp | None = None


class CommitmentMade(_Body):
    unit: Name | None = None
    due: DateOrTimestamp
    promise: Text | None = None


class CommitmentKept(_Body):
    unit: Name | None = None
    result: Text | None = None


class Contacted(_Body):
    unit: Name | None = None
    phase: Literal["before", "after"] | None = None


class Replied(_Body):
    unit: Name | None = None
    result: Text | None = None
    text: Text | None = None  # the reply's full text (答复内容), reviewed (core/review.py)
    handler: Name | None = None  # who handled it (承办人)
    contact: Annotated[str, Field(max_length=40)] | None = None  # the handler's number


class Reviewed(_Body):
    """答复审核: the service's review of event `of` (a reply, return or extension request)."""

    of: Name
    kind: Literal["replied", "returned", "extension_requested"]
    outcome: Literal["passed", "returned"]
    checks: list[Name] = []
    findings: list[Text] = []


class ReviewDecided(_Body):
    """The hotline staff's decision on the review of event `of` (待审核)."""

    of: Name
    decision: Literal["pass", "return", "accept"]
    note: Text | None = None
    by: Name | None = None


class Visited(_Body):
    satisfaction: Literal["satisfied", "basically_satisfied", "dissatisfied"]
    resolved: bool | None = None


class Reopened(_Body):
    reason: Text | None = None
    reply_by: Timestamp | None = None


class Closed(_Body):
    pass


BODIES: dict[str, type[_Body]] = {
    "created": Created,
    "dispatched": Dispatched,
    "signed": Signed,
    "returned": Returned,
    "extension_requested": ExtensionRequested,
    "extension_decided": ExtensionDecided,
    "commitment_made": CommitmentMade,
    "contacted": Contacted,
    "replied": Replied,
    "visited": Visited,
    "reopened": Reopened,
    "closed": Closed,
    "commitment_kept": CommitmentKept,
    "reviewed": Reviewed,
    "review_decided": ReviewDecided,
}

ENVELOPE = ("id", "ticket", "type", "at")


@dataclass(frozen=True)
class Event:
    """A validated event. `data` holds the type's fields as JSON-ready values (timestamps as
    RFC 3339 strings); for `created`, the caller's number has already been replaced by
    `caller_hash` and `caller_masked` (see privacy.redact)."""

    id: str
    ticket: str
    type: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ticket": self.ticket,
            "type": self.type,
            "at": self.at.isoformat(),
            **self.data,
        }


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class EventInvalid(InputError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _clean_text(item: Any, depth: int = 0) -> bool:
    """True when `_bad_text` would find nothing: the usual, well-formed event checked without
    building a path per field. Plain str, dict and list only; anything else that is one of those
    (a subclass) answers False, and so does every problem: the walk then names it. Recursion
    stops at MAX_DEPTH, so this never goes deeper than 2 x 17 frames."""
    if type(item) is dict:
        if depth >= MAX_DEPTH:
            return False
        for k in item:
            if type(k) is not str or "\x00" in k or (not k.isascii() and not _encodes(k)):
                return False
        return _clean_values(item.values(), depth)
    if type(item) is list:
        return depth < MAX_DEPTH and _clean_values(item, depth)
    if type(item) is str:
        return "\x00" not in item and (item.isascii() or _encodes(item))
    return not isinstance(item, str | dict | list)


def _clean_values(values: Iterable[Any], depth: int) -> bool:
    """`_clean_text` of each value of a dict or list at `depth`."""
    for v in values:
        t = type(v)
        if t is str:
            if "\x00" in v or (not v.isascii() and not _encodes(v)):
                return False
        elif t is dict or t is list:
            if not _clean_text(v, depth + 1):
                return False
        elif isinstance(v, str | dict | list):
            return False
    return True


def _encodes(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bad_text(value: Any) -> list[FieldProblem]:
    """Strings PostgreSQL cannot store (a NUL character, a lone surrogate), and nesting deeper
    than MAX_DEPTH, each named by its field. A well-formed value is answered by `_clean_text`
    without the walk that builds the names."""
    return [] if _clean_text(value) else _text_problems(value)


def _text_problems(value: Any) -> list[FieldProblem]:
    """`_bad_text`'s walk, with an explicit stack: 900 levels of junk must not raise
    RecursionError."""
    problems: list[FieldProblem] = []
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        where = path or "(event)"
        if isinstance(item, str):
            if "\x00" in item:
                problems.append(FieldProblem(where, "contains a NUL character"))
                continue
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(FieldProblem(where, "is not valid Unicode text (a lone surrogate)"))
            continue
        if isinstance(item, dict | list) and depth >= MAX_DEPTH:
            problems.append(FieldProblem(where, f"is nested more than {MAX_DEPTH} levels deep"))
            continue
        if isinstance(item, dict):
            for k, v in reversed(list(item.items())):
                stack.append((v, f"{path}.{k}" if path else str(k), depth + 1))
                stack.append((k, where, depth + 1))
        elif isinstance(item, list):
            for i, v in reversed(list(enumerate(item))):
                stack.append((v, f"{path}.{i}", depth + 1))
    return problems


def parse_event(raw: Any) -> Event:
    """Validate one raw JSON value against the contract. Raises EventInvalid naming each field."""
    fast_body = _fast_body or _load_fast_body()  # a valid body without pydantic
    if not isinstance(raw, dict):
        raise EventInvalid([FieldProblem("(event)", "must be a JSON object")])
    problems: list[FieldProblem] = _bad_text(raw)
    if problems:  # PostgreSQL text cannot hold these: refuse them here, naming the field
        raise EventInvalid(problems)
    for name in ENVELOPE:
        if name not in raw:
            problems.append(FieldProblem(name, "is required"))
    for name in ("id", "ticket", "type"):
        value = raw.get(name)
        if name in raw and (not isinstance(value, str) or not value.strip() or len(value) > 200):
            problems.append(
                FieldProblem(name, "must be a non-empty string of at most 200 characters")
            )
        elif name == "ticket" and isinstance(value, str) and not TICKET_ID.fullmatch(value):
            problems.append(FieldProblem("ticket", f"{value!r} {TICKET_ID_RULE}"))
    etype = raw.get("type")
    body_model = BODIES.get(etype) if isinstance(etype, str) else None
    if isinstance(etype, str) and body_model is None:
        problems.append(
            FieldProblem("type", f"unknown type {etype!r} (one of: {', '.join(EVENT_TYPES)})")
        )
    at: datetime | None = None
    if "at" in raw:
        try:
            at = _parse_timestamp(raw["at"])
        except ValueError as exc:
            problems.append(FieldProblem("at", str(exc)))
    data: dict[str, Any] = {}
    if body_model is not None:
        body = {k: v for k, v in raw.items() if k not in ENVELOPE}
        fast = fast_body(str(etype), body)  # None: pydantic decides, and words any problem
        try:
            parsed = body_model.model_validate(body) if fast is None else None
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "(event)"
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = f"is not a field of a {etype} event (fields: {', '.join(body_model.model_fields) or 'none'})"
                elif err["type"] == "missing":
                    msg = f"is required for a {etype} event"
                elif msg.startswith("Value error, "):
                    msg = msg[len("Value error, ") :]
                problems.append(FieldProblem(loc, msg))
        else:
            if fast is not None:
                data = fast
            else:
                assert parsed is not None
                data = {k: _json_value(v) for k, v in parsed.model_dump(exclude_none=True).items()}
    if problems:
        raise EventInvalid(problems)
    assert at is not None
    # Event(...) without the frozen dataclass's __init__ (one per event): every field given
    event = _new(Event)
    event.__dict__.update(id=raw["id"], ticket=raw["ticket"], type=str(etype), at=at, data=data)
    return event


_new = object.__new__
# fastevents.fast_body, imported on first use (fastevents imports this module): an import
# statement in parse_event would cost about 2 µs per event (importlib's fromlist handling)
_fast_body: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None


def _load_fast_body() -> Callable[[str, dict[str, Any]], dict[str, Any] | None]:
    global _fast_body
    from supervisor.core.fastevents import fast_body

    _fast_body = fast_body
    return fast_body


def event_from_store(id: str, ticket: str, type: str, at: datetime, data: dict[str, Any]) -> Event:
    """Rebuild an event that was validated before it was stored."""
    return Event(id=id, ticket=ticket, type=type, at=at, data=data)


def demo_problems(events: list[Event]) -> list[tuple[int, FieldProblem]]:
    """Tickets named with the prefix reserved for `run --demo`'s tickets, which a later `run`
    silences and `run --demo`/`--reset-demo` deletes: refused from API clients outside --demo."""
    return [
        (i, FieldProblem("ticket", f"{e.ticket!r}: the prefix {DEMO_PREFIX} is reserved for the "
                         "demo's tickets (`run --demo`); name real tickets otherwise"))
        for i, e in enumerate(events)
        if e.ticket.startswith(DEMO_PREFIX)
    ]  # fmt: skip


def future_problems(
    events: list[Event], now: datetime, tolerance: timedelta
) -> list[tuple[int, FieldProblem]]:
    """Events stamped more than `tolerance` ahead of `now` (a wrong clock or a wrong year: they
    would delay every "immediate" message). The past is unbounded, for historical imports."""
    limit = now + tolerance
    minutes = int(tolerance.total_seconds() // 60)
    return [
        (
            i,
            FieldProblem(
                "at",
                f"{e.at.isoformat()} is in the future: more than {minutes} minutes ahead of "
                f"the server's clock ({now.isoformat(timespec='seconds')}); check the sender's "
                "clock (tolerance: ingest.future_tolerance_s)",
            ),
        )
        for i, e in enumerate(events)
        if e.at > limit
    ]
