"""The edge: every request's path, route parameters, query string and form body checked for text
PostgreSQL cannot hold (a NUL, a lone surrogate) before any handler runs, answered 400 naming
the field. JSON bodies are checked where they are parsed (server.body.decode_checked), since
each JSON endpoint names its fields its own way.

One middleware for the whole app (API, desk, JSON twins, provider and Twilio webhooks), so no
handler has to remember it. A host may register `REFUSED` to hear of a refusal (the desk audits
a refused sign-in)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from supervisor.core.inputs import InputRefused, check_text
from supervisor.hooks import REFUSED

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FORM = "application/x-www-form-urlencoded"
JSON_PREFIXES = ("/api/", "/providers/", "/twilio/")


def wants_json(request: web.Request) -> bool:
    """The API, the webhooks and the desk's JSON twins answer JSON; the desk's pages, text."""
    return request.path.startswith(JSON_PREFIXES) or request.path.endswith(".json")


def refusal(request: web.Request, exc: InputRefused) -> web.Response:
    """The 400 for a refused value: JSON `{"error": "field: why"}`, or the desk's text."""
    if wants_json(request):
        return web.json_response(
            {"error": exc.english},
            status=400,
            dumps=lambda o: json.dumps(o, ensure_ascii=False),
        )
    return web.Response(
        status=400, text=f"{exc.chinese}（{exc.english}）", content_type="text/plain"
    )


async def _check(request: web.Request) -> None:
    for name, value in request.match_info.items():
        check_text(name, value)
    check_text("path", request.path)
    for key, value in request.query.items():
        check_text("query", key)
        check_text(key, value)
    if request.method == "POST" and request.content_type == FORM:
        try:
            form = await request.post()  # cached: the handler reads the same form
        except UnicodeDecodeError:
            raise InputRefused("body", "is not UTF-8 form data", "表单编码应为 UTF-8") from None
        for key, item in form.items():
            check_text("form", key)
            if isinstance(item, str):
                check_text(key, item)


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        await _check(request)
    except InputRefused as exc:
        hook = request.app.get(REFUSED)
        if hook is not None:
            await hook(request, exc)
        return refusal(request, exc)
    return await handler(request)
