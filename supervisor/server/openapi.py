"""The OpenAPI 3.1 document served at /api/v1/openapi.json, generated from the pydantic models
that validate (core.events.BODIES for the events, AckRequest here), so it cannot drift."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from supervisor.core import events as ev

VERSION = "1"


class AckRequest(BaseModel):
    """POST /api/v1/tickets/{ticket}/ack. Who acknowledges is the bearer token's name."""

    model_config = ConfigDict(extra="forbid", strict=True)
    rule: str | None = Field(None, description="the rule to acknowledge; all open rules if absent")
    by: str | None = Field(
        None, description="ignored (kept for old clients): the token's name is recorded"
    )


def _envelope(etype: str) -> dict[str, Any]:
    return {
        "id": {"type": "string", "minLength": 1, "maxLength": 200,
               "description": "unique per event; a repeat with the same content is a duplicate"},
        "ticket": {"$ref": "#/components/schemas/TicketId",
                   "description": f"the work-order number; {ev.TICKET_ID_RULE}"},
        "type": {"const": etype},
        "at": {"type": "string", "format": "date-time",
               "description": f"when it happened, RFC 3339 with an offset; years {ev.MIN_YEAR}-"
               f"{ev.MAX_YEAR}, at most the future tolerance (default 5 minutes) ahead"},
    }  # fmt: skip


def event_schema(etype: str) -> dict[str, Any]:
    """One event type: the envelope plus the type's body model, one flat object."""
    body = ev.BODIES[etype].model_json_schema()
    props = {**_envelope(etype), **body.get("properties", {})}
    return {
        "title": f"{etype} event",
        "type": "object",
        "properties": props,
        "required": [*ev.ENVELOPE, *body.get("required", [])],
        "additionalProperties": False,
    }


def _error() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/Problem"}


def _responses(codes: dict[str, str], ok: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    for code, why in codes.items():
        out[code] = {"description": why, "content": {"application/json": {"schema": _error()}}}
    return out


STATUSES = ("new", "dispatched", "signed", "returned", "replied", "visited", "reopened", "closed")
LIST_VIEWS = ("awaiting", "due_today", "overdue", "escalated")
# a Beijing date the service accepts: YYYY-MM-DD in the years core.events accepts (2000-2099)
_DAY = {"anyOf": [{"const": ""}, {"type": "string", "format": "date",
                                   "pattern": f"^{ev.MIN_YEAR // 100}[0-9]{{2}}-"}]}  # fmt: skip
assert (ev.MIN_YEAR, ev.MAX_YEAR) == (2000, 2099), "the pattern above spells out 20xx"
# GET /api/v1/tickets: name -> (schema, description); the desk's list (/tickets) takes the same
LIST_PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "status": ({"enum": ["", *STATUSES]}, "the ticket's status"),
    "unit": ({"type": "string"}, "the lead unit, as the tickets name it"),
    "category": ({"type": "string"}, "诉求归口, exactly"),
    "urgent": ({"enum": ["", "true", "false"]}, "urgent tickets only, or non-urgent only"),
    "view": ({"enum": ["", *LIST_VIEWS]}, "awaiting sign-off; reply due today; overdue now "
             "(reply or sign-off deadline passed); escalated and not acknowledged"),
    "from": (_DAY, "created on or after this Beijing date (years 2000-2099)"),
    "to": (_DAY, "created on or before this Beijing date (years 2000-2099)"),
    "q": ({"type": "string"}, "a ticket number, the start of one, or part of the address"),
    "after": ({"type": "string"}, "the `next` cursor of the previous page"),
    "limit": ({"anyOf": [{"const": ""}, {"type": "integer"}], "default": 50},
              "tickets per page: any integer, clamped to 1-200"),
}  # fmt: skip


def _ticket_list_schema() -> dict[str, Any]:
    opt_str = {"type": ["string", "null"]}
    when = {"type": ["string", "null"], "format": "date-time"}
    row = {
        "type": "object",
        "properties": {
            "ticket": {"type": "string"}, "status": {"enum": list(STATUSES)}, "unit": opt_str,
            "category": opt_str, "kind": opt_str, "urgent": {"type": "boolean"},
            "address": opt_str, "summary": opt_str, "channel": opt_str,
            "caller_masked": {**opt_str, "description": "138****5678; the number never appears"},
            "created_at": when, "signed_at": when, "replied_at": when,
            "sign_by": when, "reply_by": when,
            "deadline": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                "name": {"enum": ["sign_by", "reply_by"]}, "at": {"type": "string", "format": "date-time"},
                "overdue": {"type": "boolean"}, "working_minutes_left": {"type": "integer"},
                "natural": {"type": "boolean"}, "minutes_left": {"type": "integer"},
                "text": {"type": "string"}}}],
                "description": "the deadline that runs now (sign-off while awaiting it, else the "
                "reply), in working time; negative minutes: overdue. An urgent ticket's deadlines "
                "count natural time: `natural` is true, `minutes_left` (wall clock) is what `text` says"},
        },
    }  # fmt: skip
    return {
        "type": "object",
        "properties": {
            "tickets": {"type": "array", "items": row},
            "next": {"type": ["string", "null"],
                     "description": "pass as `after` for the next page; null on the last page"},
        },
        "required": ["tickets", "next"],
    }  # fmt: skip


@cache
def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {f"event_{t}": event_schema(t) for t in ev.EVENT_TYPES}
    schemas["Event"] = {
        "oneOf": [{"$ref": f"#/components/schemas/event_{t}"} for t in ev.EVENT_TYPES],
        "discriminator": {
            "propertyName": "type",
            "mapping": {t: f"#/components/schemas/event_{t}" for t in ev.EVENT_TYPES},
        },
    }
    schemas["TicketId"] = {
        "type": "string", "minLength": 1, "maxLength": 64, "pattern": ev.ticket_id_pattern(),
        "description": f"a work-order number: {ev.TICKET_ID_RULE} (the pattern spells out "
        "Unicode's letters and digits as ranges, for ECMA-262 and Python regexes alike)",
    }  # fmt: skip
    schemas["AckRequest"] = AckRequest.model_json_schema()
    schemas["TicketList"] = _ticket_list_schema()
    schemas["Problem"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
        "description": "error names the field and the problem; 422 adds `problems`, 409 adds "
        "`id` and `stored`",
    }
    schemas["IngestResult"] = {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "results": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "status": {"enum": ["accepted", "duplicate"]}}}},
        },
    }  # fmt: skip
    schemas["AckResult"] = {
        "type": "object",
        "properties": {
            "acknowledged": {"type": "integer", "description": "ladders acknowledged"},
            "by": {"type": "string", "description": "the token's name"},
            "ended": {"type": "array", "items": {"type": "string"}},
            "still_open": {"type": "array", "items": {"type": "string"},
                           "description": "rules that go on for roles above the acknowledger"},
        },
    }  # fmt: skip
    ticket_param = {"name": "ticket", "in": "path", "required": True,
                    "schema": {"$ref": "#/components/schemas/TicketId"}}  # fmt: skip
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    paths = {
        "/api/v1/events": {"post": {
            "summary": "Ingest one event or a batch (all or nothing)",
            "security": auth,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [{"$ref": "#/components/schemas/Event"},
                          {"type": "array", "minItems": 1,
                           "items": {"$ref": "#/components/schemas/Event"}}]}}}},
            "responses": _responses({
                "400": "not JSON, nested too deeply, or an empty batch `[]`", "401": "no valid token",
                "409": "an event id reused with different content (nothing stored)",
                "413": "body or batch too large",
                "422": "an event breaks the contract (a field's type, range, a NUL or lone "
                       "surrogate, a DEMO- ticket outside `run --demo`), or is too far in the "
                       "future (nothing stored)",
                "503": "database unavailable or busy (nothing stored): retry"},
                {"$ref": "#/components/schemas/IngestResult"}),
        }},
        "/api/v1/tickets": {"get": {
            "summary": "The ticket list: the desk's filters, newest first, keyset pagination; "
                       "times in Beijing time (+08:00). Each parameter at most once; an empty "
                       "one is no filter",
            "security": auth,
            "parameters": [{"name": n, "in": "query", "required": False, "schema": sch,
                            "description": d} for n, (sch, d) in LIST_PARAMS.items()],
            "responses": _responses({"400": "a bad filter, or a NUL or lone surrogate in one "
                                            "(the message names it)",
                                     "401": "no valid token"},
                                    {"$ref": "#/components/schemas/TicketList"}),
        }},
        "/api/v1/tickets/{ticket}": {"get": {
            "summary": "A ticket: state (with computed sign_by, reply_by), timeline, ladders, "
                       "timers, messages; every time in Beijing time (+08:00)",
            "security": auth, "parameters": [ticket_param],
            "responses": _responses({"400": "a NUL or lone surrogate in the ticket id",
                                     "401": "no valid token", "404": "no such ticket"},
                                    {"type": "object"}),
        }},
        "/api/v1/tickets/{ticket}/ack": {"post": {
            "summary": "Acknowledge a ticket's open escalations, as the token's name",
            "security": auth, "parameters": [ticket_param],
            "requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AckRequest"}}}},
            "responses": _responses({
                "400": "not JSON, or a NUL or lone surrogate in a field (named)",
                "401": "no valid token",
                "403": "addressed to roles above the acknowledger",
                "404": "no such ticket",
                "409": "already acknowledged: nothing more to end",
                "422": "no open escalation for that rule, or a bad body"},
                {"$ref": "#/components/schemas/AckResult"}),
        }},
        "/api/v1/openapi.json": {"get": {
            "summary": "This document", "responses": {"200": {"description": "OK"}}}},
        "/healthz": {"get": {"summary": "Health (503 when unavailable)",
                             "responses": {"200": {"description": "OK"},
                                           "503": {"description": "unavailable"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "OK"}}}},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hotline-supervisor API",
            "version": VERSION,
            "description": "Events in, ticket views and acknowledgements out. See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
