"""`run --demo`: a short stream of events, timed relative to now, so that a newcomer sees the
rules fire and messages go out (on the console notifier unless Twilio is configured).

The events are placed in the recent past: the scheduler finds their steps due and fires them at
once, as it would after an outage (only the latest overdue step of each ladder is sent)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from supervisor.config.delivery import DeliverySettings, quiet_release
from supervisor.core.clock import SHANGHAI
from supervisor.tools.demo_data import DEMO_PREFIX, demo_messages

if TYPE_CHECKING:
    from supervisor.server.daemon import Daemon

log = logging.getLogger("hotline.demo")


def demo_events(now, prefix: str = DEMO_PREFIX) -> list[dict[str, Any]]:
    stamp = now.strftime("%m%d%H%M%S")

    def at(minutes_ago: float) -> str:
        return (now - timedelta(minutes=minutes_ago)).isoformat()

    def ev(ticket: str, n: int, etype: str, minutes_ago: float, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"{prefix}{stamp}-{ticket}-{n}",
            "ticket": f"{prefix}{stamp}{ticket}",
            "type": etype,
            "at": at(minutes_ago),
            **fields,
        }

    caller = "13912345678"  # fictitious; stored only as a keyed hash and a mask
    return [
        # 1. urgent ticket dispatched 45 minutes ago, not signed: the sign-off deadline (30 min,
        #    natural time) passed 15 minutes ago -> unit head by SMS and phone, whatever the hour
        ev(
            "A",
            1,
            "created",
            46,
            channel="phone",
            category="市容环境",
            kind="complaint",
            urgent=True,
            grid="G01",
            caller=caller,
            summary="路面塌陷，车辆无法通行",
        ),
        ev("A", 2, "dispatched", 45, unit="城管执法中队"),
        # 2. urgent ticket dispatched just now: the liaison is reminded to sign at once
        ev(
            "B",
            1,
            "created",
            1,
            channel="wechat",
            category="公共卫生",
            kind="help",
            urgent=True,
            grid="G02",
            summary="小区内发现死禽",
        ),
        ev("B", 2, "dispatched", 1, unit="社区卫生服务中心"),
        # 3. replied without contacting the citizen first (两联系), then rated dissatisfied twice
        ev(
            "C",
            1,
            "created",
            30,
            channel="web",
            category="物业管理",
            kind="complaint",
            grid="G03",
            summary="电梯频繁故障",
        ),
        ev(
            "C",
            2,
            "dispatched",
            29,
            unit="物业管理办公室",
            reply_by=(now + timedelta(days=3)).isoformat(),
        ),
        ev("C", 3, "signed", 28, unit="物业管理办公室"),
        ev("C", 4, "replied", 20, unit="物业管理办公室", result="已联系物业维修"),
        ev("C", 5, "visited", 15, satisfaction="dissatisfied", resolved=False),
        ev("C", 6, "reopened", 14, reason="市民反映电梯仍未修好"),
        ev("C", 7, "contacted", 12, unit="物业管理办公室", phase="before"),
        ev("C", 8, "replied", 8, unit="物业管理办公室", result="已更换电梯控制板"),
        ev("C", 9, "visited", 5, satisfaction="dissatisfied", resolved=False),
        # 4. passed back and forth: dispatched three times -> joint handling (会办)
        ev(
            "D",
            1,
            "created",
            40,
            channel="phone",
            category="市场管理",
            kind="complaint",
            grid="G01",
            summary="夜市占道经营",
        ),
        ev("D", 2, "dispatched", 39, unit="市场监管所"),
        ev("D", 3, "returned", 35, unit="市场监管所", reason="不属于本单位职责"),
        ev("D", 4, "dispatched", 34, unit="城管执法中队"),
        ev("D", 5, "returned", 30, unit="城管执法中队", reason="应由市场监管处理"),
        ev("D", 6, "dispatched", 29, unit="市场监管所", co_units=["城管执法中队"]),
    ]


LEGEND = (
    "演示：下面每行消息形如 [SMS! → 接收人] 正文；通道后的 ! 表示紧急消息（紧急工单或紧急步骤），"
    "紧急消息不受夜间免打扰限制、也不与其他消息合并，立即发送；没有 ! 的消息在免打扰时段"
    "（及非工作日）顺延到下一个工作日 07:30，并与同一接收人的消息合并发送。时间均为北京时间（+08:00）。"
)
ROLE_NAMES = {"liaison": "联络员", "head": "负责人", "supervisor": "热线专员", "leader": "分管领导",
              "grid": "网格员"}  # fmt: skip


def hold_reason(at: datetime, urgent: bool, settings: DeliverySettings) -> str | None:
    """Why a message produced at `at` waits (config.delivery.not_before's two reasons)."""
    if urgent:
        return None
    release = quiet_release(at, settings.quiet_hours)
    if release != at:
        return f"免打扰时段，{release.astimezone(SHANGHAI):%m-%d %H:%M} 发出"
    if settings.group_window_s > 0:
        return f"合并发送：等待{settings.group_window_s}秒，收集同一接收人的其他消息后一并发出"
    return None


def describe_row(row: Any, settings: DeliverySettings) -> str:
    """One outbox row for the demo's console: Beijing time, rule, role, channel, why it waits."""
    at = row["created_at"].astimezone(SHANGHAI)
    channel = str(row["channel"]).upper() + ("!" if row["urgent"] else "")
    held = hold_reason(row["created_at"], bool(row["urgent"]), settings)
    state = {"sent": "已发送", "pending": "待发送", "sending": "发送中"}.get(row["status"], row["status"])
    if held:  # the reason it was (or is) held, whether or not it has gone since
        state = f"暂缓（{held}），{state}"
    role = ROLE_NAMES.get(row["role"], row["role"])
    return (
        f"演示：{at:%m-%d %H:%M} 规则 {row['rule']} 第{row['step'] + 1}步 → {role} "
        f"[{channel}] 工单 {row['ticket']}：{state}"
    )


async def run_demo(daemon: Daemon, token: str | None = None) -> None:
    log.info(LEGEND)
    now = daemon.clock.now()
    events = demo_events(now)
    out = await daemon.supervisor.ingest(events)
    daemon.wake_scheduler.set()
    log.info(
        f"演示：已导入 {len(out.accepted)} 条事件，{len(out.plans)} 张演示工单（编号以 {DEMO_PREFIX} 开头）；"
        "提醒如下"
    )
    for ticket, plan in sorted(out.plans.items()):
        s = plan.state
        d = plan.deadlines
        if d.sign_by and d.reply_by:
            log.info(
                f"演示：工单 {ticket}：{s.status}，承办单位 {s.unit}，签收时限 "
                f"{d.sign_by.astimezone(SHANGHAI):%m-%d %H:%M}，办理时限 "
                f"{d.reply_by.astimezone(SHANGHAI):%m-%d %H:%M}（北京时间）"
            )
        else:
            log.info(f"演示：工单 {ticket}：{s.status}")
    await asyncio.sleep(3)  # let the scheduler and the dispatcher do their work
    rows = await demo_messages(daemon.store)
    settings = daemon.loaded.settings.delivery
    sent = sum(1 for r in rows if r["status"] == "sent")
    log.info(f"演示：共 {len(rows)} 条消息，已发送 {sent} 条；逐条说明（哪条规则触发、为何暂缓）：")
    for row in rows:
        log.info(describe_row(row, settings))
    port = daemon.port
    auth = f"-H 'Authorization: Bearer {token}' " if token else ""
    if token:
        log.info(f"演示：本次运行的 API 令牌（仅本次有效）：{token}")
    from supervisor.desk.demo import demo_account

    login, password = demo_account(
        daemon.desk, two_factor=daemon.env.get("HOTLINE_DEMO_TWO_FACTOR") == "1"
    )
    print(
        f"\n督办台 (the desk): http://127.0.0.1:{port}/  user: {login}  password: {password}\n",
        flush=True,
    )
    log.info(
        f"演示：守护进程继续运行：curl http://127.0.0.1:{port}/healthz ；"
        f"curl {auth}http://127.0.0.1:{port}/api/v1/tickets/<工单编号> ；Ctrl-C 停止。"
        "之后普通 `run` 会停止演示工单的提醒，`run --reset-demo` 删除它们。"
    )
