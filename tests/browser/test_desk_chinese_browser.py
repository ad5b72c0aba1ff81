"""The desk read as the supervisor reads it, in Chromium at 1366x768 and 390x844, on a Sunday:
every page's rendered text has no Latin word but ticket ids, account names and file names; no
table is wider than the screen without a visible scroll hint; the navigation is one row; an
urgent ticket's natural-time deadline is shown in natural minutes. Screenshots of every page at
both sizes go to var/screenshots/chinese/ (desktop-*.png, phone-*.png)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.test_desk_browser import (  # noqa: F401
    DESKTOP,
    PHONE,
    ROOT,
    browser,
    signed_in_page,
)
from tests.deskkit import USERS, desk_daemon, events, post_events, until
from tests.helpers import ev, sh

SHOTS = ROOT / "var" / "screenshots" / "chinese"
SUNDAY = sh(2026, 12, 6, 10, 0)  # 2026-12-06 is a Sunday: no working minutes at all


def sunday_events() -> list[dict[str, Any]]:
    """U1: urgent, dispatched 09:14, sign-off due 09:44 (30 natural minutes): 16 minutes overdue
    at 10:00. U2: urgent, dispatched 09:58, due 10:28: 28 minutes left. L1: a unit missing
    from the directory (老旧小区改造办), so the supervisor stands in for its people."""
    return [
        ev("U1", 1, "created", sh(2026, 12, 6, 9, 10), channel="phone", category="市政设施", kind="help",
           address="幸福路 12号 502室", urgent=True, summary="井盖缺失有人跌落风险"),
        ev("U1", 2, "dispatched", sh(2026, 12, 6, 9, 14), unit="城管执法中队"),
        ev("U2", 1, "created", sh(2026, 12, 6, 9, 55), channel="wechat", category="市场管理", kind="complaint",
           address="和平街3号", urgent=True, summary="超市销售过期食品"),
        ev("U2", 2, "dispatched", sh(2026, 12, 6, 9, 58), unit="市场监管所"),
        ev("L1", 1, "created", sh(2026, 12, 3, 9, 0), channel="phone", kind="complaint",
           address="光明路7号", summary="加装电梯施工噪音"),
        ev("L1", 2, "dispatched", sh(2026, 12, 3, 9, 10), unit="老旧小区改造办"),
    ]  # fmt: skip


TICKETS = ("A100", "B200", "C300", "U1", "U2", "L1")


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path, start=SUNDAY) as d:
        await post_events(d.port, events() + sunday_events())

        async def indexed() -> bool:
            async with d.pool.acquire() as conn:
                n = await conn.fetchval("SELECT count(*) FROM desk_deadlines")
                sent = await conn.fetchval("SELECT count(*) FROM outbox WHERE ticket = 'U1'")
            return n == len(TICKETS) and sent > 0

        await until(indexed, "every ticket indexed and U1's messages queued", tries=400)
        yield d


# A Latin word: letters, maybe with digits, dots, dashes or underscores inside.
LATIN = re.compile(r"\.?[A-Za-z][A-Za-z0-9_.\-]*[A-Za-z0-9]|\.?[A-Za-z]")
FILE_NAME = re.compile(r"^[\w\-.]*\.(json|xlsx|xlsm|xls|csv|html|yaml|txt)$")


def latin_words(text: str, allowed: set[str]) -> list[str]:
    """The Latin words of `text` that are not ticket ids, account names or file names."""
    found = []
    for m in LATIN.finditer(text):
        word = m.group(0)
        # a ticket id read aloud in a call script: its letters stay ("U一")
        if word in allowed or FILE_NAME.match(word) or any(word in t for t in TICKETS):
            continue
        found.append(word)
    return found


def allow_list() -> set[str]:
    """What may be written in Latin letters: the data's ticket ids and grid ids, the accounts'
    sign-in names. Anything else on a page is English that should be Chinese."""
    return {*TICKETS, *USERS, "G01", "G02", "G03"}


PAGES = [
    ("overview", "/"),
    ("tickets", "/tickets"),
    ("ticket-acked", "/tickets/U1"),
    ("ticket-urgent", "/tickets/U2"),
    ("ticket-standin", "/tickets/L1"),
    ("units", "/units"),
    ("messages", "/messages"),
    ("rules", "/rules"),
    ("calendar", "/calendar"),
    ("stats", "/stats"),
    ("import", "/import"),
]


async def table_problems(page: Page, width: int) -> list[str]:
    """Tables wider than the screen whose scroll box shows no hint."""
    return await page.evaluate(
        """(width) => {
          const out = [];
          for (const t of document.querySelectorAll('main table')) {
            const r = t.getBoundingClientRect();
            if (r.width <= width + 1) continue;
            const box = t.closest('.scroll');
            const hint = box && box.previousElementSibling
              && box.previousElementSibling.classList.contains('scroll-hint')
              && getComputedStyle(box.previousElementSibling).display !== 'none';
            if (!box || !hint) out.push((t.className || 'table') + ' ' + Math.round(r.width) + 'px');
          }
          return out;
        }""",
        width,
    )


async def acknowledge(page: Page, base: str, ticket: str, rule: str) -> None:
    await page.goto(f"{base}/tickets/{ticket}")
    await page.click(f"button[data-ack={rule}]")
    await expect(page.locator("p.ok[role=status]")).to_be_visible()


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_every_page_is_chinese_and_fits_the_screen(daemon, browser, size):  # noqa: F811
    base = f"http://127.0.0.1:{daemon.port}"
    viewport = DESKTOP if size == "desktop" else PHONE
    SHOTS.mkdir(parents=True, exist_ok=True)
    signin = await (await browser.new_context(viewport=viewport, locale="zh-CN")).new_page()
    await signin.goto(f"{base}/signin")
    assert ".json" not in await signin.inner_text("footer")  # no twin, no promise
    await signin.screenshot(path=str(SHOTS / f"{size}-signin.png"), full_page=True)
    allowed = allow_list()
    problems: dict[str, list[str]] = {}
    text = await signin.inner_text("body")
    if latin_words(text, allowed):
        problems["signin"] = latin_words(text, allowed)

    page = await signed_in_page(browser, base, "zhang-min", viewport)
    await acknowledge(page, base, "U1", "sign-off-urgent")
    for name, path in PAGES:
        await page.goto(base + path)
        await page.screenshot(path=str(SHOTS / f"{size}-{name}.png"), full_page=True)
        body = await page.inner_text("body")
        (SHOTS / f"{size}-{name}.txt").write_text(body)
        words = latin_words(body, allowed)
        if words:
            problems[name] = sorted(set(words))
        wide = await table_problems(page, viewport["width"])
        if wide:
            problems[f"{name} (tables)"] = wide
        # a page that promises a JSON twin has one
        if ".json" in await page.inner_text("footer"):
            href = await page.get_attribute("footer a.twin", "href")
            twin = await page.request.get(base + str(href))
            if twin.status != 200 or "json" not in twin.headers.get("content-type", ""):
                problems[f"{name} (twin)"] = [f"{href} answers {twin.status}"]
        overflow = await page.evaluate("document.documentElement.scrollWidth")
        if overflow > viewport["width"]:
            problems[f"{name} (page)"] = [f"{overflow}px wide"]
        # the navigation is one row: every link's top is the first link's top
        tops = await page.eval_on_selector_all(
            "header.top nav a", "els => els.map(e => Math.round(e.getBoundingClientRect().top))"
        )
        if len(set(tops)) > 1 and await page.is_visible("header.top nav a"):
            problems[f"{name} (nav)"] = [f"links on {len(set(tops))} rows"]
    (SHOTS / f"{size}-problems.json").write_text(json.dumps(problems, ensure_ascii=False, indent=1))
    assert problems == {}


async def test_an_urgent_deadline_on_a_sunday_is_in_natural_minutes(daemon, browser):  # noqa: F811
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "zhang-min", PHONE)
    await page.goto(f"{base}/tickets/U1")
    # the clock runs on from 10:00 while the test runs: 16 minutes, or a minute or two more
    await expect(page.locator("ul.deadlines")).to_contain_text(re.compile(r"已超期1[6-9]分钟"))
    await page.goto(f"{base}/tickets/U2")
    await expect(page.locator("ul.deadlines")).to_contain_text(re.compile(r"剩余2[5-8]分钟"))
    await page.goto(f"{base}/tickets")
    row = page.locator("table.list tbody tr", has_text="U1")
    await expect(row).to_contain_text(re.compile(r"已超期1[6-9]分钟"))
    assert "工作分钟" not in await row.inner_text()


async def test_what_the_supervisor_reads_is_said_once_and_where_it_belongs(daemon, browser):  # noqa: F811
    base = f"http://127.0.0.1:{daemon.port}"
    page = await signed_in_page(browser, base, "zhang-min", PHONE)
    # the calendar warning: once on every page, pointing at 日历; on 日历 only the page's own
    await page.goto(f"{base}/tickets")
    await expect(page.locator(".warn p")).to_have_count(1)
    await expect(page.locator(".warn a[href='/calendar']")).to_have_text("前往日历")
    await page.goto(f"{base}/calendar")
    assert (await page.inner_text("main")).count("尚无官方节假日") == 1
    await expect(page.locator(".warn")).to_have_count(0)
    # 统计 opens on the latest month with tickets (December), not on the empty previous month
    await page.goto(f"{base}/stats")
    await expect(page.locator("input[name=month]")).to_have_value("2026-12")
    # all-zero units are not ranked
    units = await (await page.request.get(f"{base}/units.json")).json()
    for u in units["units"]:
        against = u["missed_week"] or u["overdue"] or u["escalations_week"]
        assert (u["rank"] is None) == (not against), u
    assert [u["rank"] for u in units["units"] if u["rank"]] == [1, 2, 3]
    # held messages say when they go (Sunday: the next working day's 07:30)
    await page.goto(f"{base}/messages?status=pending")
    await expect(page.locator("table.grid tbody").first).to_contain_text("计划2026-12-07 07:30发送")
    # a unit's liaison sees no configuration warning
    liaison = await signed_in_page(browser, base, "wang-qiang", PHONE)
    await liaison.goto(f"{base}/tickets")
    await expect(liaison.locator(".warn")).to_have_count(0)
