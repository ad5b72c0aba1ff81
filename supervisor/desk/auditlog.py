"""The audit trail (安全审计) for an assessor: the 审计 page (supervisors and leaders) with
filters, its JSON twin, CSV/xlsx exports (formula-safe cells), and the housekeeping job that
prunes rows past the retention (desk.security.audit_retention_days, at least 180 days) through
desk_audit_prune(), the only way past the table's append-only trigger (migration 012)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter
from aiohttp import web

from supervisor.desk.app import DESK, Viewer, render, signed_in
from supervisor.desk.sessions import wall
from supervisor.stats.safecells import csv_cell
from supervisor.stats.safecells import write_cell as xlsx_write

log = logging.getLogger("hotline.desk")
BJ = ZoneInfo("Asia/Shanghai")
ROLES = frozenset({"supervisor", "leader"})
PAGE = 100
EXPORT_MAX = 100_000
HOUSEKEEPING_S = 6 * 3600
ACTIONS = {
    "sign_in": "登录", "sign_in_failed": "登录失败", "sign_in_locked": "锁定期间尝试登录",
    "sign_in_limited": "登录受限", "account_locked": "账号锁定", "account_unlocked": "账号解锁",
    "sign_out": "退出登录", "session_ended": "会话结束", "sessions_ended": "结束会话",
    "password_changed": "修改密码", "password_change_failed": "修改密码失败",
    "two_factor_ok": "两步验证通过", "two_factor_failed": "两步验证失败",
    "sms_code_sent": "发送短信验证码", "totp_enrolled": "绑定验证器",
    "totp_enrol_failed": "绑定验证器失败", "recovery_codes_renewed": "更新恢复码",
    "two_factor_reset": "重置两步验证", "ack": "确认督办", "import": "导入",
    "calendar_changed": "日历变更", "user_added": "新增账号", "user_removed": "删除账号",
    "user_changed": "账号变更",
}  # fmt: skip
COLUMNS = [("at", "时间"), ("actor", "用户"), ("role", "角色"), ("unit", "单位"),
           ("action_label", "操作"), ("action", "操作代码"), ("remote", "来源地址"),
           ("ticket", "工单"), ("what", "内容")]  # fmt: skip


class BadFilter(ValueError):
    pass


def parse(query: Any) -> dict[str, Any]:
    """The page's filters; a bad one raises BadFilter naming the field."""

    def text(name: str) -> str | None:
        value = query.get(name, "")
        value = value.strip()[:100] if isinstance(value, str) else ""
        if any(not c.isprintable() for c in value):
            raise BadFilter(f"{name}: 含有不允许的字符")
        return value or None

    def day(name: str) -> date | None:
        value = text(name)
        try:
            d = date.fromisoformat(value) if value else None
        except ValueError:
            raise BadFilter(f"{name}: 日期格式应为 YYYY-MM-DD") from None
        if d is not None and not 2000 <= d.year <= 2100:
            raise BadFilter(f"{name}: 年份应在 2000-2100 之间")
        return d

    before = text("before")
    if before is not None and (not before.isdigit() or len(before) > 18):
        raise BadFilter("before: 应为数字")
    action = text("action")
    if action is not None and action not in ACTIONS:
        raise BadFilter(f"action: 未知的操作 {action}")
    return {"from": day("from"), "to": day("to"), "actor": text("actor"), "action": action,
            "remote": text("remote"), "before": int(before) if before else None}  # fmt: skip


SQL = """
SELECT id, at, actor, role, unit, action, ticket, rule, cycle, remote, detail FROM desk_audit
WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
  AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR action = $4)
  AND ($5::text IS NULL OR remote = $5) AND ($6::bigint IS NULL OR id < $6)
ORDER BY id DESC LIMIT $7
"""


def _bounds(f: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(f["from"], time(), BJ) if f["from"] else None
    end = datetime.combine(f["to"] + timedelta(days=1), time(), BJ) if f["to"] else None
    return start, end


DETAIL = {
    "stage": "下一步", "account": "账号", "failures": "失败次数", "minutes": "锁定分钟",
    "reason": "原因", "method": "方式", "count": "会话数", "outcome": "结果",
    "other_sessions_ended": "结束其他会话", "sessions_ended": "结束会话",
    "ladder_acked": "整条督办结束", "roles": "角色", "still_for": "仍待确认", "step": "步骤",
}  # fmt: skip
VALUES = {
    "ok": "完成", "code": "两步验证", "enrol": "绑定验证器", "change": "修改密码",
    "idle": "闲置超时", "lifetime": "超过最长时限", "totp": "验证器", "sms": "短信",
    "recovery": "恢复码", "sent": "已发送", "True": "是", "False": "否",
}  # fmt: skip


def _what(r: Any) -> str:
    detail = r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"] or "{}")
    parts = [
        f"{DETAIL.get(k, k)}：{VALUES.get(str(v), v)}"
        for k, v in detail.items()
        if v not in (None, "", [], {})
    ]
    if r["rule"]:
        parts.insert(0, f"规则 {r['rule']} 第{r['cycle']}轮")
    return "；".join(parts)


async def rows(pool: Any, f: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    start, end = _bounds(f)
    found = await pool.fetch(
        SQL, start, end, f["actor"], f["action"], f["remote"], f["before"], limit
    )
    return [
        {"id": r["id"], "at": r["at"].astimezone(BJ).strftime("%Y-%m-%d %H:%M:%S"),
         "actor": r["actor"], "role": r["role"], "unit": r["unit"], "action": r["action"],
         "action_label": ACTIONS.get(r["action"], r["action"]), "remote": r["remote"],
         "ticket": r["ticket"], "what": _what(r)}
        for r in found
    ]  # fmt: skip


def _allowed(v: Viewer) -> None:
    if v.user.role not in ROLES:
        raise web.HTTPForbidden(text="无权查看：审计仅限热线专员和分管领导")


async def page(request: web.Request, v: Viewer) -> web.Response:
    _allowed(v)
    try:
        f = parse(request.query)
    except BadFilter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    found = await rows(request.app[DESK].host.pool, f, PAGE)
    more = found[-1]["id"] if len(found) == PAGE else None
    data = {
        "rows": found,
        "more": more,
        "retention_days": request.app[DESK].security.audit_retention_days,
    }
    if request.path.endswith(".json"):
        return web.json_response(
            data, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str)
        )
    query = {k: val for k, val in request.query.items() if k != "before" and isinstance(val, str)}
    return render(request, "audit.html", {**data, "f": f, "query": query, "actions": ACTIONS}, v)


async def export(request: web.Request, v: Viewer) -> web.StreamResponse:
    _allowed(v)
    try:
        f = parse(request.query)
    except BadFilter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    found = await rows(request.app[DESK].host.pool, f, EXPORT_MAX)
    stamp = wall().astimezone(BJ).strftime("%Y%m%d-%H%M")
    if request.match_info["fmt"] == "csv":
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow([label for _, label in COLUMNS])
        for r in found:
            out.writerow([csv_cell(r[k]) for k, _ in COLUMNS])
        body = ("\ufeff" + buf.getvalue()).encode("utf-8")  # the BOM: Excel reads UTF-8
        ctype = "text/csv; charset=utf-8"
    else:
        bio = io.BytesIO()
        book = xlsxwriter.Workbook(bio, {"in_memory": True})
        sheet = book.add_worksheet("审计")
        for c, (_, label) in enumerate(COLUMNS):
            xlsx_write(sheet, 0, c, label)
        for i, r in enumerate(found, start=1):
            for c, (k, _) in enumerate(COLUMNS):
                xlsx_write(sheet, i, c, r[k])
        book.close()
        body = bio.getvalue()
        ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"audit-{stamp}.{request.match_info['fmt']}"
    return web.Response(body=body, headers={
        "Content-Type": ctype, "Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


async def prune(desk: Any) -> int:
    """Audit rows past the retention, expired sessions, spent counters."""
    keep = timedelta(days=desk.security.audit_retention_days)
    n = await desk.host.pool.fetchval("SELECT desk_audit_prune($1)", desk.now() - keep)
    await desk.sessions.prune()
    await desk.throttle.prune(wall())
    return int(n or 0)


async def housekeeping(app: web.Application) -> AsyncIterator[None]:
    desk = app[DESK]

    async def loop() -> None:
        while True:
            try:
                n = await prune(desk)
                if n:
                    log.info("audit rows past the retention pruned", extra={"rows": n})
            except Exception:
                log.exception("desk housekeeping failed; retried later")
            await asyncio.sleep(HOUSEKEEPING_S)

    task = asyncio.create_task(loop(), name="desk-housekeeping")
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def add_routes(app: web.Application) -> None:
    app.router.add_get("/audit", signed_in(page))
    app.router.add_get("/audit.json", signed_in(page))
    app.router.add_get("/audit/export.{fmt:(csv|xlsx)}", signed_in(export))
