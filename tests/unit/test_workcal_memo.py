"""WorkCalendar.add's memo answers what the arithmetic answers, whatever the offset of the input."""

from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.workcal import ADD_MEMO_SIZE, CalendarConfig, WorkCalendar
from supervisor.vocabulary.durations import parse_duration

DURATIONS = ["2 working hours", "30 working minutes", "-30 working minutes", "5 working days",
             "-1 working day", "30m", "24h", "0m"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 1)),
    st.sampled_from(DURATIONS),
    st.sampled_from([0, 8, -5]),
)
def test_memoised_add_equals_the_arithmetic(naive, text, offset_h):
    t = naive.replace(tzinfo=timezone(timedelta(hours=offset_h)))
    d = parse_duration(text)
    cal = WorkCalendar()
    first = cal.add(t, d)
    assert first == WorkCalendar()._add(t, d)
    # the same instant written in another offset hits the memo and gets the same answer
    again = cal.add(t.astimezone(UTC), d)
    assert again == first and again.tzinfo == first.tzinfo


def test_the_memo_is_bounded(monkeypatch):
    cal = WorkCalendar()
    d = parse_duration("2 working hours")
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for i in range(ADD_MEMO_SIZE + 50):
        cal._added[(t0 + timedelta(seconds=i), d)] = t0
    cal.add(t0 - timedelta(days=1), d)
    assert len(cal._added) <= ADD_MEMO_SIZE


def test_a_naive_moment_is_still_refused():
    with pytest.raises(ValueError):
        WorkCalendar().add(datetime(2026, 3, 2, 9), parse_duration("2 working hours"))


CALENDARS = [
    WorkCalendar(),
    WorkCalendar(
        CalendarConfig(
            office_hours=(
                (time(8), time(11, 45)),
                (time(12, 15), time(13)),
                (time(14), time(18, 30)),
            )
        )
    ),  # fmt: skip
    WorkCalendar(CalendarConfig(timezone="Europe/Berlin")),  # days of 23 and 25 hours
]


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 1)),
    st.timedeltas(min_value=timedelta(days=-40), max_value=timedelta(days=40)),
    st.sampled_from([0, 8, -5]),
    st.sampled_from(range(len(CALENDARS))),
)
def test_working_minutes_between_equals_the_walk(naive, span, offset_h, which):
    a = naive.replace(tzinfo=timezone(timedelta(hours=offset_h)))
    b = a + span
    cal = CALENDARS[which]
    assert cal.working_minutes_between(a, b) == cal._minutes_walked(a, b)
    assert cal.working_minutes_between(b, a) == cal._minutes_walked(b, a)


def test_working_minutes_between_on_period_edges():
    cal = WorkCalendar()
    day = datetime(2026, 3, 2, tzinfo=cal.tz)  # a Monday
    edges = [day + timedelta(hours=h, minutes=m) for h, m in
             ((0, 0), (9, 0), (12, 0), (13, 30), (17, 30), (23, 59))]  # fmt: skip
    for a in edges:
        for b in edges + [e + timedelta(days=3) for e in edges]:
            assert cal.working_minutes_between(a, b) == cal._minutes_walked(a, b)
