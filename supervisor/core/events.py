"""The event contract (../shared/DOMAIN.md): validation at the boundary, frozen values inside.

Validation is strict: an unknown type, an unknown field, a missing required field or a timestamp
without an offset is an error that names the field. Nothing of an invalid event is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

EVENT_TYPES = (
    "created",
    "dispatched",
    "signed",
    "returned",
    "extension_requested",
    "extension_decided",
    "commitment_made",
    "contacted",
    "replied",
    "visited",
    "reopened",
    "closed",
)

MAX_TEXT = 2000  # free-text fields (summary, reason, result): the hotline's own limits are lower


def _parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset (write e.g. 2026-11-25T10:00:00+08:00)")
    return parsed


def _parse_date_or_timestamp(value: Any) -> date | datetime:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return _parse_timestamp(value)


Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]
DateOrTimestamp = Annotated[date | datetime, BeforeValidator(_parse_date_or_timestamp)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Created(_Body):
    channel: Literal["phone", "provincial", "wechat", "web", "sms", "app"] | None = None
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


class Contacted(_Body):
    unit: Name | None = None
    phase: Literal["before", "after"] | None = None


class Replied(_Body):
    unit: Name | None = None
    result: Text | None = None


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


class EventInvalid(ValueError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _bad_text(value: Any, path: str = "") -> list[FieldProblem]:
    """Strings PostgreSQL cannot store: a NUL character, or a lone surrogate (not Unicode)."""
    if isinstance(value, str):
        where = path or "(event)"
        if "\x00" in value:
            return [FieldProblem(where, "contains a NUL character")]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [FieldProblem(where, "is not valid Unicode text (a lone surrogate)")]
        return []
    if isinstance(value, dict):
        return [
            p
            for k, v in value.items()
            for p in _bad_text(k, path or "(event)")
            + _bad_text(v, f"{path}.{k}" if path else str(k))
        ]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _bad_text(v, f"{path}.{i}")]
    return []


def parse_event(raw: Any) -> Event:
    """Validate one raw JSON value against the contract. Raises EventInvalid naming each field."""
    from supervisor.core.fastevents import fast_body  # a valid body without pydantic

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
    return Event(id=raw["id"], ticket=raw["ticket"], type=str(etype), at=at, data=data)


def event_from_store(id: str, ticket: str, type: str, at: datetime, data: dict[str, Any]) -> Event:
    """Rebuild an event that was validated before it was stored."""
    return Event(id=id, ticket=ticket, type=type, at=at, data=data)
