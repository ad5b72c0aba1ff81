"""The jsonb codec writes what json.dumps wrote and reads what json.loads read."""

import json
from dataclasses import dataclass
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.storage.jsoncodec import dumps, loads

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
