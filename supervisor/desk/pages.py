"""The desk's pages and their JSON twins (`/tickets` and `/tickets.json` come from one view),
plus GET /api/v1/tickets for integrators (bearer token, checked by the API's middleware)."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from supervisor.config.delivery import is_report
from supervisor.core.events import MAX_YEAR, MIN_YEAR
from supervisor.core.inputs import (
    INT4_MAX,
    INT8_MAX,
    InputRefused,
    bounded_date,
    bounded_int,
    bounded_month,
    check_text,
)
from supervisor.desk import format as fmt
from supervisor.desk.ack import desk_ack
from supervisor.desk.app import DESK, Viewer, render, signed_in
from supervisor.desk.detail import build_detail
from supervisor.storage import views

PAGE = 50


def _dumps(o: Any) -> str:
    return json.dumps(o, ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return fmt.bj_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def twin(request: web.Request, data: dict[str, Any]) -> web.Response:
    return web.json_response(data, dumps=_dumps)


def _units_known(request: web.Request) -> list[str]:
    return sorted(request.app[DESK].runtime.directory.model.units)


def _scope(v: Viewer) -> str | None:
    return None if v.user.sees_all else v.user.unit


# --- 总览 -------------------------------------------------------------------------------------


async def overview_data(request: web.Request, v: Viewer) -> dict[str, Any]:
    desk = request.app[DESK]
    return await views.overview(desk.host.pool, desk.now(), _scope(v), _units_known(request))


async def overview(request: web.Request, v: Viewer) -> web.Response:
    data = await overview_data(request, v)
    if request.path.endswith(".json"):
        return twin(request, data)
    template = "overview_counts.html" if request.headers.get("HX-Request") else "overview.html"
    return render(request, template, data, v)


# --- 工单 -------------------------------------------------------------------------------------


class BadQuery(ValueError):
    pass


def parse_filter(query: Any, v: Viewer | None) -> views.TicketFilter:
    """The list's filters from a query string; a unit user's unit always applies."""

    def one(name: str) -> str | None:
        if hasattr(query, "getall") and len(query.getall(name, ())) > 1:
            raise BadQuery(f"{name}: 只能给一次 (given more than once)")
        value = query.get(name)
        return value.strip() or None if isinstance(value, str) else None

    def day(name: str) -> date | None:
        value = one(name)
        try:
            return bounded_date(name, value) if value else None
        except InputRefused as exc:
            raise BadQuery(exc.chinese) from None

    status = one("status")
    if status is not None and status not in fmt.STATUS_LABELS:
        raise BadQuery(f"status: 只能是 {', '.join(fmt.STATUS_LABELS)}")
    urgent = one("urgent")
    if urgent not in (None, "true", "false"):
        raise BadQuery("urgent: 只能是 true 或 false")
    view = one("view")
    if view is not None and view not in views.VIEWS:
        raise BadQuery(f"view: 只能是 {', '.join(views.VIEWS)}")
    after = one("after")
    if after:
        try:
            at, last = views.decode_cursor(after)
            check_text("after", last)  # a cursor is ours, but anyone can make one up
            if at != views.NO_TIME and not MIN_YEAR - 1 <= at.year <= MAX_YEAR:
                raise ValueError(at)
        except (ValueError, UnicodeDecodeError):
            raise BadQuery("after: 翻页标记无效") from None
    try:
        limit = min(max(int(one("limit") or PAGE), 1), 200)
    except ValueError:
        raise BadQuery("limit: 应为数字") from None
    unit = one("unit")
    if v is not None and not v.user.sees_all:
        unit = v.user.unit
    return views.TicketFilter(
        status=status, unit=unit, category=one("category"),
        urgent=None if urgent is None else urgent == "true", view=view,
        created_from=day("from"), created_to=day("to"), q=one("q"), after=after, limit=limit,
    )  # fmt: skip


def ticket_rows(rows: list[dict[str, Any]], now: datetime, calendar: Any) -> list[dict[str, Any]]:
    """Each row with its deadline state in working time, for the list and its twin."""
    out = []
    for r in rows:
        state = None
        natural = bool(r.get("urgent"))  # urgent deadlines count natural time (DOMAIN)
        if r["status"] == "dispatched" and r["sign_by"]:
            state = fmt.deadline_state("sign_by", r["sign_by"], now, calendar, natural=natural)
        elif r["status"] in views.HANDLING and r["reply_by"]:
            state = fmt.deadline_state("reply_by", r["reply_by"], now, calendar, natural=natural)
        out.append({**r, "deadline": state.to_json() if state else None})
    return out


async def list_data(request: web.Request, f: views.TicketFilter) -> dict[str, Any]:
    desk = request.app[DESK]
    now = desk.now()
    async with desk.host.pool.acquire() as conn:
        page = await views.tickets(conn, f, now)
    page["tickets"] = ticket_rows(page["tickets"], now, desk.runtime.policy.calendar)
    return page


async def tickets(request: web.Request, v: Viewer) -> web.Response:
    try:
        f = parse_filter(request.query, v)
    except BadQuery as exc:
        if request.path.endswith(".json"):
            return web.json_response({"error": str(exc)}, status=400, dumps=_dumps)
        raise web.HTTPBadRequest(text=str(exc)) from None
    data = await list_data(request, f)
    if request.path.endswith(".json"):
        return twin(request, data)
    choices = await _choices(request.app[DESK], _scope(v))
    query = {k: v2 for k, v2 in request.query.items() if k != "after"}
    return render(request, "tickets.html", {**data, "f": f, "query": query,
                  "units": _units_known(request), **choices}, v)  # fmt: skip


CHOICES_TTL_S = 60.0  # the categories menu: a scan of the open tickets, not worth every request


async def _choices(desk: Any, scope: str | None) -> dict[str, list[str]]:
    cached = desk.choices.get(scope)
    if cached is None or time.monotonic() - cached[0] > CHOICES_TTL_S:
        async with desk.host.pool.acquire() as conn:
            cached = desk.choices[scope] = (
                time.monotonic(),
                await views.filter_choices(conn, scope),
            )
    return cached[1]


async def api_tickets(request: web.Request) -> web.Response:
    """GET /api/v1/tickets: the list's filters and keyset pagination, for integrators."""
    try:
        f = parse_filter(request.query, None)
    except BadQuery as exc:
        return web.json_response({"error": str(exc)}, status=400, dumps=_dumps)
    return twin(request, await list_data(request, f))


# --- 工单详情 与 确认 -------------------------------------------------------------------------


async def ticket(request: web.Request, v: Viewer) -> web.Response:
    desk = request.app[DESK]
    tid = request.match_info["ticket"]
    async with desk.host.pool.acquire() as conn:
        raw = await views.ticket_detail(conn, tid)
    if raw is None or (not v.user.sees_all and raw["unit"] != v.user.unit):
        raise web.HTTPNotFound(text=f"没有工单 {tid}")
    data = build_detail(raw, desk.runtime.policy, desk.runtime.directory, desk.now(), v.user)
    if request.path.endswith(".json"):
        return twin(request, data)
    return render(request, "ticket.html", data, v)  # a notice comes from the session, not the URL


async def ack(request: web.Request, v: Viewer) -> web.StreamResponse:
    desk = request.app[DESK]
    tid = request.match_info["ticket"]
    form = await request.post()
    try:
        rule_id, cycle = str(form["rule"]), bounded_int("cycle", str(form["cycle"]), 0, INT4_MAX)
    except KeyError:
        raise web.HTTPBadRequest(text="rule 与 cycle 必填") from None
    except InputRefused as exc:
        raise web.HTTPBadRequest(text=exc.chinese) from None
    result = await desk_ack(
        desk.host.pool,
        desk.host.supervisor,
        v.user,
        tid,
        rule_id,
        cycle,
        desk.now(),
        request.remote,
    )
    if result.status == 404:
        raise web.HTTPNotFound(text=result.message)
    if not result.ok:
        return web.Response(status=result.status, text=result.message, content_type="text/plain")
    await desk.sessions.update(v.session, flash=result.message)
    raise web.HTTPSeeOther(f"/tickets/{quote(tid, safe='')}#ladders")


# --- 单位 消息 规则 日历 -----------------------------------------------------------------------


async def units(request: web.Request, v: Viewer) -> web.Response:
    desk = request.app[DESK]
    now = desk.now()
    async with desk.host.pool.acquire() as conn:
        rows = await views.units(conn, now, _scope(v), _units_known(request))
    names = {u: desk.runtime.directory.unit_name(u) for u in _units_known(request)}
    rank = 0
    for row in rows:  # worst first; a unit with nothing against it has no place in the ranking
        ranked = any(row[k] for k in ("missed_week", "overdue", "escalations_week"))
        rank += ranked
        row["rank"] = rank if ranked else None
    data = {"units": rows, "week_start": views.week_start(now), "month_start": views.month_start(now),
            "at": now, "names": names}  # fmt: skip
    return (
        twin(request, data)
        if request.path.endswith(".json")
        else render(request, "units.html", data, v)
    )


async def messages(request: web.Request, v: Viewer) -> web.Response:
    desk = request.app[DESK]
    status = request.query.get("status") or None
    if status is not None and status not in views.MESSAGE_STATUSES:
        raise web.HTTPBadRequest(text=f"status: 只能是 {', '.join(views.MESSAGE_STATUSES)}")
    try:
        raw = request.query.get("before")
        before = bounded_int("before", raw, 0, INT8_MAX) if raw else None
    except InputRefused as exc:
        raise web.HTTPBadRequest(text=exc.chinese) from None
    unit = _scope(v) or (request.query.get("unit") or None)
    async with desk.host.pool.acquire() as conn:
        data = await views.messages(conn, status, unit, before, PAGE)
    reports = {r.id: r.name for r in desk.runtime.policy.reports}
    for m in data["messages"]:
        # a periodic report's row is about no ticket: name the report instead
        m["report"] = reports.get(m["rule"], "定期报告") if is_report(m["ticket"]) else None
        # a held message says when it is planned to go (quiet hours, grouping, a closed day)
        m["planned"] = fmt.bj(m["not_before"]) if m["status"] == "pending" else None
    data.update(status=status, unit=unit)
    return (
        twin(request, data)
        if request.path.endswith(".json")
        else render(request, "messages.html", data, v)
    )


async def rules(request: web.Request, v: Viewer) -> web.Response:
    desk = request.app[DESK]
    policy = desk.runtime.policy
    async with desk.host.pool.acquire() as conn:
        pending = await views.pending_timers_per_rule(conn)
    data = {
        "rules": [{"id": r.id, "name": r.name or r.id, "description": r.description, "anchor": r.anchor,
                   "anchor_label": fmt.ANCHOR_LABELS.get(r.anchor, r.anchor),
                   "steps": [{"index": s.index, "at": str(s.offset), "when": fmt.offset_text(s.offset, r.anchor),
                              "roles": list(s.roles),
                              "channels": list(s.channels)} for s in r.steps],
                   "pending_timers": pending.get(r.id, 0)} for r in policy.rules],
        "reports": [{"id": r.id, "name": r.name or r.id, "description": r.description, "days": r.days,
                     "at": r.at, "when": fmt.schedule_text(r.days, r.at)}
                    for r in policy.reports],
        "matcher": policy.matcher.name,
        "matcher_label": fmt.MATCHER_LABELS.get(policy.matcher.name, "规则引擎"),
        "last_reload": getattr(desk.host, "last_reload", None),
        "users_error": desk.users_error,
    }  # fmt: skip
    return (
        twin(request, data)
        if request.path.endswith(".json")
        else render(request, "rules.html", data, v)
    )


def calendar_data(
    request: web.Request, v: Viewer, month: tuple[int, int] | None = None
) -> dict[str, Any]:
    from supervisor.desk.calendar_paste import page_data

    desk = request.app[DESK]
    cal = desk.runtime.policy.calendar
    today = desk.now().astimezone(cal.tz).date()
    if month is None:
        try:
            first = bounded_month("month", request.query.get("month") or f"{today:%Y-%m}")
        except InputRefused as exc:
            raise web.HTTPBadRequest(text=exc.chinese) from None
        year, mon = first.year, first.month
    else:
        year, mon = month
    prev_m = f"{year - (mon == 1)}-{12 if mon == 1 else mon - 1:02d}"
    next_m = f"{year + (mon == 12)}-{1 if mon == 12 else mon + 1:02d}"
    data = {
        "year": year, "month": mon, "today": today.isoformat(),
        "weeks": fmt.month_grid(year, mon, cal), "prev": prev_m, "next": next_m,
        "covered": cal.year_covered(year),
        "uncovered_years": cal.uncovered_years(range(today.year, today.year + 2)),
        "office_hours": [f"{a:%H:%M}-{b:%H:%M}" for a, b in cal.config.office_hours],
        "missing_year": cal.config.missing_year,
    }  # fmt: skip
    data.update(page_data(request, v, year))
    return data


async def calendar(request: web.Request, v: Viewer) -> web.Response:
    data = calendar_data(request, v)
    if request.path.endswith(".json"):
        data.pop("paste", None)
        return twin(request, data)
    return render(request, "calendar.html", data, v)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", signed_in(overview))
    r.add_get("/overview.json", signed_in(overview))
    for path, handler in (("/tickets", tickets), ("/units", units), ("/messages", messages),
                          ("/rules", rules), ("/calendar", calendar)):  # fmt: skip
        r.add_get(path, signed_in(handler))
        r.add_get(path + ".json", signed_in(handler))
    r.add_get(r"/tickets/{ticket:[^/]+}.json", signed_in(ticket))
    r.add_get("/tickets/{ticket}", signed_in(ticket))
    r.add_post("/tickets/{ticket}/ack", signed_in(ack))
    r.add_get("/api/v1/tickets", api_tickets)
    from supervisor.desk.calendar_paste import add_routes as add_calendar_routes

    add_calendar_routes(app)


def add_filters(env: jinja2.Environment) -> None:
    env.filters["bj"] = fmt.bj
    env.globals.update(
        STATUS=fmt.STATUS_LABELS, EVENT=fmt.EVENT_LABELS, ROLE=fmt.ROLE_LABELS,
        CHANNEL=fmt.CHANNEL_LABELS, OUTBOX=fmt.OUTBOX_LABELS, LADDER=fmt.LADDER_LABELS,
        KIND=fmt.KIND_LABELS, SAT=fmt.SATISFACTION_LABELS, SOURCE=fmt.SOURCE_LABELS,
        SRC=fmt.SOURCE_CHANNELS,
        WEEKDAYS=fmt.WEEKDAYS,
    )  # fmt: skip
