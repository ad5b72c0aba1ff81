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
        "ticket": {"type": "string", "pattern": f"^{ev.TICKET_ID.pattern}$",
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
# GET /api/v1/tickets: name -> (schema, description); the desk's list (/tickets) takes the same
LIST_PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "status": ({"enum": list(STATUSES)}, "the ticket's status"),
    "unit": ({"type": "string"}, "the lead unit, as the tickets name it"),
    "category": ({"type": "string"}, "诉求归口, exactly"),
    "urgent": ({"enum": ["true", "false"]}, "urgent tickets only, or non-urgent only"),
    "view": ({"enum": list(LIST_VIEWS)}, "awaiting sign-off; reply due today; overdue now "
             "(reply or sign-off deadline passed); escalated and not acknowledged"),
    "from": ({"type": "string", "format": "date"}, "created on or after this Beijing date"),
    "to": ({"type": "string", "format": "date"}, "created on or before this Beijing date"),
    "q": ({"type": "string"}, "a ticket number, the start of one, or part of the address"),
    "after": ({"type": "string"}, "the `next` cursor of the previous page"),
    "limit": ({"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
              "tickets per page (clamped to 1-200)"),
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
                "text": {"type": "string"}}}],
                "description": "the deadline that runs now (sign-off while awaiting it, else the "
                "reply), in working time; negative minutes: overdue"},
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
                    "schema": {"type": "string", "pattern": f"^{ev.TICKET_ID.pattern}$"}}  # fmt: skip
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
                "400": "not JSON", "401": "no valid token",
                "409": "an event id reused with different content (nothing stored)",
                "413": "body or batch too large",
                "422": "an event breaks the contract, or is too far in the future (nothing stored)",
                "503": "database unavailable (nothing stored): retry"},
                {"$ref": "#/components/schemas/IngestResult"}),
        }},
        "/api/v1/tickets": {"get": {
            "summary": "The ticket list: the desk's filters, newest first, keyset pagination; "
                       "times in Beijing time (+08:00)",
            "security": auth,
            "parameters": [{"name": n, "in": "query", "required": False, "schema": sch,
                            "description": d} for n, (sch, d) in LIST_PARAMS.items()],
            "responses": _responses({"400": "a bad filter (the message names it)",
                                     "401": "no valid token"},
                                    {"$ref": "#/components/schemas/TicketList"}),
        }},
        "/api/v1/tickets/{ticket}": {"get": {
            "summary": "A ticket: state (with computed sign_by, reply_by), timeline, ladders, "
                       "timers, messages; every time in Beijing time (+08:00)",
            "security": auth, "parameters": [ticket_param],
            "responses": _responses({"401": "no valid token", "404": "no such ticket"},
                                    {"type": "object"}),
        }},
        "/api/v1/tickets/{ticket}/ack": {"post": {
            "summary": "Acknowledge a ticket's open escalations, as the token's name",
            "security": auth, "parameters": [ticket_param],
            "requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AckRequest"}}}},
            "responses": _responses({
                "400": "not JSON", "401": "no valid token",
                "403": "addressed to roles above the acknowledger",
                "404": "no such ticket",
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
