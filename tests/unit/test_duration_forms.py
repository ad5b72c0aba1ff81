"""Durations as offices write them: Chinese natural units, decimals, and the full-width colon."""

from __future__ import annotations

import re

import pytest

from supervisor.config.yamlconf import ConfigInvalid, load_yaml
from supervisor.policy.rulefile import DURATION_SCHEMA
from supervisor.vocabulary.durations import Duration, DurationError, parse_duration


@pytest.mark.parametrize(
    "text,expected",
    [
        ("30分钟", Duration.natural(30)), ("24小时", Duration.natural(1440)),
        ("1天", Duration.natural(1440)), ("2个小时", Duration.natural(120)),
        ("-30分钟", Duration.natural(-30)), ("1自然日", Duration.natural(1440)),
        ("1.5h", Duration.natural(90)), ("1.5天", Duration.natural(2160)),
        ("0.5 working hours", Duration.working_minutes(30)),
        ("1.5工作小时", Duration.working_minutes(90)),
    ],
)  # fmt: skip
def test_accepted(text: str, expected: Duration):
    assert parse_duration(text) == expected


def test_decimal_working_days_are_refused_with_a_reason():
    with pytest.raises(DurationError, match="working days must be whole.*working hours"):
        parse_duration("1.5 working days")
    with pytest.raises(DurationError, match="working days must be whole"):
        parse_duration("1.5个工作日")


def test_a_decimal_that_is_not_whole_minutes_is_refused():
    with pytest.raises(DurationError, match="whole minutes"):
        parse_duration("1.25m")


@pytest.mark.parametrize("text", ["30分钟", "1.5 working hours", "3个工作日", "-2 working days", "24小时"])
def test_the_editor_schema_accepts_what_the_parser_accepts(text: str):
    assert re.match(DURATION_SCHEMA["anyOf"][0]["pattern"], text)


def test_a_full_width_colon_gets_a_hint_naming_it():
    text = "rules:\n  - id: x\n    anchor：sign_by\n"
    with pytest.raises(ConfigInvalid) as info:
        load_yaml("rules/x.yaml", text)
    [err] = info.value.errors
    assert (err.file, err.line, err.key) == ("rules/x.yaml", 3, "anchor")
    assert "full-width colon '：'" in err.message and "'anchor: '" in err.message


def test_a_full_width_colon_inside_a_value_is_fine():
    assert load_yaml("t.yaml", "text: 工单：{{ ticket }}\n").data == {"text": "工单：{{ ticket }}"}
