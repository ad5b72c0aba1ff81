"""`hotline-supervisor calendar import NOTICE.txt` in a subprocess, as an office runs it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from tests.acceptance.test_cli import config_copy, run  # noqa: F401  (fixture)

NOTICES = Path(__file__).resolve().parents[1] / "data" / "notices"


def test_import_shows_what_it_understood_and_writes_calendar_yaml(config_copy: Path, tmp_path):  # noqa: F811
    # 2027's notice is not out yet: a stand-in made from 2026's text shows the round trip
    notice = tmp_path / "notice-2027.txt"
    notice.write_text(
        (NOTICES / "2026.txt").read_text(encoding="utf-8").replace("2026年", "2027年"),
        encoding="utf-8",
    )
    dry = run("--config", str(config_copy), "calendar", "import", str(notice), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2027年节假日安排" in dry.stdout and "国庆节：放假 10月1日至10月7日（7天）" in dry.stdout
    assert "extra_holidays: []" in (config_copy / "calendar.yaml").read_text(encoding="utf-8")

    refused = run("--config", str(config_copy), "calendar", "import", str(notice))
    assert refused.returncode == 1 and "--yes" in refused.stderr  # no terminal to ask on

    proc = run("--config", str(config_copy), "calendar", "import", str(notice), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "33 天放假、6 个调休上班日" in proc.stdout
    data = yaml.safe_load((config_copy / "calendar.yaml").read_text(encoding="utf-8"))
    assert (
        date(2027, 2, 15) in data["extra_holidays"] and date(2027, 2, 28) in data["extra_workdays"]
    )
    assert data["covered_years"] == [2027]
    check = run("--config", str(config_copy), "check")
    assert check.returncode == 0, check.stderr
    assert "no official holiday data for 2027" not in check.stdout


def test_a_text_that_is_not_a_notice_is_refused(config_copy: Path, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.txt"
    bad.write_text("明天开会。", encoding="utf-8")
    proc = run("--config", str(config_copy), "calendar", "import", str(bad), "--yes")
    assert proc.returncode == 1 and "年份" in proc.stderr
