"""The planner matches a message only at events some event rule can match (and at the last one),
and visits after the fold only the rules with a ladder or a holding condition: the plans are
exactly those of the walk that matches at every event and visits every rule.

- `pinned` (what an event rule's compiled condition says of `event`) is sound: wherever a
  compiled condition holds, the message's event type is among the values it gives;
- the event types it gives for each way the rule language lets a condition name `event`;
- random rule files (event rules written every way the language allows, state rules, stop
  conditions, `once`) and random event sequences (late events, a stored state, existing and
  acknowledged ladders, window counts, replans): the whole Plan equals the reference walk's,
  which is the planner as it was before the prefilter, kept here verbatim.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from supervisor.application import validate_batch
from supervisor.config.yamlconf import ConfigInvalid
from supervisor.core.events import Event
from supervisor.core.state import TicketState, apply, initial_state
from supervisor.engine import deadlines as dl
from supervisor.engine import planner
from supervisor.engine.facts import event_fields, state_fields
from supervisor.engine.planner import (
    ACTIVE,
    Ladder,
    Plan,
    _anchor,
    _plan,
    ladder,
    plan,
    step_times,
)
from supervisor.engine.policy import Policy, load_policy
from supervisor.policy.conditions import compile_condition, evaluate, pinned
from supervisor.vocabulary import EVENT_TYPES
from tests.helpers import ROOT, every_type, loaded, sh
from tests.unit.test_matcher import needs_durable

# --- the reference: plan() before the prefilter -------------------------------------------------


def reference_message(
    state: TicketState, event: Event, policy: Policy, windows: Mapping[str, int] | None
) -> tuple[dict[str, Any], dl.Deadlines]:
    sf = state_fields(state)
    deadlines = dl.compute(state, policy.deadlines, policy.calendar, sf)
    msg = {**sf, **event_fields(state, event, deadlines, policy.calendar)}
    counts = windows or {}
    for key in (
        *(f"repeat_calls__{minutes}m" for minutes in policy.windows),
        *(f"{name}__{minutes}m" for name, minutes in policy.matter_windows),
    ):
        msg[key] = counts.get(key, 0)
    return msg, deadlines


def reference_plan(
    ticket: str,
    events: Sequence[Event],
    ladders: Iterable[Ladder],
    policy: Policy,
    *,
    new_event_ids: set[str] | None = None,
    windows: Mapping[str, Mapping[str, int]] | None = None,
    replan: bool = False,
    start: TicketState | None = None,
) -> Plan:
    ordered = sorted(events, key=lambda e: e.at) if len(events) > 1 else list(events)
    rules = policy.rules
    event_rules = tuple((r, f"rule:{r.id}") for r in rules if r.event_triggered)
    event_keys = frozenset(key for _, key in event_rules)
    settled = tuple(
        (r, f"rule:{r.id}", f"stop:{r.id}", r.event_triggered)
        for r in rules
        if not r.event_triggered or r.stop_when is not None
    )
    known = frozenset(r.id for r in rules)
    rules_by_id = policy.rules_by_id
    ladders = list(ladders)
    by_rule: dict[str, list[Ladder]] = {}
    for lad in ladders:
        by_rule.setdefault(lad.rule, []).append(lad)
    opened: list[Ladder] = []
    stopped: list[Ladder] = []

    def next_cycle(rule_id: str) -> int:
        existing = by_rule.get(rule_id, [])
        return max((lad.cycle for lad in existing), default=0) + 1

    def open_ladder(rule, anchor: datetime, trigger: str | None) -> None:
        lad = ladder(ticket, rule.id, next_cycle(rule.id), anchor, trigger)
        by_rule.setdefault(rule.id, []).append(lad)
        opened.append(lad)

    def stop(lad: Ladder, reason: str) -> None:
        done = ladder(
            lad.ticket, lad.rule, lad.cycle, lad.anchor_at, lad.trigger_event, "stopped", reason
        )
        by_rule[lad.rule] = [done if x is lad else x for x in by_rule[lad.rule]]
        stopped.append(done)

    first_new = None
    if new_event_ids is not None:
        first_new = next(
            (i for i, ev in enumerate(ordered) if ev.id in new_event_ids), len(ordered)
        )
    state = start or initial_state(ticket)
    msg: dict[str, Any] = {}
    deadlines = planner._NO_DEADLINES
    matched: set[str] = set()
    last_index = len(ordered) - 1
    counts = windows or {}
    for i, ev in enumerate(ordered):
        state = apply(state, ev)
        evaluate_here = i == last_index or (event_rules and (first_new is None or i >= first_new))
        if not evaluate_here:
            continue
        msg, deadlines = reference_message(state, ev, policy, counts.get(ev.id))
        matched = policy.matcher.match(msg)
        if first_new is not None and i < first_new:
            continue
        if event_keys.isdisjoint(matched):
            continue
        for rule, key in event_rules:
            if key not in matched:
                continue
            existing = by_rule.get(rule.id, [])
            if any(lad.trigger_event == ev.id for lad in existing):
                continue
            if rule.once and existing:
                continue
            open_ladder(rule, ev.at, ev.id)

    if not ordered:
        return _plan(state, deadlines, (), (), (), policy.fingerprint)

    for rule_id, lads in list(by_rule.items()):
        if rule_id not in known:
            for lad in [x for x in lads if x.status == ACTIVE]:
                stop(lad, "rule removed")
    for rule, key, stop_key, event_triggered in settled:
        history = by_rule.get(rule.id)
        if event_triggered:
            if history and rule.stop_when is not None and stop_key in matched:
                for lad in [x for x in history if x.status == ACTIVE]:
                    stop(lad, "stop condition holds")
            continue
        holds = key in matched and (rule.stop_when is None or stop_key not in matched)
        if not holds and not history:
            continue
        active = [lad for lad in history or () if lad.status == ACTIVE]
        anchor = _anchor(rule.anchor, state, deadlines) if holds else None
        current = active[-1] if active else None
        if current is not None:
            if not holds or anchor is None:
                stop(current, "condition no longer holds")
                current = None
            elif anchor != current.anchor_at:
                stop(current, "deadline moved")
                current = None
            else:
                continue
        if not holds or anchor is None:
            continue
        history = by_rule.get(rule.id, [])
        if rule.once and history:
            continue
        last = history[-1] if history else None
        if last is not None and last.status == "acked" and last.anchor_at == anchor:
            continue
        open_ladder(rule, anchor, None)

    stopped_keys = {(s.rule, s.cycle) for s in stopped}
    timer_ladders = (
        opened
        if not replan
        else [
            lad
            for lads in by_rule.values()
            for lad in lads
            if lad.status == ACTIVE
            and (lad.rule, lad.cycle) not in stopped_keys
            and lad.rule in rules_by_id
        ]
    )
    timers = [
        t
        for lad in timer_ladders
        if (lad.rule, lad.cycle) not in stopped_keys
        for t in step_times(rules_by_id[lad.rule], lad.anchor_at, policy, ticket, lad.cycle)
    ]
    return _plan(state, deadlines, tuple(opened), tuple(stopped), tuple(timers), policy.fingerprint)


# --- conditions: what `pinned` says of `event` --------------------------------------------------

SOME_TYPES = ("created", "dispatched", "signed", "returned", "visited", "replied", "closed")
STATUSES = ("new", "dispatched", "signed", "returned", "replied", "visited", "closed")


def _compiled_leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.sampled_from(SOME_TYPES).map(lambda t: {"event": t}),
        st.sampled_from(SOME_TYPES).map(lambda t: {"$neq": {"event": t}}),
        st.sampled_from(STATUSES).map(lambda s: {"status": s}),
        st.sampled_from(STATUSES).map(lambda s: {"$neq": {"status": s}}),
        st.tuples(st.sampled_from(["$lt", "$lte", "$gt", "$gte"]), st.integers(0, 3)).map(
            lambda p: {p[0]: {"dispatch_count": p[1]}}
        ),
        st.just({"_": 1}),
        st.just({"event": 1}),  # not text: pins nothing
    )


COMPILED = st.recursive(
    _compiled_leaf(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=0, max_size=3).map(lambda xs: {"$and": xs}),
        st.lists(inner, min_size=0, max_size=3).map(lambda xs: {"$or": xs}),
    ),
    max_leaves=10,
)
MESSAGES = st.fixed_dictionaries(
    {
        "event": st.sampled_from(SOME_TYPES),
        "status": st.sampled_from(STATUSES),
        "dispatch_count": st.integers(0, 3),
        "_": st.just(1),
    }
)


@settings(max_examples=400, deadline=None)
@given(COMPILED, st.lists(MESSAGES, min_size=1, max_size=8))
def test_pinned_is_sound_on_compiled_conditions(cond, messages):
    values = pinned(cond, "event")
    for msg in messages:
        if evaluate(cond, msg):
            assert values is None or msg["event"] in values


@given(MESSAGES)
def test_pinned_pins_exactly_what_a_plain_equality_says(msg):
    assert pinned({"event": msg["event"]}, "event") == {msg["event"]}


# conditions as rule files write them, and the event types they allow (None: any)
WRITTEN = [
    ({"event": "visited"}, {"visited"}),
    ({"event": {"eq": "visited"}}, {"visited"}),
    ({"event": {"in": ["created", "dispatched"]}}, {"created", "dispatched"}),
    ({"event": {"in": ["created"]}, "status": "new"}, {"created"}),
    ({"event": "visited", "dissatisfied_count": {"gte": 2}}, {"visited"}),
    ({"event": {"ne": "visited"}}, None),
    ({"event": {"not_in": ["visited", "closed"]}}, None),
    ({"not": {"event": "visited"}}, None),
    ({"not": {"event": {"ne": "visited"}}}, {"visited"}),
    ({"not": {"event": {"not_in": ["visited", "closed"]}}}, {"visited", "closed"}),
    ({"not": {"any": [{"event": {"ne": "visited"}}, {"urgent": True}]}}, {"visited"}),
    ({"not": {"all": [{"event": {"ne": "visited"}}, {"urgent": True}]}}, None),
    ({"all": [{"event": "visited"}, {"urgent": True}]}, {"visited"}),
    ({"all": [{"event": {"in": ["visited", "closed"]}}, {"event": "visited"}]}, {"visited"}),
    ({"any": [{"event": "visited"}, {"event": "returned"}]}, {"visited", "returned"}),
    ({"any": [{"event": "visited"}, {"urgent": True}]}, None),
    (
        {
            "any": [
                {"event": "dispatched", "dispatch_count": {"gte": 3}},
                {"event": "returned", "returned_unit_count": {"gte": 2}},
            ]
        },
        {"dispatched", "returned"},
    ),  # fmt: skip
    ({"event": "visited", "any": [{"event": "closed"}, {"urgent": True}]}, {"visited"}),
    ({"status": "dispatched"}, None),
    ({"since_dispatch": {"gt": "1 working day"}}, None),
    ({"repeat_calls": {"within": "30d", "gte": 3}}, None),
    (None, None),
]


def test_pinned_for_each_way_a_condition_can_name_the_event():
    for raw, want in WRITTEN:
        res = compile_condition(raw, ("when",), 480)
        assert not res.errors, (raw, res.errors)
        got = pinned(res.condition, "event")
        assert (None if got is None else set(got)) == want, raw


# --- whole plans: random rule files and event sequences ------------------------------------------

# event rules' conditions, every way the language can name the event (and some that do not)
_TYPES = st.sampled_from(EVENT_TYPES)
EVENT_PART = st.one_of(
    _TYPES.map(lambda t: {"event": t}),
    _TYPES.map(lambda t: {"event": {"eq": t}}),
    st.lists(_TYPES, min_size=1, max_size=3, unique=True).map(lambda ts: {"event": {"in": ts}}),
    _TYPES.map(lambda t: {"event": {"ne": t}}),
    st.lists(_TYPES, min_size=1, max_size=3, unique=True).map(lambda ts: {"event": {"not_in": ts}}),
    _TYPES.map(lambda t: {"not": {"event": t}}),
    _TYPES.map(lambda t: {"not": {"event": {"ne": t}}}),
)
STATE_PART = st.one_of(
    st.sampled_from(STATUSES + ("reopened",)).map(lambda s: {"status": s}),
    st.sampled_from(STATUSES).map(lambda s: {"status": {"ne": s}}),
    st.integers(1, 2).map(lambda n: {"dispatch_count": {"gte": n}}),
    st.booleans().map(lambda b: {"urgent": b}),
    st.sampled_from(["complaint", "help", ""]).map(lambda k: {"kind": k}),
    st.booleans().map(lambda b: {"contacted_before": b}),
    st.integers(0, 2).map(lambda n: {"dissatisfied_count": {"gte": n}}),
    st.booleans().map(lambda b: {"has_commitment": b}),
)
EVENT_ONLY_PART = st.one_of(
    st.sampled_from(["dissatisfied", "satisfied", ""]).map(lambda s: {"event_satisfaction": s}),
    st.booleans().map(lambda b: {"event_after_reply_by": b}),
    st.booleans().map(lambda b: {"event_after_sign_by": b}),
    st.sampled_from(["passed", "returned", ""]).map(lambda s: {"event_review": s}),
    st.sampled_from(["0", "2 working hours", "1 working day"]).map(
        lambda d: {"since_dispatch": {"gt": d}}
    ),
    st.integers(1, 3).map(lambda n: {"repeat_calls": {"within": "30d", "gte": n}}),
    st.integers(1, 3).map(lambda n: {"same_matter": {"within": "30d", "gte": n}}),
)


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Parts as one mapping where their keys differ, else under `all`."""
    out: dict[str, Any] = {}
    for p in parts:
        if out.keys() & p.keys():
            return {"all": parts}
        out.update(p)
    return out


EVENT_WHEN = st.recursive(
    st.one_of(EVENT_PART, STATE_PART, EVENT_ONLY_PART),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(_merge),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)
STATE_WHEN = st.recursive(
    STATE_PART,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(_merge),
        st.lists(inner, min_size=1, max_size=2).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=4,
)
STEPS = st.lists(
    st.fixed_dictionaries(
        {"at": st.sampled_from(["0", "1 working hour", "1 working day", "-2 working hours"])}
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def rule_files(draw) -> list[dict[str, Any]]:
    rules = []
    for i in range(draw(st.integers(0, 5))):  # event rules
        rule: dict[str, Any] = {"id": f"e{i}", "description": "x", "anchor": "event"}
        rule["when"] = draw(st.none() | EVENT_WHEN)
        if rule["when"] is None:
            del rule["when"]
        if draw(st.booleans()):
            rule["stop_when"] = draw(STATE_WHEN)
        rule["once"] = draw(st.booleans())
        rule["steps"] = [
            {"at": s["at"].lstrip("-"), "notify": ["supervisor"], "template": "return_late"}
            for s in draw(STEPS)
        ]
        rules.append(rule)
    for i in range(draw(st.integers(0, 4))):  # state rules
        anchor = draw(st.sampled_from(["sign_by", "reply_by", "created_at", "commitment_due"]))
        rule = {"id": f"s{i}", "description": "x", "anchor": anchor, "when": draw(STATE_WHEN)}
        if draw(st.booleans()):
            rule["stop_when"] = draw(STATE_WHEN)
        rule["once"] = draw(st.booleans())
        rule["steps"] = [
            {"at": s["at"], "notify": ["liaison"], "template": "sign_overdue"} for s in draw(STEPS)
        ]
        rules.append(rule)
    return rules


_TEMPLATES = {raw["type"]: raw for raw in every_type()}
_MOMENTS = [sh(2026, 11, 23, 9) + timedelta(minutes=37 * k) for k in range(0, 200, 7)]


@st.composite
def histories(draw) -> list[dict[str, Any]]:
    """A ticket's events: created first, then types drawn at random (with ties and repeats)."""
    types = ["created", *draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=0, max_size=9))]
    out = []
    for n, etype in enumerate(types, 1):
        raw = {k: v for k, v in _TEMPLATES[etype].items() if k not in ("id", "ticket", "at")}
        if etype == "visited":
            raw["satisfaction"] = draw(st.sampled_from(["dissatisfied", "satisfied"]))
        if etype in ("dispatched", "signed", "returned"):
            raw["unit"] = draw(st.sampled_from(["城管执法中队", "市场监管所"]))
        at = _MOMENTS[0] if n == 1 else draw(st.sampled_from(_MOMENTS))
        out.append({"id": f"T1-{n}", "ticket": "T1", "type": etype, "at": at.isoformat(), **raw})
    return out


_policies: dict[tuple[str, str], Policy | None] = {}


def _policy(rules: list[dict[str, Any]], matcher: str = "python") -> Policy | None:
    text = yaml.safe_dump({"rules": rules}, allow_unicode=True, sort_keys=False)
    if (text, matcher) not in _policies:
        lo = loaded()
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "deadlines.yaml").write_text(
                (ROOT / "rules" / "deadlines.yaml").read_text(encoding="utf-8"), encoding="utf-8"
            )
            (folder / "custom.yaml").write_text(text, encoding="utf-8")
            try:
                _policies[text, matcher] = load_policy(
                    sorted(folder.glob("*.yaml")), lo.calendar, templates=lo.templates,
                    matcher=matcher,
                )  # fmt: skip
            except ConfigInvalid:  # a condition that can never hold, say
                _policies[text, matcher] = None
    return _policies[text, matcher]


@cache
def _events(raws: str) -> tuple[Event, ...]:
    import json

    return tuple(validate_batch(json.loads(raws), b"k"))


def _same(got: Plan, want: Plan) -> None:
    assert got == want
    assert repr(got) == repr(want)  # the states, ladders, timers and deadlines field by field


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    rule_files(),
    histories(),
    st.data(),
)
def test_plans_equal_the_walk_that_matches_at_every_event(rules, raws, data):
    _compare(_policy(rules), raws, data)


@needs_durable
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(rule_files(), histories(), st.data())
def test_plans_equal_the_walk_with_durable_rules(rules, raws, data):
    """The same with the durable_rules matcher (a ruleset per rule file drawn: few examples)."""
    _compare(_policy(rules, "durable_rules"), raws, data)


def _compare(policy: Policy | None, raws: list[dict[str, Any]], data: Any) -> None:
    import json

    assume(policy is not None)
    assert policy is not None
    events = list(_events(json.dumps(raws, ensure_ascii=False)))
    by_id = {e.id: e for e in events}
    window_keys = [
        *(f"repeat_calls__{m}m" for m in policy.windows),
        *(f"{name}__{m}m" for name, m in policy.matter_windows),
    ]
    windows = {
        e.id: {k: data.draw(st.integers(0, 4)) for k in window_keys}
        for e in events
        if data.draw(st.booleans())
    }
    # a first batch planned from nothing, then the rest: on the stored state, or all events again
    cut = data.draw(st.integers(0, len(events)))
    first, rest = events[:cut], events[cut:]
    kw = dict(windows=windows)
    p1 = plan("T1", first, [], policy, new_event_ids=None, **kw)
    _same(p1, reference_plan("T1", first, [], policy, new_event_ids=None, **kw))
    ladders = list(p1.opened)
    # some ladders acknowledged, some stopped, one of a rule since removed
    ladders = [
        ladder(x.ticket, x.rule, x.cycle, x.anchor_at, x.trigger_event,
               data.draw(st.sampled_from([ACTIVE, ACTIVE, "acked", "stopped"])))
        for x in ladders
    ]  # fmt: skip
    if data.draw(st.booleans()):
        ladders.append(ladder("T1", "gone", 1, events[0].at))
    replan = data.draw(st.booleans())
    if rest and data.draw(st.booleans()):  # fold onto the stored state: only the later events
        start = p1.state if first else None
        later = [e for e in rest if not first or e.at > max(x.at for x in first)]
        args: dict[str, Any] = dict(new_event_ids={e.id for e in later}, start=start)
        batch = later
    else:  # every event, the new ones a random subset (late events come before old ones)
        new = set(data.draw(st.sets(st.sampled_from(sorted(by_id))))) if events else set()
        args = dict(new_event_ids=data.draw(st.sampled_from([new, {e.id for e in rest}, None])))
        batch = events
    got = plan("T1", batch, ladders, policy, replan=replan, **kw, **args)
    want = reference_plan("T1", batch, ladders, policy, replan=replan, **kw, **args)
    _same(got, want)


def test_the_shipped_rules_pin_their_event_rules_types():
    lo = loaded()
    files = sorted((ROOT / "rules").glob("*.yaml"))
    policy = load_policy(files, lo.calendar, templates=lo.templates, matcher="python")
    static = planner._static(policy)
    assert static.triggers is not None
    assert "signed" not in static.triggers and "contacted" not in static.triggers
    for rule in policy.rules:
        if rule.event_triggered:
            assert pinned(rule.when, "event") is not None, rule.id


def test_the_deadline_and_working_minute_fields_are_worked_out_where_a_rule_reads_them():
    """An event rule reading `event_after_sign_by`, another `since_dispatch` in working minutes,
    both matching at an event in the middle of a batch: the planner computes those fields there
    (and skips them at the events no such rule can match) and opens both ladders."""
    rules = [
        {"id": "late-sign", "description": "x", "anchor": "event",
         "when": {"event": "signed", "event_after_sign_by": True},
         "steps": [{"at": "0", "notify": ["supervisor"], "template": "return_late"}]},
        {"id": "late-return", "description": "x", "anchor": "event",
         "when": {"event": {"in": ["returned", "closed"]},
                  "since_dispatch": {"gt": "1 working hour"}},
         "steps": [{"at": "0", "notify": ["supervisor"], "template": "return_late"}]},
    ]  # fmt: skip
    policy = _policy(rules)
    assert policy is not None
    static = planner._static(policy)
    assert static.after_types == {"signed"} and static.wm_types == {"returned", "closed"}
    raws = [
        {**_TEMPLATES["created"], "id": "T1-1", "at": sh(2026, 11, 23, 9).isoformat()},
        {**_TEMPLATES["dispatched"], "id": "T1-2", "at": sh(2026, 11, 23, 9, 5).isoformat()},
        {**_TEMPLATES["signed"], "id": "T1-3", "unit": "城管执法中队",
         "at": sh(2026, 11, 24, 15).isoformat()},
        {**_TEMPLATES["returned"], "id": "T1-4", "unit": "城管执法中队",
         "at": sh(2026, 11, 25, 15).isoformat()},
        {**_TEMPLATES["contacted"], "id": "T1-5", "at": sh(2026, 11, 26, 9).isoformat()},
    ]  # fmt: skip
    import json

    events = list(_events(json.dumps(raws, ensure_ascii=False)))
    got = plan("T1", events, [], policy)
    _same(got, reference_plan("T1", events, [], policy))
    assert [(lad.rule, lad.trigger_event) for lad in got.opened] == [
        ("late-sign", "T1-3"),
        ("late-return", "T1-4"),
    ]
