"""登记诉求 in Chromium at phone width (390): a grid member registers a demand on the phone form;
it appears in the supervisor's 工单 with channel 网格上报 and its reminders (the sign-off ladder),
and 统计 counts it in the office's own line. Screenshots go to var/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.test_desk_browser import PHONE, browser, shot, signed_in_page  # noqa: F401
from tests.deskkit import PASSWORD, desk_daemon


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        yield d


async def test_a_grid_member_registers_a_demand_on_the_phone(daemon, browser):  # noqa: F811
    base = f"http://127.0.0.1:{daemon.port}"
    ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    phone = await ctx.new_page()
    await phone.goto(f"{base}/demands/new")
    await phone.fill("input[name=login]", "chen-jing")
    await phone.fill("input[name=password]", PASSWORD)
    await phone.click("button[type=submit]")
    await expect(phone.locator("h1")).to_contain_text("登记诉求")
    await expect(phone.locator("h1 small")).to_have_text("网格上报")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await phone.fill("textarea[name=summary]", "建设路12号小区门口垃圾堆放三天无人清运，气味很大")
    await phone.select_option("select[name=kind]", "complaint")
    await phone.fill("input[name=category]", "市容环境")
    await phone.fill("input[name=address]", "建设路１２号３单元楼下")
    await phone.select_option("select[name=unit]", "城管执法中队")
    await phone.fill("input[name=caller]", "13912345678")
    await shot(phone, "phone-demand-form")
    await phone.click("button:text('登记并派单')")
    await expect(phone.locator("h1")).to_contain_text("网格工单")
    flash = phone.locator("p.ok")
    await expect(flash).to_contain_text("139****5678")  # masked after entry
    assert "13912345678" not in await phone.content()
    ticket = re.search(r"工单(DJ\w+)", await flash.inner_text()).group(1)
    row = phone.locator("tr", has_text=ticket)
    await expect(row).to_contain_text("网格上报")
    await expect(row).to_contain_text("签收")  # what is due next
    await shot(phone, "phone-grid")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # a grid member's desk is the form and their grids: the rest sends them back
    await phone.goto(f"{base}/tickets")
    await expect(phone).to_have_url(f"{base}/grid")
    # ... but their own account (password, two-factor) is theirs, and the nav offers only what opens
    assert await phone.locator("header.top nav a").all_inner_texts() == ["登记诉求", "网格"]
    await phone.goto(f"{base}/account")
    await expect(phone.locator("h1")).to_have_text("我的账号")

    page = await signed_in_page(browser, base, "zhang-min")
    await page.goto(f"{base}/tickets")
    listed = page.locator("tr", has_text=ticket)
    await expect(listed).to_contain_text("网格上报")
    await page.click(f"a:text('{ticket}')")
    await expect(page.locator("article.ladder[data-rule='sign-off']")).to_have_count(1)
    await expect(page.locator("body")).to_contain_text("网格上报")
    await page.goto(f"{base}/stats?month=2026-11")
    await expect(page.locator("body")).to_contain_text("自主登记诉求")
    data = await page.evaluate("fetch('/stats.json?month=2026-11').then(r => r.json())")
    assert data["own_demands"]["registered"] == 1
    assert data["own_demands"]["by_channel"] == {"grid": 1}
    await shot(page, "stats-own-demands")
    async with daemon.pool.acquire() as conn:
        caller = await conn.fetchval(
            "SELECT data->>'caller_masked' FROM events WHERE ticket = $1 AND type = 'created'",
            ticket,
        )
        audit = await conn.fetchval(
            "SELECT count(*) FROM desk_audit WHERE action = 'demand_registered' AND actor = 'chen-jing'"
        )
    assert caller == "139****5678" and audit == 1
