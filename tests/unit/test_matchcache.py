"""The memo in front of the matcher gives the engine's own answer for every message."""

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.policy.conditions import compile_condition
from supervisor.policy.matchcache import MemoMatcher
from supervisor.policy.matcher import DurableMatcher, PythonMatcher, make_matcher
from tests.unit.test_matcher import MPD, conditions, messages, needs_durable


def _compiled(conds):
    out = {}
    for i, raw in enumerate(conds):
        res = compile_condition(raw, ("when",), MPD)
        assert not res.errors, res.errors
        out[f"c{i}"] = res.condition
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=4), st.lists(messages(), min_size=1, max_size=12))
def test_the_memo_answers_what_the_evaluator_answers(conds, msgs):
    compiled = _compiled(conds)
    plain = PythonMatcher(compiled)
    memo = MemoMatcher(PythonMatcher(compiled), compiled)
    # each message twice: the second answer comes from the memo
    for msg in msgs + msgs:
        assert memo.match(msg) == plain.match(msg)
    assert memo.hits >= len(msgs)


def test_numbers_are_keyed_by_where_they_stand_against_the_constants():
    compiled = _compiled(
        [{"since_dispatch": {"gt": "1 working day"}}, {"dispatch_count": {"gte": 3}}]
    )
    memo = MemoMatcher(PythonMatcher(compiled), compiled)
    base = {"since_dispatch__wm": 0, "dispatch_count": 1}
    answers = [
        memo.match({**base, "since_dispatch__wm": v}) for v in (-1, 0, 10, 419, 420, 421, 5000)
    ]
    assert answers == [set()] * 5 + [{"c0"}, {"c0"}]
    # -1..419 share one key, 420 (the constant itself) its own, 421.. another
    assert memo.misses == 3
    assert memo.match({**base, "dispatch_count": 3}) == {"c1"}
    assert memo.match({**base, "dispatch_count": 2}) == set()


def test_a_field_missing_from_the_message_goes_to_the_matcher_unkeyed():
    compiled = _compiled([{"urgent": True}])
    memo = MemoMatcher(PythonMatcher(compiled), compiled)
    assert memo.key({"kind": "help"}) is None
    assert memo.key({"urgent": True}) is not None


def test_the_memo_is_bounded():
    compiled = _compiled([{"dispatch_count": {"eq": i}} for i in range(10)])
    memo = MemoMatcher(PythonMatcher(compiled), compiled, max_entries=4)
    for i in range(10):
        assert memo.match({"dispatch_count": i}) == {f"c{i}"}
    assert len(memo._memo) <= 4


def test_text_and_booleans_are_not_confused_with_numbers():
    compiled = _compiled([{"urgent": True}])
    memo = MemoMatcher(PythonMatcher(compiled), compiled)
    assert memo.key({"urgent": True}) != memo.key({"urgent": 1})


def test_make_matcher_keeps_the_engine_name_behind_the_memo():
    compiled = _compiled([{"urgent": True}])
    m = make_matcher(compiled, "python")
    assert isinstance(m, MemoMatcher) and m.name == "python"
    assert m.match({"urgent": True}) == {"c0"} and m.match({"urgent": False}) == set()


@needs_durable
@settings(max_examples=100, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=3), st.lists(messages(), min_size=1, max_size=8))
def test_the_memo_in_front_of_durable_rules_agrees_with_the_evaluator(conds, msgs):
    compiled = _compiled(conds)
    memo = MemoMatcher(DurableMatcher(compiled), compiled)
    plain = PythonMatcher(compiled)
    for msg in msgs + msgs:
        assert memo.match(msg) == plain.match(msg)


def test_an_always_true_condition_does_not_defeat_the_memo():
    compiled = {"always": {"_": 1}, **_compiled([{"urgent": True}])}
    memo = MemoMatcher(PythonMatcher(compiled), compiled)
    assert memo.key({"urgent": False}) is not None
    assert memo.match({"urgent": False}) == {"always"}
    assert memo.match({"urgent": False}) == {"always"} and memo.hits == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.integers(-2, 5) | st.floats(-2, 5) | st.just(float("nan")) | st.booleans(),
        min_size=1,
        max_size=10,
    )
)
def test_numbers_of_every_type_get_the_evaluators_answer(values):
    """ints, floats on and between the constants, NaN and booleans (True == 1 in Python): the
    memo never lets two of them share an answer the evaluator would tell apart."""
    compiled = _compiled(
        [{"dispatch_count": {"gte": 3}}, {"dispatch_count": 1}, {"dispatch_count": {"lt": 2}}]
    )
    plain = PythonMatcher(compiled)
    memo = MemoMatcher(PythonMatcher(compiled), compiled)
    for v in values + values:
        assert memo.match({"dispatch_count": v}) == plain.match({"dispatch_count": v}), v
