"""Wiring the desk into the daemon's aiohttp app: `setup_desk(app, host)`, sessions, sign-in.

The host (the Daemon, or a test's stand-in) provides the pool, the Supervisor (its runtime and
clock), the loaded configuration and the last reload's result; see DeskHost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp_jinja2
import asyncpg
import jinja2
from aiohttp import web

from supervisor.config.desk_security import DeskSecurity
from supervisor.config.yamlconf import ConfigInvalid
from supervisor.desk import auth
from supervisor.desk.credentials import Credentials
from supervisor.desk.index import DeadlineIndex
from supervisor.desk.refused import audit_refused_signin
from supervisor.desk.sessions import Session, SessionStore
from supervisor.desk.throttle import Throttle
from supervisor.desk.users import User, hash_password, load_users
from supervisor.hooks import REFUSED

log = logging.getLogger("hotline.desk")
HERE = Path(__file__).resolve().parent


class DeskHost(Protocol):
    pool: asyncpg.Pool
    supervisor: Any  # supervisor.application.Supervisor: .runtime, .clock
    loaded: Any  # supervisor.config.settings.Loaded: .config_dir, .warnings, .calendar


@dataclass
class Desk:
    host: DeskHost
    key: bytes  # signs the pre-sign-in cookie (its CSRF token); sessions are server-side
    users_path: Path
    security: DeskSecurity = field(default_factory=DeskSecurity)
    extra_users: dict[str, tuple[User, str]] = field(default_factory=dict)  # run --demo
    index: DeadlineIndex | None = None
    nav_extra: list[tuple[str, str]] = field(default_factory=list)  # (path, label): 统计, 导入
    nav_roles: dict[str, frozenset[str]] = field(default_factory=dict)  # path -> who sees it
    _users: tuple[float, dict[str, tuple[User, str]]] | None = None
    users_error: str | None = None
    choices: dict[str | None, tuple[float, dict[str, list[str]]]] = field(default_factory=dict)
    demo_two_factor: bool = False  # `run --demo` asked for two-factor on the demo account
    user_changes: list[tuple[str, str]] = field(default_factory=list)  # (action, login): audited

    def __post_init__(self) -> None:
        self.sessions = SessionStore(self.host.pool, self.security)
        self.throttle = Throttle(self.host.pool, self.security)
        self.credentials = Credentials(self.host.pool)

    def users(self) -> dict[str, tuple[User, str]]:
        """users.yaml, re-read when it changes; an invalid edit keeps the last good accounts."""
        try:
            mtime = self.users_path.stat().st_mtime
        except FileNotFoundError:
            mtime = -1.0
        if self._users is None or self._users[0] != mtime:
            try:
                loaded = load_users(self.users_path)
                self.users_error = None
            except ConfigInvalid as exc:
                self.users_error = str(exc)
                log.error(
                    "users.yaml refused; the previous accounts stay", extra={"errors": str(exc)}
                )
                loaded = self._users[1] if self._users else {}
            if self._users is not None:
                self.user_changes.extend(_changes(self._users[1], loaded))
            self._users = (mtime, loaded)
        return {**self._users[1], **self.extra_users}

    def add_ephemeral_user(self, login: str, role: str, password: str) -> User:
        user = User(login, role, None, login)
        self.extra_users[login] = (user, hash_password(password))
        return user

    def two_factor_for(self, user: User) -> bool:
        """Two-factor sign-in is required for the configured roles; the in-memory account of
        `run --demo` is spared unless the demo asked for it."""
        if user.login in self.extra_users and not self.demo_two_factor:
            return False
        return user.role in self.security.two_factor_roles

    @property
    def runtime(self) -> Any:
        return self.host.supervisor.runtime

    def now(self) -> Any:
        return self.host.supervisor.clock.now()


def _changes(
    old: dict[str, tuple[User, str]], new: dict[str, tuple[User, str]]
) -> list[tuple[str, str]]:
    """What an edit of users.yaml did, for the audit trail."""
    out = [("user_added", login) for login in new.keys() - old.keys()]
    out += [("user_removed", login) for login in old.keys() - new.keys()]
    out += [("user_changed", login) for login in old.keys() & new.keys() if old[login] != new[login]]
    return sorted(out, key=lambda x: x[1])


DESK = web.AppKey("desk", Desk)
@dataclass(frozen=True)
class Viewer:
    user: User
    session: Session


# request keys: the live session (any stage), the signed-in viewer, the notice to show once
SESSION = web.RequestKey("desk_session", Session)
VIEWER = web.RequestKey("desk_viewer", Viewer)
FLASH = web.RequestKey("desk_flash", str)


def fingerprint(user: User, password_hash: str) -> str:
    """What a session was signed in as: a change of role, unit or password ends it."""
    raw = f"{user.role}|{user.unit}|{password_hash}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def pre_session(request: web.Request) -> auth.Session | None:
    """The signed cookie of a visitor not signed in: only the sign-in form's CSRF token."""
    return auth.unsign(request.cookies.get(auth.PRE_COOKIE), request.app[DESK].key, auth.wall())


def secure_request(request: web.Request) -> bool:
    sec = request.app[DESK].security
    if sec.secure_cookie != "auto":
        return sec.secure_cookie == "always"
    if request.secure:
        return True
    return sec.trust_proxy and request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_session_cookie(request: web.Request, response: web.StreamResponse, sid: str) -> None:
    # no max_age: a browser session cookie; the server ends it (idle, lifetime) anyway
    response.set_cookie(auth.COOKIE, sid, httponly=True, path="/", secure=secure_request(request),
                        samesite=request.app[DESK].security.same_site)  # fmt: skip
    response.del_cookie(auth.PRE_COOKIE, path="/")


def set_pre_cookie(
    request: web.Request, response: web.StreamResponse, session: auth.Session
) -> None:
    response.set_cookie(
        auth.PRE_COOKIE, auth.sign(session, request.app[DESK].key), httponly=True, path="/",
        secure=secure_request(request), samesite=request.app[DESK].security.same_site,
        max_age=auth.PRE_S,
    )  # fmt: skip


def viewer(request: web.Request) -> Viewer | None:
    """The signed-in viewer of this request (resolved once by the desk's middleware)."""
    return request.get(VIEWER)


def remote(request: web.Request) -> str:
    """The client's address: the proxy's word for it when trust_proxy, else the peer's."""
    if request.app[DESK].security.trust_proxy:
        real = request.headers.get("X-Real-IP", "").strip()
        fwd = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if real or fwd:
            return (real or fwd)[:64]
    return request.remote or "-"


_remote = remote

Handler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]
STAGE_PAGES = {"code": "/signin/code", "enrol": "/account/2fa", "change": "/account/password"}
GRID_PATHS = ("/grid", "/demands", "/signout", "/account/")  # all a grid member may open,
# with their own 我的账号 (/account: password, two-factor)


def signed_in(
    handler: Handler, *, json_only: bool = False
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Pages need a signed-in user (else the sign-in page); POSTs need the session's CSRF token."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        v = viewer(request)
        wants_json = json_only or request.path.endswith(".json")
        if v is None:
            if wants_json:
                return web.json_response({"error": "请先登录 (sign in first)"}, status=401)
            pending = request.get(SESSION)
            if pending is not None and pending.stage in STAGE_PAGES:
                raise web.HTTPFound(STAGE_PAGES[pending.stage])
            raise web.HTTPFound(f"/signin?next={quote(request.path_qs)}")
        if (v.user.role == "grid" and request.path != "/account"
                and not request.path.startswith(GRID_PATHS)):  # fmt: skip
            # a grid member's desk is their grids and the registration form (desk/demands.py)
            if wants_json:
                return web.json_response(
                    {"error": "网格员仅可使用登记诉求和本网格工单"}, status=403
                )
            raise web.HTTPFound("/grid")
        if request.method == "POST":
            form = await request.post()
            given = request.headers.get("X-CSRF-Token") or form.get("csrf")
            if not auth.csrf_ok(v.session, given if isinstance(given, str) else None):
                raise web.HTTPForbidden(text="CSRF 校验失败：请刷新页面后重试")
        return await handler(request, v)

    return wrapped


def render(request: web.Request, template: str, context: dict[str, Any], v: Viewer | None,
           session: auth.Session | None = None, status: int = 200) -> web.Response:  # fmt: skip
    desk = request.app[DESK]
    pending = request.get(SESSION)
    ctx = {
        "flash": request.get(FLASH),
        "lock_after": desk.security.lock_after,
        "lock_minutes": desk.security.lock_s // 60,
        **context,
        "me": v.user if v else None,
        "csrf": v.session.csrf
        if v
        else (session.csrf if session else (pending.csrf if pending else "")),
        "nav_extra": [
            (p, label)
            for p, label in desk.nav_extra
            if v is not None and v.user.role in desk.nav_roles.get(p, {v.user.role})
        ],
        "path": request.path,
        "warnings": desk_warnings(desk, v, request.path) if v else [],
        "outages": outage_banner(desk),
    }
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    if session is not None:
        set_pre_cookie(request, response, session)
    return response


PROVIDER_LABELS = {"twilio": "Twilio（短信、电话）", "aliyun_sms": "阿里云短信",
                   "tencent_sms": "腾讯云短信", "wecom": "企业微信机器人", "dingtalk": "钉钉机器人"}  # fmt: skip


def outage_banner(desk: Desk) -> list[str]:
    """A provider that is down, for everyone signed in (the daemon's `outages`, as any live
    daemon's breaker sees them: server/daemon.py)."""
    from supervisor.core.clock import SHANGHAI

    outages: dict[str, datetime] = getattr(desk.host, "outages", None) or {}
    return [
        f"{PROVIDER_LABELS.get(p, p)}自{since.astimezone(SHANGHAI):%H:%M}起无法发送："
        "督办提醒已暂存，恢复后自动补发；紧急事项请电话联系。"
        for p, since in sorted(outages.items())
    ]


def desk_warnings(desk: Desk, v: Viewer | None, path: str) -> list[tuple[str, str | None]]:
    """The configuration's warnings, for the supervisors who can act on them (a unit's liaison
    cannot enter a calendar): (text in Chinese, the page to fix it on). The calendar gap points at
    日历, and is not repeated on 日历 itself, which says it in its own words."""
    from supervisor.desk.format import calendar_warning

    if v is None or v.user.role != "supervisor":
        return []
    cal = desk.runtime.policy.calendar
    year = desk.now().astimezone(cal.tz).year
    gap = calendar_warning(cal.uncovered_years(range(year, year + 2)), cal.config.missing_year)
    out: list[tuple[str, str | None]] = []
    if gap and not path.startswith("/calendar"):
        out.append((gap, "/calendar"))
    rest = [w for w in desk.host.loaded.warnings if not w.startswith("calendar:")]
    return out + [(f"配置提示：{w}", None) for w in rest]


async def audit(pool: asyncpg.Pool, **row: Any) -> None:
    await pool.execute(
        """INSERT INTO desk_audit (at, actor, role, unit, action, remote, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        row["at"], row["actor"], row.get("role"), row.get("unit"), row["action"],
        row.get("remote"), row.get("detail", {}),
    )  # fmt: skip


async def record(
    request: web.Request, action: str, user: User | None = None, actor: str | None = None,
    **detail: Any,
) -> None:  # fmt: skip
    """An audit row for this request: who (the user, else `actor`), role, unit, from where."""
    desk = request.app[DESK]
    await audit(desk.host.pool, at=desk.now(), actor=user.login if user else (actor or "-"),
                role=user.role if user else None, unit=user.unit if user else None,
                action=action, remote=remote(request), detail=detail)  # fmt: skip


def setup_desk(
    app: web.Application,
    host: DeskHost,
    *,
    env: dict[str, str] | None = None,
    key_file: Path | str = auth.KEY_FILE,
    run_index: bool = True,
    extras: bool = True,
) -> Desk:
    """Add the desk's pages, its JSON twins and GET /api/v1/tickets to the daemon's app; with
    `run_index`, the deadline index runs as a background task of the app; with `extras`, the
    统计 and 导入 pages (desk.extras; uploads kept next to the key file)."""
    from supervisor.desk import account, auditlog, guard, pages, signin

    desk = Desk(host, auth.desk_key(env, key_file), Path(host.loaded.config_dir) / "users.yaml",
                security=_security(host))  # fmt: skip
    desk.index = DeadlineIndex(host.pool, lambda: host.supervisor.runtime.policy)
    app[DESK] = desk
    app[REFUSED] = audit_refused_signin  # a sign-in refused at the edge is audited too
    env_ = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
    )  # fmt: skip
    pages.add_filters(env_)
    guard.install(app)
    app.router.add_get("/desk-css/{name:(report_style|import_style)}.css", _included_css)
    app.router.add_static("/static/desk/", HERE / "static", name="desk_static")
    signin.add_routes(app)
    account.add_routes(app)
    auditlog.add_routes(app)
    pages.add_routes(app)
    from supervisor.desk.demands import mount_demands
    from supervisor.desk.reviews import mount_reviews

    mount_reviews(app)  # 待审核
    mount_demands(app)  # 登记诉求
    if extras:
        from supervisor.desk.extras import mount_stats_and_import

        mount_stats_and_import(app, desk, Path(key_file).parent)
    add_page(app, "审计", "/audit", roles=auditlog.ROLES)
    add_page(app, "账号", "/accounts", roles=account.ADMIN_ROLES)
    if run_index:
        app.cleanup_ctx.append(_index_task)
        app.cleanup_ctx.append(auditlog.housekeeping)
    return desk


def _security(host: DeskHost) -> DeskSecurity:
    settings = getattr(host.loaded, "settings", None)  # tests' and benches' stand-in hosts
    return settings.desk.security if settings is not None else DeskSecurity()


async def _included_css(request: web.Request) -> web.Response:
    """The <style> of the stats and import templates as a stylesheet: the desk's CSP allows no
    inline style, and the standalone report files keep theirs."""
    name = request.match_info["name"] + ".html"
    env = aiohttp_jinja2.get_env(request.app)
    assert env.loader is not None
    text, _, _ = env.loader.get_source(env, name)
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    css = re.sub(r"</?style>", "", text).strip() + "\n"
    return web.Response(text=css, content_type="text/css")


def add_page(
    app: web.Application,
    label: str,
    path: str,
    templates: Path | None = None,
    roles: frozenset[str] | None = None,
) -> None:
    """For the pages other modules add (统计, 导入): a link in the navigation (shown to `roles`
    only, when given) and, optionally, their template folder, whose templates may extend the
    desk's `base.html`. Register the route yourself and wrap the handler in `signed_in`."""
    app[DESK].nav_extra.append((path, label))
    if roles is not None:
        app[DESK].nav_roles[path] = roles
    if templates is not None:
        env = aiohttp_jinja2.get_env(app)
        env.loader = jinja2.ChoiceLoader([env.loader, jinja2.FileSystemLoader(str(templates))])  # type: ignore[list-item]


async def _index_task(app: web.Application) -> AsyncIterator[None]:
    desk = app[DESK]
    stop, wake = asyncio.Event(), asyncio.Event()
    assert desk.index is not None
    task = asyncio.create_task(desk.index.run(stop, wake), name="desk-index")
    yield
    stop.set()
    wake.set()
    await task
