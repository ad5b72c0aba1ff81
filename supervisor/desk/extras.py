"""The desk's 统计 and 导入 pages: the stats and imports modules' routes, mounted in the desk's
layout behind its sign-in, its roles and its CSRF tokens.

统计 (/stats, its JSON twin /stats.json, the exports and the kept monthly files): supervisor and
leader; a unit user (head, liaison) gets 403, and the navigation does not show them the item.
导入 (/import): the supervisor only (403 for everyone else). Not signed in: the sign-in page
(401 for the JSON twin). Both POSTs of the import carry the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

import supervisor.imports as imports_pkg
import supervisor.stats as stats_pkg
from supervisor.desk import auth
from supervisor.desk.app import Desk, add_page, render, viewer
from supervisor.imports.web import Csrf, setup_import_routes
from supervisor.stats.command import REPORTS_DIR
from supervisor.stats.web import setup_stats_routes

STATS_ROLES = frozenset({"supervisor", "leader"})
IMPORT_ROLES = frozenset({"supervisor"})
STATS_PATH, IMPORT_PATH = "/stats", "/import"


def guard(roles: frozenset[str], refusal: str) -> Callable[[web.Request], Awaitable[None]]:
    """Signed in (else the sign-in page, or 401 for JSON) and in `roles` (else 403)."""

    async def check(request: web.Request) -> None:
        v = viewer(request)
        if v is None:
            if request.path.endswith(".json"):
                raise web.HTTPUnauthorized(
                    text='{"error": "请先登录 (sign in first)"}', content_type="application/json"
                )
            back = request.path_qs if request.method == "GET" else request.path.rsplit("/", 1)[0]
            raise web.HTTPFound(f"/signin?next={quote(back)}")
        if v.user.role not in roles:
            raise web.HTTPForbidden(text=refusal, content_type="text/plain")

    return check


def _in_layout(template: str) -> Callable[[web.Request, dict[str, Any]], web.StreamResponse]:
    def page(request: web.Request, context: dict[str, Any]) -> web.StreamResponse:
        return render(request, template, context, viewer(request))

    return page


def _token(request: web.Request) -> str:
    v = viewer(request)
    return v.session.csrf if v else ""


def _token_ok(request: web.Request, given: str | None) -> bool:
    v = viewer(request)
    return v is not None and auth.csrf_ok(v.session, given)


def mount_stats_and_import(app: web.Application, desk: Desk, var_dir: Path) -> None:
    """统计 and 导入 in the desk; uploads wait under var_dir/imports until confirmed."""
    host = desk.host
    setup_stats_routes(
        app, pool=host.pool, policy=lambda: host.supervisor.runtime.policy,
        reports_dir=REPORTS_DIR, prefix=STATS_PATH, now=desk.now,
        guard=guard(STATS_ROLES, "无权查看：统计仅限热线专员和分管领导"),
        page_render=_in_layout("desk_stats.html"),
    )  # fmt: skip
    add_page(app, "统计", STATS_PATH, Path(stats_pkg.__file__).parent / "templates", STATS_ROLES)
    setup_import_routes(
        app, supervisor=lambda: host.supervisor,
        mapping_path=Path(host.loaded.config_dir) / "import.yaml",
        upload_dir=var_dir / "imports", prefix=IMPORT_PATH,
        guard=guard(IMPORT_ROLES, "无权操作：导入仅限热线专员"),
        csrf=Csrf(_token, _token_ok), page_render=_in_layout("desk_import.html"),
    )  # fmt: skip
    add_page(
        app, "导入", IMPORT_PATH, Path(imports_pkg.__file__).parent / "templates", IMPORT_ROLES
    )
