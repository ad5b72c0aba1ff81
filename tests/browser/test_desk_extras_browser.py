"""统计 and 导入 in the desk, in Chromium: the statistics page shows the figures of its JSON twin;
an upload shows the dry-run summary, then stores on confirm. Screenshots at 1366x768 and phone
width go to var/screenshots/ with the others."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from supervisor.imports.command import import_file
from supervisor.imports.mapping import load_mapping
from supervisor.stats.render import RATE_LABELS, pct
from tests.browser.test_desk_browser import PHONE, browser, shot, signed_in_page  # noqa: F401
from tests.deskkit import desk_daemon, events, post_events, settled
from tests.helpers import CONFIG
from tests.integration.test_import import write_export


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


async def events_like(daemon, prefix: str) -> int:
    async with daemon.pool.acquire() as conn:
        # the export's own events (its one-line replies are reviewed and sent back: not counted)
        return await conn.fetchval(
            "SELECT count(*) FROM events WHERE ticket LIKE $1 AND type <> 'reviewed'", prefix + "%"
        )


async def test_an_upload_shows_the_dry_run_then_stores_on_confirm(daemon, browser, tmp_path):  # noqa: F811
    base = f"http://127.0.0.1:{daemon.port}"
    export = tmp_path / "平台导出.xlsx"
    write_export(export, "P")
    page = await signed_in_page(browser, base, "zhang-min")
    await page.click("header.top nav a:text('导入')")
    await expect(page.locator("h1")).to_have_text("导入平台工单导出文件")
    await shot(page, "import")
    await page.set_input_files("input[type=file]", str(export))
    await page.click("button:text('上传并试运行')")
    await expect(page.locator("h2")).to_contain_text("试运行结果（尚未保存）")
    summary = page.locator(".import table")
    await expect(summary.locator("tr", has_text="读取行数").locator("td")).to_have_text("3")
    await expect(summary.locator("tr", has_text="将新增事件").locator("td")).to_have_text("13")
    await shot(page, "import-preview")
    assert await events_like(daemon, "P") == 0  # a dry run stores nothing
    await page.click("button:text('确认导入')")
    await expect(page.locator("h2")).to_contain_text("导入完成")
    await expect(summary.locator("tr", has_text="新增事件").first.locator("td")).to_have_text("13")
    await shot(page, "import-done")
    assert await events_like(daemon, "P") == 13
    async with daemon.pool.acquire() as conn:
        tickets = await conn.fetchval("SELECT count(*) FROM tickets WHERE ticket LIKE 'P%'")
    assert tickets == 3

    phone = await signed_in_page(browser, base, "zhang-min", PHONE)
    await phone.goto(f"{base}/import")
    await shot(phone, "phone-import")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


async def test_the_statistics_page_shows_the_figures_of_its_json_twin(daemon, browser, tmp_path):  # noqa: F811
    export = tmp_path / "平台导出.xlsx"
    write_export(export, "S")  # November's replies, callbacks and a dissatisfied one
    summary = await import_file(daemon.supervisor, export, load_mapping(CONFIG / "import.yaml"))
    assert summary.events_new == 13
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "li-hua")  # the leader
    await page.click("header.top nav a:text('统计')")
    await expect(page.locator("h1")).to_have_text("12345热线工单月度统计")
    await page.fill("input[name=month]", "2026-11")
    await page.click(".report nav button")
    assert page.url.endswith("/stats?month=2026-11")
    data = await page.evaluate("fetch('/stats.json?month=2026-11').then(r => r.json())")
    assert data["received"]["total"] >= 6 and data["closed"] >= 2  # figures worth comparing
    kpi = page.locator(".report .kpi")
    await expect(kpi.locator("div", has_text="受理量").locator("b")).to_have_text(
        str(data["received"]["total"])
    )
    await expect(kpi.locator("div", has_text="办结量").locator("b")).to_have_text(
        str(data["closed"])
    )
    overview = page.locator(".report table").first
    for key, text in RATE_LABELS.items():
        r = data[key]
        row = overview.locator("tr", has=page.locator(f"td:text-is('{text}')"))
        await expect(row.locator("td")).to_have_text([text, str(r["num"]), str(r["den"]), pct(r)])
    await expect(overview.locator("tr", has_text="重办量").locator("td").nth(1)).to_have_text(
        str(data["rehandled"])
    )
    units = page.locator(".report table.units")
    for u in data["units"]:
        await expect(units).to_contain_text(u["unit"])
    await shot(page, "stats")
    await page.emulate_media(media="print")  # printed: the report, not the desk around it
    await expect(page.locator("header.top")).to_be_hidden()
    navs = page.locator(".report > nav")  # the month picker, and the kept months when there are any
    for i in range(await navs.count()):
        await expect(navs.nth(i)).to_be_hidden()
    await expect(page.locator(".report h1")).to_be_visible()
    await page.emulate_media(media="screen")
    phone = await signed_in_page(browser, base, "li-hua", PHONE)
    await phone.goto(f"{base}/stats?month=2026-11")
    await shot(phone, "phone-stats")
    await phone.locator(".report table.units").scroll_into_view_if_needed()
    await shot(phone, "phone-stats-units", full=False)  # what the phone's screen shows there
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
