"""The desk's 统计 and 导入 pages through aiohttp's test client, on PostgreSQL; the statistics page
printed to A4 PDF by Chromium."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from supervisor.imports.web import setup_import_routes
from supervisor.stats.command import keep
from supervisor.stats.html import render_html
from supervisor.stats.monthly import monthly_report
from supervisor.stats.render import pct
from tests.helpers import CONFIG, runtime
from tests.integration.test_import import write_export
from tests.integration.test_stats_monthly import NOVEMBER, NOW, load_fixture


async def test_statistics_page_shows_the_json_figures_and_lists_kept_months(pool, tmp_path):
    from supervisor.stats.web import setup_stats_routes

    sup = await load_fixture(pool)
    reports_dir = tmp_path / "reports"
    await keep(pool, runtime().policy, NOVEMBER, NOW, reports_dir)
    calls = []

    async def guard(request: web.Request) -> None:
        calls.append(request.path)
        if request.headers.get("X-Who") != "zhang-min":
            raise web.HTTPForbidden()

    app = web.Application()
    setup_stats_routes(app, pool=pool, policy=lambda: sup.runtime.policy, reports_dir=reports_dir,
                       guard=guard, now=lambda: NOW)  # fmt: skip
    async with TestClient(TestServer(app)) as c:
        assert (await c.get("/desk/stats?month=2026-11")).status == 403
        h = {"X-Who": "zhang-min"}
        data = await (await c.get("/desk/stats.json?month=2026-11", headers=h)).json()
        resp = await c.get("/desk/stats?month=2026-11", headers=h)
        assert resp.status == 200
        page = await resp.text()
        for key in (
            "sign_off_on_time",
            "on_time_replies",
            "satisfaction",
            "satisfaction_strict",
            "resolution",
        ):
            r = data[key]
            assert (
                f'<td class="n">{r["num"]}</td><td class="n">{r["den"]}</td><td class="n">{pct(r)}</td>'
                in page
            ), key
        assert (
            f"办结量<b>{data['closed']}</b>" in page
            and f"受理量<b>{data['received']['total']}</b>" in page
        )
        for u in data["units"]:
            assert u["unit"] in page
        assert 'href="/desk/stats/files/2026-11.xlsx"' in page and "<svg" in page
        got = await c.get("/desk/stats/files/2026-11.xlsx", headers=h)
        assert got.status == 200 and (await got.read())[:2] == b"PK"
        assert (await c.get("/desk/stats/files/..%2Fsecret.xlsx", headers=h)).status == 404
        assert (await c.get("/desk/stats?month=2026-13", headers=h)).status == 400
        csv_text = await (await c.get("/desk/stats/export.csv?month=2026-11", headers=h)).text()
        assert "按时办结率" in csv_text and ",30,37," in csv_text
    assert calls and all(p.startswith("/desk/stats") for p in calls)


async def test_upload_page_previews_then_stores(pool, tmp_path):
    sup = await load_fixture(pool)
    app = web.Application()
    setup_import_routes(app, supervisor=lambda: sup, mapping_path=CONFIG / "import.yaml",
                        upload_dir=tmp_path / "uploads")  # fmt: skip
    export = tmp_path / "平台导出.xlsx"
    write_export(export, "U")
    stale = tmp_path / "uploads" / "previewed-two-days-ago.csv"  # never confirmed: removed
    stale.parent.mkdir()
    stale.write_text("工单编号\n")
    os.utime(stale, (stale.stat().st_atime - 2 * 86400, stale.stat().st_mtime - 2 * 86400))
    async with TestClient(TestServer(app)) as c:
        assert "上传并试运行" in await (await c.get("/desk/import")).text()
        form = FormData()
        form.add_field("file", export.read_bytes(), filename="平台导出.xlsx")
        page = await (await c.post("/desk/import/preview", data=form)).text()
        assert "试运行结果（尚未保存）" in page and "<th>将新增事件</th><td>13</td>" in page
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM events WHERE ticket LIKE 'U%'") == 0
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        done = await (
            await c.post(
                "/desk/import/confirm",
                data={"token": token, "suffix": ".xlsx", "filename": "平台导出.xlsx"},
            )
        ).text()
        assert "导入完成" in done and "<th>新增事件</th><td>13</td>" in done
        again = await (
            await c.post("/desk/import/confirm", data={"token": token, "suffix": ".xlsx"})
        ).text()
        assert "已处理或已过期" in again  # the previewed file is imported once
        bad = FormData()
        bad.add_field("file", b"not a spreadsheet", filename="notes.txt")
        assert (
            "请选择平台导出的工单文件"
            in await (await c.post("/desk/import/preview", data=bad)).text()
        )
    async with pool.acquire() as conn:
        # the file's 13 events; its one-line replies (回复内容 "已清理") are reviewed and sent back
        assert await conn.fetchval(
            "SELECT count(*) FROM events WHERE ticket LIKE 'U%' AND type <> 'reviewed'"
        ) == 13
    assert list((tmp_path / "uploads").iterdir()) == []


async def test_html_report_prints_to_a4(pool, tmp_path):
    await load_fixture(pool)
    from supervisor.stats.refresh import refresh

    await refresh(pool, runtime().policy)
    html = tmp_path / "report.html"
    html.write_text(render_html(await monthly_report(pool, NOVEMBER, NOW)), encoding="utf-8")
    await asyncio.to_thread(print_and_check, html, tmp_path)


def print_and_check(html, tmp_path) -> None:
    """Chromium prints the page to PDF; the PDF is A4, a few pages, with the figures in it."""
    pdf = tmp_path / "report.pdf"
    subprocess.run(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"Page size:.*pts \(A4\)", info), info
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert 1 <= pages <= 4
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    for words in (
        "12345热线工单月度统计",
        "单位考核",
        "按时办结率",
        "30",
        "37",
        "81.1%",
        "社区居委会",
        "近12个月趋势",
        "承诺",
    ):
        assert words in text, words
    assert "月份" in text and "下载" not in text  # the screen-only navigation does not print
    if shutil.which("pdftoppm"):
        # pages as images, kept when KEEP_PRINT names a folder: to look at the print by eye
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / "page")], check=True
        )
        assert (tmp_path / "page-1.png").stat().st_size > 10_000
        if os.environ.get("KEEP_PRINT"):
            shutil.copytree(tmp_path, os.environ["KEEP_PRINT"], dirs_exist_ok=True)
