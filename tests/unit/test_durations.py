from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.vocabulary.durations import Duration, DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, Duration.natural(0)),
        ("0", Duration.natural(0)),
        ("30m", Duration.natural(30)),
        ("24h", Duration.natural(24 * 60)),
        ("2d", Duration.natural(2 * 1440)),
        ("30 minutes", Duration.natural(30)),
        ("2 hours", Duration.natural(120)),
        ("1 day", Duration.natural(1440)),
        ("3 days", Duration.natural(3 * 1440)),
        ("2 working hours", Duration.working_minutes(120)),
        ("1 working hour", Duration.working_minutes(60)),
        ("30 working minutes", Duration.working_minutes(30)),
        ("3 working days", Duration.working_days(3)),
        ("1 working day", Duration.working_days(1)),
        ("-30 working minutes", Duration.working_minutes(-30)),
        ("+1 working hour", Duration.working_minutes(60)),
        ("-1 working day", Duration.working_days(-1)),
        ("  2  Working   Hours ", Duration.working_minutes(120)),
        ("2工作小时", Duration.working_minutes(120)),
        ("30工作分钟", Duration.working_minutes(30)),
        ("3个工作日", Duration.working_days(3)),
        ("3工作日", Duration.working_days(3)),
        ("-1个工作日", Duration.working_days(-1)),
        ("３０工作分钟", Duration.working_minutes(30)),  # full-width digits from an IME
    ],
)
def test_accepted_forms(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2 workin hours", "5 weeks", "-", "", "   ", "5", 5, "90s", "2.5 working days", "h", "2 hours ago", True],
)
def test_rejected_forms_name_the_text(text):
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


def test_error_is_a_value_error():
    assert issubclass(DurationError, ValueError)


def test_absurdly_large_amount_is_a_parse_error():
    with pytest.raises(DurationError):
        parse_duration("99999999 working days")


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (Duration.natural(0), "0"),
        (Duration.natural(30), "30m"),
        (Duration.natural(90), "90m"),
        (Duration.natural(120), "2h"),
        (Duration.natural(1440), "1d"),
        (Duration.natural(-30), "-30m"),
        (Duration.working_minutes(120), "2 working hours"),
        (Duration.working_minutes(60), "1 working hour"),
        (Duration.working_minutes(-30), "-30 working minutes"),
        (Duration.working_minutes(90), "90 working minutes"),
        (Duration.working_minutes(1), "1 working minute"),
        (Duration.working_days(1), "1 working day"),
        (Duration.working_days(-3), "-3 working days"),
    ],
)
def test_canonical_text(duration, text):
    assert str(duration) == text


durations = st.builds(
    Duration,
    st.integers(-100_000, 100_000),
    st.sampled_from(["minute", "day"]),
    st.just(True),
) | st.builds(Duration.natural, st.integers(-100_000, 100_000))


@given(durations)
def test_canonical_text_parses_back(duration):
    assert parse_duration(str(duration)) == duration


@given(durations)
def test_negated_twice_is_identity_and_hashable(duration):
    assert duration.negated().negated() == duration
    assert duration.negated().amount == -duration.amount
    assert len({duration, duration.negated().negated()}) == 1


def test_natural_has_timedelta_working_does_not():
    assert parse_duration("24h").as_timedelta() == timedelta(hours=24)
    with pytest.raises(ValueError):
        parse_duration("2 working hours").as_timedelta()


def test_natural_days_are_kept_in_minutes():
    with pytest.raises(ValueError):
        Duration(1, "day", working=False)
