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
from tests.integration.test_import import tickets, write_export


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


def reviewed_replies() -> list[dict]:
    """The export's tickets with replies as units write them when they pass 答复审核 (a reply sent
    back does not count as 办结)."""
    rows = tickets()
    rows[0]["result"] = (
        "经核实，11月16日下午我中队执法人员到幸福路88号现场查看，诉求人反映的占道经营属实。执法人员当场"
        "责令摊主停止占道经营并清理现场，现已清理完毕，我中队将每晚安排巡查防止反弹。11月17日上午电话联系"
        "诉求人告知办理结果，诉求人表示满意。承办人：王强，联系电话0571-87654321。"
    )
    rows[1]["result"] = (
        "我所于11月18日派执法人员到和平街1号现场检查，经查该商户价格标示确有不规范之处。我所已依据《价格法》"
        "责令其整改，现已整改到位。11月18日下午电话回复诉求人，诉求人对处理结果表示认可。经办人：孙丽，"
        "电话13800138021。"
    )
    return rows


async def test_the_statistics_page_shows_the_figures_of_its_json_twin(daemon, browser, tmp_path):  # noqa: F811
    export = tmp_path / "平台导出.xlsx"
    write_export(export, "S", reviewed_replies())  # November's replies, callbacks, a dissatisfied one
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
