"""Ladder semantics on a rules file of the test's own: repeat, once, stop_when, acknowledgement,
re-planning after an edit, and late events."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from supervisor.application import validate_batch
from supervisor.engine.policy import load_policy
from supervisor.policy.rulebook import rule_files
from supervisor.tools.simulate import Simulation
from tests.helpers import ROOT, ev, loaded, runtime, sh

RULES = """
rules:
  - id: chase
    description: remind the liaison at the deadline, then every working hour, three times
    when: {status: dispatched}
    anchor: sign_by
    steps:
      - at: 0
        notify: [liaison]
        template: sign_overdue
        repeat: {every: 1 working hour, times: 3}
  - id: first-return
    description: only the first return of a ticket is reported
    anchor: event
    once: true
    when: {event: returned}
    stop_when: {status: closed}
    steps:
      - at: 0
        notify: [supervisor]
        template: return_late
      - at: 1 working day
        notify: [supervisor]
        template: return_late
"""


def policy_runtime(tmp_path: Path, text: str = RULES):
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "rules" / "deadlines.yaml", rules / "deadlines.yaml")
    (rules / "custom.yaml").write_text(text, encoding="utf-8")
    lo = loaded()
    policy = load_policy(rule_files(rules), lo.calendar, templates=lo.templates)
    return replace(runtime(), policy=policy), rules


async def run(rt, raws, until, acks=()):
    events = validate_batch(raws, b"k")
    sim = Simulation(rt, min(e.at for e in events))
    for e in events:
        for at, rule in acks:
            if at <= e.at:
                await sim.ack("T1", rule, "zhang-min", at)
        acks = [(at, rule) for at, rule in acks if at > e.at]
        await sim.arrive(e)
    for at, rule in acks:
        await sim.ack("T1", rule, "zhang-min", at)
    await sim.advance(until)
    return sim


def base(unit="城管执法中队"):
    return [
        ev("T1", 1, "created", sh(2026, 11, 23, 9), kind="complaint"),
        ev("T1", 2, "dispatched", sh(2026, 11, 23, 9), unit=unit),
    ]


async def test_a_step_repeats_every_working_hour_until_signed(tmp_path):
    rt, _ = policy_runtime(tmp_path)
    sim = await run(
        rt,
        [*base(), ev("T1", 3, "signed", sh(2026, 11, 23, 14, 0), unit="城管执法中队")],
        sh(2026, 11, 24, 18),
    )
    chase = [(n.at, n.rep) for n in sim.notifications if n.rule == "chase"]
    # sign_by 11:00; repeats at 12:00, then 14:30 (lunch), but signed at 14:00: the third is cancelled
    assert chase == [(sh(2026, 11, 23, 11), 0), (sh(2026, 11, 23, 12), 1)]


async def test_once_and_stop_when(tmp_path):
    rt, _ = policy_runtime(tmp_path)
    raws = [
        *base(),
        ev("T1", 3, "returned", sh(2026, 11, 23, 9, 30), unit="城管执法中队", reason="x"),
        ev("T1", 4, "dispatched", sh(2026, 11, 23, 10), unit="市场监管所"),
        ev("T1", 5, "returned", sh(2026, 11, 23, 10, 30), unit="市场监管所", reason="y"),
        ev("T1", 6, "closed", sh(2026, 11, 23, 16)),
    ]
    sim = await run(rt, raws, sh(2026, 11, 26, 18))
    firsts = [(n.at, n.step) for n in sim.notifications if n.rule == "first-return"]
    assert firsts == [
        (sh(2026, 11, 23, 9, 30), 0)
    ]  # once: the second return adds nothing; closed stops step 1


async def test_an_acknowledgement_stops_the_ladder_until_its_deadline_moves(tmp_path):
    rt, _ = policy_runtime(tmp_path)
    raws = [
        *base(),
        ev("T1", 3, "returned", sh(2026, 11, 23, 15), unit="城管执法中队", reason="x"),
        ev("T1", 4, "dispatched", sh(2026, 11, 23, 15, 30), unit="市场监管所"),
    ]
    sim = await run(rt, raws, sh(2026, 11, 24, 18), acks=[(sh(2026, 11, 23, 11, 30), "chase")])
    chase = [(n.at, n.cycle, n.rep) for n in sim.notifications if n.rule == "chase"]
    # cycle 1: 11:00 only (acknowledged at 11:30); the re-dispatch moves sign_by: cycle 2 runs
    assert chase[0] == (sh(2026, 11, 23, 11), 1, 0)
    assert all(c == 2 for _, c, _ in chase[1:]) and len(chase) == 5


async def test_replanning_after_an_edit_moves_pending_steps_and_never_resends(tmp_path):
    rt, rules = policy_runtime(tmp_path)
    sim = await run(rt, base(), sh(2026, 11, 23, 11, 30))
    assert [(n.at, n.rep) for n in sim.notifications if n.rule == "chase"] == [
        (sh(2026, 11, 23, 11), 0)
    ]
    (rules / "custom.yaml").write_text(
        RULES.replace("every: 1 working hour", "every: 2 working hours"), encoding="utf-8"
    )
    lo = loaded()
    sim.supervisor.runtime = replace(
        rt, policy=load_policy(rule_files(rules), lo.calendar, templates=lo.templates)
    )
    await sim.supervisor.replan()
    await sim.advance(sh(2026, 11, 24, 18))
    chase = [(n.at, n.rep) for n in sim.notifications if n.rule == "chase"]
    # 11:00 already sent stays sent once; the repeats now every 2 working hours: 14:30, 16:30, next day 10:00
    assert chase == [
        (sh(2026, 11, 23, 11), 0),
        (sh(2026, 11, 23, 14, 30), 1),
        (sh(2026, 11, 23, 16, 30), 2),
        (sh(2026, 11, 24, 10), 3),
    ]


async def test_a_late_event_is_placed_by_its_time(tmp_path):
    rt, _ = policy_runtime(tmp_path)
    # the signature arrives after the dispatch's first reminder was due, but happened before it
    raws = [*base()]
    events = validate_batch(raws, b"k")
    sim = Simulation(rt, sh(2026, 11, 23, 9))
    for e in events:
        await sim.arrive(e)
    await sim.advance(sh(2026, 11, 23, 10, 59))
    late = validate_batch([ev("T1", 3, "signed", sh(2026, 11, 23, 10), unit="城管执法中队")], b"k")[
        0
    ]
    await sim.supervisor.ingest_events([late])
    await sim.advance(sh(2026, 11, 24, 18))
    assert [n for n in sim.notifications if n.rule == "chase"] == []
