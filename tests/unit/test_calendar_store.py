"""Notices as stored in calendar.yaml: merge previews, the package's authority, overrides with
their source, `calendar show`'s rows, check's disagreements (file:line)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from supervisor.config.settings import CalendarFile, ImportedNotice, Override
from supervisor.config.yamlconf import load_yaml, validate
from supervisor.core.workcal import WorkCalendar
from supervisor.tools import calendar_store as store
from supervisor.tools.calendar_notice import parse_notice

NOTICES = Path(__file__).resolve().parents[1] / "data" / "notices"
TODAY = date(2026, 12, 6)


def notice(name: str, *, as_year: int | None = None):
    text = (NOTICES / f"{name}.txt").read_text(encoding="utf-8")
    if as_year is not None:  # a year chinese_calendar lacks, from a real text
        text = text.replace(name[:4] + "年", f"{as_year}年")
    return parse_notice(text)


def stored(cal: CalendarFile, plan: store.Plan) -> CalendarFile:
    return cal.model_copy(update={"imports": store.imports_after(cal, plan)})


def test_a_full_year_then_a_one_item_notice_is_one_change_and_nothing_else_moves():
    cal = CalendarFile()
    first = store.plan_import(cal, notice("2026", as_year=2037), replace=False, today=TODAY)
    cal = stored(cal, first)
    year = cal.imported_days(2037)
    assert len([d for d, off in year.items() if off]) == 33
    one_item = parse_notice(
        "国务院办公厅关于2037年部分节假日安排的通知\n一、劳动节：5月1日至6日放假调休，共6天。", None
    )
    plan = store.plan_import(cal, one_item, replace=False, today=TODAY)
    assert [c.text() for c in plan.changes] == ["新增放假 5月6日"]
    assert "与已存 2037 年安排相比：新增放假 5月6日" in plan.lines()
    after = stored(cal, plan).imported_days(2037)
    assert {d: v for d, v in after.items() if d != date(2037, 5, 6)} == year
    assert after[date(2037, 5, 6)] is True


def test_replace_starts_the_year_again():
    cal = stored(
        CalendarFile(),
        store.plan_import(CalendarFile(), notice("2026", as_year=2037), replace=False, today=TODAY),
    )
    one_item = parse_notice("一、劳动节：5月1日至5日放假调休，共5天。", 2037)
    plan = store.plan_import(cal, one_item, replace=True, today=TODAY)
    after = stored(cal, plan)
    assert len(after.imports[2037]) == 1
    assert sorted(d for d, off in after.imported_days(2037).items() if off) == [
        date(2037, 5, d) for d in range(1, 6)
    ]
    assert "重新开始 2037 年（--replace）" in plan.lines()[1]


def test_a_supplement_is_shown_as_a_difference_and_stored_on_top():
    cal = stored(
        CalendarFile(),
        store.plan_import(CalendarFile(), notice("2020"), replace=False, today=TODAY),
    )
    plan = store.plan_import(
        cal, notice("2020-spring-festival-extension"), replace=False, today=TODAY
    )
    assert store.changes_text(plan.changes) == "新增放假 1月31日；2月1日（星期六）改为休息"
    assert plan.entry.kind == "supplement"
    assert plan.entry.days_off == [date(2020, 1, 31), date(2020, 2, 1), date(2020, 2, 2)]
    after = stored(cal, plan)
    assert len(after.imports[2020]) == 2  # the year stays; the supplement comes on top
    assert plan.disagree == []  # now equal to chinese_calendar's 2020


def test_the_package_stays_the_authority_for_its_years():
    # a misread notice for 2020 (a year the package covers) changes nothing in working time
    wrong = parse_notice(
        "国务院办公厅关于2020年部分节假日安排的通知\n一、元旦：1月1日至3日放假，共3天。", None
    )
    cal = stored(
        CalendarFile(), store.plan_import(CalendarFile(), wrong, replace=False, today=TODAY)
    )
    work = WorkCalendar(cal.to_config())
    assert work.is_workday(date(2020, 1, 2))  # chinese_calendar: a working Thursday
    plan = store.plan_import(CalendarFile(), wrong, replace=False, today=TODAY)
    assert any("以 chinese_calendar 为准" in line for line in plan.lines())
    # the office decides on purpose: an override, with its source, beats the package
    decided = cal.model_copy(
        update={"overrides": [Override(day=date(2020, 1, 2), kind="holiday", source="区政府通知")]}
    )
    assert not WorkCalendar(decided.to_config()).is_workday(date(2020, 1, 2))
    rows = {
        r.day: r.source for r in store.year_rows(decided, WorkCalendar(decided.to_config()), 2020)
    }
    assert rows[date(2020, 1, 2)] == "本单位调整：区政府通知"
    assert rows[date(2020, 1, 24)] == "内置官方日历数据"


def test_imports_answer_for_years_the_package_lacks():
    cal = stored(
        CalendarFile(missing_year="error"),
        store.plan_import(CalendarFile(), notice("2026", as_year=2037), replace=False, today=TODAY),
    )
    work = WorkCalendar(cal.to_config())
    assert not work.is_workday(date(2037, 1, 1))
    assert work.is_workday(date(2037, 10, 10))  # a Saturday worked, per the notice
    assert work.year_covered(2037) and work.gap_years_used == set()
    rows = {r.day: r.source for r in store.year_rows(cal, work, 2037)}
    assert rows[date(2037, 10, 10)] == "导入：国务院办公厅关于2037年部分节假日安排的通知"


def test_check_reports_a_stored_year_that_disagrees_with_the_package(tmp_path):
    path = tmp_path / "calendar.yaml"
    partial = store.plan_import(
        CalendarFile(),
        parse_notice("一、元旦：1月1日放假，共1天。", 2020),
        replace=True,
        today=TODAY,
    )
    text = store.replace_key(
        "missing_year: weekdays\nextra_holidays: [2020-01-02]\n",
        "imports",
        store.imports_yaml({2020: [partial.entry]}),
    )
    path.write_text(text, encoding="utf-8")
    located = load_yaml(path)
    problems = store.package_problems(validate(CalendarFile, located), located)
    assert [(p.line, p.key) for p in problems] == [(4, "imports.2020"), (2, "extra_holidays.0")]
    assert "1月24日（星期五）通知为上班、chinese_calendar 为休息" in problems[0].message
    assert "2020-01-02 覆盖了 chinese_calendar" in problems[1].message


def test_the_yaml_keeps_its_comments_and_reads_back():
    original = (
        '# office calendar\noffice_hours:\n  - ["09:00", "12:00"]\n  - ["13:30", "17:30"]\n'
        "missing_year: weekdays\nextra_holidays: []            # e.g. - 2037-01-01\n"
        "covered_years: []\nimports: {}\n"
    )
    entry = ImportedNotice(
        notice="国务院办公厅关于2037年部分节假日安排的通知", days_off=[date(2037, 1, 1)]
    )
    text = store.replace_key(original, "imports", store.imports_yaml({2037: [entry]}))
    assert text.startswith("# office calendar\n") and "# e.g. - 2037-01-01" in text
    data = yaml.safe_load(text)
    assert data["imports"][2037][0]["days_off"] == [date(2037, 1, 1)]
    assert CalendarFile.model_validate(data).imports[2037][0] == entry
    again = store.replace_key(text, "imports", store.imports_yaml({2037: [entry]}))
    assert again == text


def test_files_written_before_keep_working(tmp_path):
    # what `calendar import` wrote before issue 20: the days as extra_*, the year covered
    path = tmp_path / "calendar.yaml"
    path.write_text(
        "missing_year: error\nextra_holidays: [2037-01-01, 2037-01-02]\n"
        "extra_workdays: [2037-01-04]\ncovered_years: [2037]\n",
        encoding="utf-8",
    )
    located = load_yaml(path)
    cal = validate(CalendarFile, located)
    work = WorkCalendar(cal.to_config())
    assert not work.is_workday(date(2037, 1, 1)) and work.is_workday(date(2037, 1, 4))
    assert work.is_workday(date(2037, 1, 5)) and work.gap_years_used == set()
    assert store.package_problems(cal, located) == []  # 2037 is not the package's year
    rows = {r.day: r.source for r in store.year_rows(cal, work, 2037)}
    assert rows[date(2037, 1, 1)].startswith("本单位调整：calendar.yaml extra_holidays")


def test_stored_dates_outside_their_notices_year_are_reported(tmp_path):
    path = tmp_path / "calendar.yaml"
    entry = ImportedNotice(notice="x", days_off=[date(2037, 1, 1), date(2039, 5, 1)])
    path.write_text(
        store.replace_key("", "imports", store.imports_yaml({2037: [entry]})), encoding="utf-8"
    )
    located = load_yaml(path)
    problems = store.package_problems(validate(CalendarFile, located), located)
    assert [(p.line, p.key) for p in problems] == [(3, "imports.2037.0")]
    assert "2039-05-01 不在 2037 年的通知范围内" in problems[0].message
