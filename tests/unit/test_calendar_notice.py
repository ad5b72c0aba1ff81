"""The State Council's holiday notices, parsed: they must equal chinese-calendar's data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import chinese_calendar
import pytest
import yaml

from supervisor.core.workcal import CalendarConfig, WorkCalendar
from supervisor.tools.calendar_notice import NoticeError, parse_notice, updated_calendar_yaml

NOTICES = Path(__file__).resolve().parents[1] / "data" / "notices"


@pytest.mark.parametrize("year", [2017, 2025, 2026])
def test_a_published_notice_parses_to_chinese_calendars_data(year):
    notice = parse_notice((NOTICES / f"{year}.txt").read_text(encoding="utf-8"))
    assert notice.year == year
    assert notice.days_off == sorted(d for d in chinese_calendar.holidays if d.year == year)
    assert notice.workdays == sorted(d for d in chinese_calendar.workdays if d.year == year)
    assert notice.problems() == []


def test_what_was_understood_is_shown_in_the_notices_terms():
    notice = parse_notice((NOTICES / "2026.txt").read_text(encoding="utf-8"))
    text = notice.describe()
    assert "元旦：放假 1月1日至1月3日（3天）；1月4日 上班" in text
    assert "春节：放假 2月15日至2月23日（9天）；2月14日、2月28日 上班" in text
    assert "共 33 天放假，6 个调休上班日。" in text


def test_one_line_and_a_missing_year():
    line = "一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。"
    with pytest.raises(NoticeError):
        parse_notice(line)
    notice = parse_notice(line, year=2027)
    assert notice.days_off == [date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)]
    assert notice.workdays == [date(2027, 1, 4)]


def test_a_total_that_disagrees_is_reported():
    notice = parse_notice("一、元旦：1月1日至3日放假调休，共4天。", year=2027)
    assert notice.problems() == ["元旦: 通知写共4天，读出3天"]


def test_calendar_yaml_gets_the_year_and_keeps_its_comments():
    original = (
        '# office calendar\noffice_hours:\n  - ["09:00", "12:00"]\n  - ["13:30", "17:30"]\n'
        "missing_year: weekdays\nextra_holidays: []            # e.g. - 2027-01-01\n"
        "extra_workdays:\n  - 2028-01-02\ncovered_years: []\n"
    )
    notice = parse_notice((NOTICES / "2026.txt").read_text(encoding="utf-8"))
    text = updated_calendar_yaml(original, notice)
    assert text.startswith("# office calendar\n") and "# e.g. - 2027-01-01" not in text
    data = yaml.safe_load(text)
    assert data["extra_holidays"] == notice.days_off
    assert data["extra_workdays"] == [*notice.workdays, date(2028, 1, 2)]
    assert data["covered_years"] == [2026]
    assert data["office_hours"] == [["09:00", "12:00"], ["13:30", "17:30"]]
    again = updated_calendar_yaml(text, notice)  # importing twice changes nothing
    assert yaml.safe_load(again) == data


def test_an_imported_year_is_a_covered_year_for_the_calendar():
    # Pretend 2026's notice is for 2027 (a year chinese-calendar lacks): the working days follow
    # the overrides, and nothing is guessed.
    text = (NOTICES / "2026.txt").read_text(encoding="utf-8").replace("2026年", "2027年")
    notice = parse_notice(text)
    data = yaml.safe_load(updated_calendar_yaml("missing_year: error\n", notice))
    cal = WorkCalendar(
        CalendarConfig(
            extra_holidays=frozenset(data["extra_holidays"]),
            extra_workdays=frozenset(data["extra_workdays"]),
            covered_years=frozenset(data["covered_years"]),
            missing_year="error",
        )
    )
    assert not cal.is_workday(date(2027, 1, 1))
    assert cal.is_workday(date(2027, 1, 4))  # a Monday in 2027, listed as 上班 for 2026's Sunday
    assert cal.is_workday(date(2027, 10, 10))  # Sunday in 2027, 上班 per the notice
    assert cal.gap_years_used == set()
