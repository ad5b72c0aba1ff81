"""The desk's 统计 (statistics) page: the monthly report as HTML, its JSON twin, the kept monthly
files to download. Self-contained aiohttp handlers; the desk mounts them behind its sign-in.

    setup_stats_routes(app, pool=pool, policy=lambda: supervisor.runtime.policy,
                       reports_dir=Path("var/reports"), prefix="/desk/stats", guard=desk_guard)

`guard(request)` (optional, async) runs first in every handler and raises (e.g. HTTPFound to the
sign-in page, HTTPForbidden) when the person may not see statistics. `page_render(request,
context)` (optional) renders the page inside a host's layout (the desk's, from its template
desk_stats.html, which includes report_body.html); without it the page is report.html alone. The page and the JSON come
from one computation, so they cannot disagree. The URL is the interface: ?month=YYYY-MM, or
?from=YYYY-MM-DD&to=YYYY-MM-DD.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from supervisor.core.clock import SHANGHAI
from supervisor.engine.policy import Policy
from supervisor.stats.command import build, kept, period_from, render
from supervisor.stats.html import context, render_html

Guard = Callable[[web.Request], Awaitable[None]]
PageRender = Callable[[web.Request, dict[str, Any]], web.StreamResponse]
_FILE = re.compile(r"^\d{4}-\d{2}(_\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2})?\.xlsx$")


def setup_stats_routes(
    app: web.Application,
    *,
    pool: asyncpg.Pool,
    policy: Callable[[], Policy],
    reports_dir: Path = Path("var/reports"),
    prefix: str = "/desk/stats",
    guard: Guard | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(SHANGHAI),
    page_render: PageRender | None = None,
) -> None:
    async def report_for(request: web.Request, latest: bool = False) -> dict[str, Any]:
        if guard is not None:
            await guard(request)
        q = request.query
        month = q.get("month")
        if latest and not (month or q.get("from") or q.get("to")):
            month = await latest_month(pool, now())
        try:
            period = period_from(month, q.get("from"), q.get("to"), now())
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"参数错误：{exc}") from None
        return await build(pool, policy(), period, now())

    async def page(request: web.Request) -> web.StreamResponse:
        report = await report_for(request, latest=True)
        months = [{"name": p.stem, "href": f"{prefix}/files/{p.name}"} for p in kept(reports_dir)]
        month = report["period"]["from"][:7]
        nav = _nav(prefix, month)
        if page_render is not None:
            return page_render(request, context(report, months=months, nav=nav))
        return web.Response(
            text=render_html(report, months=months, nav=nav),
            content_type="text/html",
            charset="utf-8",
        )

    async def as_json(request: web.Request) -> web.Response:
        report = await report_for(request, latest=True)  # the page's twin: the same period
        return web.Response(
            body=render(report, "json"), content_type="application/json", charset="utf-8"
        )

    async def export(request: web.Request) -> web.Response:
        fmt = request.match_info["fmt"]
        report = await report_for(request)
        p = report["period"]
        name = f"report-{p['from']}_{p['to']}.{fmt}"
        types = {
            "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "csv": "text/csv",
        }
        return web.Response(
            body=render(report, fmt),
            content_type=types[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def download(request: web.Request) -> web.StreamResponse:
        if guard is not None:
            await guard(request)
        name = request.match_info["name"]
        path = reports_dir / name
        if not _FILE.match(name) or not path.is_file():
            raise web.HTTPNotFound(text="没有这个月的报表文件")
        return web.FileResponse(
            path, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    app.router.add_get(prefix, page)
    app.router.add_get(prefix + ".json", as_json)
    app.router.add_get(prefix + "/export.{fmt:(xlsx|csv)}", export)
    app.router.add_get(prefix + "/files/{name}", download)


async def latest_month(pool: asyncpg.Pool, now: datetime) -> str | None:
    """The latest month with tickets received, up to now ("2026-12"): the page opens on figures,
    not on an empty month. None without any ticket (then the previous month, as the report)."""
    async with pool.acquire() as conn:
        at = await conn.fetchval(
            "SELECT max(at) FROM events WHERE type = 'created' AND at <= $1", now
        )
    return None if at is None else f"{at.astimezone(SHANGHAI):%Y-%m}"


def _nav(prefix: str, month: str) -> Any:
    from markupsafe import Markup, escape

    query = f"month={escape(month)}"
    return Markup(
        f'<nav class="no-print"><form method="get" action="{escape(prefix)}">月份 '
        f'<input type="month" name="month" value="{escape(month)}"> <button>查看</button> '
        f'<a href="{escape(prefix)}/export.xlsx?{query}">下载电子表格（.xlsx）</a> '
        f'<a href="{escape(prefix)}/export.csv?{query}">下载逗号分隔文件（.csv）</a> '
        f'<a href="{escape(prefix)}.json?{query}">数据文件（.json）</a></form></nav>'
    )
