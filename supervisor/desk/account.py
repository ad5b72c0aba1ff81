"""One's own account on the desk (我的账号: password change, TOTP enrolment, recovery codes)
and the supervisor's 账号 page (locked accounts, unlock, end sessions, reset two-factor)."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from typing import Any

import pyotp
import qrcode
import qrcode.image.svg
from aiohttp import web

from supervisor.desk.app import (
    DESK,
    SESSION,
    Desk,
    Viewer,
    record,
    remote,
    render,
    signed_in,
    viewer,
)  # fmt: skip
from supervisor.desk.credentials import new_recovery_codes
from supervisor.desk.passwords import problems
from supervisor.desk.sessions import Session, wall
from supervisor.desk.signin import _check_csrf, account_of, advance, after_code, staged, totp_step
from supervisor.desk.users import ROLE_LABELS, hash_password, verify_hash

ISSUER = "12345热线督办台"
ADMIN_ROLES = frozenset({"supervisor"})


def qr_svg(uri: str) -> str:
    """The enrolment QR code as inline SVG, made here (no image service, no script)."""
    img = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf)
    svg = buf.getvalue().decode()
    return svg[svg.index("<svg") :]


async def account_page(request: web.Request, v: Viewer) -> web.Response:
    desk = request.app[DESK]
    entry = desk.users()[v.user.login]
    account = await account_of(desk, v.user, entry[1], wall())
    return render(request, "account.html", {
        "totp": bool(account.totp_secret), "recovery_left": account.recovery_left,
        "two_factor_required": desk.two_factor_for(v.user), "phone": bool(v.user.phone),
        "changed": account.password_changed,
        "max_age_days": desk.security.password_max_age_days,
    }, v)  # fmt: skip


# --- password ------------------------------------------------------------------------------


async def password_page(request: web.Request) -> web.Response:
    desk, s, user, _ = staged(request, ("ok", "change"))
    return _password_form(request, s, user.login, None, 200)


def _password_form(request: web.Request, s: Session, login: str, error: str | None,
                   status: int) -> web.Response:  # fmt: skip
    desk = request.app[DESK]
    return render(request, "password.html", {
        "error": error, "forced": s.stage == "change", "csrf_pw": s.csrf,
        "min_length": desk.security.password_min_length, "classes": desk.security.password_classes,
    }, viewer(request), status=status)  # fmt: skip


async def password_post(request: web.Request) -> web.StreamResponse:
    desk, s, user, yaml_hash = staged(request, ("ok", "change"))
    form = await _check_csrf(request, s)
    current, new, again = (str(form.get(k, "")) for k in ("current", "new", "again"))
    now = wall()
    allowed, _ = await desk.throttle.reserve(user.login, now)
    if not allowed:
        raise web.HTTPTooManyRequests(text="失败次数过多，账号已锁定，请稍后再试或请热线专员解锁")
    account = await account_of(desk, user, yaml_hash, now)
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, verify_hash, account.password_hash, current):
        locked, _ = await desk.throttle.failed(user.login, remote(request), now)
        await record(request, "password_change_failed", user)
        if locked:
            await record(request, "account_locked", user, failures=desk.security.lock_after)
        return _password_form(request, s, user.login, "当前密码不正确", 401)
    await desk.throttle.succeeded(user.login, now)
    sec = desk.security
    errors = problems(new, user.login, sec.password_min_length, sec.password_classes)
    if new != again:
        errors.insert(0, "两次输入的新密码不一致")
    if new == current:
        errors.append("新密码不能与当前密码相同")
    if errors:
        return _password_form(request, s, user.login, "；".join(errors), 422)
    new_hash = await loop.run_in_executor(None, hash_password, new)
    await desk.credentials.set_password(user.login, new_hash, yaml_hash, now)
    ended = await desk.sessions.end_login(user.login, keep=s)
    await record(request, "password_changed", user, other_sessions_ended=ended)
    response = await advance(request, desk, s, user, yaml_hash, "ok")
    new_sid = response.cookies[SESSION_COOKIE].value
    await _flash_by_sid(desk, new_sid, "密码已修改；此账号在其他设备上的登录已退出")
    return response


SESSION_COOKIE = "hs_desk"


async def _flash_by_sid(desk: Desk, sid: str, text: str) -> None:
    from supervisor.desk.sessions import id_hash

    await desk.host.pool.execute(
        "UPDATE desk_sessions SET flash = $2 WHERE id_hash = $1", id_hash(sid), text
    )


# --- TOTP enrolment ------------------------------------------------------------------------


async def enrol_page(request: web.Request) -> web.Response:
    desk, s, user, _ = staged(request, ("ok", "enrol"))
    secret = pyotp.random_base32()
    await desk.sessions.update(s, pending={**s.pending, "totp_new": secret})
    return _enrol_form(request, s, user.login, secret, None, 200)


def _enrol_form(request: web.Request, s: Session, login: str, secret: str, error: str | None,
                status: int) -> web.Response:  # fmt: skip
    uri = pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=ISSUER)
    return render(request, "enrol.html", {
        "qr": qr_svg(uri), "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "error": error, "csrf_enrol": s.csrf, "codes": None,
    }, viewer(request), status=status)  # fmt: skip


async def enrol_post(request: web.Request) -> web.StreamResponse:
    desk, s, user, yaml_hash = staged(request, ("ok", "enrol"))
    form = await _check_csrf(request, s)
    secret = s.pending.get("totp_new")
    if not secret:
        raise web.HTTPFound("/account/2fa")
    code = "".join(str(form.get("code", "")).split())[:12]
    now = wall()
    if not code.isdigit() or totp_step(secret, code, now) is None:
        await record(request, "totp_enrol_failed", user)
        return _enrol_form(
            request, s, user.login, secret, "验证码不正确，请核对手机时间后重试", 422
        )
    codes = new_recovery_codes()
    await desk.credentials.enrol_totp(user.login, secret, now, codes)
    await desk.credentials.use_totp_step(user.login, totp_step(secret, code, now) or 0)
    await record(request, "totp_enrolled", user)
    nxt = "/"
    if s.stage == "enrol":
        account = await account_of(desk, user, yaml_hash, now)
        response = await advance(request, desk, s, user, yaml_hash, after_code(desk, account, now))
        nxt = response.headers["Location"]
        cookie = response.cookies[SESSION_COOKIE]
    else:
        await desk.sessions.update(
            s, pending={k: v for k, v in s.pending.items() if k != "totp_new"}
        )
        cookie = None
    page = render(request, "recovery.html", {"codes": codes, "next": nxt}, viewer(request))
    if cookie is not None:
        page.cookies[SESSION_COOKIE] = cookie
    return page


async def recovery_post(request: web.Request, v: Viewer) -> web.StreamResponse:
    desk = request.app[DESK]
    codes = new_recovery_codes()
    await desk.credentials.set_recovery(v.user.login, codes)
    await record(request, "recovery_codes_renewed", v.user)
    return render(request, "recovery.html", {"codes": codes, "next": "/account"}, v)


# --- 账号 (supervisor) ---------------------------------------------------------------------


async def accounts_page(request: web.Request, v: Viewer) -> web.Response:
    desk = request.app[DESK]
    _admin(v)
    data = await accounts_data(desk, wall())
    if request.path.endswith(".json"):
        return web.json_response(data, dumps=_dumps)
    return render(request, "accounts.html", data, v)


def _dumps(o: Any) -> str:
    import json

    return json.dumps(o, ensure_ascii=False, default=lambda x: x.isoformat())


async def accounts_data(desk: Desk, now: datetime) -> dict[str, Any]:
    locked = {r["login"]: r for r in await desk.throttle.locked(now)}
    sessions = {r["login"]: r for r in await desk.sessions.active(now)}
    creds = await desk.credentials.all()
    rows = []
    for login, (user, _) in sorted(desk.users().items()):
        rows.append({
            "login": login, "name": user.name, "role": user.role,
            "role_label": ROLE_LABELS.get(user.role, user.role), "unit": user.unit,
            "two_factor": bool(creds.get(login, {}).get("totp_enrolled_at")),
            "locked_until": locked[login]["locked_until"] if login in locked else None,
            "sessions": sessions[login]["n"] if login in sessions else 0,
            "seen": sessions[login]["seen"] if login in sessions else None,
        })  # fmt: skip
    unknown = [r for name, r in locked.items() if name not in desk.users()]
    return {"accounts": rows, "locked_unknown": unknown}


def _admin(v: Viewer) -> None:
    if v.user.role not in ADMIN_ROLES:
        raise web.HTTPForbidden(text="无权操作：账号管理仅限热线专员")


async def unlock_post(request: web.Request, v: Viewer) -> web.StreamResponse:
    _admin(v)
    desk = request.app[DESK]
    login = str((await request.post()).get("login", ""))[:64]
    if await desk.throttle.unlock(login):
        await record(request, "account_unlocked", v.user, account=login)
        await desk.sessions.update(v.session, flash=f"已解锁账号 {login}")
    raise web.HTTPSeeOther("/accounts")


async def end_sessions_post(request: web.Request, v: Viewer) -> web.StreamResponse:
    _admin(v)
    desk = request.app[DESK]
    login = str((await request.post()).get("login", ""))[:64]
    if login:
        n = await desk.sessions.end_login(login, keep=v.session)
        await record(request, "sessions_ended", v.user, account=login, count=n)
        text = f"已结束 {login} 的 {n} 个登录会话"
    else:
        n = await desk.sessions.end_all(keep=v.session)
        await record(request, "sessions_ended", v.user, account="*", count=n)
        text = f"已结束其他全部 {n} 个登录会话"
    await desk.sessions.update(v.session, flash=text)
    raise web.HTTPSeeOther("/accounts")


async def reset_2fa_post(request: web.Request, v: Viewer) -> web.StreamResponse:
    _admin(v)
    desk = request.app[DESK]
    login = str((await request.post()).get("login", ""))[:64]
    await desk.credentials.reset_two_factor(login)
    n = await desk.sessions.end_login(login, keep=v.session)
    await record(request, "two_factor_reset", v.user, account=login, sessions_ended=n)
    await desk.sessions.update(v.session, flash=f"已重置 {login} 的两步验证，其下次登录时重新绑定")
    raise web.HTTPSeeOther("/accounts")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/account", signed_in(account_page))
    r.add_get("/account/password", password_page)
    r.add_post("/account/password", password_post)
    r.add_get("/account/2fa", enrol_page)
    r.add_post("/account/2fa", enrol_post)
    r.add_post("/account/recovery", signed_in(recovery_post))
    r.add_get("/accounts", signed_in(accounts_page))
    r.add_get("/accounts.json", signed_in(accounts_page))
    r.add_post("/accounts/unlock", signed_in(unlock_post))
    r.add_post("/accounts/end-sessions", signed_in(end_sessions_post))
    r.add_post("/accounts/reset-2fa", signed_in(reset_2fa_post))


_ = SESSION
