"""overdue_words counts whole working days without asking the calendar for each one
(firing.whole_working_days): the same words as asking `calendar.add` day by day, as it did."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.workcal import CalendarConfig, WorkCalendar
from supervisor.engine.firing import Duration, overdue_words, whole_working_days  # (Duration moves)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
# office hours with a gap, an extra holiday and an extra working Sunday, in another zone
ODD = WorkCalendar(
    CalendarConfig(
        timezone="Europe/Berlin",
        office_hours=((time(8, 0), time(11, 45)), (time(13, 0), time(16, 30))),
        extra_holidays=frozenset({date(2026, 3, 3)}),
        extra_workdays=frozenset({date(2026, 3, 8)}),
    )
)


def days_by_add(deadline: datetime, at: datetime, calendar: WorkCalendar) -> tuple[int, datetime]:
    """The reference: what overdue_words did before (one add per overdue working day)."""
    days, mark = 0, deadline
    while True:
        nxt = calendar.add(deadline, Duration.working_days(days + 1))
        if nxt > at:
            return days, mark
        days, mark = days + 1, nxt


def words_by_add(at: datetime, deadline: datetime, calendar: WorkCalendar) -> str:
    if at <= deadline:
        return ""
    days, mark = days_by_add(deadline, at, calendar)
    hours, mins = divmod(calendar.working_minutes_between(mark, at), 60)
    parts = [f"{days}个工作日" if days else "", f"{hours}个工作小时" if hours else ""]
    parts.append(f"{mins}分钟" if mins and not days else "")
    return "".join(parts) or "不足1个工作分钟"


moments = st.builds(
    lambda minutes, tz: (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)).astimezone(
        tz
    ),
    # 2026: Spring Festival, National Day and their worked weekends
    st.integers(0, 60 * 24 * 320),
    st.sampled_from([SH, UTC, ZoneInfo("America/New_York")]),
)


@settings(max_examples=600, deadline=None)
@given(deadline=moments, late=st.integers(0, 60 * 24 * 40), calendar=st.sampled_from([CAL, ODD]))
def test_whole_working_days_are_the_calendars(deadline, late, calendar):
    at = deadline + timedelta(minutes=late, seconds=late % 7)
    got = whole_working_days(deadline, at, calendar)
    want = days_by_add(deadline, at, calendar)
    assert got == want
    assert got[1].utcoffset() == want[1].utcoffset()  # the same instant, written the same
    assert overdue_words(at, deadline, calendar) == words_by_add(at, deadline, calendar)


@pytest.mark.parametrize(
    ("deadline", "at", "days"),
    [
        # Friday 17:30 (an office day's end) to the Monday after next, 17:30: 6 working days
        (datetime(2025, 6, 13, 17, 30, tzinfo=SH), datetime(2025, 6, 23, 17, 30, tzinfo=SH), 6),
        # across National Day 2026 (Oct 1-7 off, Saturday Oct 10 worked): Oct 8, 9, 10 and 12
        (datetime(2026, 9, 30, 10, 0, tzinfo=SH), datetime(2026, 10, 12, 10, 0, tzinfo=SH), 4),
        # a Saturday deadline counts from Monday's first period
        (datetime(2025, 6, 14, 15, 0, tzinfo=SH), datetime(2025, 6, 17, 9, 0, tzinfo=SH), 1),
        (datetime(2025, 6, 14, 15, 0, tzinfo=SH), datetime(2025, 6, 17, 8, 59, tzinfo=SH), 0),
    ],
)
def test_whole_working_days_examples(deadline, at, days):
    assert whole_working_days(deadline, at, CAL)[0] == days
    assert whole_working_days(deadline, at, CAL) == days_by_add(deadline, at, CAL)
