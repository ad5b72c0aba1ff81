"""Pure parts of statistics and import: periods, rates, facts of one ticket, cells and rows."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from supervisor.core.events import parse_event
from supervisor.core.matter import normalise_address as address_key
from supervisor.imports.mapping import load_mapping
from supervisor.imports.rows import Header, parse_time, row_events
from supervisor.stats.command import period_from
from supervisor.stats.facts import ticket_facts
from supervisor.stats.monthly import Period, parse_month, previous_month, rate
from supervisor.stats.render import rate_text, to_csv
from tests.helpers import CONFIG, ev, runtime, sh

MAPPING = load_mapping(CONFIG / "import.yaml")
FORMATS = MAPPING.date_formats


def test_periods_are_cut_in_beijing_time():
    # 16:30 UTC on 31 December is already 1 January in Beijing: the previous month is December
    assert previous_month(datetime.fromisoformat("2026-12-31T16:30:00+00:00")) == Period(
        date(2026, 12, 1), date(2026, 12, 31)
    )
    assert previous_month(sh(2026, 1, 5)) == Period(date(2025, 12, 1), date(2025, 12, 31))
    p = parse_month("2026-02")
    assert (p.first, p.last, p.label) == (date(2026, 2, 1), date(2026, 2, 28), "2026-02")
    assert p.start == sh(2026, 2, 1) and p.end == sh(2026, 3, 1)
    assert p.previous() == parse_month("2026-01")
    span = period_from(None, "2026-11-10", "2026-11-16", sh(2026, 12, 1))
    assert span.label == "2026-11-10_2026-11-16" and span.previous() == Period(
        date(2026, 11, 3), date(2026, 11, 9)
    )
    for bad in (
        ("2026-13", None, None),
        (None, "2026-11-10", None),
        (None, "2026-11-10", "2026-11-01"),
    ):
        with pytest.raises(ValueError):
            period_from(*bad, sh(2026, 12, 1))


def test_a_zero_denominator_is_no_rate():
    assert rate(0, 0) == {"num": 0, "den": 0, "rate": None}
    assert rate_text(rate(0, 0)) == "—（0/0）" and rate_text(rate(19, 20)) == "95.0%（19/20）"


def test_facts_of_a_ticket_every_type():
    from tests.helpers import every_type

    policy = runtime().policy
    f = ticket_facts("T1", [parse_event(e) for e in every_type()], policy)
    # dispatched Mon 11-23 09:05: default sign-off 2 working hours -> 11:05; signed 09:30
    assert [(d.unit, d.sign_due, d.signed_at) for d in f.dispatches] == [
        ("城管执法中队", sh(2026, 11, 23, 11, 5), sh(2026, 11, 23, 9, 30))
    ]
    # handling 0 replied 11-26 under the approved extension (12-04 17:00); handling 1 never
    # replied, its deadline 3 working days after the re-opening (Thu 11-26 16:00 -> Tue 12-01 16:00)
    h0, h1 = f.handlings
    assert (h0.replied_at, h0.reply_due, h0.reply_unit) == (
        sh(2026, 11, 26, 10),
        sh(2026, 12, 4, 17),
        "城管执法中队",
    )
    assert (h1.n, h1.replied_at, h1.reply_due) == (1, None, sh(2026, 12, 1, 16))
    assert [(c.unit, c.satisfaction) for c in f.callbacks] == [("城管执法中队", "dissatisfied")]
    # the promise (due 12-03 17:30) ended with the re-opening: it cannot be broken
    (c,) = f.commitments
    assert (c.due, c.kept_at, c.ended_at) == (sh(2026, 12, 3, 17, 30), None, sh(2026, 11, 26, 16))
    assert f.overdue_due is None  # closed
    assert f.dispute_at is None and f.handled3_at is None


def test_a_second_unit_returning_makes_a_dispute_and_a_signature_by_another_unit_does_not_count():
    policy = runtime().policy
    events = [
        ev("T", 1, "created", sh(2026, 11, 16, 9), kind="help"),
        ev("T", 2, "dispatched", sh(2026, 11, 16, 9, 30), unit="甲", co_units=["乙"]),
        ev("T", 3, "signed", sh(2026, 11, 16, 9, 40), unit="乙"),
        ev("T", 4, "returned", sh(2026, 11, 16, 9, 50), unit="乙", reason="非本单位"),
        ev("T", 5, "returned", sh(2026, 11, 16, 10), unit="甲", reason="非本单位"),
    ]
    f = ticket_facts("T", [parse_event(e) for e in events], policy)
    assert f.dispute_at == sh(2026, 11, 16, 10) and f.dispatches[0].signed_at is None
    # help: 3 working days from the dispatch; still open and unreplied
    assert f.overdue_due == sh(2026, 11, 19, 9, 30)


def test_address_key_ignores_spaces_and_full_width_forms():
    assert address_key("幸福路 ８ 号") == address_key("幸福路8号") == "幸福路8号"
    assert address_key("幸福路８号Ａ栋\u30001单元") == "幸福路8号"  # the same key as same-matter
    assert address_key("  ") is None and address_key(None) is None


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("2026-11-16 09:30:15", sh(2026, 11, 16, 9, 30).replace(second=15)),
        ("2026/11/16 09:30", sh(2026, 11, 16, 9, 30)),
        ("2026年11月16日 09:30", sh(2026, 11, 16, 9, 30)),
        ("2026-11-16", sh(2026, 11, 16)),
        (46342.395833333336, sh(2026, 11, 16, 9, 30)),  # an Excel serial number
        ("46342.5", sh(2026, 11, 16, 12)),  # a serial written as text
        (datetime(2026, 11, 16, 9, 30), sh(2026, 11, 16, 9, 30)),  # a date cell: Beijing time
        (date(2026, 11, 16), sh(2026, 11, 16)),
    ],
)
def test_times_in_every_form_are_beijing_time(cell, expected):
    assert parse_time(cell, FORMATS) == expected


def test_a_bad_time_names_the_formats():
    with pytest.raises(ValueError, match="not a time in any of the date_formats"):
        parse_time("下周一", FORMATS)


def test_a_row_yields_the_events_of_its_filled_cells_with_stable_ids():
    cells = [
        "2026-001",
        "2026-11-16 09:00",
        "微信",
        "求助",
        "是",
        "城管\u3000执法中队 ",
        "2026-11-16 09:05",
        "",
        "基本满意",
    ]
    header = Header(
        1,
        [
            "工单编号",
            "受理时间",
            "来源渠道",
            "诉求类型",
            "是否紧急",
            "承办单位",
            "派单时间",
            "回复时间",
            "回访结果",
        ],
        MAPPING,
    )
    events, problems = row_events(2, cells, header, MAPPING)
    assert problems == []
    assert [(e["id"], e["type"]) for e in events] == [
        ("imp:2026-001:created", "created"),
        ("imp:2026-001:dispatched:20261116T090500", "dispatched"),
    ]
    assert (
        events[0]["channel"] == "wechat"
        and events[0]["kind"] == "help"
        and events[0]["urgent"] is True
    )
    assert events[1]["unit"] == "城管执法中队"
    # a callback result without its time is no event; a callback time without a result is a problem
    cells[7], cells[8] = "", ""
    header2 = Header(1, [*header_cells(), "回访时间"], MAPPING)
    events, problems = row_events(3, [*cells, "2026-11-20 10:00"], header2, MAPPING)
    assert events == [] and [p.where("f.xlsx") for p in problems] == [
        "f.xlsx:3:回访时间: is filled but 回访结果/满意度 is empty"
    ]


def header_cells() -> list[str]:
    return [
        "工单编号",
        "受理时间",
        "来源渠道",
        "诉求类型",
        "是否紧急",
        "承办单位",
        "派单时间",
        "回复时间",
        "回访结果",
    ]


def test_csv_rendering_has_every_rate_with_numerator_and_denominator():
    report = {
        "period": {"from": "2026-11-01", "to": "2026-11-30"},
        "received": {"total": 2, "by_category": {"市容环境": 2}, "by_channel": {"phone": 2}, "by_kind": {"complaint": 2}, "by_grid": {}},
        "closed": 1, "rehandled": 0, "handled_3_times": 0,
        "sign_off_on_time": rate(1, 2), "on_time_replies": rate(0, 0), "satisfaction": rate(1, 1),
        "satisfaction_strict": rate(0, 1), "resolution": rate(1, 1),
        "repeats": {"tickets": 0, "matters_3plus": []}, "disputes": {"tickets": 0, "returns_by_unit": {}},
        "reminders": {"total": 0, "by_unit": {}, "by_role": {}},
        "escalations": {"total": 0, "by_unit": {}, "by_role": {}, "acknowledged": 0, "median_ack_minutes": None},
        "commitments": {"made": 0, "kept": 0, "broken": 0}, "units": [], "trend": [],
    }  # fmt: skip
    text = to_csv(report)
    assert text.startswith("\ufeff栏目,项目,分子,分母,数值")
    assert "总览,签收及时率,1,2,50.0%" in text and "总览,按时办结率,0,0,—" in text
    assert "来源渠道,电话,2,2,2" in text


def test_empty_values_are_empty_cells():
    header = Header(1, ["工单编号", "受理时间", "回访时间", "回访结果", "是否紧急"], MAPPING)
    events, problems = row_events(
        2, ["T9", "2026-11-16T09:30:00", "", "未回访", "特急"], header, MAPPING
    )
    assert (
        problems == []
        and [e["type"] for e in events] == ["created"]
        and events[0]["urgent"] is True
    )
