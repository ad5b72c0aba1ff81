"""events._clean_text (the fast answer for well-formed events) agrees with the walk that names
each bad field (`_text_problems`): clean exactly when the walk finds nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.events import (
    MAX_DEPTH,
    EventInvalid,
    _bad_text,
    _clean_text,
    _text_problems,
    parse_event,
)


class Text(str):
    pass


class Mapping_(dict):
    pass


# strings with the troublemakers mixed in: NUL, a lone surrogate, non-ASCII text
texts = st.one_of(
    st.text(max_size=8),
    st.text(alphabet=st.sampled_from(["a", "\x00", "\ud800", "工", "é", "\udfff"]), max_size=6),
    st.builds(Text, st.text(max_size=4)),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(texts, st.integers()), inner, max_size=4),
        st.builds(Mapping_, st.dictionaries(texts, inner, max_size=3)),
    ),
    max_leaves=30,
)


def _nested(depth: int, leaf: Any, as_list: bool) -> Any:
    v = leaf
    for _ in range(depth):
        v = [v] if as_list else {"k": v}
    return v


def _plain(value: Any) -> bool:
    """No str/dict/list subclass anywhere (the fast answer leaves those to the walk)."""
    if isinstance(value, str):
        return type(value) is str
    if isinstance(value, dict):
        return type(value) is dict and all(_plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return type(value) is list and all(_plain(v) for v in value)
    return True


@settings(max_examples=1500, deadline=None)
@given(values)
def test_fast_answer_is_the_walks(value: Any) -> None:
    walk = _text_problems(value)
    if _clean_text(value):
        assert walk == []  # never clean where the walk finds a problem
    elif _plain(value) and all(type(k) is str for k in _keys(value)):
        assert walk  # and for plain JSON values, clean exactly when the walk finds nothing
    assert _bad_text(value) == walk


def _keys(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


@pytest.mark.parametrize("as_list", [True, False])
@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 900])
def test_depth_limit_agrees(depth: int, as_list: bool) -> None:
    value = {"id": _nested(depth, "x", as_list)}
    assert _clean_text(value) == (not _text_problems(value))
    assert _bad_text(value) == _text_problems(value)


def test_bad_field_still_named() -> None:
    raw = {"id": "e1", "ticket": "T1", "type": "created", "at": "2026-11-02T09:00:00+08:00",
           "address": "幸福路\x00", "notes": ["ok", "\ud800"]}  # fmt: skip
    with pytest.raises(EventInvalid) as info:
        parse_event(raw)
    named = {p.field for p in info.value.problems}
    assert named == {"address", "notes.1"}
