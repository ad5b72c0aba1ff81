"""Issue 18: exports that cannot carry formulas. A unit named `=HYPERLINK(...)` and a category
`=1+1` posted through the API appear in the statistics workbook (单位考核, 诉求归口, and through
the report's other sections in 推诿, 重复诉求, 催办督办) as text cells, never as a formula or
a link: LibreOffice opens the file (converted to .ods, where a formula is `table:formula` and a
link `text:a`) and sees text. In the CSV every such cell starts with `'` (OWASP); numbers,
negative ones included, stay numbers."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import zipfile
from pathlib import Path

import aiohttp
import pytest
from python_calamine import CalamineWorkbook

from supervisor.stats.render import to_csv
from supervisor.stats.safecells import csv_cell
from supervisor.stats.xlsx import write_xlsx
from tests.deskkit import desk_daemon, events, post_events, settled, sign_in
from tests.helpers import ev, sh

LINK = '=HYPERLINK("http://evil.example","点我")'
SUM = "=1+1"
OTHERS = ["+1+2", "-1+2", "@SUM(A1)", "\tTAB", "\rCR"]


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def evil_events() -> list[dict]:
    return [
        ev("E1", 1, "created", sh(2026, 11, 20, 9, 0), category=SUM, channel="phone"),
        ev("E1", 2, "dispatched", sh(2026, 11, 20, 9, 5), unit=LINK),
        ev("E1", 3, "returned", sh(2026, 11, 20, 9, 10), unit=LINK, reason="非本单位职责"),
        ev("E2", 1, "created", sh(2026, 11, 20, 10, 0), category="+1+2", channel="web"),
        ev("E2", 2, "dispatched", sh(2026, 11, 20, 10, 5), unit="@SUM(A1)"),
    ]


@pytest.fixture
async def exports(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events() + evil_events())
        await settled(d)
        base = f"http://127.0.0.1:{d.port}"
        async with session() as http:
            assert await sign_in(http, base, "zhang-min") == 302
            out = {}
            for fmt in ("xlsx", "csv", "json"):
                suffix = "" if fmt == "json" else f"/export.{fmt}"
                resp = await http.get(f"{base}/stats{suffix}{'.json' if fmt == 'json' else ''}",
                                      params={"month": "2026-11"})  # fmt: skip
                assert resp.status == 200, await resp.text()
                out[fmt] = await resp.read()
        yield out


def _ods_of(xlsx: bytes, tmp: Path) -> str:
    src = tmp / "report.xlsx"
    src.write_bytes(xlsx)
    profile = f"-env:UserInstallation=file://{tmp / 'lo-profile'}"
    conv = subprocess.run(
        ["soffice", profile, "--headless", "--convert-to", "ods", "--outdir", str(tmp), str(src)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert conv.returncode == 0 and (tmp / "report.ods").exists(), conv.stderr
    with zipfile.ZipFile(tmp / "report.ods") as z:
        return z.read("content.xml").decode()


def _sheet(content: str, name: str) -> str:
    m = re.search(rf'<table:table table:name="{name}".*?</table:table>', content, re.S)
    assert m, f"no sheet {name}"
    return m.group(0)


async def test_libreoffice_reads_the_names_as_text(exports, tmp_path):
    content = _ods_of(exports["xlsx"], tmp_path)
    assert "table:formula" not in content, "a cell became a formula"
    assert "<text:a" not in content and "evil.example\" " not in content, "a cell became a link"
    link_xml = LINK.replace('"', "&quot;")
    assert link_xml in _sheet(content, "单位考核") or LINK in _sheet(content, "单位考核")
    assert SUM in _sheet(content, "诉求归口")
    assert "+1+2" in _sheet(content, "诉求归口") and "@SUM(A1)" in _sheet(content, "单位考核")
    # calamine reads the file as written: the text itself, not a formula's cached value
    book = CalamineWorkbook.from_filelike(io.BytesIO(exports["xlsx"]))
    cells = {
        str(c) for name in ("单位考核", "诉求归口", "推诿")
        for row in book.get_sheet_by_name(name).to_python() for c in row
    }  # fmt: skip
    assert {LINK, SUM, "+1+2", "@SUM(A1)"} <= cells


async def test_the_csv_neutralises_every_formula_cell(exports):
    rows = list(csv.reader(io.StringIO(exports["csv"].decode("utf-8-sig"))))
    cells = [c for r in rows for c in r]
    assert "'" + SUM in cells and "'+1+2" in cells
    assert f"单位考核:{LINK}" in cells  # starts with 单, harmless as it is
    assert "'" + LINK in cells  # 推诿:退单's unit column
    for c in cells:
        assert not c.startswith(("=", "@", "\t", "\r")), c
        assert not c.startswith(("+", "-")) or re.fullmatch(r"[+-]\d+(\.\d+)?%?", c), c


async def test_every_section_of_the_workbook_and_csv_is_safe(exports, tmp_path):
    """The report's other sections (重复诉求, 催办督办 by unit and role, 网格) with such names."""
    report = json.loads(exports["json"])
    bad = [LINK, SUM, *OTHERS]
    report["reminders"]["by_unit"] = {n: 1 for n in bad}
    report["escalations"]["by_unit"] = {n: 2 for n in bad}
    report["reminders"]["by_role"] = dict.fromkeys(bad, 1)
    report["disputes"]["returns_by_unit"] = {n: -3 for n in bad}  # a negative number stays one
    report["received"]["by_grid"] = dict.fromkeys(bad, 1)
    report["repeats"]["matters_3plus"] = [
        {"key": "address", "link": "同一地址", "category": None, "address": n, "count": 3,
         "tickets": [n, "T2"]}
        for n in bad
    ]
    content = _ods_of(write_xlsx(report), tmp_path)
    assert "table:formula" not in content and "<text:a" not in content
    for sheet in ("催办督办", "推诿", "重复诉求", "诉求归口"):
        assert SUM in _sheet(content, sheet), sheet
    # -3 is a number cell in LibreOffice, not the text "-3"
    assert 'office:value-type="float" office:value="-3"' in _sheet(content, "推诿")
    cells = [c for r in csv.reader(io.StringIO(to_csv(report).lstrip("\ufeff"))) for c in r]
    for n in bad:
        assert "'" + n in cells, n
    assert "-3" in cells and "'-3" not in cells


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=1+1", "'=1+1"), ("+1", "+1"), ("-2.5", "-2.5"), ("-1+2", "'-1+2"), ("@x", "'@x"),
     ("\tx", "'\tx"), ("\rx", "'\rx"), ("12%", "12%"), ("-", "'-"), ("工单", "工单"), (-3, -3),
     (None, None), ("", "")],
)  # fmt: skip
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell
