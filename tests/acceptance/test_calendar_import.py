"""`hotline-supervisor calendar import|show|override` in a subprocess, as an office runs them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from tests.acceptance.test_cli import config_copy, run  # noqa: F401  (fixture)

NOTICES = Path(__file__).resolve().parents[1] / "data" / "notices"


def test_import_shows_what_it_understood_and_writes_calendar_yaml(config_copy: Path, tmp_path):  # noqa: F811
    # a year chinese_calendar lacks: 2037 has 2026's weekdays, so 2026's text stands in for it
    notice = tmp_path / "notice-2037.txt"
    notice.write_text(
        (NOTICES / "2026.txt").read_text(encoding="utf-8").replace("2026年", "2037年"),
        encoding="utf-8",
    )
    dry = run("--config", str(config_copy), "calendar", "import", str(notice), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2037年节假日安排" in dry.stdout and "国庆节：放假 10月1日至10月7日（7天）" in dry.stdout
    assert "\nimports:" not in (config_copy / "calendar.yaml").read_text(encoding="utf-8")

    refused = run("--config", str(config_copy), "calendar", "import", str(notice))
    assert refused.returncode == 1 and "--yes" in refused.stderr  # no terminal to ask on

    proc = run("--config", str(config_copy), "calendar", "import", str(notice), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "33 天放假、6 个调休上班日" in proc.stdout
    data = yaml.safe_load((config_copy / "calendar.yaml").read_text(encoding="utf-8"))
    entry = data["imports"][2037][0]
    assert date(2037, 2, 15) in entry["days_off"] and date(2037, 2, 28) in entry["workdays"]
    assert data["extra_holidays"] == [] and data["extra_workdays"] == []  # overrides stay apart
    check = run("--config", str(config_copy), "check")
    assert check.returncode == 0, check.stderr

    # a second notice for the year is a merge: the preview lists the one change
    one = tmp_path / "one-item.txt"
    one.write_text(
        "国务院办公厅关于调整2037年劳动节假期安排的通知\n一、2037年5月1日至6日放假调休，共6天。",
        encoding="utf-8",
    )
    merged = run("--config", str(config_copy), "calendar", "import", str(one), "--yes")
    assert merged.returncode == 0, merged.stderr
    assert "与已存 2037 年安排相比：新增放假 5月6日" in merged.stdout
    data = yaml.safe_load((config_copy / "calendar.yaml").read_text(encoding="utf-8"))
    assert len(data["imports"][2037]) == 2
    same = run("--config", str(config_copy), "calendar", "import", str(notice), "--yes")
    assert "没有变化" in same.stdout or "与已存安排相同" in same.stdout

    show = run("--config", str(config_copy), "calendar", "show", "2037")
    assert show.returncode == 0, show.stderr
    assert (
        "2037-05-06 星期三 放假     导入：国务院办公厅关于调整2037年劳动节假期安排的通知"
        in show.stdout
    )
    assert (
        "2037-10-10 星期六 调休上班 导入：国务院办公厅关于2037年部分节假日安排的通知" in show.stdout
    )


def test_check_reports_a_year_that_disagrees_with_the_package(config_copy: Path, tmp_path):  # noqa: F811
    # A partial 2020 notice, started again with --replace: 2020 is chinese_calendar's year, so
    # working time does not move, but `check` names the dates and the line.
    partial = tmp_path / "partial.txt"
    partial.write_text(
        "国务院办公厅关于2020年部分节假日安排的通知\n一、元旦：1月1日放假，共1天。",
        encoding="utf-8",
    )
    proc = run(
        "--config", str(config_copy), "calendar", "import", str(partial), "--yes", "--replace"
    )
    assert proc.returncode == 0, proc.stderr
    assert "以 chinese_calendar 为准" in proc.stdout
    check = run("--config", str(config_copy), "check")
    assert check.returncode == 1
    assert "calendar.yaml:" in check.stderr and "imports.2020" in check.stderr
    assert "1月24日（星期五）通知为上班、chinese_calendar 为休息" in check.stderr
    show = run("--config", str(config_copy), "calendar", "show", "2020")
    assert "2020-01-24 星期五 放假     内置官方日历数据" in show.stdout


def test_force_never_overrides_the_package(config_copy: Path, tmp_path):  # noqa: F811
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(
        "国务院办公厅关于2020年部分节假日安排的通知\n一、元旦：1月1日至2日放假，共3天。",
        encoding="utf-8",
    )
    refused = run("--config", str(config_copy), "calendar", "import", str(wrong), "--yes")
    assert refused.returncode == 1 and "通知写共3天，读出2天" in refused.stderr
    forced = run("--config", str(config_copy), "calendar", "import", str(wrong), "--yes", "--force")
    assert forced.returncode == 0 and "仍以 chinese_calendar 为准" in forced.stderr
    show = run("--config", str(config_copy), "calendar", "show", "2020")
    assert "2020-01-02" not in show.stdout  # still a working day: the package decides

    no_source = run("--config", str(config_copy), "calendar", "override", "2020-01-02", "holiday")
    assert no_source.returncode == 1 and "--source" in no_source.stderr
    ok = run("--config", str(config_copy), "calendar", "override", "2020-01-02", "holiday",
             "--source", "区政府通知（示例）")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    show = run("--config", str(config_copy), "calendar", "show", "2020")
    assert "2020-01-02 星期四 放假     本单位调整：区政府通知（示例）" in show.stdout


def test_a_text_that_is_not_a_notice_is_refused(config_copy: Path, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.txt"
    bad.write_text("明天开会。", encoding="utf-8")
    proc = run("--config", str(config_copy), "calendar", "import", str(bad), "--yes")
    assert proc.returncode == 1 and "年份" in proc.stderr
