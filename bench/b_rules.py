"""3. Rule evaluations/s: Policy.matcher.match (the memo in front of DurableMatcher, warm and
cold, and DurableMatcher alone) and planner.plan on realistic
messages (planner.message_for) with the shipped policy, beside bare durable_rules
assert_fact/retract_fact of the same messages to an equivalent ruleset, and PythonMatcher."""

from __future__ import annotations

import itertools
import time
from datetime import datetime

from common import ROOT, SH, ticket_events


def _policy_and_conditions():
    import supervisor.policy.rulebook as rb
    from supervisor.config.settings import load_all

    captured: dict = {}
    orig = rb.make_matcher

    def capture(conditions, prefer="durable_rules"):
        captured.update(conditions)
        return orig(conditions, prefer)

    rb.make_matcher = capture
    try:
        loaded = load_all(ROOT / "config", env={})
    finally:
        rb.make_matcher = orig
    return loaded.policy, captured


def _messages(policy, n_tickets: int):
    from supervisor.core.events import parse_event
    from supervisor.core.privacy import redact
    from supervisor.core.state import TicketState, apply
    from supervisor.engine.planner import message_for

    msgs, per_ticket = [], []
    start = datetime(2026, 11, 2, 9, 0, tzinfo=SH)
    for i in range(n_tickets):
        evs = [redact(parse_event(r), b"k") for r in ticket_events(i, start)]
        per_ticket.append(evs)
        st = TicketState(ticket=evs[0].ticket)
        for ev in evs:
            st = apply(st, ev)
            msgs.append(message_for(st, ev, policy, {"repeat_calls__43200m": 1})[0])
    return msgs, per_ticket


def _rate(fn, items, min_s: float) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        for x in items:
            fn(x)
        n += len(items)
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return n / dt


def bench(quick: bool) -> dict:
    from durable import engine

    from supervisor.engine.planner import plan
    from supervisor.policy.conditions import ALWAYS
    from supervisor.policy.matcher import PythonMatcher, _shared_host

    policy, conditions = _policy_and_conditions()
    min_s = 1.0 if quick else 3.0
    msgs, per_ticket = _messages(policy, 300)
    from supervisor.policy.matchcache import MemoMatcher

    ours = _rate(policy.matcher.match, msgs, min_s)  # the memo, warm: every message seen before
    inner = getattr(policy.matcher, "inner", policy.matcher)
    durable_raw = _rate(inner.match, msgs, min_s)  # durable_rules itself, no memo
    fresh = MemoMatcher(inner, conditions)  # the memo, cold: one pass over 1,800 new messages
    t0 = time.perf_counter()
    for m in msgs:
        fresh.match(m)
    memo_cold = len(msgs) / (time.perf_counter() - t0)
    py = PythonMatcher(conditions)
    pyr = _rate(py.match, msgs, min_s)
    # agreement on these messages
    agree = all(policy.matcher.match(m) == py.match(m) for m in msgs[:600])

    # bare durable_rules: the same compiled conditions, no-op actions, one session id
    host = _shared_host(engine)
    rules = {f"r{i}": {"all": [{"m": c}], "run": lambda c: None} for i, c in enumerate(conditions.values())}
    rules["__any__"] = {"all": [{"m": ALWAYS}], "run": lambda c: None}
    host.register_rulesets({"bench_bare": rules})
    counter = itertools.count()

    def bare(m):
        fact = {**m, "_": 1, "sid": "0", "id": f"b{next(counter)}"}
        host.assert_fact("bench_bare", fact)
        host.retract_fact("bench_bare", fact)

    bare_r = _rate(bare, msgs, min_s)

    # planner.plan: a ticket after each of its events (as ingest calls it), in messages/s
    calls = [(evs[0].ticket, evs[: j + 1], {evs[j].id}) for evs in per_ticket[:100] for j in range(len(evs))]
    plan_r = _rate(lambda c: plan(c[0], c[1], [], policy, new_event_ids=c[2]), calls, min_s)
    return {
        "conditions": len(conditions), "messages": len(msgs), "matcher": policy.matcher.name,
        "ours_match_per_s": round(ours), "bare_durable_per_s": round(bare_r), "ratio_vs_bare_durable": round(ours / bare_r, 3),
        "python_matcher_per_s": round(pyr), "ratio_python_vs_bare_durable": round(pyr / bare_r, 3),
        "plan_calls_per_s": round(plan_r), "matchers_agree": agree,
        "durable_without_memo_per_s": round(durable_raw), "memo_cold_one_pass_per_s": round(memo_cold),
        "memo_cold_hit_rate": round(fresh.hits / max(1, fresh.hits + fresh.misses), 3),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench("--quick" in sys.argv), indent=1))
