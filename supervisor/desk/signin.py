"""Signing in to the desk: password (throttled, throttle.py), then, for the roles that need it,
a one-time code (TOTP, SMS or a recovery code), then a password change when one is due; and
signing out. Each step is a stage of the server-side session (sessions.py); the session id is
renewed whenever the stage rises. Every outcome is audited."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import unicodedata
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pyotp
from aiohttp import web

from notifiers.base import Outgoing
from supervisor.core.privacy import mask as mask_phone
from supervisor.desk import auth
from supervisor.desk.app import (
    DESK,
    SESSION,
    STAGE_PAGES,
    Desk,
    fingerprint,
    pre_session,
    record,
    remote,
    render,
    set_session_cookie,
    viewer,
)  # fmt: skip
from supervisor.desk.credentials import Account
from supervisor.desk.sessions import Session, wall
from supervisor.desk.users import User, verify_hash

MAX_NEXT = 2000


def safe_next(value: Any) -> str:
    """`next=`: a path on this site only, else the desk's start page. Refused: anything not
    starting with one "/", a backslash anywhere ("/\\host" is another site to a browser), any
    control or format character (%09 %0a %0d are dropped by browsers, turning "/\\t/host" into
    "//host"), also after one more percent-decoding."""
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT:
        return "/"
    for text in (value, unquote(value)):
        if not text.startswith("/") or text.startswith("//") or "\\" in text:
            return "/"
        if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in text):
            return "/"
    return value


_safe_next = safe_next


def printable(text: str, limit: int = 64) -> str:
    """A name as given, safe for the audit table (PostgreSQL refuses NUL; no lone surrogates)."""
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])
    return out.encode("utf-8", "replace").decode("utf-8")


def _account_key(login: str) -> str:
    return printable(login)


async def signin_page(request: web.Request) -> web.Response:
    session = pre_session(request) or auth.Session.new(None, auth.wall())
    desk = request.app[DESK]
    return render(request, "signin.html", {"next": safe_next(request.query.get("next")),
                  "error": None, "no_users": not desk.users()}, None, session)  # fmt: skip


def _signin_error(request: web.Request, nxt: str, pre: auth.Session, error: str,
                  status: int) -> web.Response:  # fmt: skip
    return render(request, "signin.html", {"next": nxt, "no_users": False, "error": error},
                  None, pre, status=status)  # fmt: skip


def sms_available(desk: Desk, user: User) -> bool:
    notifier = _notifiers(desk).get("sms")
    return (
        "sms" in desk.security.two_factor_methods
        and bool(user.phone)
        and notifier is not None
        and getattr(notifier, "name", "console") != "console"  # a real provider only
    )


def _notifiers(desk: Desk) -> dict[str, Any]:
    return dict(getattr(desk.host, "_notifiers", None) or {})


def first_stage(desk: Desk, user: User, account: Account, now: datetime) -> str:
    if desk.two_factor_for(user) or account.totp_secret:
        if account.totp_secret or sms_available(desk, user) or account.recovery_left:
            return "code"
        return "enrol" if "totp" in desk.security.two_factor_methods else "code"
    return after_code(desk, account, now)


def after_code(desk: Desk, account: Account, now: datetime) -> str:
    due = account.must_change or account.expired(now, desk.security.password_max_age_days)
    return "change" if due else "ok"


async def account_of(desk: Desk, user: User, yaml_hash: str, now: datetime) -> Account:
    return await desk.credentials.account(
        user.login, yaml_hash, user.must_change, now, desk.security.password_max_age_days > 0
    )


def _minutes(until: datetime | None, now: datetime) -> int:
    return max(1, int(((until or now) - now).total_seconds() // 60) + 1)


async def signin_post(request: web.Request) -> web.StreamResponse:
    desk = request.app[DESK]
    form = await request.post()
    pre = pre_session(request)
    if not auth.csrf_ok(pre, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="CSRF 校验失败：请刷新页面后重试")
    assert pre is not None
    login = _account_key(str(form.get("login", "")).strip())
    password = str(form.get("password", ""))
    nxt = safe_next(form.get("next"))
    now, addr = wall(), remote(request)
    allowed, locked_until = await desk.throttle.reserve(login, now)
    if not allowed:
        await record(request, "sign_in_locked", actor=login)
        return _signin_error(request, nxt, pre, "登录失败次数过多，账号已锁定，请"
                             f"{_minutes(locked_until, now)}分钟后再试，或请热线专员解锁", 429)  # fmt: skip
    slow = await desk.throttle.address_slow(addr, now)
    entry = desk.users().get(login)
    account = await account_of(desk, entry[0], entry[1], now) if entry else None
    # argon2 takes tens of milliseconds of CPU: off the event loop
    good = await asyncio.get_running_loop().run_in_executor(
        None, verify_hash, account.password_hash if account else None, password
    )
    if not good or entry is None or account is None:
        locked, over = await desk.throttle.failed(login, addr, now)
        await record(request, "sign_in_failed", actor=login)
        if locked:
            await record(request, "account_locked", actor=login,
                         failures=desk.security.lock_after, minutes=desk.security.lock_s // 60)  # fmt: skip
        if slow or over:
            await asyncio.sleep(desk.security.address_delay_s)
            return _signin_error(request, nxt, pre, "此地址登录失败次数过多，请稍后再试", 429)
        return _signin_error(request, nxt, pre, "用户名或密码错误", 401)
    await desk.throttle.succeeded(login, now)
    user = entry[0]
    stage = first_stage(desk, user, account, now)
    sid, _ = await desk.sessions.create(
        login, fingerprint(user, entry[1]), addr, stage, pending={"next": nxt}
    )
    await record(request, "sign_in", user, stage=stage)
    response = web.HTTPFound(nxt if stage == "ok" else STAGE_PAGES[stage])
    set_session_cookie(request, response, sid)  # a new id at every sign-in
    raise response


# --- the second factor ---------------------------------------------------------------------


def staged(request: web.Request, stages: tuple[str, ...]) -> tuple[Desk, Session, User, str]:
    """The session at one of `stages` (else back to the sign-in page) and its account."""
    desk = request.app[DESK]
    s: Session | None = request.get(SESSION)
    entry = desk.users().get(s.login) if s else None
    if s is None or entry is None or s.stage not in stages:
        raise web.HTTPFound("/signin")
    return desk, s, entry[0], entry[1]


async def _check_csrf(request: web.Request, s: Session) -> Any:
    form = await request.post()
    if not auth.csrf_ok(s, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="CSRF 校验失败：请刷新页面后重试")
    return form


async def code_page(request: web.Request) -> web.Response:
    desk, s, user, yaml_hash = staged(request, ("code",))
    return await _code_page(request, desk, s, user, yaml_hash, None, None)


async def _code_page(request: web.Request, desk: Desk, s: Session, user: User, yaml_hash: str,
                     error: str | None, notice: str | None, status: int = 200) -> web.Response:  # fmt: skip
    account = await account_of(desk, user, yaml_hash, wall())
    return render(request, "signin_code.html", {
        "totp": bool(account.totp_secret), "sms": sms_available(desk, user),
        "recovery": account.recovery_left, "error": error, "notice": notice,
        "csrf_code": s.csrf, "enrol": "totp" in desk.security.two_factor_methods,
    }, None, status=status)  # fmt: skip


async def code_post(request: web.Request) -> web.StreamResponse:
    desk, s, user, yaml_hash = staged(request, ("code",))
    form = await _check_csrf(request, s)
    code = "".join(str(form.get("code", "")).split())[:32]
    kind = str(form.get("kind", "totp"))
    now = wall()
    allowed, locked_until = await desk.throttle.reserve(user.login, now)
    if not allowed:
        await desk.sessions.end(s)
        await record(request, "sign_in_locked", user, step="code")
        raise web.HTTPTooManyRequests(text="验证失败次数过多，账号已锁定，请"
                                      f"{_minutes(locked_until, now)}分钟后再试，或请热线专员解锁")  # fmt: skip
    account = await account_of(desk, user, yaml_hash, now)
    ok = False
    if kind == "totp" and account.totp_secret and code.isdigit():
        step = totp_step(account.totp_secret, code, now)
        ok = step is not None and await desk.credentials.use_totp_step(user.login, step)
    elif kind == "sms":
        p = s.pending
        digest = hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()
        fresh = p.get("sms_until") and datetime.fromisoformat(p["sms_until"]) > now
        ok = bool(fresh and p.get("sms_hash") and hmac.compare_digest(digest, p["sms_hash"]))
    elif kind == "recovery" and code:
        ok = await desk.credentials.use_recovery(user.login, code)
    if not ok:
        locked, _ = await desk.throttle.failed(user.login, remote(request), now)
        await record(request, "two_factor_failed", user, method=kind)
        if locked:
            await record(request, "account_locked", user, failures=desk.security.lock_after)
            await desk.sessions.end(s)
        return await _code_page(request, desk, s, user, yaml_hash, "验证码错误或已过期", None, 401)
    await desk.throttle.succeeded(user.login, now)
    await record(request, "two_factor_ok", user, method=kind)
    return await advance(request, desk, s, user, yaml_hash, after_code(desk, account, now))


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code this is (this 30-second step, or one either side)."""
    totp = pyotp.TOTP(secret)
    for offset in (0, -1, 1):
        at = now + timedelta(seconds=30 * offset)
        if hmac.compare_digest(totp.at(at), code):
            return totp.timecode(at)
    return None


async def advance(request: web.Request, desk: Desk, s: Session, user: User, yaml_hash: str,
                  stage: str) -> web.StreamResponse:  # fmt: skip
    """Move the session up a stage under a new id (the old one is ended)."""
    nxt = safe_next(s.pending.get("next"))
    await desk.sessions.end(s)
    sid, _ = await desk.sessions.create(user.login, fingerprint(user, yaml_hash),
                                        remote(request), stage, pending={"next": nxt})  # fmt: skip
    response = web.Response(
        status=302, headers={"Location": nxt if stage == "ok" else STAGE_PAGES[stage]}
    )
    set_session_cookie(request, response, sid)
    return response


async def sms_post(request: web.Request) -> web.StreamResponse:
    desk, s, user, yaml_hash = staged(request, ("code",))
    await _check_csrf(request, s)
    now = wall()
    sent = s.pending.get("sms_sent")
    if sent and datetime.fromisoformat(sent) > now - timedelta(seconds=60):
        return await _code_page(
            request, desk, s, user, yaml_hash, "验证码已发送，请 1 分钟后再试", None, 429
        )
    if not sms_available(desk, user) or not user.phone:
        raise web.HTTPConflict(text="此账号未配置短信验证码")
    code = f"{secrets.randbelow(10**6):06d}"
    sec = desk.security.sms
    text = f"【12345督办台】登录验证码：{code}，{sec.valid_s // 60}分钟内有效，请勿告诉他人。"
    tmpl = {"code": sec.template_code, "sign_name": sec.sign_name}
    msg = Outgoing(key=f"desk-code:{uuid.uuid4().hex}", channel="sms", to=user.phone, text=text,
                   params={"template": "desk_sign_in_code", "aliyun": {**tmpl, "params": {"code": code}},
                           "tencent": {**tmpl, "params": [code]}})  # fmt: skip
    result = await _notifiers(desk)["sms"].send(msg)
    await record(request, "sms_code_sent", user, outcome=result.outcome)
    if result.outcome != "sent":
        return await _code_page(
            request, desk, s, user, yaml_hash, "短信发送失败，请稍后重试或使用其他方式", None, 502
        )
    pending = {**s.pending, "sms_hash": hashlib.sha256(code.encode()).hexdigest(),
               "sms_until": (now + timedelta(seconds=sec.valid_s)).isoformat(),
               "sms_sent": now.isoformat()}  # fmt: skip
    await desk.sessions.update(s, pending=pending)
    s = Session(**{**s.__dict__, "pending": pending})
    return await _code_page(request, desk, s, user, yaml_hash, None,
                            f"验证码已发送至 {mask_phone(user.phone)}")  # fmt: skip


# --- signing out ---------------------------------------------------------------------------


async def signout(request: web.Request) -> web.StreamResponse:
    desk = request.app[DESK]
    s: Session | None = request.get(SESSION)
    if s is None:
        raise web.HTTPFound("/signin")
    await _check_csrf(request, s)
    v = viewer(request)
    await desk.sessions.end(s)
    await record(request, "sign_out", v.user if v else None, actor=s.login)
    response = web.HTTPFound("/signin")
    response.del_cookie(auth.COOKIE, path="/")
    raise response


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/signin", signin_page)
    r.add_post("/signin", signin_post)
    r.add_get("/signin/code", code_page)
    r.add_post("/signin/code", code_post)
    r.add_post("/signin/sms", sms_post)
    r.add_post("/signout", signout)
