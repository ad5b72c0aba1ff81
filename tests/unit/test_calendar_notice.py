"""The State Council's holiday notices as published, read: every notice of the corpus (2015-2026,
annual and supplementary, several copies) must give chinese-calendar's days for its year."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.tools.calendar_notice import NoticeError, parse_notice

NOTICES = Path(__file__).resolve().parents[1] / "data" / "notices"
SUPPLEMENTS = {
    2015: ["2015-victory-day"],
    2019: ["2019-labour-day"],
    2020: ["2020-spring-festival-extension"],
}
# each copy variant and the corpus file it must read the same as
VARIANTS = {
    "2015-news-dashes": "2015",
    "2015-victory-day-news": "2015-victory-day",
    "2016-gov-cn": "2016",
    "2019-news": "2019",
    "2019-news-summary": "2019",
    "2019-labour-day-news": "2019-labour-day",
    "2020-body-only": "2020",
    "2020-spring-festival-extension-news": "2020-spring-festival-extension",
    "2021-full-width": "2021",
    "2023-line-breaks": "2023",
    "2023-traditional": "2023",
}


def read(name: str):
    path = NOTICES / f"{name}.txt"
    if not path.exists():
        path = NOTICES / "variants" / f"{name}.txt"
    return parse_notice(path.read_text(encoding="utf-8"))


def package(year: int) -> tuple[set[date], set[date]]:
    """chinese_calendar's weekday days off and working weekends for `year`'s notice: late
    December belongs to the next year's notice (its 元旦)."""
    lo, hi = date(year - 1, 12, 25), date(year, 12, 25)
    off = {d for d in chinese_calendar.holidays if lo <= d < hi and d.weekday() < 5}
    return off, {d for d in chinese_calendar.workdays if lo <= d < hi}


def weekday_offs_and_working_weekends(days: dict[date, bool]) -> tuple[set[date], set[date]]:
    off = {d for d, is_off in days.items() if is_off and d.weekday() < 5}
    return off, {d for d, is_off in days.items() if not is_off}


def test_the_corpus_covers_2015_to_2026_and_the_supplements():
    names = {p.stem for p in NOTICES.glob("*.txt")}
    assert {str(y) for y in range(2015, 2027)} <= names
    assert {s for v in SUPPLEMENTS.values() for s in v} <= names
    assert set(VARIANTS) == {p.stem for p in (NOTICES / "variants").glob("*.txt")}
    sources = (NOTICES / "SOURCES.md").read_text(encoding="utf-8")
    assert all(f"{n}.txt" in sources for n in names | set(VARIANTS))


@pytest.mark.parametrize("year", range(2015, 2027))
def test_each_year_with_its_supplements_gives_chinese_calendars_days(year):
    notice = read(str(year))
    assert (notice.year, notice.kind, notice.problems()) == (year, "annual", [])
    days = notice.apply({})
    for name in SUPPLEMENTS.get(year, []):
        supplement = read(name)
        assert (supplement.year, supplement.kind, supplement.problems()) == (
            year,
            "supplement",
            [],
        )
        days = supplement.apply(days)
    assert weekday_offs_and_working_weekends(days) == package(year)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_published_copy_reads_as_the_notice(variant):
    copy, original = read(variant), read(VARIANTS[variant])
    assert (copy.year, copy.kind, copy.problems()) == (original.year, original.kind, [])
    assert copy.apply({}) == original.apply({})
    assert [f.name for f in copy.festivals] == [f.name for f in original.festivals]


def test_a_range_across_the_year_keeps_both_years():
    notice = read("2019")
    new_year = notice.festivals[0]
    assert new_year.days_off == [date(2018, 12, 30), date(2018, 12, 31), date(2019, 1, 1)]
    assert new_year.workdays == [date(2018, 12, 29)]
    assert date(2019, 12, 30) not in notice.days_off and date(2019, 12, 29) not in notice.workdays
    assert read("2023").festivals[0].days_off == [
        date(2022, 12, 31),
        date(2023, 1, 1),
        date(2023, 1, 2),
    ]


def test_a_late_december_day_without_a_year_is_the_year_before_in_new_years_item():
    notice = parse_notice(
        "一、元旦：12月30日至1月1日放假调休，共3天。12月29日（星期六）上班。", 2019
    )
    assert notice.days_off == [date(2018, 12, 30), date(2018, 12, 31), date(2019, 1, 1)]
    assert notice.workdays == [date(2018, 12, 29)]
    assert notice.problems() == []


def test_the_year_comes_from_the_title_or_the_body():
    assert read("2016-gov-cn").year_from == "标题"  # over two lines
    assert read("2019-news").year == 2019  # "2019年 部分节假日"
    body = read("2020-body-only")
    assert (body.year, body.year_from, body.kind) == (2020, "正文", "annual")
    assert read("2015-victory-day").year == 2015  # "2015年9月3日全国放假1天"


def test_supplements_are_recognised_and_applied_on_top():
    extension = read("2020-spring-festival-extension")
    assert extension.kind == "supplement" and extension.festivals[0].name == "春节"
    assert extension.festivals[0].extend_to == date(2020, 2, 2)
    year = read("2020").apply({})
    after = extension.apply(year)
    assert after[date(2020, 1, 31)] and after[date(2020, 2, 1)] and after[date(2020, 2, 2)]
    new = (date(2020, 1, 31), date(2020, 2, 1), date(2020, 2, 2))
    assert {d: v for d, v in after.items() if d not in new} == {
        d: v for d, v in year.items() if d not in new
    }
    labour = read("2019-labour-day")
    assert labour.festivals[0].name == "劳动节"
    assert labour.days_off == [date(2019, 5, d) for d in (1, 2, 3, 4)]
    assert labour.workdays == [date(2019, 4, 28), date(2019, 5, 5)]


def test_advice_is_not_a_day_off():
    # 2024: "鼓励各单位…安排职工在除夕（2月9日）休息" is not an official day off
    assert date(2024, 2, 9) not in read("2024").days_off


def test_what_was_understood_is_shown_in_the_notices_terms():
    text = read("2026").describe()
    assert "元旦：放假 1月1日至1月3日（3天）；1月4日 上班" in text
    assert "春节：放假 2月15日至2月23日（9天）；2月14日、2月28日 上班" in text
    assert "共 33 天放假，6 个调休上班日。" in text


def test_one_line_and_a_missing_year():
    line = "一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。"
    with pytest.raises(NoticeError, match="年份"):
        parse_notice(line)
    notice = parse_notice(line, year=2026)
    assert notice.days_off == [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
    assert notice.workdays == [date(2026, 1, 4)]
    assert notice.problems() == []


def test_a_total_that_disagrees_is_reported():
    notice = parse_notice("一、元旦：1月1日至3日放假调休，共4天。", year=2027)
    assert notice.problems() == ["元旦: 通知写共4天，读出3天"]


def test_a_weekday_that_disagrees_with_the_date_is_reported():
    notice = parse_notice("一、元旦：1月1日（周三）至3日（周六）放假调休，共3天。", year=2026)
    assert notice.problems() == ["元旦: 1月1日写作星期三，实为星期四"]


def test_with_the_weekend_is_checked():
    assert parse_notice("一、端午节：6月9日放假，与周末连休。", 2027).problems() == [
        "端午节: 写“与周末连休”，但6月9日不挨着周末"
    ]
    assert parse_notice("一、端午节：6月11日放假，与周末连休。", 2027).problems() == []


def test_a_weekday_listed_as_a_working_day_is_reported():
    notice = parse_notice("一、春节：2月1日至7日放假调休，共7天。2月8日（星期一）上班。", 2027)
    assert notice.problems() == ["春节: 2月8日（星期一）不是周末，不能是调休上班日"]


@pytest.mark.parametrize(
    "text",
    [
        "明天开会。",
        "各省、自治区：经国务院批准，现将2027年元旦放假安排通知如下。节假日期间注意安全。",
    ],
)
def test_a_text_without_days_off_is_refused(text):
    with pytest.raises(NoticeError):
        parse_notice(text, 2027)


FRAGMENTS = [
    "国务院办公厅关于2027年部分节假日安排的通知",
    "现将2027年元旦",
    "通知如下。",
    "一、",
    "二、",
    "元旦：",
    "春节：",
    "12月31日",
    "1月",
    "2日",
    "至",
    "（星期六）",
    "（周日）",
    "（农历正月初九，",
    "放假调休，",
    "共3天。",
    "上班。",
    "与周末连休。",
    "延长2027年春节假期至",
    "起正常上班",
    "２月３０日",
    "\n",
    " ",
    "　",
    "、",
    "，",
    "。",
    "鼓励",
    "99月99日",
    "2027年13月1日",
    "(",
    ")",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=40))
def test_any_text_is_read_or_refused_with_a_notice_error(parts):
    try:
        notice = parse_notice("".join(parts))
    except NoticeError:
        return
    notice.problems(), notice.describe(), notice.apply({})  # never anything but these
