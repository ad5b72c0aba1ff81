"""The desk's acknowledgement in Chromium follows the one rank rule (core.acks, issue 9): a
liaison's acknowledgement ends only the liaison's steps; the head's call and the supervisor's
escalation stay pending, on the page and in the database, until the supervisor acknowledges."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.test_desk_browser import DESKTOP, browser, shot, signed_in_page  # noqa: F401
from tests.deskkit import NOW, ShiftedClock, _sent, desk_daemon, events, post_events, until


@pytest.fixture
async def early_daemon(pg_url, tmp_path):
    """At 09:05: A100's liaison has been reminded; the head (09:30) and the supervisor (10:30)
    are still to come."""
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await until(lambda: _sent(d, 1), "the liaison's reminder of A100 sent")
        yield d


async def sign_off_steps(daemon) -> dict[int, str]:
    async with daemon.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT step, status FROM timers WHERE ticket = 'A100' AND rule = 'sign-off'"
        )
    return {r["step"]: r["status"] for r in rows}


async def test_a_liaisons_ack_leaves_the_head_and_the_supervisor_pending(early_daemon, browser):  # noqa: F811
    daemon = early_daemon
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "wang-qiang")  # liaison of 城管执法中队
    await page.goto(f"{base}/tickets/A100")
    await page.click("button[data-ack=sign-off]")
    await expect(page.locator("p.ok[role=status]")).to_contain_text("上级督办继续")
    ladder = page.locator("article.ladder[data-rule=sign-off]")
    await expect(ladder).to_have_class("ladder active")
    # the head's step and the supervisor's step are still to fire, as the page says
    pending = ladder.locator("ol.steps li.pending")
    await expect(pending).to_have_count(2)
    await expect(pending.nth(0)).to_contain_text("单位负责人")
    await expect(pending.nth(1)).to_contain_text("热线专员")
    await expect(ladder.locator("ol.steps li.fired")).to_contain_text("联络员")
    await expect(page.locator("button[data-ack=sign-off]")).to_have_count(0)  # nothing left to end
    await shot(page, "ticket-liaison-acknowledged")
    assert await sign_off_steps(daemon) == {0: "fired", 1: "pending", 2: "pending"}
    async with daemon.pool.acquire() as conn:
        lad = await conn.fetchrow(
            "SELECT status, acked_by FROM ladders WHERE ticket = 'A100' AND rule = 'sign-off'"
        )
        assert dict(lad) == {"status": "active", "acked_by": None}
        audit = await conn.fetchrow(
            "SELECT actor, role, steps FROM desk_audit WHERE action = 'ack'"
        )
        assert dict(audit) == {"actor": "wang-qiang", "role": "liaison", "steps": [0]}
        ack = await conn.fetchrow("SELECT by_whom, via FROM acks WHERE ticket = 'A100'")
        assert dict(ack) == {"by_whom": "wang-qiang (liaison)", "via": "desk"}

    # 10:00: the head's SMS and call still go (the liaison could not silence them)
    assert isinstance(daemon.clock, ShiftedClock)
    daemon.clock.set(NOW)
    daemon.wake_scheduler.set()
    await until(lambda: _sent(daemon, 3), "the head's SMS and call of A100 sent")
    async with daemon.pool.acquire() as conn:
        roles = await conn.fetch(
            "SELECT role, channel FROM outbox WHERE ticket = 'A100' AND status = 'sent' ORDER BY id"
        )
    assert {(r["role"], r["channel"]) for r in roles} >= {("head", "sms"), ("head", "voice")}
    assert (await sign_off_steps(daemon))[2] == "pending"

    # the supervisor's acknowledgement ends the escalation
    sup = await signed_in_page(browser, base, "zhang-min")
    await sup.goto(f"{base}/tickets/A100")
    await sup.click("button[data-ack=sign-off]")
    await expect(sup.locator("p.ok[role=status]")).to_have_text("已确认，本条督办结束")
    await expect(sup.locator("article.ladder.acked")).to_contain_text("已由张敏（街道热线专员）")
    assert (await sign_off_steps(daemon))[2] == "cancelled"
    async with daemon.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT status FROM ladders WHERE ticket = 'A100' AND rule = 'sign-off'"
            )
            == "acked"
        )
