"""Durations as written in rules: natural (`30m`, `24h`) or working (`2 working hours`, `3个工作日`).

A working day is kept as its own unit rather than converted to minutes: the policy defines
`N working days` as "the same clock time on the N-th working day", which is not N times the
office minutes of a day once a start time falls outside office hours.

Accepted texts (case-insensitive, optional leading `+`/`-`, spaces optional before the unit):
  0 or "0"                          no time at all
  30m, 30 min, 30 minutes           natural minutes; likewise 2h/2 hours, 1d/1 day/2 days
  30 working minutes, 2 working hours, 3 working days (singular forms too)
  30工作分钟, 2工作小时, 3工作日, 3个工作日 (an optional 个 before any of them)
  30分钟, 24小时, 2个小时, 1天, 1自然日        natural time in Chinese
  1.5h, 0.5 working hours, 1.5天               decimals, when they come to whole minutes;
                                               never for working days (`1.5 working days` is
                                               refused: a working day is a calendar step)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from supervisor.errors import InputError

Unit = Literal["minute", "day"]

# Rules never need more; the cap turns a typo such as `20000000 days` into a parse error
# instead of an OverflowError deep inside date arithmetic.
MAX_AMOUNT = 999_999


class DurationError(InputError):
    """A duration text that does not parse; the message names the text."""


@dataclass(frozen=True)
class Duration:
    """A signed amount of time. Negative means "before".

    Natural durations are always whole minutes (`unit == "minute"`): wall-clock time has no
    need for a separate day unit, since a natural day is exactly 1440 minutes.
    Working durations are either working minutes (hours are stored as 60 minutes each, since
    working-minute arithmetic makes them equal) or working days.
    """

    amount: int
    unit: Unit = "minute"
    working: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"Duration amount must be an int, got {self.amount!r}")
        if self.unit not in ("minute", "day"):
            raise ValueError(f"Duration unit must be 'minute' or 'day', got {self.unit!r}")
        if self.unit == "day" and not self.working:
            raise ValueError("a natural Duration is kept in minutes; use amount=days*1440")

    @classmethod
    def natural(cls, minutes: int) -> Duration:
        return cls(minutes, "minute", False)

    @classmethod
    def working_minutes(cls, minutes: int) -> Duration:
        return cls(minutes, "minute", True)

    @classmethod
    def working_days(cls, days: int) -> Duration:
        return cls(days, "day", True)

    @property
    def is_zero(self) -> bool:
        return self.amount == 0

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    def total_minutes(self, minutes_per_day: int) -> int:
        """Natural minutes, or working minutes (a working day counting `minutes_per_day`): the
        form conditions compare, since N working days after T is N days' office minutes after T."""
        return self.amount * minutes_per_day if self.unit == "day" else self.amount

    def negated(self) -> Duration:
        return Duration(-self.amount, self.unit, self.working)

    def as_timedelta(self) -> timedelta:
        """Only natural durations have a fixed length."""
        if self.working:
            raise ValueError(f"{self} has no fixed length; use WorkCalendar.add")
        return timedelta(minutes=self.amount)

    def __str__(self) -> str:
        sign = "-" if self.amount < 0 else ""
        n = abs(self.amount)
        if not self.working:
            if n == 0:
                return "0"
            for size, suffix in ((1440, "d"), (60, "h"), (1, "m")):
                if n % size == 0:
                    return f"{sign}{n // size}{suffix}"
        if self.unit == "day":
            word, count = "day", n
        elif n % 60 == 0 and n != 0:
            word, count = "hour", n // 60
        else:
            word, count = "minute", n
        plural = "" if count == 1 else "s"
        return f"{sign}{count} working {word}{plural}"


# unit text (lower case, single spaces) -> (minutes per unit or None for days, working)
_UNITS: dict[str, tuple[int | None, bool]] = {}
for _words, _value in (
    (("m", "min", "mins", "minute", "minutes"), (1, False)),
    (("h", "hour", "hours"), (60, False)),
    (("d", "day", "days"), (1440, False)),
    (("分钟", "分"), (1, False)),
    (("小时", "钟头"), (60, False)),
    (("天", "自然日", "自然天"), (1440, False)),
    (("working minute", "working minutes", "工作分钟"), (1, True)),
    (("working hour", "working hours", "工作小时"), (60, True)),
    (("working day", "working days", "工作日"), (None, True)),
):
    for _word in _words:
        _UNITS[_word] = _value
        if not _word.isascii():
            _UNITS["个" + _word] = _value  # 3个工作日, 2个工作小时

_TEXT = re.compile(
    r"(?P<sign>[+-]?)\s*(?P<number>[0-9]+)(?:\.(?P<fraction>[0-9]+))?\s*(?P<unit>.*)",
    re.ASCII | re.DOTALL,
)


def parse_duration(text: str | int) -> Duration:
    """Parse a rule's duration; see the module docstring for the accepted forms.

    Seconds are not accepted: deadlines are exact to the minute and nothing finer is needed.
    A bare number is only accepted when it is zero, because otherwise the unit is a guess.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise DurationError(f"duration {text!r}: expected text such as '2 working hours'")
    if isinstance(text, int):
        if text != 0:
            raise DurationError(f"duration {text!r}: a number needs a unit, e.g. '{text}m'")
        return Duration.natural(0)
    # NFKC folds full-width digits and signs (`３０工作分钟`, `－2h`) typed with a Chinese IME.
    normal = unicodedata.normalize("NFKC", text).strip().lower()
    match = _TEXT.fullmatch(normal)
    if match is None:
        raise DurationError(
            f"duration {text!r}: expected e.g. '30m', '2 working hours', '3个工作日'"
        )
    number = int(match["number"])
    if number > MAX_AMOUNT:
        raise DurationError(f"duration {text!r}: {number} is larger than {MAX_AMOUNT}")
    sign = -1 if match["sign"] == "-" else 1
    unit = " ".join(match["unit"].split())
    if unit == "":
        if number != 0:
            raise DurationError(f"duration {text!r}: a number needs a unit, e.g. '{number}m'")
        return Duration.natural(0)
    if unit not in _UNITS:
        raise DurationError(
            f"duration {text!r}: unknown unit {match['unit'].strip()!r}; use m/h/d, "
            "working minutes/hours/days, 工作分钟/工作小时/工作日"
        )
    per_unit, working = _UNITS[unit]
    fraction = match["fraction"]
    if fraction is not None:
        return _decimal(text, sign, f"{number}.{fraction}", per_unit, working)
    if per_unit is None:
        return Duration.working_days(sign * number)
    return Duration(sign * number * per_unit, "minute", working)


def _decimal(text: str, sign: int, amount: str, per_unit: int | None, working: bool) -> Duration:
    """`1.5h` is 90 minutes; `1.5 working days` has no meaning a rule could rely on."""
    from decimal import Decimal

    if per_unit is None:
        raise DurationError(
            f"duration {text!r}: working days must be whole (a working day moves to the same "
            "time on the next working day, so half of one is undefined); write working hours "
            "instead, e.g. '12 working hours' (a day of the default office hours is 7 working hours)"
        )
    minutes = Decimal(amount) * per_unit
    if minutes != minutes.to_integral_value():
        raise DurationError(
            f"duration {text!r}: {amount} does not come to whole minutes; write it in minutes"
        )
    return Duration(sign * int(minutes), "minute", working)
