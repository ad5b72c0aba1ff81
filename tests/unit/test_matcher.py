"""durable_rules, guarded: the compiled conditions agree with the pure-Python evaluator, and the
engine's known sharp edges stay out of our way."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.policy import matcher as matcher_mod
from supervisor.policy.conditions import compile_condition
from supervisor.policy.facts import FIELDS, duration_key, window_key
from supervisor.policy.matcher import DurableMatcher, PythonMatcher, make_matcher

MPD = 420

# Tests of durable_rules itself need it installed; on Python 3.13+ (no durable-rules) the suite runs
# without them and the pure-Python evaluator serves (CI runs the unit tier in such a virtualenv).
needs_durable = pytest.mark.skipif(
    not matcher_mod.durable_available(), reason="durable_rules is not installed"
)

STR_VALUES = {
    name: [v for v in spec.values if v] or ["a", "b", "城管执法中队"]
    for name, spec in FIELDS.items()
    if spec.type == "str"
}
INT_FIELDS = [n for n, s in FIELDS.items() if s.type == "int"]
BOOL_FIELDS = [n for n, s in FIELDS.items() if s.type == "bool"]


def leaf():
    str_leaf = st.sampled_from(sorted(STR_VALUES)).flatmap(
        lambda f: st.one_of(
            st.sampled_from(STR_VALUES[f]).map(lambda v: {f: v}),
            st.sampled_from(STR_VALUES[f]).map(lambda v: {f: {"ne": v}}),
            st.lists(st.sampled_from(STR_VALUES[f]), min_size=1, max_size=3).map(
                lambda vs: {f: {"in": vs}}
            ),
            st.lists(st.sampled_from(STR_VALUES[f]), min_size=1, max_size=3).map(
                lambda vs: {f: {"not_in": vs}}
            ),
        )
    )
    int_leaf = st.tuples(
        st.sampled_from(INT_FIELDS),
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
        st.integers(0, 4),
    ).map(lambda t: {t[0]: {t[1]: t[2]}})
    bool_leaf = st.tuples(st.sampled_from(BOOL_FIELDS), st.booleans()).map(lambda t: {t[0]: t[1]})
    dur_leaf = st.tuples(
        st.sampled_from(["lt", "gt", "gte"]),
        st.sampled_from(["1 working day", "2 working hours", "30m", "1d"]),
    ).map(lambda t: {"since_dispatch": {t[0]: t[1]}})
    win_leaf = st.integers(1, 4).map(lambda n: {"repeat_calls": {"within": "30d", "gte": n}})
    return st.one_of(str_leaf, int_leaf, bool_leaf, dur_leaf, win_leaf)


conditions = st.recursive(
    leaf(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda cs: {"all": cs}),
        st.lists(children, min_size=1, max_size=3).map(lambda cs: {"any": cs}),
        children.map(lambda c: {"not": c}),
        st.lists(children, min_size=2, max_size=3).map(
            lambda cs: (
                {k: v for c in cs for k, v in c.items() if k not in ("all", "any", "not")} or cs[0]
            )
        ),
    ),
    max_leaves=6,
)


def messages():
    fields = {}
    for name, spec in FIELDS.items():
        if spec.type == "str":
            fields[name] = st.sampled_from([*STR_VALUES[name], ""])
        elif spec.type == "int":
            fields[name] = st.integers(0, 5)
        elif spec.type == "bool":
            fields[name] = st.booleans()
    fields[duration_key("since_dispatch", True)] = st.integers(-1, 2000)
    fields[duration_key("since_dispatch", False)] = st.integers(-1, 5000)
    fields[window_key("repeat_calls", 43200)] = st.integers(0, 5)
    return st.fixed_dictionaries(fields)


_shared: dict = {}


@needs_durable
@settings(max_examples=300, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=4), st.lists(messages(), min_size=1, max_size=5))
def test_durable_rules_and_the_python_evaluator_agree(conds, msgs):
    compiled = {}
    for i, raw in enumerate(conds):
        res = compile_condition(raw, ("when",), MPD)
        assert not res.errors, res.errors
        compiled[f"c{i}"] = res.condition
    durable = DurableMatcher(compiled)
    python = PythonMatcher(compiled)
    for msg in msgs:
        assert durable.match(msg) == python.match(msg), json.dumps(compiled, ensure_ascii=False)


@needs_durable
def test_every_matching_condition_fires_not_just_the_first():
    # durable_rules' `post` hands an event to ONE matching rule; the matcher asserts and retracts
    # a fact instead, so all of them fire.
    compiled = {
        name: compile_condition(c, (), MPD).condition
        for name, c in {
            "a": {"urgent": True},
            "b": {"dispatch_count": {"gte": 1}},
            "c": {"kind": "help"},
        }.items()
    }
    msg = {"urgent": True, "dispatch_count": 3, "kind": "help"}
    assert DurableMatcher(compiled).match(msg) == {"a", "b", "c"}


@needs_durable
def test_post_consumes_an_event_with_one_rule_which_is_why_we_do_not_post():
    from durable import engine

    hits = []
    host = engine.Host()
    host.register_rulesets({
        "guard_post": {
            "r1": {"all": [{"m": {"x": 1}}], "run": lambda c: hits.append("r1")},
            "r2": {"all": [{"m": {"x": 1}}], "run": lambda c: hits.append("r2")},
        }
    })  # fmt: skip
    host.post("guard_post", {"sid": "0", "id": "e1", "x": 1})
    assert len(hits) == 1


@needs_durable
def test_no_match_does_not_raise():
    m = DurableMatcher({"a": compile_condition({"urgent": True}, (), MPD).condition})
    assert m.match({"urgent": False}) == set()


@needs_durable
def test_one_session_survives_many_thousand_distinct_tickets():
    # with a session per ticket, durable_rules dies past ~1,024 session ids; we use one.
    m = DurableMatcher({"a": compile_condition({"dispatch_count": {"gte": 2}}, (), MPD).condition})
    hits = sum(1 for i in range(5000) if m.match({"dispatch_count": i % 4, "ticket": f"T{i}"}))
    assert hits == 2500


@needs_durable
def test_every_fact_uses_the_one_fixed_session_id(monkeypatch):
    """Past ~1,024 live session ids durable_rules was seen to die (MemoryError, then a segfault)
    on this kind of machine; the matcher must never open a second session."""
    m = DurableMatcher({"a": compile_condition({"urgent": True}, (), MPD).condition})
    seen = []
    real = m._host.assert_fact
    monkeypatch.setattr(
        m._host,
        "assert_fact",
        lambda rs, fact, *a: (seen.append(fact["sid"]), real(rs, fact, *a))[1],
    )
    for i in range(50):
        m.match({"urgent": bool(i % 2), "ticket": f"T{i}"})
    assert set(seen) == {"0"} and len(seen) == 50


def test_the_compiled_rules_use_no_engine_timers():
    from tests.helpers import loaded

    policy = loaded().policy
    text = json.dumps([r.when for r in policy.rules], ensure_ascii=False)
    assert "$t" not in text and "timeout" not in text


def test_falls_back_to_python_where_durable_rules_is_missing(monkeypatch):
    monkeypatch.setattr(matcher_mod, "durable_available", lambda: False)
    m = make_matcher({"a": {"urgent": True}})
    assert m.name == "python" and m.match({"urgent": True}) == {"a"}


@needs_durable
def test_unmatched_messages_leave_nothing_behind():
    """No catch-all rule: a message no rule matches makes durable_rules raise, and the matcher
    answers 'nothing'. Past ~65,700 facts kept asserted the engine raises MessageObservedException
    (its issue #376), so this guards that unmatched facts are not kept."""
    m = DurableMatcher({"a": compile_condition({"urgent": True}, (), MPD).condition})
    for _ in range(70_000):
        assert m.match({"urgent": False}) == set()
    assert m.match({"urgent": True}) == {"a"}
