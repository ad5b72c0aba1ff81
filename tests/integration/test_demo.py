"""`run --demo` and the demo data: the console explains `!`, names each message's rule, says
which messages wait for quiet hours and which for grouping, in Beijing time; demo tickets are
tagged, a later plain run stops them firing, and --reset-demo (or the next --demo) deletes them."""

from __future__ import annotations

import logging
from datetime import timedelta

from supervisor.config.delivery import DeliverySettings
from supervisor.core.clock import VirtualClock
from supervisor.server.daemon import Daemon
from supervisor.tools.demo import LEGEND, hold_reason, run_demo
from tests.helpers import sh
from tests.integration.test_daemon import make_loaded

NIGHT = sh(2026, 11, 25, 23, 0)  # a Wednesday, inside quiet hours (22:00-07:30)


def test_hold_reasons():
    settings = DeliverySettings.model_validate({"quiet_hours": {"start": "22:00", "end": "07:30"}, "group_window_s": 60})
    assert "免打扰" in hold_reason(NIGHT, False, settings)
    assert "07:30" in hold_reason(NIGHT, False, settings)
    assert "合并发送" in hold_reason(sh(2026, 11, 25, 10, 0), False, settings)
    assert hold_reason(NIGHT, True, settings) is None


async def test_the_demo_console_and_its_data(tmp_path, pg_url, caplog):
    env = {"DATABASE_URL": pg_url}  # no token: the demo makes one
    daemon = Daemon(make_loaded(tmp_path), env={**env, "HOTLINE_API_TOKENS": "demo:tkn-1"},
                    clock=VirtualClock(NIGHT))  # fmt: skip
    daemon.demo_data = "purge"
    await daemon.start()
    try:
        with caplog.at_level(logging.INFO):
            await run_demo(daemon, token="tkn-1")
        lines = [r.getMessage() for r in caplog.records if r.name == "hotline.demo"]
        assert lines[0] == LEGEND and "! 表示紧急" in lines[0]
        rows = [line for line in lines if "规则 " in line]
        # Beijing time (the clock says 23:00 +08:00; the dispatcher may move it on to 07:30)
        assert rows and all(line.startswith(("演示：11-25 23:", "演示：11-26 0")) for line in rows)
        assert any("规则 sign-off-urgent" in line and "[SMS!]" in line for line in rows)
        urgent = [line for line in rows if "!]" in line]
        assert urgent and not any("暂缓" in line for line in urgent)
        held = [line for line in rows if "!]" not in line]
        assert held and all("暂缓（免打扰时段" in line or "暂缓（合并发送" in line for line in held)
        assert any("tkn-1" in line for line in lines)
        tickets = await daemon.pool.fetch("SELECT ticket FROM tickets")
        assert tickets and all(t["ticket"].startswith("DEMO-") for t in tickets)
    finally:
        await daemon.stop()

    # a later plain run: the demo tickets stop firing, and it says how to delete them
    plain = Daemon(make_loaded(tmp_path), env=env, clock=VirtualClock(NIGHT + timedelta(hours=1)))
    caplog.clear()
    await plain.start()
    try:
        pending = await plain.pool.fetchval(
            "SELECT count(*) FROM timers WHERE ticket LIKE 'DEMO-%' AND status = 'pending'"
        )
        assert pending == 0
        assert await plain.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE ticket LIKE 'DEMO-%' AND status = 'pending'"
        ) == 0
        text = " ".join(r.getMessage() for r in caplog.records)
        assert "run --reset-demo" in text and "no API token configured" in text
    finally:
        await plain.stop()

    reset = Daemon(make_loaded(tmp_path), env=env, clock=VirtualClock(NIGHT + timedelta(hours=2)))
    reset.demo_data = "purge"
    await reset.start()
    try:
        for table in ("events", "tickets", "ladders", "timers", "outbox"):
            assert await reset.pool.fetchval(f"SELECT count(*) FROM {table} WHERE ticket LIKE 'DEMO-%'") == 0
    finally:
        await reset.stop()
