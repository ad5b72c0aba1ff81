"""Working-time arithmetic. Dates are checked against chinese-calendar 1.11.0:
2025-06-09..13 is a plain Monday-Friday week; National Day 2026 is Oct 1-7 with Saturday
Oct 10 worked (调休); Spring Festival 2026 is Feb 15-23 with Saturday Feb 14 worked."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.core.workcal import CalendarConfig, CalendarGapError, WorkCalendar
from supervisor.vocabulary.durations import Duration, parse_duration

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def add(t, text, cal=CAL):
    return cal.add(t, parse_duration(text))


# -- the examples of how working time counts -------------------------------------------------------------------


def test_two_working_hours_after_wednesday_1100_is_1430():
    assert add(at(2025, 6, 11, 11), "2 working hours") == at(2025, 6, 11, 14, 30)


def test_thirty_working_minutes_before_thursday_0915_is_previous_day_1715():
    assert add(at(2025, 6, 12, 9, 15), "-30 working minutes") == at(2025, 6, 11, 17, 15)


def test_five_working_days_after_monday_1000_is_next_monday_1000():
    assert add(at(2025, 6, 9, 10), "5 working days") == at(2025, 6, 16, 10)


def test_after_the_last_1630_it_runs_on_at_next_morning():
    assert add(at(2025, 6, 11, 16, 30), "2 working hours") == at(2025, 6, 12, 10)


def test_natural_time_counts_nights_and_holidays():
    assert add(at(2026, 9, 30, 15), "24h") == at(2026, 10, 1, 15)
    assert add(at(2025, 6, 11, 23, 45), "30m") == at(2025, 6, 12, 0, 15)
    assert add(at(2025, 6, 11, 0, 15), "-30m") == at(2025, 6, 10, 23, 45)


# -- working minutes ----------------------------------------------------------------------


def test_lunch_break_is_skipped():
    assert add(at(2025, 6, 11, 11, 30), "1 working hour") == at(2025, 6, 11, 14)
    assert add(at(2025, 6, 11, 12, 30), "30 working minutes") == at(2025, 6, 11, 14)
    assert add(at(2025, 6, 11, 14), "-1 working hour") == at(2025, 6, 11, 11, 30)


def test_landing_on_a_period_edge_stays_on_that_edge():
    # Forward stops at the end (12:00, not 13:30); backward stops at the start (13:30).
    assert add(at(2025, 6, 11, 11), "1 working hour") == at(2025, 6, 11, 12)
    assert add(at(2025, 6, 11, 14, 30), "-1 working hour") == at(2025, 6, 11, 13, 30)
    assert add(at(2025, 6, 11, 9), "7 working hours") == at(2025, 6, 11, 17, 30)
    assert add(at(2025, 6, 11, 17, 30), "-7 working hours") == at(2025, 6, 11, 9)


def test_nights_and_early_mornings_do_not_count():
    assert add(at(2025, 6, 11, 20), "30 working minutes") == at(2025, 6, 12, 9, 30)
    assert add(at(2025, 6, 12, 6), "30 working minutes") == at(2025, 6, 12, 9, 30)
    assert add(at(2025, 6, 12, 6), "-30 working minutes") == at(2025, 6, 11, 17)


def test_weekend_is_skipped_both_ways():
    assert add(at(2025, 6, 13, 17), "1 working hour") == at(2025, 6, 16, 9, 30)
    assert add(at(2025, 6, 14, 11), "1 working hour") == at(2025, 6, 16, 10)
    assert add(at(2025, 6, 16, 9, 15), "-30 working minutes") == at(2025, 6, 13, 17, 15)


def test_multi_day_working_minutes():
    # 3 whole days of 7 hours from Monday 10:00 lands on Thursday 10:00.
    assert add(at(2025, 6, 9, 10), "21 working hours") == at(2025, 6, 12, 10)
    assert add(at(2025, 6, 12, 10), "-21 working hours") == at(2025, 6, 9, 10)


def test_afternoon_before_national_day_2026():
    assert add(at(2026, 9, 30, 16, 30), "2 working hours") == at(2026, 10, 8, 10)
    assert add(at(2026, 9, 30, 15), "3 working hours") == at(2026, 10, 8, 9, 30)
    assert add(at(2026, 10, 8, 9, 30), "-3 working hours") == at(2026, 9, 30, 15)


def test_tiaoxiu_saturday_2026_10_10_is_worked():
    assert CAL.is_workday(date(2026, 10, 10))
    assert not CAL.is_workday(date(2026, 10, 11))
    assert add(at(2026, 10, 9, 17), "1 working hour") == at(2026, 10, 10, 9, 30)
    assert add(at(2026, 10, 9, 10), "1 working day") == at(2026, 10, 10, 10)
    assert add(at(2026, 10, 9, 10), "2 working days") == at(2026, 10, 12, 10)


def test_spring_festival_2026():
    assert CAL.is_workday(date(2026, 2, 14))  # Saturday 调休
    assert not any(CAL.is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert add(at(2026, 2, 14, 17), "1 working hour") == at(2026, 2, 24, 9, 30)
    assert add(at(2026, 2, 14, 10), "1 working day") == at(2026, 2, 24, 10)
    assert add(at(2026, 2, 24, 10), "-2 working days") == at(2026, 2, 13, 10)


# -- working days -------------------------------------------------------------------------


def test_working_days_skip_holidays():
    assert add(at(2026, 9, 29, 10), "3 working days") == at(2026, 10, 9, 10)


def test_working_days_from_outside_office_hours_start_at_next_opening():
    assert add(at(2025, 6, 9, 12, 30), "1 working day") == at(2025, 6, 10, 13, 30)
    assert add(at(2025, 6, 9, 8), "1 working day") == at(2025, 6, 10, 9)
    assert add(at(2025, 6, 9, 18), "1 working day") == at(2025, 6, 11, 9)
    assert add(at(2025, 6, 14, 15), "1 working day") == at(2025, 6, 17, 9)  # Saturday
    assert add(at(2026, 10, 3, 15), "1 working day") == at(2026, 10, 9, 9)  # holiday


def test_working_days_keep_period_edges_as_inside():
    assert add(at(2025, 6, 9, 17, 30), "1 working day") == at(2025, 6, 10, 17, 30)
    assert add(at(2025, 6, 9, 12), "1 working day") == at(2025, 6, 10, 12)
    assert add(at(2025, 6, 12, 9), "-1 working day") == at(2025, 6, 11, 9)


def test_working_days_backwards_from_outside_office_hours_start_at_last_closing():
    assert add(at(2025, 6, 12, 10), "-1 working day") == at(2025, 6, 11, 10)
    assert add(at(2025, 6, 12, 12, 30), "-1 working day") == at(2025, 6, 11, 12)
    assert add(at(2025, 6, 12, 8), "-1 working day") == at(2025, 6, 10, 17, 30)
    assert add(at(2025, 6, 15, 10), "-1 working day") == at(2025, 6, 12, 17, 30)  # Sunday


def test_zero_is_identity_even_outside_office_hours():
    saturday = at(2025, 6, 14, 3)
    for text in ("0", "0 working minutes", "0 working days"):
        assert add(saturday, text) == saturday


def test_result_is_in_shanghai_whatever_the_input_zone():
    utc_11 = datetime(2025, 6, 11, 3, tzinfo=UTC)  # 11:00 in Shanghai
    result = add(utc_11, "2 working hours")
    assert result == at(2025, 6, 11, 14, 30)
    assert result.utcoffset() == timedelta(hours=8)
    assert add(utc_11, "30m").utcoffset() == timedelta(hours=8)


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        CAL.add(datetime(2025, 6, 11, 11), parse_duration("1 working hour"))


# -- working_minutes_between --------------------------------------------------------------


def test_working_minutes_between():
    assert CAL.working_minutes_between(at(2025, 6, 11, 11), at(2025, 6, 11, 14, 30)) == 120
    assert CAL.working_minutes_between(at(2025, 6, 11, 14, 30), at(2025, 6, 11, 11)) == -120
    assert CAL.working_minutes_between(at(2025, 6, 13, 17), at(2025, 6, 16, 9, 30)) == 60
    assert CAL.working_minutes_between(at(2025, 6, 9), at(2025, 6, 16)) == 5 * 420
    assert CAL.working_minutes_between(at(2025, 6, 11, 12), at(2025, 6, 11, 13, 30)) == 0
    assert CAL.working_minutes_between(at(2026, 10, 1), at(2026, 10, 8)) == 0


# -- years without data, overrides --------------------------------------------------------


def test_2027_is_a_gap_by_default():
    assert not CAL.year_covered(2027)
    assert CAL.year_covered(2026)
    with pytest.raises(CalendarGapError) as caught:
        CAL.is_workday(date(2027, 1, 4))
    assert "2027" in str(caught.value)
    assert "config/calendar.yaml" in str(caught.value)
    with pytest.raises(CalendarGapError):
        add(at(2026, 12, 31, 17), "1 working hour")


def test_weekdays_policy_skips_the_statutory_holidays_and_records_the_year():
    # The policy: a year without data is weekdays minus the statutory holidays (fixed by law).
    # 2026-12-31 is a Thursday; 2027-01-01 (Friday) is 元旦, so the hour runs on at Monday 01-04.
    cal = WorkCalendar(CalendarConfig(missing_year="weekdays"))
    assert cal.gap_years_used == set()
    assert add(at(2026, 12, 31, 17), "1 working hour", cal) == at(2027, 1, 4, 9, 30)
    assert cal.is_workday(date(2027, 1, 4))
    assert not cal.is_workday(date(2027, 1, 1))  # 元旦
    for statutory in ("2027-02-05", "2027-02-08", "2027-04-05", "2027-05-01", "2027-06-09",
                      "2027-09-15", "2027-10-01"):  # fmt: skip
        assert not cal.is_workday(date.fromisoformat(statutory)), statutory
    # the package's "(observed)" guesses are not law: 2027-02-09 (Tuesday) stays a working day
    assert cal.is_workday(date(2027, 2, 9))
    assert cal.is_workday(date(2027, 10, 4))
    assert not cal.is_workday(date(2027, 1, 2))  # Saturday
    assert cal.gap_years_used == {2027}
    assert not cal.year_covered(2027)


def test_extra_holidays_and_workdays_override_the_package():
    cal = WorkCalendar(
        CalendarConfig(
            extra_holidays=frozenset({date(2025, 6, 11)}),
            extra_workdays=frozenset({date(2025, 6, 14), date(2026, 10, 1)}),
        )
    )
    assert add(at(2025, 6, 10, 17), "1 working hour", cal) == at(2025, 6, 12, 9, 30)
    assert add(at(2025, 6, 13, 17), "1 working hour", cal) == at(2025, 6, 14, 9, 30)
    assert add(at(2026, 9, 30, 17), "1 working hour", cal) == at(2026, 10, 1, 9, 30)


def test_covered_year_uses_the_office_overrides():
    new_year_2027 = frozenset({date(2027, 1, 1)})
    cal = WorkCalendar(
        CalendarConfig(extra_holidays=new_year_2027, covered_years=frozenset({2027}))
    )
    assert cal.year_covered(2027)
    assert add(at(2026, 12, 31, 17), "1 working hour", cal) == at(2027, 1, 4, 9, 30)
    assert cal.gap_years_used == set()


def test_overrides_answer_even_in_an_uncovered_year():
    cal = WorkCalendar(CalendarConfig(extra_workdays=frozenset({date(2027, 1, 4)})))
    assert cal.is_workday(date(2027, 1, 4))
    with pytest.raises(CalendarGapError):
        cal.is_workday(date(2027, 1, 5))


def test_uncovered_years():
    assert CAL.uncovered_years([2025, 2027, 2028, 2027, 2026]) == [2027, 2028]
    covered = WorkCalendar(CalendarConfig(covered_years=frozenset({2027})))
    assert covered.uncovered_years([2027, 2028]) == [2028]


# -- configuration ------------------------------------------------------------------------


def test_minutes_per_day():
    assert CAL.minutes_per_day == 420
    one_period = CalendarConfig(office_hours=((time(8, 30), time(17)),))
    assert WorkCalendar(one_period).minutes_per_day == 510


@pytest.mark.parametrize(
    "kwargs",
    [
        {"office_hours": ()},
        {"office_hours": ((time(12), time(9)),)},
        {"office_hours": ((time(9), time(12)), (time(11), time(17)))},
        {
            "extra_workdays": frozenset({date(2025, 1, 1)}),
            "extra_holidays": frozenset({date(2025, 1, 1)}),
        },
        {"missing_year": "guess"},
        {"timezone": "Mars/Olympus_Mons"},
    ],
)
def test_bad_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        CalendarConfig(**kwargs)


# -- properties ---------------------------------------------------------------------------

# Up to November 2026 so that 5000 working minutes or 20 working days stay inside the data.
moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 30), timezones=st.just(SH)
).map(lambda t: t.replace(second=0, microsecond=0))


def inside_office_hours(t):
    """Both period ends included, as working-day arithmetic treats them."""
    clock = t.time().replace(tzinfo=None)
    on_duty = any(s <= clock <= e for s, e in CAL.config.office_hours)
    return CAL.is_workday(t.date()) and on_duty


def office_clock(k):
    """The clock time k office minutes into a working day (0 <= k < minutes_per_day)."""
    for s, e in CAL.config.office_hours:
        length = (e.hour * 60 + e.minute) - (s.hour * 60 + s.minute)
        if k < length:
            return time(s.hour + (s.minute + k) // 60, (s.minute + k) % 60)
        k -= length
    raise AssertionError("k past the end of the day")


# Moments inside office hours: start included, end excluded (a forward minute fits after them).
office_moments = st.builds(
    lambda d, k: datetime.combine(d, office_clock(k), tzinfo=SH),
    st.dates(date(2025, 1, 1), date(2026, 11, 30)).filter(CAL.is_workday),
    st.integers(0, CAL.minutes_per_day - 1),
)


@given(moments, st.integers(0, 5000))
def test_minutes_between_counts_what_add_added(t, n):
    later = CAL.add(t, Duration.working_minutes(n))
    assert CAL.working_minutes_between(t, later) == n
    assert CAL.working_minutes_between(later, t) == -n
    if n:
        assert inside_office_hours(later)
    earlier = CAL.add(t, Duration.working_minutes(-n))
    assert CAL.working_minutes_between(earlier, t) == n


@given(office_moments, st.integers(0, 5000))
def test_working_minutes_round_trip_inside_office_hours(t, n):
    forward = CAL.add(t, Duration.working_minutes(n))
    assert CAL.add(forward, Duration.working_minutes(-n)) == t


@given(moments, st.integers(0, 20))
def test_working_days_move_by_whole_office_days(t, n):
    later = CAL.add(t, Duration.working_days(n))
    assert CAL.working_minutes_between(t, later) == n * CAL.minutes_per_day
    earlier = CAL.add(t, Duration.working_days(-n))
    assert CAL.working_minutes_between(earlier, t) == n * CAL.minutes_per_day


@given(
    office_moments | st.sampled_from([at(2025, 6, 11, 12), at(2026, 2, 14, 17, 30)]),
    st.integers(1, 20),
)
def test_working_days_round_trip_inside_office_hours(t, n):
    later = CAL.add(t, Duration.working_days(n))
    assert later.time() == t.time()
    assert CAL.add(later, Duration.working_days(-n)) == t


@given(moments, st.integers(0, 3000))
def test_add_is_monotonic(t, n):
    assert CAL.add(t, Duration.working_minutes(n)) <= CAL.add(t, Duration.working_minutes(n + 1))
