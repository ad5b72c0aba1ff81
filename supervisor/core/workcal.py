"""Working time in Asia/Shanghai: office hours on China's working days, holidays and 调休 included.

Pure: no I/O, no clock. Boundary choices (all exact to the microsecond, so to the minute):

* Office periods are half-open for counting: `working_minutes_between(a, b)` counts office
  time in [a, b). A period's end and the next period's start are therefore the same
  *working-time* instant (12:00 and 13:30; 17:30 and the next working day's 09:00).
* Working minutes forward: a result landing exactly on a period end stays there
  (1 working hour after 11:00 is 12:00, not 13:30), so a deadline is never pushed past a
  lunch break or a night for no working time at all. Backwards, a result landing exactly on
  a period start stays there (1 working hour before 14:30 is 13:30).
* Working days: a moment counts as "inside office hours" when start <= clock <= end of some
  period (both ends included). Outside, it first moves forward to the next period start
  (backwards: back to the previous period end), then the same clock time is taken on the
  N-th working day after (before) its day. Including both ends makes forward and backward
  exact inverses for every moment inside office hours (Mon 09:00 +1 -1 is Mon 09:00), and
  does not change the working-time instant reached since the ends coincide (see above).
* Zero of anything, working or not, returns the moment unchanged (only moved to the
  calendar's zone): "0 working minutes after a Saturday" is still that Saturday.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays

from supervisor.errors import HotlineError
from supervisor.vocabulary.durations import Duration

_DAY = timedelta(days=1)
_ZERO = timedelta()
ADD_MEMO_SIZE = 20_000  # WorkCalendar.add results kept (each about 250 bytes)


class CalendarGapError(HotlineError):
    """A date falls in a year without holiday data and the office has not supplied it."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"no holiday data for {year}: the installed chinese_calendar does not cover it. "
            f"Add {year}'s holidays and 调休 working days to config/calendar.yaml and mark "
            f"{year} as covered (or upgrade chinese-calendar once it ships {year})."
        )


@dataclass(frozen=True)
class CalendarConfig:
    office_hours: tuple[tuple[time, time], ...] = (
        (time(9), time(12)),
        (time(13, 30), time(17, 30)),
    )
    extra_workdays: frozenset[date] = field(default_factory=frozenset)  # office says: working
    extra_holidays: frozenset[date] = field(default_factory=frozenset)  # office says: not working
    covered_years: frozenset[int] = field(default_factory=frozenset)  # fully given by overrides
    # Days read from the State Council's notices (`calendar import`): they answer only for the
    # years chinese_calendar does not cover; the package stays the authority for its years.
    imported_holidays: frozenset[date] = field(default_factory=frozenset)
    imported_workdays: frozenset[date] = field(default_factory=frozenset)
    missing_year: Literal["error", "weekdays"] = "error"
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if not self.office_hours:
            raise ValueError("office_hours needs at least one period")
        previous_end: time | None = None
        for start, end in self.office_hours:
            if not start < end:
                raise ValueError(f"office period {start}-{end} must start before it ends")
            if previous_end is not None and start < previous_end:
                raise ValueError("office periods must be in order and must not overlap")
            previous_end = end
        both = self.extra_workdays & self.extra_holidays
        if both:
            raise ValueError(f"dates both extra working day and holiday: {sorted(both)}")
        if self.missing_year not in ("error", "weekdays"):
            raise ValueError(
                f"missing_year must be 'error' or 'weekdays', not {self.missing_year!r}"
            )
        try:  # fail at configuration time, not at the first deadline
            ZoneInfo(self.timezone)
        except (ValueError, KeyError) as error:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown timezone {self.timezone!r}") from error


STATUTORY_NAMES_EXCLUDED = "(observed)"


@functools.cache
def statutory_holidays(year: int) -> frozenset[date]:
    """China's statutory holidays of `year` (全国年节及纪念日放假办法) as the `holidays` package
    computes them from the law and the lunar calendar, without its "(observed)" days, which are
    guesses at the State Council's 调休 arrangement, not law."""
    days = holidays.country_holidays("CN", years=year, observed=False)
    return frozenset(d for d, name in days.items() if STATUTORY_NAMES_EXCLUDED not in name)


@functools.cache
def package_covers(year: int) -> bool:
    """Whether the installed chinese_calendar has the State Council's days for `year`."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _offset(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


class WorkCalendar:
    def __init__(self, config: CalendarConfig | None = None) -> None:
        self.config = config or CalendarConfig()
        self.tz = ZoneInfo(self.config.timezone)
        # Periods as offsets from midnight, so arithmetic stays in timedelta.
        self._periods = tuple((_offset(s), _offset(e)) for s, e in self.config.office_hours)
        self._day_length = sum((e - s for s, e in self._periods), timedelta())
        self._workdays: dict[date, bool] = {}
        self._midnights: dict[date, datetime] = {}
        self._added: dict[tuple[datetime, Duration], datetime] = {}  # add()'s memo, bounded
        self.gap_years_used: set[int] = set()  # years answered Monday-Friday; callers warn

    @property
    def minutes_per_day(self) -> int:
        return int(self._day_length.total_seconds()) // 60

    # -- which days work -------------------------------------------------------------------

    def is_workday(self, d: date) -> bool:
        if isinstance(d, datetime):
            d = d.date()
        cached = self._workdays.get(d)
        if cached is None:
            cached = self._workdays[d] = self._compute_workday(d)
        return cached

    def _compute_workday(self, d: date) -> bool:
        if d in self.config.extra_holidays:
            return False
        if d in self.config.extra_workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:  # how chinese_calendar says "no data for that year"
            pass
        if d in self.config.imported_holidays:
            return False
        if d in self.config.imported_workdays:
            return True
        if d.year in self.config.covered_years:
            return d.weekday() < 5  # the overrides above hold the year's exceptions
        if self.config.missing_year == "error":
            raise CalendarGapError(d.year)
        self.gap_years_used.add(d.year)
        # The statutory days are fixed by law whatever the State Council later publishes; only
        # the 调休 swaps are unknown. So: weekdays minus the statutory holidays.
        return d.weekday() < 5 and d not in statutory_holidays(d.year)

    def year_covered(self, year: int) -> bool:
        if year in self.config.covered_years:
            return True
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            return False
        return True

    def uncovered_years(self, years: Iterable[int]) -> list[int]:
        return sorted({y for y in years if not self.year_covered(y)})

    # -- arithmetic ------------------------------------------------------------------------

    def add(self, t: datetime, d: Duration) -> datetime:
        """`t` moved by `d` (negative: before); the result is aware, in the calendar's zone.

        Memoised per (instant, duration): a ticket's deadlines are worked out again for each of
        its events from the same dispatch time. Bounded (about 5 MB): cleared when full."""
        key = (t, d)
        hit = self._added.get(key)
        if hit is None:
            hit = self._add(t, d)
            if len(self._added) >= ADD_MEMO_SIZE:
                self._added.clear()
            self._added[key] = hit
        return hit

    def _add(self, t: datetime, d: Duration) -> datetime:
        local = self._local(t)
        if d.amount == 0:
            return local
        if not d.working:
            return (local.astimezone(UTC) + d.as_timedelta()).astimezone(self.tz)
        day, off = local.date(), local - self._midnight(local.date())
        if d.unit == "day":
            if d.amount > 0:
                day, off = self._step_days_forward(*self._inside_forward(day, off), d.amount)
            else:
                day, off = self._step_days_backward(*self._inside_backward(day, off), -d.amount)
        elif d.amount > 0:
            day, off = self._forward(day, off, timedelta(minutes=d.amount))
        else:
            day, off = self._backward(day, off, timedelta(minutes=-d.amount))
        return self._midnight(day) + off

    def end_of_office_day(self, d: date) -> datetime:
        """The end of the last office period of day `d` (a promise "by this date")."""
        return self._midnight(d) + _offset(self.config.office_hours[-1][1])

    def next_workday(self, d: date) -> date:
        """`d` if it is a working day, else the first working day after it."""
        while not self.is_workday(d):
            d += _DAY
        return d

    def due_on(self, d: date) -> datetime:
        """A bare date as a deadline: the end of that day's office hours, or of the next working
        day's when the office is closed that day (the unit is not held to a closed day)."""
        return self.end_of_office_day(self.next_workday(d))

    def first_workday_of_week(self, d: date) -> date:
        """The first working day of the Monday-to-Sunday week holding `d` (Monday, unless a
        holiday; a week without working days gives the next working day after it)."""
        return self.next_workday(d - timedelta(days=d.weekday()))

    def first_workday_of_month(self, d: date) -> date:
        return self.next_workday(d.replace(day=1))

    def working_minutes_between(self, a: datetime, b: datetime) -> int:
        """Signed office minutes in [a, b) (negative when b < a), truncated toward zero.

        Office time in [lo, hi) of a day is F(hi) - F(lo), F being the office time before a
        moment of that day (`_office_before`); the days in between count whole. Exactly
        `_minutes_walked` (the period-by-period walk), which a property test compares."""
        a, b = self._local(a), self._local(b)
        if b < a:
            return -self.working_minutes_between(b, a)
        day, end_day = a.date(), b.date()
        lo = a - self._midnight(day)
        hi = b - self._midnight(end_day)
        if day == end_day:
            total = self._office_before(day, hi) - self._office_before(day, lo)
        else:
            total = self._office_before(day, _DAY) - self._office_before(day, lo)
            day += _DAY
            while day < end_day:
                if self.is_workday(day):
                    total += self._day_length
                day += _DAY
            total += self._office_before(end_day, hi)
        return int(total.total_seconds() // 60)

    def _minutes_walked(self, a: datetime, b: datetime) -> int:
        """working_minutes_between, period by period: the reference its property test uses."""
        a, b = self._local(a), self._local(b)
        if b < a:
            return -self._minutes_walked(b, a)
        day, end_day = a.date(), b.date()
        lo = a - self._midnight(day)
        total = timedelta()
        while day < end_day:
            total += self._office_within(day, lo, _DAY)
            day, lo = day + _DAY, timedelta()
        total += self._office_within(day, lo, b - self._midnight(day))
        return int(total.total_seconds() // 60)

    def _office_before(self, day: date, x: timedelta) -> timedelta:
        """Office time of `day` before `x` (an offset from its midnight): [0, x)."""
        if not self.is_workday(day):
            return _ZERO
        done = _ZERO
        for s, e in self._periods:
            if x <= s:
                return done
            if x < e:
                return done + (x - s)
            done += e - s
        return done

    # -- helpers: a moment is (day, offset from local midnight) ----------------------------

    def _local(self, t: datetime) -> datetime:
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"WorkCalendar needs an aware datetime, got {t!r}")
        return t.astimezone(self.tz)

    def _midnight(self, d: date) -> datetime:
        # Wall-clock construction: office hours are local clock times. Kept per date (a few
        # hundred a year, like `_workdays`).
        m = self._midnights.get(d)
        if m is None:
            m = self._midnights[d] = datetime.combine(d, time(0), tzinfo=self.tz)
        return m

    def _office_within(self, day: date, lo: timedelta, hi: timedelta) -> timedelta:
        if not self.is_workday(day):
            return timedelta()
        if lo <= timedelta() and hi >= _DAY:
            return self._day_length
        return sum(
            (max(timedelta(), min(e, hi) - max(s, lo)) for s, e in self._periods), timedelta()
        )

    def _forward(self, day: date, off: timedelta, left: timedelta) -> tuple[date, timedelta]:
        while True:
            if self.is_workday(day):
                for s, e in self._periods:
                    if off >= e:
                        continue
                    start = max(s, off)
                    if left <= e - start:  # "<=": landing on a period end stays there
                        return day, start + left
                    left -= e - start
            day, off = day + _DAY, timedelta()
            # Skip whole working days at once; strictly more than a day left, so the result
            # is found inside the loop above and the period-end rule still applies.
            while left > self._day_length and self.is_workday(day):
                left -= self._day_length
                day += _DAY

    def _backward(self, day: date, off: timedelta, left: timedelta) -> tuple[date, timedelta]:
        while True:
            if self.is_workday(day):
                for s, e in reversed(self._periods):
                    if off <= s:
                        continue
                    end = min(e, off)
                    if left <= end - s:  # "<=": landing on a period start stays there
                        return day, end - left
                    left -= end - s
            day, off = day - _DAY, _DAY
            while left > self._day_length and self.is_workday(day):
                left -= self._day_length
                day -= _DAY

    def _inside_forward(self, day: date, off: timedelta) -> tuple[date, timedelta]:
        """The moment itself if inside office hours (ends included), else the next period start."""
        if self.is_workday(day):
            for s, e in self._periods:
                if off <= e:
                    return day, max(s, off)
        day += _DAY
        while not self.is_workday(day):
            day += _DAY
        return day, self._periods[0][0]

    def _inside_backward(self, day: date, off: timedelta) -> tuple[date, timedelta]:
        """The moment itself if inside office hours (ends included), else the last period end."""
        if self.is_workday(day):
            for s, e in reversed(self._periods):
                if off >= s:
                    return day, min(e, off)
        day -= _DAY
        while not self.is_workday(day):
            day -= _DAY
        return day, self._periods[-1][1]

    def _step_days_forward(self, day: date, off: timedelta, n: int) -> tuple[date, timedelta]:
        while n:
            day += _DAY
            n -= self.is_workday(day)
        return day, off

    def _step_days_backward(self, day: date, off: timedelta, n: int) -> tuple[date, timedelta]:
        while n:
            day -= _DAY
            n -= self.is_workday(day)
        return day, off
