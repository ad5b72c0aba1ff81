"""日历: pasting a State Council notice on the desk (supervisors only).

POST /calendar/preview reads the pasted text and shows what was understood and what would change
against config/calendar.yaml (nothing written); POST /calendar/import reads the same text again
(the page never trusts a preview it sent), writes it as `calendar import --yes` would, and
audits it (desk_audit, action calendar_import). The year's days and their sources on the page
come from the file, as `calendar show` prints them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from supervisor.config.yamlconf import ConfigInvalid
from supervisor.desk.app import DESK, Viewer, audit, render, signed_in
from supervisor.tools import calendar_store as store
from supervisor.tools.calendar_cli import Preview, apply_import, preview, year_view

IMPORT_ROLES = frozenset({"supervisor"})
MAX_NOTICE = 20_000  # characters: a notice is about 600; a whole web page pasted, a few thousand


def calendar_path(request: web.Request) -> Path:
    return Path(request.app[DESK].host.loaded.config_dir) / "calendar.yaml"


def page_data(request: web.Request, v: Viewer, year: int) -> dict[str, Any]:
    """The 日历 page's share: the year's days with their sources, and whether to show the form."""
    try:
        view = year_view(calendar_path(request), year)
        days = [r.public() for r in view.rows]
        authority, notes = view.authority, view.notes
    except (ConfigInvalid, ValueError) as exc:
        days, authority, notes = [], "calendar.yaml 有误", [str(exc)]
    return {
        "days": days,
        "days_authority": authority,
        "days_notes": notes,
        "can_import": v.user.role in IMPORT_ROLES,
        "paste": None,
    }


def _form(form: Any) -> tuple[str, int | None, bool, str | None]:
    text = str(form.get("notice", ""))
    raw_year = str(form.get("year", "")).strip()
    if not text.strip():
        return text, None, False, "notice: 请粘贴通知全文"
    if len(text) > MAX_NOTICE:
        return text, None, False, f"notice: 过长（超过 {MAX_NOTICE} 字），请只粘贴通知"
    try:
        text.encode("utf-8")  # a lone surrogate cannot be written to calendar.yaml
    except UnicodeEncodeError:
        return "", None, False, "notice: 含有无效字符"
    if "\x00" in text:
        return "", None, False, "notice: 含有无效字符"
    try:
        year = int(raw_year) if raw_year else None
    except ValueError:
        return text, None, False, "year: 应为四位年份"
    if year is not None and not 2000 <= year <= 2100:
        return text, None, False, "year: 应在 2000 至 2100 之间"
    return text, year, form.get("replace") == "1", None


def _paste(
    text: str, year: int | None, replace: bool, p: Preview | None, **more: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"text": text, "year": year or "", "replace": replace, "done": None,
                           "error": None, "lines": [], "changes": "", "problems": [],
                           "unchanged": False, "can_confirm": False}  # fmt: skip
    if p is not None:
        out.update(
            error=p.error,
            lines=p.plan.lines() if p.plan else [],
            changes=store.changes_text(p.plan.changes) if p.plan else "",
            problems=p.problems,
            unchanged=p.unchanged,
            can_confirm=p.plan is not None and not p.problems and not p.unchanged,
        )
    out.update(more)
    return out


async def _render(
    request: web.Request,
    v: Viewer,
    paste: dict[str, Any],
    status: int = 200,
    year: int | None = None,
) -> web.Response:
    from supervisor.desk.pages import calendar_data

    data = calendar_data(request, v, (year, 1) if year else None)
    data["paste"] = paste
    return render(request, "calendar.html", data, v, status=status)


async def preview_post(request: web.Request, v: Viewer) -> web.StreamResponse:
    if v.user.role not in IMPORT_ROLES:
        raise web.HTTPForbidden(text="无权操作：导入通知仅限热线专员", content_type="text/plain")
    text, year, replace, error = _form(await request.post())
    if error:
        return await _render(request, v, _paste(text, year, replace, None, error=error), 400)
    p = preview(calendar_path(request), text, year, replace=replace)
    shown = p.plan.year if p.plan else None
    return await _render(request, v, _paste(text, year, replace, p), 400 if p.error else 200, shown)


async def import_post(request: web.Request, v: Viewer) -> web.StreamResponse:
    if v.user.role not in IMPORT_ROLES:
        raise web.HTTPForbidden(text="无权操作：导入通知仅限热线专员", content_type="text/plain")
    text, year, replace, error = _form(await request.post())
    if error:
        return await _render(request, v, _paste(text, year, replace, None, error=error), 400)
    path = calendar_path(request)
    p = preview(path, text, year, replace=replace)
    if p.plan is None or p.problems or p.unchanged:
        status = 400 if p.error or p.problems else 200
        return await _render(
            request, v, _paste(text, year, replace, p), status, p.plan.year if p.plan else None
        )
    plan = p.plan
    try:
        apply_import(path, plan)
    except (ConfigInvalid, ValueError) as exc:
        return await _render(
            request, v, _paste(text, year, replace, p, error=f"未写入：{exc}"), 400
        )
    desk = request.app[DESK]
    await audit(
        desk.host.pool, at=desk.now(), actor=v.user.login, role=v.user.role, unit=v.user.unit,
        action="calendar_import", remote=request.remote or "-",
        detail={"year": plan.year, "notice": plan.notice.title, "kind": plan.notice.kind,
                "replace": replace, "changes": store.changes_text(plan.changes),
                "days_off": len(plan.entry.days_off), "workdays": len(plan.entry.workdays)},
    )  # fmt: skip
    done = f"已写入 {plan.year} 年：{plan.notice.title}（{store.changes_text(plan.changes)}）"
    paste = _paste("", None, False, None, done=done)
    return await _render(request, v, paste, 200, plan.year)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/calendar/preview", signed_in(preview_post))
    app.router.add_post("/calendar/import", signed_in(import_post))
