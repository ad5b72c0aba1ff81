"""The HTTP API: event ingest, ticket view, acknowledgement, health and metrics."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from supervisor.acking import acknowledge
from supervisor.application import BatchRejected, Supervisor, validate_batch
from supervisor.core.events import MAX_DEPTH, Event, demo_problems, future_problems
from supervisor.core.inputs import InputRefused
from supervisor.server.body import decode_body, decode_checked
from supervisor.server.edge import edge_middleware
from supervisor.server.metrics import Metrics
from supervisor.server.openapi import AckRequest, openapi_document
from supervisor.server.ticket_view import beijing_view
from supervisor.storage.base import Store

log = logging.getLogger(__name__)

SUPERVISOR = web.AppKey("supervisor", Supervisor)
STORE: web.AppKey[Store] = web.AppKey("store")
TOKENS = web.AppKey("tokens", list)  # [(name, token)]
FUTURE = web.AppKey("future_tolerance", timedelta)
TOKEN_ROLE = web.AppKey("token_role", str)
DEMO_IDS = web.AppKey("demo_ids", bool)  # `run --demo`: API clients may post DEMO- tickets
WHO = web.RequestKey("who", str)  # the name of the request's bearer token
METRICS = web.AppKey("metrics", Metrics)
MAX_BATCH = web.AppKey("max_batch", int)
HEALTH: web.AppKey[Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]] = web.AppKey("health")
ON_INGEST: web.AppKey[Callable[[], None]] = web.AppKey("on_ingest")

OPEN_PATHS = ("/healthz", "/metrics")


def _problem(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"error": message, **extra},
        status=status,
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


def _authorised(request: web.Request) -> str | None:
    """The name of the bearer token given (HOTLINE_API_TOKENS="name:token,..."), or None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    given = header[len("Bearer ") :].strip().encode()
    found: str | None = None
    for name, token in request.app[TOKENS]:
        # compare against every token, in constant time, so timing says nothing about which
        if hmac.compare_digest(given, token.encode()) and found is None:
            found = name
    return found


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


@web.middleware
async def _middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.perf_counter()
    route = (
        request.match_info.route.resource.canonical
        if request.match_info.route.resource
        else "unmatched"
    )
    try:
        if request.path.startswith("/api/") and request.path != "/api/v1/openapi.json":
            who = _authorised(request)
            if who is None:
                return _problem(401, "missing or invalid bearer token")
            request[WHO] = who
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        request.app[METRICS].events_rejected.labels("too_large").inc()
        return _problem(
            413,
            f"body too large (limit {exc.max_size} bytes)"
            if hasattr(exc, "max_size")
            else "body too large",
        )
    finally:
        request.app[METRICS].request_latency.labels(route, request.method).observe(
            time.perf_counter() - started
        )


async def post_events(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    body = await request.read()
    try:
        payload = decode_body(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        metrics.events_rejected.labels("malformed").inc()
        return _problem(400, f"body is not JSON: {exc}")
    except RecursionError:
        metrics.events_rejected.labels("malformed").inc()
        return _problem(400, "body is not an event: JSON nested too deeply")
    raws = payload if isinstance(payload, list) else [payload]
    if not raws:
        return _problem(400, "empty batch: send one event object or a non-empty array")
    if len(raws) > request.app[MAX_BATCH]:
        metrics.events_rejected.labels("batch_too_large").inc(len(raws))
        return _problem(
            413, f"batch of {len(raws)} events is over the limit of {request.app[MAX_BATCH]}"
        )
    supervisor = request.app[SUPERVISOR]
    try:
        events = validate_batch(raws, supervisor.runtime.caller_key)
        future = future_problems(events, supervisor.clock.now(), request.app[FUTURE])
        if not request.app[DEMO_IDS]:
            future = demo_problems(events) + future
        if future:
            raise BatchRejected(future)
    except BatchRejected as exc:
        metrics.events_rejected.labels("invalid").inc(len(raws))
        first = exc.problems[0]
        where = f"event {first[0]}: " if isinstance(payload, list) else ""
        return _problem(
            422,
            f"{where}{first[1].field}: {first[1].message}; nothing was stored",
            problems=exc.to_json(),
        )
    try:
        conflict = await _reused_id(request.app[STORE], events)
        if conflict is not None:
            metrics.events_rejected.labels("reused_id").inc(len(raws))
            return conflict
        outcome = await supervisor.ingest_events(events)
    except (
        OSError,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.InterfaceError,
    ) as exc:
        # the database is away (restarting, network): nothing was stored; the sender retries
        log.warning(
            "event batch not stored: database unavailable", extra={"error": type(exc).__name__}
        )
        return _problem(
            503,
            "database unavailable; nothing was stored, retry",
        )
    except (
        asyncpg.exceptions.InsufficientResourcesError,
        asyncpg.exceptions.TransactionRollbackError,
    ) as exc:
        # the database is busy: its lock table full (SQLSTATE 53200, e.g. a large import holding
        # many advisory locks), a deadlock or a serialization failure (class 40). The batch's
        # transaction rolled back, so nothing was stored; the sender retries.
        log.warning(
            "event batch not stored: database busy",
            extra={"error": type(exc).__name__, "sqlstate": exc.sqlstate},
        )
        return _problem(
            503,
            "database busy; nothing was stored, retry",
        )
    metrics.events_accepted.inc(len(outcome.accepted))
    metrics.events_duplicate.inc(len(outcome.duplicates))
    request.app[ON_INGEST]()
    dup = set(outcome.duplicates)
    results = [
        {"id": r.get("id"), "status": "duplicate" if r.get("id") in dup else "accepted"}
        for r in raws
    ]
    return web.json_response(
        {
            "accepted": len(outcome.accepted),
            "duplicates": len(outcome.duplicates),
            "results": results,
        }
    )


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "caller_hash"}


async def _reused_id(store: Store, events: Sequence[Event]) -> web.Response | None:
    """409 when an id is reused for a different event (in the batch or already stored): the same
    content again is a harmless duplicate, different content under one id is a sender's bug."""
    seen: dict[str, Event] = {}
    for e in events:
        first = seen.setdefault(e.id, e)
        if first is not e and _content(first) != _content(e):
            return _conflict(e.id, first.to_json(), "earlier in this batch")
    for stored in await store.stored_events(list(seen)):
        if _content(stored) != _content(seen[stored.id]):
            return _conflict(stored.id, stored.to_json(), "stored")
    return None


def _content(e: Event) -> tuple[Any, ...]:
    return (e.ticket, e.type, e.at, e.data)


def _conflict(event_id: str, stored: dict[str, Any], where: str) -> web.Response:
    return _problem(
        409,
        f"id: event id {event_id!r} is already used by another event ({where}) with different "
        "content; an id names one event for ever: give this one a new id; nothing was stored",
        id=event_id,
        stored=_public(stored),
    )


async def get_ticket(request: web.Request) -> web.Response:
    view = await request.app[SUPERVISOR].ticket_view(request.match_info["ticket"])
    if view is None:
        return _problem(404, f"no ticket {request.match_info['ticket']!r}")
    view = beijing_view(view, request.app[SUPERVISOR].runtime)
    return web.json_response(view, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


async def post_ack(request: web.Request) -> web.Response:
    try:
        body = decode_checked(await request.read() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _problem(400, f"body is not JSON: {exc}")
    except InputRefused as exc:
        return _problem(400, exc.english)
    except RecursionError:
        return _problem(400, "body is not an acknowledgement: JSON nested too deeply")
    if not isinstance(body, dict) or _depth(body) > MAX_DEPTH:
        return _problem(422, 'body must be a JSON object: {"rule": "<rule id>"} (rule optional)')
    try:
        rule = AckRequest.model_validate(body).rule
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        msg = (
            "not a field of an acknowledgement (fields: rule)"
            if err["type"] == "extra_forbidden"
            else err["msg"]
        )
        return _problem(422, f"{where}: {msg}")
    ticket = request.match_info["ticket"]
    who = request[WHO]  # from the token, never from the body's `by` (ignored)
    sup = request.app[SUPERVISOR]
    out = await acknowledge(
        request.app[STORE], sup.runtime, ticket, rule, who, "api",
        sup.clock.now(), default_roles=(request.app[TOKEN_ROLE],),
    )  # fmt: skip
    if out.status == "unknown_ticket":
        return _problem(404, f"no ticket {ticket!r}")
    if out.status == "nothing_open":
        what = f"rule {rule!r}" if rule else "any rule"
        return _problem(
            422, f"rule: ticket {ticket!r} has no open escalation for {what}", ticket=ticket
        )
    if out.status == "already":
        what = f"rule {rule!r}" if rule else "its escalations"
        return _problem(
            409, f"rule: ticket {ticket!r}: {what} already acknowledged; nothing more to end",
            ticket=ticket,
        )
    if out.status == "not_allowed":
        return _problem(
            403,
            f"{who} ({', '.join(out.roles) or 'no role'}) cannot acknowledge what is addressed "
            f"to {', '.join(out.refused_roles)}: only they, or those above them, can",
            rules=out.rules,
        )
    return web.json_response(
        {"acknowledged": out.acknowledged, "by": who, "ended": out.ended,
         "still_open": out.still_open},
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )  # fmt: skip


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(), dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def healthz(request: web.Request) -> web.Response:
    ok, info = await request.app[HEALTH]()
    status = ("degraded" if info.get("degraded") else "ok") if ok else "unavailable"
    return web.json_response(
        {"status": status, **info},
        status=200 if ok else 503,
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


async def metrics_view(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(
    supervisor: Supervisor,
    *,
    tokens: Sequence[str | tuple[str, str]],
    metrics: Metrics,
    health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]],
    max_body_bytes: int = 1_048_576,
    max_batch: int = 5_000,
    on_ingest: Callable[[], None] = lambda: None,
    future_tolerance: timedelta = timedelta(minutes=5),
    token_role: str = "supervisor",
    demo: bool = False,
) -> web.Application:
    app = web.Application(middlewares=[_middleware, edge_middleware], client_max_size=max_body_bytes)
    app[SUPERVISOR] = supervisor
    app[STORE] = supervisor.store
    app[TOKENS] = [t if isinstance(t, tuple) else ("api", t) for t in tokens]
    app[FUTURE] = future_tolerance
    app[TOKEN_ROLE] = token_role
    app[DEMO_IDS] = demo
    app[METRICS] = metrics
    app[MAX_BATCH] = max_batch
    app[HEALTH] = health
    app[ON_INGEST] = on_ingest
    app.router.add_post("/api/v1/events", post_events)
    app.router.add_get("/api/v1/tickets/{ticket}", get_ticket)
    app.router.add_post("/api/v1/tickets/{ticket}/ack", post_ack)
    app.router.add_get("/api/v1/openapi.json", get_openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    return app
