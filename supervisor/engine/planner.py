"""The functional core of supervision: events in, ladders and timers out. No I/O, explicit `now`.

A ladder is one run of a rule's escalation steps for one ticket, numbered by `cycle`:
- a rule anchored on a ticket deadline (sign_by, reply_by, ...) has a ladder while its condition
  holds; when the condition stops holding the ladder stops; when the anchor moves (extension
  approved, re-dispatch, re-opening) the ladder stops and the next cycle starts at the new anchor,
  so its reminders are sent again for the new deadline;
- a rule anchored on the event opens one ladder per matching event (the event id is recorded, so
  replaying events is idempotent) and runs until acknowledged or until `stop_when` holds.
Acknowledged ladders stay silent until their anchor moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from supervisor.core.events import Event
from supervisor.core.state import TicketState, apply, initial_state
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import add_event_fields, state_fields
from supervisor.engine.policy import Policy
from supervisor.policy.conditions import fields_read, pinned
from supervisor.policy.facts import duration_key
from supervisor.policy.rulebook import Rule

ACTIVE = "active"


@dataclass(frozen=True)
class Ladder:
    ticket: str
    rule: str
    cycle: int
    anchor_at: datetime
    trigger_event: str | None = None
    status: str = ACTIVE  # active | stopped | acked
    reason: str | None = None


@dataclass(frozen=True)
class TimerSpec:
    ticket: str
    rule: str
    cycle: int
    step: int
    rep: int
    due_at: datetime


@dataclass(frozen=True)
class Plan:
    state: TicketState
    deadlines: dl.Deadlines
    opened: tuple[Ladder, ...]
    stopped: tuple[Ladder, ...]  # with status and reason set
    timers: tuple[
        TimerSpec, ...
    ]  # every step of the opened ladders (and of all active ones when replanning)
    policy: str = ""  # the fingerprint of the policy that computed `deadlines`

    @property
    def changed(self) -> bool:
        return bool(self.opened or self.stopped or self.timers)


# Frozen dataclasses built without their generated __init__ (which sets each field through
# object.__setattr__: about 1.1 µs for a Ladder against 0.3 this way). Every field is given, so
# the objects are the same (eq, hash, repr); tests/unit/test_planner_build.py compares them.
_new = object.__new__


def ladder(
    ticket: str,
    rule: str,
    cycle: int,
    anchor_at: datetime,
    trigger_event: str | None = None,
    status: str = ACTIVE,
    reason: str | None = None,
) -> Ladder:
    """Ladder(...), built faster (a batch loads and opens thousands)."""
    lad = _new(Ladder)
    lad.__dict__.update(
        ticket=ticket, rule=rule, cycle=cycle, anchor_at=anchor_at,
        trigger_event=trigger_event, status=status, reason=reason,
    )  # fmt: skip
    return lad


def _timer(ticket: str, rule: str, cycle: int, step: int, rep: int, due_at: datetime) -> TimerSpec:
    t = _new(TimerSpec)
    t.__dict__.update(ticket=ticket, rule=rule, cycle=cycle, step=step, rep=rep, due_at=due_at)
    return t


def step_times(
    rule: Rule, anchor: datetime, policy: Policy, ticket: str, cycle: int
) -> list[TimerSpec]:
    cal = policy.calendar
    out = []
    for step in rule.steps:
        due = cal.add(anchor, step.offset)
        out.append(_timer(ticket, rule.id, cycle, step.index, 0, due))
        if step.repeat_every is not None:
            for rep in range(1, step.repeat_times + 1):
                due = cal.add(due, step.repeat_every)
                out.append(_timer(ticket, rule.id, cycle, step.index, rep, due))
    return out


def message_for(
    state: TicketState, event: Event, policy: Policy, windows: Mapping[str, int] | None
) -> tuple[dict[str, Any], dl.Deadlines]:
    return _message(state, event, policy, windows, _static(policy).window_keys, True, True)


def _message(
    state: TicketState,
    event: Event,
    policy: Policy,
    windows: Mapping[str, int] | None,
    window_keys: tuple[str, ...],
    with_deadlines: bool,
    working_minutes: bool,
) -> tuple[dict[str, Any], dl.Deadlines]:
    """The message and the deadlines. Without `with_deadlines`, no deadline is computed (the
    `event_after_…` fields are false); without `working_minutes`, `since_dispatch` in working
    minutes is not counted (NO_DURATION): plan() asks so only where no condition reading them
    can hold (_Static.after_types, wm_types), so the matcher's answer is the same."""
    # the state's fields, then (the deadlines computed from those) the event's, then the windows:
    # one dict filled in that order, as {**state_fields, **event_fields, windows} was
    msg = state_fields(state)
    deadlines = (
        dl.compute(state, policy.deadlines, policy.calendar, msg)
        if with_deadlines
        else _NO_DEADLINES
    )
    add_event_fields(msg, state, event, deadlines, policy.calendar, working_minutes)
    if window_keys:
        counts = windows or {}
        for key in window_keys:  # repeat_calls, then same_matter, matter_callers
            msg[key] = counts.get(key, 0)
    return msg, deadlines


@dataclass(frozen=True)
class _Static:
    """What plan() needs of a policy that does not change between calls: worked out once."""

    event_rules: tuple[tuple[Rule, str], ...]  # (rule, its match key)
    event_keys: frozenset[str]  # the event rules' match keys
    # the event types at which some event rule's condition can hold (conditions.pinned); None:
    # any type. The fold matches a message only at these events (and at the last one)
    triggers: frozenset[str] | None
    # the event types at which some condition reading `event_after_sign_by`/`_reply_by` (the
    # deadlines), or `since_dispatch` in working minutes, can hold; None: any type. At another
    # type the field's value changes no condition's outcome, so it is not worked out (the
    # deadlines still are at the last event: they are the plan's)
    after_types: frozenset[str] | None
    wm_types: frozenset[str] | None
    # the rules the after-fold pass can act on, in rule order: every state rule, and the event
    # rules with a stop condition (rule, match key, stop key, event-triggered); the other
    # event rules only open ladders in the fold
    settled: tuple[tuple[Rule, str, str, bool], ...]
    # where each of them is in `settled`: by rule id, and the state rules by their match key.
    # The pass visits only the rules with a ladder or a matching condition: another rule has
    # nothing to stop and nothing to open
    settled_by_id: dict[str, int]
    settled_by_key: dict[str, int]
    known: frozenset[str]
    rules_by_id: dict[str, Rule]
    window_keys: tuple[str, ...]  # the messages' window counts, in message_for's order


_statics: dict[int, tuple[Policy, _Static]] = {}


def _static(policy: Policy) -> _Static:
    hit = _statics.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    rules = policy.rules
    event_rules = tuple((r, f"rule:{r.id}") for r in rules if r.event_triggered)
    settled = tuple(
        (r, f"rule:{r.id}", f"stop:{r.id}", r.event_triggered)
        for r in rules
        if not r.event_triggered or r.stop_when is not None
    )
    st = _Static(
        event_rules=event_rules,
        event_keys=frozenset(key for _, key in event_rules),
        triggers=_triggers(rule.when for rule, _ in event_rules),
        after_types=_types_reading(policy, {"event_after_sign_by", "event_after_reply_by"}),
        wm_types=_types_reading(policy, {duration_key("since_dispatch", True)}),
        settled=settled,
        settled_by_id={r.id: j for j, (r, _, _, _) in enumerate(settled)},
        settled_by_key={key: j for j, (_, key, _, ev) in enumerate(settled) if not ev},
        known=frozenset(r.id for r in rules),
        rules_by_id=policy.rules_by_id,
        window_keys=(
            *(f"repeat_calls__{minutes}m" for minutes in policy.windows),
            *(f"{name}__{minutes}m" for name, minutes in policy.matter_windows),
        ),
    )
    if len(_statics) >= 8:  # a few policies live at once (reloads, tests): keep it small
        _statics.clear()
    _statics[id(policy)] = (policy, st)
    return st


def _triggers(conditions: Iterable[dict[str, Any]]) -> frozenset[str] | None:
    """The event types at which one of these (compiled) conditions can hold; None: any type.
    Each rule's `when` as compiled is what the matcher evaluates for its `rule:` key
    (rulebook.py), so an event of another type matches no event rule."""
    out: set[str] = set()
    for cond in conditions:
        types = pinned(cond, "event")
        if types is None:
            return None
        out |= types
    return frozenset(out)


def _types_reading(policy: Policy, names: set[str]) -> frozenset[str] | None:
    """The event types at which a condition the matcher evaluates (every rule's `when` and
    `stop_when`, every deadline default's `when`: rulebook.py) reading one of `names` can hold;
    None: any type."""
    conditions: list[dict[str, Any]] = []
    for rule in policy.rules:
        conditions.append(rule.when)
        if rule.stop_when is not None:
            conditions.append(rule.stop_when)
    for entries in policy.deadlines.values():
        conditions.extend(entry.when for entry in entries)
    return _triggers(c for c in conditions if not names.isdisjoint(fields_read(c)))


def plan(
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
    """Work out what changes for one ticket after new events (or after a rules reload).

    `events` are all the ticket's events; `new_event_ids` the ones that just arrived (None: all);
    `windows` the repeat-call counts per event id; `replan` re-derives the timers of every
    active ladder (after a rules edit) instead of only those of ladders opened now. With `start`
    (the stored state), `events` are only those that fold onto it, all later than its last one.
    """
    ordered = sorted(events, key=_at) if len(events) > 1 else list(events)
    static = _static(policy)
    ladders = list(ladders)
    by_rule: dict[str, list[Ladder]] = {}
    for lad in ladders:
        by_rule.setdefault(lad.rule, []).append(lad)
    opened: list[Ladder] = []
    stopped: list[Ladder] = []

    def next_cycle(rule_id: str) -> int:
        existing = by_rule.get(rule_id, [])
        return max((lad.cycle for lad in existing), default=0) + 1

    def open_ladder(rule: Rule, anchor: datetime, trigger: str | None) -> None:
        lad = ladder(ticket, rule.id, next_cycle(rule.id), anchor, trigger)
        by_rule.setdefault(rule.id, []).append(lad)
        opened.append(lad)

    def stop(lad: Ladder, reason: str) -> None:
        done = ladder(
            lad.ticket, lad.rule, lad.cycle, lad.anchor_at, lad.trigger_event, "stopped", reason
        )
        by_rule[lad.rule] = [done if x is lad else x for x in by_rule[lad.rule]]
        stopped.append(done)

    # Walk the fold. Event-triggered rules look at every event from the first new one on
    # (a late event changes the states after it); the last message also serves state rules.
    first_new = None  # None: every event is new; len(ordered): none is (a replan)
    if new_event_ids is not None:
        first_new = (
            0
            if ordered and ordered[0].id in new_event_ids  # the usual case: all of them are new
            else next((i for i, ev in enumerate(ordered) if ev.id in new_event_ids), len(ordered))
        )
    state = start or initial_state(ticket)
    msg: dict[str, Any] = {}
    deadlines = _NO_DEADLINES
    matched: set[str] = set()
    event_rules = static.event_rules
    event_keys = static.event_keys
    triggers = static.triggers
    after_types = static.after_types
    wm_types = static.wm_types
    window_keys = static.window_keys
    match = policy.matcher.match
    last_index = len(ordered) - 1
    counts = windows or {}
    for i, ev in enumerate(ordered):
        state = apply(state, ev)
        # the message is built and matched at the last event (state rules, stop conditions),
        # and from the first new event on where an event rule can match this type of event
        if i != last_index and (
            not event_rules
            or (first_new is not None and i < first_new)
            or (triggers is not None and ev.type not in triggers)
        ):
            continue
        etype = ev.type
        msg, deadlines = _message(
            state,
            ev,
            policy,
            counts.get(ev.id),
            window_keys,
            i == last_index or after_types is None or etype in after_types,
            wm_types is None or etype in wm_types,
        )
        matched = match(msg)
        if first_new is not None and i < first_new:
            continue
        if event_keys.isdisjoint(matched):  # the usual case: no event rule matches
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

    known = static.known
    for rule_id, lads in list(by_rule.items()):
        if rule_id not in known:  # a rules edit removed or disabled it
            for lad in [x for x in lads if x.status == ACTIVE]:
                stop(lad, "rule removed")
    # only the rules with a ladder or whose condition holds, in rule order (the others would
    # be skipped below: no ladder to stop, none to open). Each turn changes only its own rule's
    # ladders, so the set is the same worked out here as turn by turn.
    settled = static.settled
    by_id = static.settled_by_id
    by_key = static.settled_by_key
    visit = {by_id[rule_id] for rule_id in by_rule if rule_id in by_id}
    visit.update(by_key[key] for key in matched if key in by_key)
    for j in sorted(visit):
        rule, key, stop_key, event_triggered = settled[j]
        history = by_rule.get(rule.id)
        if event_triggered:
            if history and rule.stop_when is not None and stop_key in matched:
                for lad in [x for x in history if x.status == ACTIVE]:
                    stop(lad, "stop condition holds")
            continue
        holds = key in matched and (rule.stop_when is None or stop_key not in matched)
        if not holds and not history:
            continue  # no ladder to stop, none to open: the usual case for most rules
        active = [lad for lad in history or () if lad.status == ACTIVE]
        # the anchor matters only where the condition holds (every branch below checks both)
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

    rules_by_id = static.rules_by_id
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
    # a ladder opened and stopped in the same plan (several events at once) needs no timers
    timers = [
        t
        for lad in timer_ladders
        if (lad.rule, lad.cycle) not in stopped_keys
        for t in step_times(rules_by_id[lad.rule], lad.anchor_at, policy, ticket, lad.cycle)
    ]
    return _plan(
        state, deadlines, tuple(opened), tuple(stopped), tuple(timers), policy.fingerprint
    )


_at = attrgetter("at")  # events are ordered by time (a stable sort: ties keep arrival order)
_NO_DEADLINES = dl.Deadlines()  # frozen: one instance serves every plan without a message


def _plan(
    state: TicketState,
    deadlines: dl.Deadlines,
    opened: tuple[Ladder, ...],
    stopped: tuple[Ladder, ...],
    timers: tuple[TimerSpec, ...],
    policy: str,
) -> Plan:
    """Plan(...), built as `ladder` builds a Ladder (one per planned ticket)."""
    p = _new(Plan)
    p.__dict__.update(
        state=state, deadlines=deadlines, opened=opened, stopped=stopped, timers=timers,
        policy=policy,
    )  # fmt: skip
    return p


def _anchor(name: str, state: TicketState, deadlines: dl.Deadlines) -> datetime | None:
    if name in ("sign_by", "reply_by", "commitment_due"):
        return deadlines.anchor(name)
    return getattr(state, name)
