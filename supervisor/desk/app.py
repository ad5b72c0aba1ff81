"""Wiring the desk into the daemon's aiohttp app: `setup_desk(app, host)`, sessions, sign-in.

The host (the Daemon, or a test's stand-in) provides the pool, the Supervisor (its runtime and
clock), the loaded configuration and the last reload's result; see DeskHost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp_jinja2
import asyncpg
import jinja2
from aiohttp import web

from supervisor.config.yamlconf import ConfigInvalid
from supervisor.desk import auth
from supervisor.desk.index import DeadlineIndex
from supervisor.desk.users import User, hash_password, load_users, verify

log = logging.getLogger("hotline.desk")
HERE = Path(__file__).resolve().parent


class DeskHost(Protocol):
    pool: asyncpg.Pool
    supervisor: Any  # supervisor.application.Supervisor: .runtime, .clock
    loaded: Any  # supervisor.config.settings.Loaded: .config_dir, .warnings, .calendar


@dataclass
class Desk:
    host: DeskHost
    key: bytes
    users_path: Path
    limiter: auth.SignInLimiter = field(default_factory=auth.SignInLimiter)
    extra_users: dict[str, tuple[User, str]] = field(default_factory=dict)  # run --demo
    index: DeadlineIndex | None = None
    nav_extra: list[tuple[str, str]] = field(default_factory=list)  # (path, label): 统计, 导入
    nav_roles: dict[str, frozenset[str]] = field(default_factory=dict)  # path -> who sees it
    _users: tuple[float, dict[str, tuple[User, str]]] | None = None
    users_error: str | None = None
    choices: dict[str | None, tuple[float, dict[str, list[str]]]] = field(default_factory=dict)

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
            self._users = (mtime, loaded)
        return {**self._users[1], **self.extra_users}

    def add_ephemeral_user(self, login: str, role: str, password: str) -> User:
        user = User(login, role, None, login)
        self.extra_users[login] = (user, hash_password(password))
        return user

    @property
    def runtime(self) -> Any:
        return self.host.supervisor.runtime

    def now(self) -> Any:
        return self.host.supervisor.clock.now()


DESK = web.AppKey("desk", Desk)


@dataclass(frozen=True)
class Viewer:
    user: User
    session: auth.Session


def _session(request: web.Request) -> auth.Session | None:
    return auth.unsign(request.cookies.get(auth.COOKIE), request.app[DESK].key, auth.wall())


def _set_cookie(response: web.StreamResponse, session: auth.Session, key: bytes) -> None:
    response.set_cookie(
        auth.COOKIE, auth.sign(session, key), httponly=True, samesite="Lax", path="/",
        max_age=auth.SESSION_S,
    )  # fmt: skip


def viewer(request: web.Request) -> Viewer | None:
    session = _session(request)
    if session is None or session.login is None:
        return None
    entry = request.app[DESK].users().get(session.login)
    return Viewer(entry[0], session) if entry else None


Handler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]
GRID_PATHS = ("/grid", "/demands", "/signout")  # all a grid member may open


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
            raise web.HTTPFound(f"/signin?next={quote(request.path_qs)}")
        if v.user.role == "grid" and not request.path.startswith(GRID_PATHS):
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
                return web.Response(
                    status=403, text="CSRF 校验失败：请刷新页面后重试", content_type="text/plain"
                )
        return await handler(request, v)

    return wrapped


def render(request: web.Request, template: str, context: dict[str, Any], v: Viewer | None,
           session: auth.Session | None = None, status: int = 200) -> web.Response:  # fmt: skip
    desk = request.app[DESK]
    ctx = {
        **context,
        "me": v.user if v else None,
        "csrf": v.session.csrf if v else (session.csrf if session else ""),
        "nav_extra": [
            (p, label)
            for p, label in desk.nav_extra
            if v is not None and v.user.role in desk.nav_roles.get(p, {v.user.role})
        ],
        "path": request.path,
        "warnings": desk_warnings(desk),
    }
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    if session is not None:
        _set_cookie(response, session, desk.key)
    return response


def desk_warnings(desk: Desk) -> list[str]:
    """The configuration's warnings in Chinese: the calendar gap in words, the rest as given."""
    from supervisor.desk.format import calendar_warning

    cal = desk.runtime.policy.calendar
    year = desk.now().astimezone(cal.tz).year
    gap = calendar_warning(cal.uncovered_years(range(year, year + 2)), cal.config.missing_year)
    rest = [f"配置提示：{w}" for w in desk.host.loaded.warnings if not w.startswith("calendar:")]
    return ([gap] if gap else []) + rest


async def audit(pool: asyncpg.Pool, **row: Any) -> None:
    await pool.execute(
        """INSERT INTO desk_audit (at, actor, role, unit, action, remote, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        row["at"], row["actor"], row.get("role"), row.get("unit"), row["action"],
        row.get("remote"), row.get("detail", {}),
    )  # fmt: skip


def _remote(request: web.Request) -> str:
    return request.remote or "-"


def _safe_next(value: str | None) -> str:
    # a path on this site only: "//host" and "/\\host" are other sites to a browser
    ok = value and value.startswith("/") and not value.startswith(("//", "/\\"))
    return value if ok and value else "/"


async def signin_page(request: web.Request) -> web.Response:
    session = _session(request) or auth.Session.new(None, auth.wall())
    return render(request, "signin.html", {"next": _safe_next(request.query.get("next")), "error": None,
                  "no_users": not request.app[DESK].users()}, None, session)  # fmt: skip


async def signin_post(request: web.Request) -> web.StreamResponse:
    desk = request.app[DESK]
    form = await request.post()
    session = _session(request)
    login = str(form.get("login", "")).strip()[:64]
    nxt = _safe_next(str(form.get("next", "/")))
    if not auth.csrf_ok(session, str(form.get("csrf", ""))):
        return web.Response(
            status=403, text="CSRF 校验失败：请刷新页面后重试", content_type="text/plain"
        )
    assert session is not None
    now, remote = auth.wall(), _remote(request)
    wait = desk.limiter.blocked(login, remote, now)
    if wait > 0:
        await audit(
            desk.host.pool, at=desk.now(), actor=login, action="sign_in_limited", remote=remote
        )
        return render(request, "signin.html", {"next": nxt, "no_users": False,
                      "error": f"登录失败次数过多，请{int(wait // 60) + 1}分钟后再试"}, None, session, status=429)  # fmt: skip
    # argon2 takes tens of milliseconds of CPU: off the event loop
    user = await asyncio.get_running_loop().run_in_executor(
        None, verify, desk.users(), login, str(form.get("password", ""))
    )
    if user is None:
        desk.limiter.failed(login, remote, now)
        await audit(
            desk.host.pool, at=desk.now(), actor=login, action="sign_in_failed", remote=remote
        )
        return render(request, "signin.html", {"next": nxt, "no_users": False,
                      "error": "用户名或密码错误"}, None, session, status=401)  # fmt: skip
    desk.limiter.succeeded(login)
    await audit(desk.host.pool, at=desk.now(), actor=user.login, role=user.role, unit=user.unit,
                action="sign_in", remote=remote)  # fmt: skip
    response = web.HTTPFound(nxt)
    _set_cookie(response, auth.Session.new(user.login, now), desk.key)  # a new token on sign-in
    raise response


async def signout(request: web.Request, v: Viewer) -> web.StreamResponse:
    desk = request.app[DESK]
    await audit(desk.host.pool, at=desk.now(), actor=v.user.login, role=v.user.role,
                unit=v.user.unit, action="sign_out", remote=_remote(request))  # fmt: skip
    response = web.HTTPFound("/signin")
    _set_cookie(response, auth.Session.new(None, auth.wall()), desk.key)
    raise response


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
    from supervisor.desk import pages

    desk = Desk(host, auth.desk_key(env, key_file), Path(host.loaded.config_dir) / "users.yaml")
    desk.index = DeadlineIndex(host.pool, lambda: host.supervisor.runtime.policy)
    app[DESK] = desk
    env_ = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
    )  # fmt: skip
    pages.add_filters(env_)
    app.router.add_static("/static/desk/", HERE / "static", name="desk_static")
    app.router.add_get("/signin", signin_page)
    app.router.add_post("/signin", signin_post)
    app.router.add_post("/signout", signed_in(signout))
    pages.add_routes(app)
    from supervisor.desk.demands import mount_demands
    from supervisor.desk.reviews import mount_reviews

    mount_reviews(app)  # 待审核
    mount_demands(app)  # 登记诉求
    if extras:
        from supervisor.desk.extras import mount_stats_and_import

        mount_stats_and_import(app, desk, Path(key_file).parent)
    if run_index:
        app.cleanup_ctx.append(_index_task)
    return desk


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
