"""What every answer of the daemon gets from the desk: the session resolved once per request,
security headers (CSP without inline script, no framing, nosniff, same-origin referrers, no
version in `Server`), and error pages in the desk's layout (JSON for /api/ and `.json` twins)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from supervisor.desk import auth
from supervisor.desk.app import (
    DESK,
    FLASH,
    SESSION,
    VIEWER,
    Viewer,
    audit,
    fingerprint,
    record,
    render,
)  # fmt: skip
from supervisor.desk.sessions import wall

log = logging.getLogger("hotline.desk")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Server": "hotline-supervisor",  # aiohttp would announce its and Python's versions
}
# Paths that never carry a desk session: no database look-up for them.
NO_SESSION = ("/static/", "/api/", "/healthz", "/metrics", "/providers/", "/twilio/")
TITLES = {
    400: "请求有误", 401: "请先登录", 403: "无权访问", 404: "页面不存在", 405: "不支持的请求方式",
    409: "操作冲突", 413: "内容过大", 422: "内容有误", 429: "操作过于频繁", 500: "服务器内部错误",
}  # fmt: skip


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers[name] = value
    if "/static/" not in request.path and request.path != "/metrics":
        response.headers.setdefault("Cache-Control", "no-store")


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")


async def _resolve(request: web.Request) -> None:
    desk = request.app[DESK]
    desk.users()  # re-read when users.yaml changed; audit what the edit did
    while desk.user_changes:
        action, login = desk.user_changes.pop(0)
        await audit(desk.host.pool, at=desk.now(), actor="users.yaml", action=action,
                    remote="local", detail={"account": login})  # fmt: skip
    s, ended = await desk.sessions.get(
        request.cookies.get(auth.COOKIE), touch=not request.headers.get("HX-Request")
    )
    if ended is not None:
        lifetime = ended.expires_at <= wall()
        await record(request, "session_ended", actor=ended.login,
                     reason="lifetime" if lifetime else "idle")  # fmt: skip
    if s is None:
        return
    entry = desk.users().get(s.login)
    if entry is None or fingerprint(entry[0], entry[1]) != s.fingerprint:
        await desk.sessions.end(s)  # the account was removed or changed in users.yaml
        await record(request, "session_ended", entry[0] if entry else None, actor=s.login,
                     reason="account removed or changed")  # fmt: skip
        return
    request[SESSION] = s
    if s.stage == "ok":
        request[VIEWER] = Viewer(entry[0], s)
        if s.flash and request.method == "GET" and not wants_json(request) \
                and not request.headers.get("HX-Request"):  # fmt: skip
            flash = await desk.sessions.take_flash(s)
            if flash is not None:
                request[FLASH] = flash


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Changes made by other modules' desk pages, audited here (their own handlers write nothing):
# the import's confirmation and any POST under 日历 (the calendar paste).
AUDITED_POSTS = (("/import/confirm", "import"), ("/calendar", "calendar_changed"))


async def _audit_post(request: web.Request, status: int) -> None:
    v = request.get(VIEWER)
    if request.method != "POST" or v is None or status >= 400:
        return
    for prefix, action in AUDITED_POSTS:
        if request.path.startswith(prefix):
            await record(request, action, v.user, path=request.path, status=status)
            return


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(NO_SESSION):
        await _resolve(request)
    try:
        response = await handler(request)
        await _audit_post(request, response.status)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or request.path.startswith(("/providers/", "/twilio/")):
            raise
        if exc.status == 413 and request.path.startswith("/api/"):
            raise  # the API's own answer (and its metric)
        page = error_page(request, exc.status, exc.text or exc.reason)
        if "Allow" in exc.headers:  # a 405 says which methods the resource takes (RFC 9110)
            page.headers["Allow"] = exc.headers["Allow"]
        return page
    except Exception:
        log.exception("unexpected error", extra={"path": request.path})
        return error_page(request, 500, "服务器内部错误，已记录；请稍后重试")


def error_page(request: web.Request, status: int, text: str | None) -> web.StreamResponse:
    default = not text or text.startswith(f"{status}:")  # aiohttp's English "404: Not Found"
    message = TITLES.get(status, "出错了") if default else str(text)
    if wants_json(request):
        return web.json_response({"error": message}, status=status)
    try:
        return render(request, "error.html", {"status": status, "message": message,
                      "title": TITLES.get(status, "出错了")}, request.get(VIEWER), status=status)  # fmt: skip
    except Exception:  # the error page itself failed: plain text, never a stack trace
        log.exception("error page failed")
        return web.Response(status=status, text=message, content_type="text/plain")


def install(app: web.Application) -> None:
    app.middlewares.append(middleware)
    app.on_response_prepare.append(_headers)
