"""统计 and 导入 inside the desk (desk.extras), over HTTP against a whole daemon on PostgreSQL:
who may see them, the navigation each role gets, CSRF on the import's POSTs."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.deskkit import csrf_of, desk_daemon, events, post_events, settled, sign_in
from tests.integration.test_import import write_export


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_who_sees_statistics_and_import(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        resp = await http.get(f"{base}/stats?month=2026-11", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/signin?next=/stats")
        assert (await http.get(f"{base}/stats.json")).status == 401
        assert (await http.get(f"{base}/import", allow_redirects=False)).status == 302
    for login, stats, imports in (
        ("zhang-min", 200, 200),  # supervisor
        ("li-hua", 200, 403),  # leader
        ("zhao-gang", 403, 403),  # head
        ("wang-qiang", 403, 403),  # liaison
    ):
        async with session() as http:
            assert await sign_in(http, base, login) == 302
            home = await (await http.get(f"{base}/")).text()
            assert ('href="/stats"' in home) == (stats == 200), login
            assert ('href="/import"' in home) == (imports == 200), login
            resp = await http.get(f"{base}/stats?month=2026-11")
            assert resp.status == stats, login
            assert (await http.get(f"{base}/stats.json?month=2026-11")).status == stats
            assert (await http.get(f"{base}/stats/export.csv?month=2026-11")).status == stats
            assert (await http.get(f"{base}/import")).status == imports, login
            if stats == 200:
                page = await resp.text()
                # the desk's layout around the report: its navigation, 统计 marked as here
                assert '<a href="/stats" class="on">统计</a>' in page and "12345热线督办台" in page
                assert "12345热线工单月度统计" in page and "<svg" in page
            else:
                assert "仅限" in await resp.text()


async def test_import_posts_need_the_sessions_csrf_token(daemon, tmp_path):
    base = f"http://127.0.0.1:{daemon.port}"
    export = tmp_path / "平台导出.xlsx"
    write_export(export, "X")
    async with session() as http:
        await sign_in(http, base, "zhang-min")
        page = await (await http.get(f"{base}/import")).text()
        token = csrf_of(page)
        assert page.index('name="csrf"') < page.index('name="file"')  # the token comes first

        def upload(csrf: str | None) -> aiohttp.FormData:
            form = aiohttp.FormData()
            if csrf is not None:
                form.add_field("csrf", csrf)
            form.add_field("file", export.read_bytes(), filename="平台导出.xlsx")
            return form

        for bad in (None, "forged"):
            resp = await http.post(f"{base}/import/preview", data=upload(bad))
            assert resp.status == 403 and "CSRF" in await resp.text()
        assert list((tmp_path / "imports").glob("*")) == []  # nothing of a forged upload kept
        preview = await (await http.post(f"{base}/import/preview", data=upload(token))).text()
        assert "试运行结果（尚未保存）" in preview
        held = re.search(r'name="token" value="([^"]+)"', preview).group(1)
        confirm = {"token": held, "suffix": ".xlsx", "filename": "平台导出.xlsx"}
        assert (await http.post(f"{base}/import/confirm", data=confirm)).status == 403
        async with daemon.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM events WHERE ticket LIKE 'X%'") == 0
        done = await http.post(f"{base}/import/confirm", data={**confirm, "csrf": token})
        assert done.status == 200 and "导入完成" in await done.text()
    async with daemon.pool.acquire() as conn:
        # the file's 13 events; its one-line replies (回复内容) are reviewed and sent back
        assert await conn.fetchval(
            "SELECT count(*) FROM events WHERE ticket LIKE 'X%' AND type <> 'reviewed'"
        ) == 13
        assert await conn.fetchval(  # the import is in the audit trail, once
            "SELECT count(*) FROM desk_audit WHERE action = 'import' AND role = 'supervisor'"
        ) == 1
    async with session() as http:  # the leader may not import, token or not
        await sign_in(http, base, "li-hua")
        page = await (await http.get(f"{base}/")).text()
        resp = await http.post(f"{base}/import/preview", data=upload(csrf_of(page)))
        assert resp.status == 403
