"""日历 in Chromium: a supervisor pastes the 2020 notice, previews, confirms, then pastes the
Spring Festival extension and sees the difference; the page's days agree with `calendar show`.
Screenshots go to var/screenshots/ with the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from supervisor.tools.calendar_cli import show_lines
from tests.browser.test_desk_browser import PHONE, browser, shot, signed_in_page  # noqa: F401
from tests.deskkit import desk_daemon

NOTICES = Path(__file__).resolve().parents[1] / "data" / "notices"


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        yield d


async def test_paste_a_notice_preview_and_confirm(daemon, browser):  # noqa: F811
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "zhang-min")
    await page.click("header.top nav a:text('日历')")
    await expect(page.locator("h2", has_text="粘贴国务院放假通知")).to_be_visible()
    await page.fill("textarea[name=notice]", (NOTICES / "2020.txt").read_text(encoding="utf-8"))
    await page.click("button:text('预览')")
    await expect(page.locator(".preview h3")).to_have_text("预览（尚未写入）")
    await expect(page.locator(".preview pre")).to_contain_text("春节：放假 1月24日至1月30日（7天）")
    await shot(page, "calendar-preview")
    await page.click("button:text('确认写入')")
    await expect(page.locator("p.ok")).to_contain_text("已写入 2020 年")

    extension = (NOTICES / "2020-spring-festival-extension.txt").read_text(encoding="utf-8")
    await page.fill("textarea[name=notice]", extension)
    await page.click("button:text('预览')")
    await expect(page.locator(".preview .changes")).to_have_text(
        "变化：新增放假 1月31日；2月1日（星期六）改为休息"
    )
    await shot(page, "calendar-preview-supplement")
    await page.click("button:text('确认写入')")
    await expect(page.locator("p.ok")).to_contain_text("延长2020年春节假期")

    await page.goto(f"{base}/calendar?month=2020-01")
    rows = await page.locator("table.days tbody tr").all_inner_texts()
    shown = show_lines(Path(daemon.loaded.config_dir) / "calendar.yaml", 2020)[1:]
    assert [" ".join(r.split()) for r in rows] == [" ".join(line.split()) for line in shown]
    assert any("2020-01-31" in r for r in rows)
    await shot(page, "calendar-year")

    phone = await signed_in_page(browser, base, "zhang-min", PHONE)
    await phone.goto(f"{base}/calendar?month=2020-01")
    await shot(phone, "phone-calendar")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
