"""登记诉求: the office's own demands (一下三民 走访, 网格员 上报) entered on a phone, and a grid
member's view of their grids.

GET /demands/new: the form (phone-first: one column, large fields), for supervisors and grid
members. POST /demands: a `created` event (channel `visit` for a supervisor's 走访登记, `grid` for
a grid member's 网格上报) and a `dispatched` event to the unit chosen, through the normal ingest:
the same rules, deadlines and reminders as a hotline ticket. The caller's number goes through the
contract's redaction (a keyed hash and a masked form); the answer shows it masked only. A grid
member may register only in their own grids.

GET /grid (JSON twin /grid.json): the open tickets of the grid member's grids (a supervisor: of
every grid) with what is due next.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from aiohttp import web

from supervisor.application import BatchRejected
from supervisor.core.state import TicketState
from supervisor.desk import format as fmt
from supervisor.desk.app import DESK, Viewer, add_page, audit, render, signed_in
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.vocabulary import KINDS

FORM_PATH, GRID_PATH = "/demands/new", "/grid"
REGISTER_ROLES = frozenset({"supervisor", "grid"})
KIND_ZH = {k: fmt.KIND_LABELS.get(k, k) for k in KINDS}
LIMIT = 200

OPEN_IN_GRIDS = """
SELECT ticket, state, status FROM tickets
WHERE status <> 'closed' AND ($1::text[] IS NULL OR state->>'grid' = ANY($1::text[]))
ORDER BY created_at DESC NULLS LAST, ticket DESC
LIMIT $2
"""


def _grids(request: web.Request, v: Viewer) -> list[str]:
    if v.user.role == "grid":
        return list(v.user.grids)
    return sorted(request.app[DESK].runtime.directory.model.grids)


def _form_context(request: web.Request, v: Viewer, **extra: Any) -> dict[str, Any]:
    directory = request.app[DESK].runtime.directory
    units = sorted(directory.model.units)
    return {
        "grids": _grids(request, v), "units": [(u, directory.unit_name(u)) for u in units],
        "kinds": KIND_ZH, "channel": "grid" if v.user.role == "grid" else "visit",
        "channel_label": fmt.SOURCE_CHANNELS["grid" if v.user.role == "grid" else "visit"],
        "values": {}, "error": None, **extra,
    }  # fmt: skip


async def form(request: web.Request, v: Viewer) -> web.Response:
    if v.user.role not in REGISTER_ROLES:
        raise web.HTTPForbidden(text="无权登记：登记诉求仅限热线专员和网格员")
    return render(request, "demand.html", _form_context(request, v), v)


class _Bad(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _raws(form: Any, v: Viewer, grids: list[str], units: list[str], now: datetime) -> list[dict]:
    def one(name: str, limit: int = 2000) -> str:
        value = str(form.get(name, "")).strip()
        if "\x00" in value:
            raise _Bad(name, "含有无效字符")
        return value[:limit]

    summary, address, grid = one("summary"), one("address"), one("grid", 200)
    category, kind, unit = one("category", 200), one("kind", 40), one("unit", 200)
    caller = one("caller", 40)
    if not summary:
        raise _Bad("summary", "请填写诉求内容")
    if kind not in KIND_ZH:
        raise _Bad("kind", "请选择诉求类型")
    if grid not in grids:
        raise _Bad("grid", "请选择本人负责的网格" if v.user.role == "grid" else "请选择网格")
    if unit not in units:
        raise _Bad("unit", "请选择承办单位")
    if caller and not (7 <= sum(c.isdigit() for c in caller) <= 13):
        raise _Bad("caller", "电话号码格式不对")
    stamp = now.strftime("%Y%m%d%H%M%S")
    ticket = f"DJ{stamp}{secrets.token_hex(2).upper()}"
    channel = "grid" if v.user.role == "grid" else "visit"
    created: dict[str, Any] = {
        "id": f"{ticket}-created", "ticket": ticket, "type": "created", "at": now.isoformat(),
        "channel": channel, "kind": kind, "urgent": form.get("urgent") in ("on", "true", "1"),
        "summary": summary, "grid": grid,
    }  # fmt: skip
    for key, value in (("category", category), ("address", address), ("caller", caller)):
        if value:
            created[key] = value
    dispatched = {"id": f"{ticket}-dispatched", "ticket": ticket, "type": "dispatched",
                  "at": now.isoformat(), "unit": unit}  # fmt: skip
    return [created, dispatched]


async def register(request: web.Request, v: Viewer) -> web.StreamResponse:
    desk = request.app[DESK]
    if v.user.role not in REGISTER_ROLES:
        raise web.HTTPForbidden(text="无权登记：登记诉求仅限热线专员和网格员")
    form_data = await request.post()
    now = desk.now()
    units = sorted(desk.runtime.directory.model.units)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    try:
        raws = _raws(form_data, v, _grids(request, v), units, now)
        outcome = await desk.host.supervisor.ingest(raws)
        wake = getattr(desk.host, "wake_scheduler", None)  # the daemon: its steps at 0 go now
        if wake is not None:
            wake.set()
    except (_Bad, BatchRejected) as exc:
        field = exc.field if isinstance(exc, _Bad) else ",".join(p.field for _, p in exc.problems)
        message = (
            str(exc)
            if isinstance(exc, _Bad)
            else "; ".join(f"{p.field}: {p.message}" for _, p in exc.problems)
        )
        if wants_json:
            return web.json_response({"error": message, "field": field}, status=400)
        values = {
            k: str(form_data.get(k, ""))
            for k in ("category", "kind", "address", "grid", "summary", "unit")
        }
        return render(
            request,
            "demand.html",
            _form_context(request, v, error=message, values=values),
            v,
            status=400,
        )
    ticket = raws[0]["ticket"]
    plan = outcome.plans.get(ticket)
    masked = plan.state.caller_masked if plan is not None else None
    await audit(
        desk.host.pool, at=now, actor=v.user.login, role=v.user.role, unit=v.user.unit,
        action="demand_registered", remote=request.remote or "-",
        detail={"ticket": ticket, "channel": raws[0]["channel"], "grid": raws[0]["grid"]},
    )  # fmt: skip
    if wants_json:
        return web.json_response({"ticket": ticket, "caller_masked": masked})
    msg = f"已登记工单{ticket}" + (f"，来电{masked}" if masked else "")
    target = GRID_PATH if v.user.role == "grid" else f"/tickets/{ticket}"
    await desk.sessions.update(v.session, flash=msg)  # a notice from the session, never the URL
    raise web.HTTPSeeOther(target)


async def grid_view(request: web.Request, v: Viewer) -> web.Response:
    if v.user.role not in REGISTER_ROLES | {"leader"}:
        raise web.HTTPForbidden(text="无权查看")
    desk = request.app[DESK]
    policy, now = desk.runtime.policy, desk.now()
    grids = list(v.user.grids) if v.user.role == "grid" else None
    async with desk.host.pool.acquire() as conn:
        rows = await conn.fetch(OPEN_IN_GRIDS, grids, LIMIT)
    items = []
    for r in rows:
        raw = r["state"]
        state = TicketState.from_json(json.loads(raw) if isinstance(raw, str) else dict(raw))
        due = dl.compute(state, policy.deadlines, policy.calendar, state_fields(state))
        if state.status == "dispatched" and due.sign_by:
            d = fmt.deadline_state("sign_by", due.sign_by, now, policy.calendar).to_json()
        elif state.status in ("signed", "reopened", "returned") and due.reply_by:
            d = fmt.deadline_state("reply_by", due.reply_by, now, policy.calendar).to_json()
        else:
            d = None
        items.append({
            "ticket": state.ticket, "status": state.status,
            "status_label": fmt.STATUS_LABELS.get(state.status, state.status),
            "channel": state.channel, "channel_label": fmt.SOURCE_CHANNELS.get(state.channel or "", ""),
            "category": state.category, "grid": state.grid, "unit": state.unit,
            "address": state.address, "summary": state.summary, "caller_masked": state.caller_masked,
            "deadline": d,
        })  # fmt: skip
    data = {"grids": grids, "tickets": items, "count": len(items)}
    if request.path.endswith(".json"):
        return web.json_response(
            data, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str)
        )
    return render(request, "grid.html", data, v)


def mount_demands(app: web.Application) -> None:
    app.router.add_get(FORM_PATH, signed_in(form))
    app.router.add_post("/demands", signed_in(register))
    app.router.add_get(GRID_PATH, signed_in(grid_view))
    app.router.add_get(GRID_PATH + ".json", signed_in(grid_view))
    add_page(app, "登记诉求", FORM_PATH, roles=REGISTER_ROLES)
    add_page(app, "网格", GRID_PATH, roles=frozenset({"grid"}))
