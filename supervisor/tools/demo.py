"""`run --demo`: a short stream of events, timed relative to now, so that a newcomer sees the
rules fire and messages go out (on the console notifier unless Twilio is configured).

The events are placed in the recent past: the scheduler finds their steps due and fires them at
once, as it would after an outage (only the latest overdue step of each ladder is sent)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from supervisor.core.clock import SHANGHAI

if TYPE_CHECKING:
    from supervisor.server.daemon import Daemon

log = logging.getLogger("hotline.demo")


def demo_events(now, prefix: str = "DEMO") -> list[dict[str, Any]]:
    stamp = now.strftime("%m%d%H%M%S")

    def at(minutes_ago: float) -> str:
        return (now - timedelta(minutes=minutes_ago)).isoformat()

    def ev(ticket: str, n: int, etype: str, minutes_ago: float, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"{prefix}-{stamp}-{ticket}-{n}",
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


async def run_demo(daemon: Daemon) -> None:
    now = daemon.clock.now()
    events = demo_events(now)
    out = await daemon.supervisor.ingest(events)
    daemon.wake_scheduler.set()
    log.info(
        f"demo: {len(out.accepted)} events ingested for {len(out.plans)} tickets; reminders follow below"
    )
    for ticket, plan in sorted(out.plans.items()):
        s = plan.state
        deadlines = plan.deadlines
        log.info(
            f"demo: ticket {ticket}: {s.status}, unit {s.unit}, "
            f"sign_by {deadlines.sign_by:%m-%d %H:%M} reply_by {deadlines.reply_by:%m-%d %H:%M}"
            if deadlines.sign_by and deadlines.reply_by
            else f"demo: ticket {ticket}: {s.status}",
        )
    await asyncio.sleep(3)  # let the scheduler and the dispatcher do their work
    sent, held = await daemon.store.outbox_summary(daemon.clock.now())
    log.info(f"demo: {sent} messages sent; {len(held)} held by quiet hours or grouping:")
    for row in held:
        log.info(
            f"demo:   [{row.channel} → {row.recipient}, goes at {row.not_before.astimezone(SHANGHAI):%m-%d %H:%M}] {row.text}"
        )
    port = daemon.port
    log.info(
        f"demo: the daemon keeps running: GET http://127.0.0.1:{port}/healthz, /metrics, /api/v1/tickets/<id> (with a token). Ctrl-C stops it."
    )
