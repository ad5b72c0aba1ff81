"""日历 on the desk over HTTP: a supervisor pastes a notice, sees the preview and the difference,
confirms (audited); the page's days agree with `calendar show`; others may not; bad input is a
400 naming the field."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from supervisor.tools.calendar_cli import show_lines
from tests.deskkit import csrf_of, desk_daemon, sign_in

NOTICES = Path(__file__).resolve().parents[1] / "data" / "notices"


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        yield d


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def notice(name: str) -> str:
    return (NOTICES / f"{name}.txt").read_text(encoding="utf-8")


async def post(http, base: str, path: str, **form: str) -> tuple[int, str]:
    token = csrf_of(await (await http.get(f"{base}/calendar")).text())
    resp = await http.post(base + path, data={"csrf": token, **form})
    return resp.status, await resp.text()


async def test_paste_preview_confirm_and_the_page_agrees_with_calendar_show(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    path = Path(daemon.loaded.config_dir) / "calendar.yaml"
    async with session() as http:
        await sign_in(http, base, "zhang-min")
        assert "粘贴国务院放假通知" in await (await http.get(f"{base}/calendar")).text()
        status, html = await post(http, base, "/calendar/preview", notice=notice("2020"))
        assert status == 200 and "预览（尚未写入）" in html and "确认写入" in html
        assert not path.exists()  # a preview writes nothing
        status, html = await post(http, base, "/calendar/import", notice=notice("2020"))
        assert status == 200 and "已写入 2020 年" in html
        status, html = await post(
            http, base, "/calendar/preview", notice=notice("2020-spring-festival-extension")
        )
        assert "新增放假 1月31日；2月1日（星期六）改为休息" in html
        status, html = await post(
            http, base, "/calendar/import", notice=notice("2020-spring-festival-extension")
        )
        assert status == 200 and "已写入 2020 年" in html
        twin = await (await http.get(f"{base}/calendar.json?month=2020-01")).json()
    shown = show_lines(path, 2020)
    assert [f"{d['date']} {d['weekday']} {'放假    ' if d['kind'] == '放假' else '调休上班'} {d['source']}"
            for d in twin["days"]] == shown[1:]  # fmt: skip
    assert twin["days_authority"] in shown[0]
    async with daemon.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT actor, detail FROM desk_audit WHERE action = 'calendar_import' ORDER BY id"
        )
    assert [(r["actor"], r["detail"]["kind"]) for r in rows] == [
        ("zhang-min", "annual"),
        ("zhang-min", "supplement"),
    ]
    assert rows[1]["detail"]["changes"] == "新增放假 1月31日；2月1日（星期六）改为休息"


async def test_refusals_name_the_field_and_other_roles_may_not(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "zhang-min")
        status, html = await post(http, base, "/calendar/preview", notice="  ")
        assert status == 400 and "notice: 请粘贴通知全文" in html
        status, html = await post(http, base, "/calendar/preview", notice="明天开会。", year="x")
        assert status == 400 and "year: 应为四位年份" in html
        status, html = await post(http, base, "/calendar/preview", notice="明天开会。")
        assert status == 400 and "没有找到年份" in html
        bad = "国务院办公厅关于2037年部分节假日安排的通知\n一、元旦：1月1日至3日放假调休，共4天。"
        status, html = await post(http, base, "/calendar/import", notice=bad)
        assert status == 400 and "通知写共4天，读出3天" in html
        resp = await http.post(f"{base}/calendar/import", data={"notice": notice("2020")})
        assert resp.status == 403  # no CSRF token
    async with session() as http:
        await sign_in(http, base, "wang-qiang")
        page = await (await http.get(f"{base}/calendar")).text()
        assert "粘贴国务院放假通知" not in page
        status, _ = await post(http, base, "/calendar/import", notice=notice("2020"))
        assert status == 403
    assert not (Path(daemon.loaded.config_dir) / "calendar.yaml").exists()
