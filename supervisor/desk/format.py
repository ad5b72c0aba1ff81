"""Pure formatting for the desk: Beijing time, working time left or overdue, Chinese labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from supervisor.core.clock import SHANGHAI
from supervisor.core.workcal import CalendarGapError, WorkCalendar

STATUS_LABELS = {
    "new": "已受理",
    "dispatched": "待签收",
    "signed": "办理中",
    "returned": "已退单",
    "replied": "已回复",
    "visited": "已回访",
    "reopened": "重办中",
    "closed": "已结案",
}
EVENT_LABELS = {
    "created": "受理",
    "dispatched": "派单",
    "signed": "签收",
    "returned": "退单",
    "extension_requested": "申请延期",
    "extension_decided": "延期审批",
    "commitment_made": "承诺",
    "commitment_kept": "承诺兑现",
    "reviewed": "答复审核",
    "review_decided": "审核决定",
    "contacted": "联系市民",
    "replied": "办结回复",
    "visited": "回访",
    "reopened": "重办",
    "closed": "结案",
}
ROLE_LABELS = {
    "liaison": "联络员",
    "head": "单位负责人",
    "supervisor": "街道热线专员",
    "leader": "分管领导",
    "grid": "网格员",
}
CHANNEL_LABELS = {
    "sms": "短信",
    "voice": "电话",
    "console": "控制台",
    "wecom": "企业微信",
    "dingtalk": "钉钉",
    "webhook": "Webhook",
}
OUTBOX_LABELS = {
    "pending": "待发送",
    "sending": "发送中",
    "sent": "已发送",
    "failed": "发送失败",
    "cancelled": "已取消",
}
LADDER_LABELS = {"active": "进行中", "stopped": "已结束", "acked": "已确认"}
KIND_LABELS = {
    "complaint": "投诉",
    "help": "求助",
    "consultation": "咨询",
    "suggestion": "建议",
    "praise": "表扬",
}
SATISFACTION_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
}
DEADLINE_LABELS = {"sign_by": "签收时限", "reply_by": "办理时限", "commitment_due": "承诺时限"}
SOURCE_LABELS = {"platform": "平台下达", "default": "规则默认", "extension": "延期批准"}
WEEKDAYS = "一二三四五六日"


def bj(value: datetime | None, with_seconds: bool = False) -> str:
    """A moment in Beijing time, as the office writes it: 2026-11-23 09:05."""
    if value is None:
        return "—"
    local = value.astimezone(SHANGHAI)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def bj_iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(SHANGHAI).isoformat()


def working_amount(minutes: int, per_day: int) -> str:
    """Office minutes in working time: 1个工作日2个工作小时15分钟 (never natural hours)."""
    minutes = abs(minutes)
    if minutes == 0:
        return "不足1分钟"
    days, rest = divmod(minutes, per_day) if per_day > 0 else (0, minutes)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days}个工作日")
    if hours:
        parts.append(f"{hours}个工作小时")
    if mins:
        parts.append(f"{mins}分钟")
    return "".join(parts)


@dataclass(frozen=True)
class DeadlineState:
    name: str
    label: str
    at: datetime
    overdue: bool
    minutes: int  # working minutes left (positive) or overdue (negative)
    text: str  # 剩余2个工作小时 / 已超期1个工作日 / 已完成

    natural: bool = False  # counted in natural time (an urgent ticket): `text` in natural time
    natural_minutes: int = 0  # when natural: wall-clock minutes left (negative when overdue)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "at": bj_iso(self.at),
            "overdue": self.overdue,
            "working_minutes_left": self.minutes,
            "text": self.text,
        }
        if self.natural:  # the text counts these, not working minutes
            out["natural"] = True
            out["minutes_left"] = self.natural_minutes
        return out


def natural_amount(minutes: int) -> str:
    """Wall-clock minutes in words: 16分钟, 1小时5分钟, 2天3小时 (an urgent ticket's deadlines run
    through nights and holidays, so they are shown that way)."""
    minutes = abs(minutes)
    if minutes == 0:
        return "不足1分钟"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}天" if days else "", f"{hours}小时" if hours else ""]
    parts.append(f"{mins}分钟" if mins and not days else "")
    return "".join(parts) or f"{days}天"


def deadline_state(
    name: str,
    at: datetime,
    now: datetime,
    calendar: WorkCalendar,
    done: bool = False,
    natural: bool = False,
) -> DeadlineState:
    """How a deadline stands at `now`: in working time, or in natural time when the deadline
    counts natural time (`natural`: an urgent ticket's 30 minutes and 24 hours, nights and
    Sundays included). `done`: met (signed, replied...). `minutes` is working minutes, or
    natural minutes when `natural`."""
    label = DEADLINE_LABELS.get(name, name)
    if done:
        return DeadlineState(name, label, at, False, 0, "已完成")
    if natural:
        left = int((at - now).total_seconds() // 60)
        if at <= now:
            left = -int((now - at).total_seconds() // 60)
        try:
            working = calendar.working_minutes_between(now, at)
        except CalendarGapError:
            working = 0
        text = f"已超期{natural_amount(left)}" if at <= now else f"剩余{natural_amount(left)}"
        return DeadlineState(name, label, at, at <= now, working, text, True, left)
    try:
        minutes = calendar.working_minutes_between(now, at)
    except CalendarGapError as exc:
        overdue = at <= now
        return DeadlineState(name, label, at, overdue, 0, f"{exc.year}年日历缺失，无法计算工作时间")
    per_day = calendar.minutes_per_day
    if at <= now:
        amount = working_amount(minutes, per_day) if minutes else "不足1个工作分钟"
        return DeadlineState(name, label, at, True, minutes, f"已超期{amount}")
    amount = working_amount(minutes, per_day) if minutes else "0个工作分钟（非工作时间）"
    return DeadlineState(name, label, at, False, minutes, f"剩余{amount}")


def month_grid(year: int, month: int, calendar: WorkCalendar) -> list[list[dict[str, Any]]]:
    """The weeks of a month (Monday first): each day with its kind, for the 日历 page.
    kind: workday | weekend | holiday (a weekday off) | makeup (调休: a weekend day worked) |
    office_holiday / office_workday (the office's overrides) | unknown (no calendar data)."""
    first = date(year, month, 1)
    start = first.toordinal() - first.weekday()
    weeks: list[list[dict[str, Any]]] = []
    day = date.fromordinal(start)
    while day.month == month or day < first:
        week = []
        for _ in range(7):
            week.append({**day_kind(day, calendar), "in_month": day.month == month})
            day = date.fromordinal(day.toordinal() + 1)
        weeks.append(week)
    return weeks


def day_kind(day: date, calendar: WorkCalendar) -> dict[str, Any]:
    cfg = calendar.config
    weekend = day.weekday() >= 5
    out: dict[str, Any] = {"date": day.isoformat(), "day": day.day, "weekend": weekend}
    if day in cfg.extra_holidays:
        return {**out, "kind": "office_holiday", "label": "本街道休息", "working": False}
    if day in cfg.extra_workdays:
        return {**out, "kind": "office_workday", "label": "本街道上班", "working": True}
    if not calendar.year_covered(day.year):
        return {**out, "kind": "unknown", "label": "无官方数据", "working": not weekend}
    working = calendar.is_workday(day)
    if working and weekend:
        return {**out, "kind": "makeup", "label": "调休上班", "working": True}
    if not working and not weekend:
        return {**out, "kind": "holiday", "label": "法定节假日", "working": False}
    return {**out, "kind": "workday" if working else "weekend", "label": "", "working": working}


SOURCE_CHANNELS = {
    "phone": "电话",
    "provincial": "省级平台",
    "wechat": "微信",
    "web": "网站",
    "sms": "短信",
    "app": "客户端",
    "visit": "走访登记",
    "grid": "网格上报",
}
ANCHOR_LABELS = {
    "event": "事件发生时",
    "sign_by": "签收时限",
    "reply_by": "办理时限",
    "commitment_due": "承诺时限",
    "replied_at": "回复时间",
}
SCHEDULE_DAYS = {
    "working_days": "每个工作日", "every_day": "每天",
    "first_working_day_of_week": "每周第一个工作日", "first_working_day_of_month": "每月第一个工作日", "monday": "每周一", "tuesday": "每周二",
    "wednesday": "每周三", "thursday": "每周四", "friday": "每周五", "saturday": "每周六",
    "sunday": "每周日",
}  # fmt: skip
FIELD_LABELS = {
    "channel": "来源渠道", "category": "诉求归口", "kind": "诉求类型", "urgent": "紧急",
    "address": "事发地址", "grid": "网格", "summary": "诉求内容", "unit": "单位",
    "co_units": "协办单位", "sign_by": "签收时限", "reply_by": "办理时限", "by": "经办人",
    "reason": "原因", "until": "延期至", "approved": "批准", "due": "承诺日期",
    "promise": "承诺内容", "phase": "阶段", "result": "办理结果", "satisfaction": "满意度",
    "resolved": "是否解决", "text": "答复内容", "handler": "承办人", "contact": "承办人电话",
    "outcome": "审核结果", "findings": "审核意见", "decision": "审核决定", "note": "备注",
}  # fmt: skip
_VALUE_LABELS: dict[str, dict[str, str]] = {
    "channel": SOURCE_CHANNELS,
    "kind": KIND_LABELS,
    "satisfaction": SATISFACTION_LABELS,
    "phase": {"before": "办理前", "after": "办理后"},
    "outcome": {"passed": "通过", "returned": "退回"},
    "decision": {"pass": "通过", "return": "退回", "accept": "认可"},
}


def event_fields(data: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's fields in words for the timeline: (label, value), empty ones left out."""
    out = []
    for key, value in data.items():
        if key not in FIELD_LABELS or value in (None, "", [], ()):
            continue
        if isinstance(value, bool):
            text = "是" if value else "否"
        elif isinstance(value, list | tuple):
            text = "、".join(str(v) for v in value)
        elif key in ("sign_by", "reply_by", "until") and isinstance(value, str) and "T" in value:
            try:
                text = bj(datetime.fromisoformat(value))
            except ValueError:
                text = value
        else:
            text = _VALUE_LABELS.get(key, {}).get(str(value), str(value))
        out.append((FIELD_LABELS[key], text))
    return out


def offset_text(offset: Any, anchor: str) -> str:
    """A step's time in words: 到期前1个工作日, 事件发生时, 到期后1个工作小时, 30分钟后."""
    amount, unit, working = offset.amount, offset.unit, offset.working
    if amount == 0:
        return (
            ANCHOR_LABELS.get(anchor, anchor)
            if anchor == "event"
            else f"{ANCHOR_LABELS.get(anchor, anchor)}到达时"
        )
    n = abs(amount)
    if unit == "day":
        size = f"{n}个工作日"
    elif working:
        size = f"{n // 60}个工作小时" if n % 60 == 0 else f"{n}个工作分钟"
    elif n % 1440 == 0:
        size = f"{n // 1440}天"
    else:
        size = f"{n // 60}小时" if n % 60 == 0 else f"{n}分钟"
    where = ANCHOR_LABELS.get(anchor, anchor)
    return f"{where}前{size}" if amount < 0 else f"{where}后{size}"


def schedule_text(days: str, at: str) -> str:
    """A report's schedule in words: 每周第一个工作日09:00."""
    return f"{SCHEDULE_DAYS.get(days, days)}{at}"


MATCHER_LABELS = {"durable_rules": "规则引擎", "python": "内置求值（兼容模式）"}


def acker(by: str | None, directory: Any = None) -> str:
    """Who acknowledged, for people: "张敏（街道热线专员）" for the desk's "zhang-min (supervisor)",
    the person's name for a contact id (an SMS reply), else as recorded (an account's name)."""
    if not by:
        return ""
    login, role = by, None
    if by.endswith(")") and " (" in by:
        login, _, rest = by.rpartition(" (")
        role = rest[:-1]
    name = login
    people = getattr(getattr(directory, "model", None), "people", {}) or {}
    if login in people:
        name = people[login].name
    return f"{name}（{ROLE_LABELS.get(role, role)}）" if role else name


def calendar_warning(years: list[int], missing_year: str) -> str | None:
    """The warning about years without calendar data, for supervisors: what it means and where
    to fix it (the 日历 page)."""
    if not years:
        return None
    how = (
        "暂按周一至周五上班、法定节假日休息计算（调休未知）"
        if missing_year == "weekdays"
        else "这些年份的时限无法计算"
    )
    ys = "、".join(str(y) for y in years)
    return f"{ys}年尚无官方节假日与调休数据，{how}；请在日历页录入国务院公布的安排。"
