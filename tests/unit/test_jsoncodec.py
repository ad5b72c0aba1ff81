"""The jsonb codec writes what json.dumps wrote and reads what json.loads read."""

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.state import TicketState
from supervisor.storage.jsoncodec import dumps, loads, state_text

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=12,
)


@given(JSON)
def test_same_values_as_the_standard_library(value):
    text = dumps(value)
    assert json.loads(text) == json.loads(json.dumps(value, ensure_ascii=False))
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


def test_non_ascii_is_kept_and_the_text_is_compact():
    assert dumps({"单位": "城管执法中队", "n": [1, 2]}) == '{"单位":"城管执法中队","n":[1,2]}'


def test_big_integers_and_int_keys_as_json_does():
    assert loads("[123456789012345678901234567890]") == [123456789012345678901234567890]
    assert dumps({"a": 2**70}) == '{"a":1180591620717411303424}'
    assert dumps({1: "x"}) == '{"1":"x"}'


@dataclass
class _D:
    x: int


@pytest.mark.parametrize("value", [datetime(2026, 1, 1), _D(1), {1.5j}])
def test_what_json_refuses_stays_refused(value):
    with pytest.raises(TypeError):
        dumps(value)


# -- a ticket state's text: state_text writes what dumps(state.to_json()) wrote ----------------

_OFFSETS = st.sampled_from([0, 8, -5, 5.75]).map(lambda h: timezone(timedelta(hours=h)))
_MOMENTS = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1800, 1, 2), max_value=datetime(2200, 1, 1)),
    _OFFSETS | st.just(ZoneInfo("Asia/Shanghai")),
)


@st.composite
def _states(draw):
    values = {}
    for f in fields(TicketState):
        if f.name == "ticket":
            values[f.name] = draw(st.text(min_size=1, max_size=6))
        elif f.type == "datetime | None":
            values[f.name] = draw(st.none() | _MOMENTS)
        elif f.type.startswith("tuple["):
            values[f.name] = tuple(draw(st.lists(st.text(max_size=5), max_size=3)))
        elif f.type == "int":
            values[f.name] = draw(st.integers(min_value=0, max_value=2**62))
        elif f.type == "bool":
            values[f.name] = draw(st.booleans())
        elif f.type == "bool | None":
            values[f.name] = draw(st.none() | st.booleans())
        elif "str" in f.type:
            values[f.name] = draw(st.none() | st.text(max_size=8))
    return TicketState(**values)


@settings(max_examples=500, deadline=None)
@given(_states())
def test_state_text_is_the_json_text(state):
    assert state_text(state) == dumps(state.to_json())


def test_state_text_of_a_big_count_goes_the_usual_way():
    state = TicketState(ticket="T1", event_count=2**70, created_at=datetime(1890, 1, 1, tzinfo=UTC))
    assert state_text(state) == dumps(state.to_json())
