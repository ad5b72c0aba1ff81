"""The desk in a real Chromium (Debian's, driven by Playwright) against a whole daemon on real
PostgreSQL. Each page is saved as a screenshot in var/screenshots/ (desktop 1366x768 and phone)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.deskkit import NOW, PASSWORD, desk_daemon, events, post_events, settled
from tests.helpers import ev

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--lang=zh-CN"])
        yield b
        await b.close()


async def shot(page: Page, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


async def signed_in_page(browser: Browser, base: str, login: str, viewport=DESKTOP) -> Page:
    page = await (await browser.new_context(viewport=viewport, locale="zh-CN")).new_page()
    await page.goto(f"{base}/")
    await expect(page).to_have_url(f"{base}/signin?next=/")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_contain_text("总览")
    return page


async def test_sign_in_filter_open_and_acknowledge(daemon, browser):
    base = f"http://127.0.0.1:{daemon.port}"
    page = await (await browser.new_context(viewport=DESKTOP, locale="zh-CN")).new_page()
    await page.goto(f"{base}/signin")
    await shot(page, "signin")
    await page.fill("input[name=login]", "zhang-min")
    await page.fill("input[name=password]", "not the password")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_have_text("用户名或密码错误")
    await page.fill("input[name=login]", "zhang-min")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_contain_text("总览")
    await expect(page.locator("[data-count=overdue]")).to_have_text("1")
    await shot(page, "overview")

    # the overdue count links to the list behind it
    await page.click("a.card.bad")
    await expect(page.locator("table.list tbody tr")).to_have_count(1)
    await expect(page.locator("table.list")).to_contain_text("A100")
    # filter the list: all of 城管执法中队, then only the urgent ones
    await page.goto(f"{base}/tickets")
    await expect(page.locator("table.list tbody tr")).to_have_count(3)
    await page.select_option("select[name=unit]", "城管执法中队")
    await page.select_option("select[name=urgent]", "true")
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("table.list tbody tr")).to_have_count(1)
    await expect(page.locator("table.list")).to_contain_text("C300")
    assert "unit=%E5%9F%8E" in page.url and "urgent=true" in page.url  # the URL is the interface
    await page.fill("input[name=q]", "幸福路88")
    await page.select_option("select[name=urgent]", "")
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("table.list tbody tr")).to_have_count(1)
    await page.goto(f"{base}/tickets")
    await shot(page, "tickets")

    # open a ticket: deadlines in working time, who was chased, the acknowledge button
    await page.click("text=A100")
    await expect(page.locator("h1")).to_contain_text("工单 A100")
    await expect(page.locator("ul.deadlines")).to_contain_text("签收时限")
    await expect(page.locator("ul.deadlines")).to_contain_text("已超期30分钟")
    messages = page.locator("#messages + .scroll table")
    await expect(messages).to_contain_text("单位负责人")
    await expect(messages).to_contain_text("电话")
    await expect(page.locator("body")).to_contain_text("138****5678")
    await shot(page, "ticket")
    await page.click("button[data-ack=sign-off]")
    await expect(page.locator("p.ok[role=status]")).to_have_text("已确认，本条督办结束")
    await expect(page.locator("article.ladder.acked")).to_contain_text(
        "已由张敏（街道热线专员）"
    )
    await expect(messages.locator("td", has_text="已由张敏（街道热线专员）确认").first).to_be_visible()
    await shot(page, "ticket-acknowledged")
    async with daemon.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, acked_by FROM ladders WHERE ticket = 'A100' AND rule = 'sign-off'"
        )
        assert dict(row) == {"status": "acked", "acked_by": "zhang-min (supervisor)"}
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM desk_audit WHERE action = 'ack' AND actor = 'zhang-min'"
            )
            == 1
        )
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM timers WHERE ticket = 'A100' AND rule = 'sign-off' AND status = 'pending'"
            )
            == 0
        )

    for path, name, heading in (("/units", "units", "单位"), ("/messages", "messages", "消息"),
                                ("/rules", "rules", "规则"), ("/calendar?month=2026-10", "calendar", "日历")):  # fmt: skip
        await page.goto(base + path)
        await expect(page.locator("h1")).to_contain_text(heading)
        await shot(page, name)
    await page.goto(f"{base}/units")
    await expect(page.locator("table.grid tbody tr").first).to_contain_text("城管执法中队")
    await page.goto(f"{base}/messages?status=failed")
    await expect(page.locator("table.grid tbody")).to_contain_text("没有消息")


async def test_phone_layout(daemon, browser):
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "zhang-min", PHONE)
    await shot(page, "phone-overview")
    # nothing wider than the screen but the tables' own scrolling boxes
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    await page.goto(f"{base}/tickets/A100")
    await shot(page, "phone-ticket")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


async def test_overview_updates_after_an_event_is_posted(daemon, browser):
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "zhang-min")
    await expect(page.locator("[data-count=awaiting]")).to_have_text("2")
    await post_events(daemon.port, [
        ev("D400", 1, "created", NOW, channel="phone", category="公共卫生", kind="help", summary="垃圾未清运"),
        ev("D400", 2, "dispatched", NOW, unit="社区卫生服务中心"),
    ])  # fmt: skip
    # no reload: the page polls; the default timeout of expect (5 s) is the promise
    await expect(page.locator("[data-count=awaiting]")).to_have_text("3")
    await expect(page.locator("#counts table")).to_contain_text("社区卫生服务中心")


async def test_a_liaison_does_not_see_another_units_ticket(daemon, browser):
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "sun-li")  # 市场监管所
    await page.goto(f"{base}/tickets")
    await expect(page.locator("table.list tbody tr")).to_have_count(1)
    await expect(page.locator("table.list")).to_contain_text("B200")
    await expect(page.locator("select[name=unit]")).to_have_count(0)
    await shot(page, "liaison-tickets")
    response = await page.goto(f"{base}/tickets/A100")
    assert response is not None and response.status == 404
    response = await page.goto(f"{base}/tickets?unit=城管执法中队")
    await expect(page.locator("table.list")).not_to_contain_text("A100")


async def test_a_post_without_csrf_token_is_refused(daemon, browser):
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "zhang-min")
    await page.goto(f"{base}/tickets/A100")
    # the form without its token (as a forged cross-site form would be)
    await page.evaluate("document.querySelector('form.inline input[name=csrf]').remove()")
    await page.click("button[data-ack=sign-off]")
    await expect(page.locator("body")).to_contain_text("CSRF 校验失败")
    status = await page.evaluate(
        """fetch('/tickets/A100/ack', {method: 'POST', body: new URLSearchParams({rule: 'sign-off', cycle: '1'})})
           .then(r => r.status)"""
    )
    assert status == 403
    async with daemon.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT status FROM ladders WHERE ticket = 'A100' AND rule = 'sign-off'"
            )
            == "active"
        )
        assert await conn.fetchval("SELECT count(*) FROM desk_audit WHERE action = 'ack'") == 0
