"""`report monthly` in a subprocess on the demo data: the .xlsx opens in LibreOffice (converted
headless) with every sheet, its text and both charts; json and the default period."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from supervisor.stats.xlsx import SHEETS
from supervisor.tools.demo import demo_events
from tests.helpers import ROOT, sh

CLI = [sys.executable, str(ROOT / "main.py")]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_report_monthly_on_the_demo_data_opens_in_libreoffice(pg_url, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "HOTLINE_CALLER_KEY": "test-key",
        "PYTHONPATH": str(ROOT),
    }
    events = tmp_path / "demo.jsonl"
    events.write_text(
        "".join(
            json.dumps(e, ensure_ascii=False) + "\n" for e in demo_events(sh(2026, 11, 18, 15))
        ),
        encoding="utf-8",
    )
    config = ["--config", str(ROOT / "config")]
    assert run([*config, "ingest", str(events)], env, tmp_path).returncode == 0
    out = tmp_path / "月报.xlsx"
    proc = run([*config, "report", "monthly", "--month", "2026-11", "-o", str(out)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = run(
        [*config, "report", "monthly", "--month", "2026-11", "--format", "json", "-o", "-"],
        env,
        tmp_path,
    )
    report = json.loads(proc.stdout)
    assert report["received"]["total"] == 4 and report["disputes"]["tickets"] == 1
    assert report["satisfaction"] == {"num": 0, "den": 2, "rate": 0.0}
    assert report["escalations"]["median_ack_minutes"] is None  # nothing acknowledged: no median
    # the workbook as written: every sheet, two native charts
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        workbook = z.read("xl/workbook.xml").decode()
    assert [n for n in names if re.fullmatch(r"xl/charts/chart\d+\.xml", n)] == [
        "xl/charts/chart1.xml",
        "xl/charts/chart2.xml",
    ]
    assert re.findall(r'<sheet name="([^"]+)"', workbook) == list(SHEETS)
    # LibreOffice reads it: to .ods (charts become chart objects) and to PDF (the text)
    profile = f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}"
    for target in ("ods", "pdf"):
        conv = subprocess.run(
            ["/usr/bin/soffice", profile, "--headless", "--convert-to", target, "--outdir", str(tmp_path), str(out)],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert conv.returncode == 0 and (tmp_path / f"月报.{target}").exists(), conv.stderr
    with zipfile.ZipFile(tmp_path / "月报.ods") as z:
        content = z.read("content.xml").decode()
        charts = [n for n in z.namelist() if re.fullmatch(r"Object \d+/content\.xml", n)]
        chart_xml = "".join(z.read(n).decode() for n in charts)
    assert len(charts) == 2 and "chart:chart" in chart_xml
    assert "近12个月主要指标趋势" in chart_xml and "单位综合得分排名" in chart_xml
    for sheet in SHEETS:
        assert f'table:name="{sheet}"' in content, sheet
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "月报.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    for words in (
        "12345热线工单月度统计（2026-11-01至2026-11-30）",
        "签收及时率",
        "按时办结率",
        "单位考核排名",
        "受理量按诉求归口（共4件）",
        "推诿工单",
        "解决问题承诺制",
        "物业管理办公室",
        "2026-11",
    ):
        assert words in text, words
    # the default period is the previous calendar month in Beijing time
    proc = run([*config, "report", "monthly", "--format", "csv"], env, tmp_path)
    assert proc.returncode == 0 and re.search(r"written to report-\d{4}-\d{2}\.csv", proc.stderr)
    bad = run(
        [
            *config,
            "report",
            "monthly",
            "--month",
            "2026-11",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ],
        env,
        tmp_path,
    )
    assert bad.returncode == 2 and "not both" in bad.stderr
