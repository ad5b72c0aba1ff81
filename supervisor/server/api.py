"""The HTTP API: event ingest, ticket view, acknowledgement, health and metrics."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from supervisor.application import BatchRejected, Supervisor
from supervisor.server.body import decode_body
from supervisor.server.metrics import Metrics
from supervisor.storage.base import Store

log = logging.getLogger(__name__)

SUPERVISOR = web.AppKey("supervisor", Supervisor)
STORE: web.AppKey[Store] = web.AppKey("store")
TOKENS = web.AppKey("tokens", list)
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


def _authorised(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    given = header[len("Bearer ") :].strip().encode()
    ok = False
    for token in request.app[TOKENS]:
        # compare against every token, in constant time, so timing says nothing about which
        ok |= hmac.compare_digest(given, token.encode())
    return ok


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
        if request.path.startswith("/api/") and not _authorised(request):
            return _problem(
                401,
                "missing or invalid bearer token",
            )
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
        outcome = await supervisor.ingest(raws)
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
    except BatchRejected as exc:
        metrics.events_rejected.labels("invalid").inc(len(raws))
        first = exc.problems[0]
        where = f"event {first[0]}: " if isinstance(payload, list) else ""
        return _problem(
            422,
            f"{where}{first[1].field}: {first[1].message}; nothing was stored",
            problems=exc.to_json(),
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


async def get_ticket(request: web.Request) -> web.Response:
    view = await request.app[STORE].ticket_view(request.match_info["ticket"])
    if view is None:
        return _problem(404, f"no ticket {request.match_info['ticket']!r}")
    return web.json_response(view, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


async def post_ack(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        return _problem(400, f"body is not JSON: {exc}")
    if not isinstance(body, dict) or not isinstance(body.get("by"), str) or not body["by"].strip():
        return _problem(422, "by: required: who acknowledges (a contact id or a name)")
    rule = body.get("rule")
    if rule is not None and not isinstance(rule, str):
        return _problem(422, "rule: must be a rule id")
    unknown = set(body) - {"by", "rule"}
    if unknown:
        return _problem(
            422, f"{sorted(unknown)[0]}: not a field of an acknowledgement (fields: by, rule)"
        )
    n = await request.app[SUPERVISOR].ack(request.match_info["ticket"], rule, body["by"], "api")
    return web.json_response({"acknowledged": n})


async def healthz(request: web.Request) -> web.Response:
    ok, info = await request.app[HEALTH]()
    return web.json_response(
        {"status": "ok" if ok else "unavailable", **info},
        status=200 if ok else 503,
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


async def metrics_view(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(
    supervisor: Supervisor,
    *,
    tokens: list[str],
    metrics: Metrics,
    health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]],
    max_body_bytes: int = 1_048_576,
    max_batch: int = 5_000,
    on_ingest: Callable[[], None] = lambda: None,
) -> web.Application:
    app = web.Application(middlewares=[_middleware], client_max_size=max_body_bytes)
    app[SUPERVISOR] = supervisor
    app[STORE] = supervisor.store
    app[TOKENS] = tokens
    app[METRICS] = metrics
    app[MAX_BATCH] = max_batch
    app[HEALTH] = health
    app[ON_INGEST] = on_ingest
    app.router.add_post("/api/v1/events", post_events)
    app.router.add_get("/api/v1/tickets/{ticket}", get_ticket)
    app.router.add_post("/api/v1/tickets/{ticket}/ack", post_ack)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    return app
