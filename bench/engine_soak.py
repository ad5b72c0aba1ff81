"""100,000 tickets through the rules engine in one process: no crash, flat memory.

Each ticket's events go through the planner (fold, deadlines, durable_rules matching, ladders,
timers) as the daemon does it; nothing is kept between tickets, so any growth is the engine's.
Prints RSS every 10,000 tickets and writes bench/results/engine_soak.json.

    python bench/engine_soak.py [--tickets 100000] [--matcher durable_rules|python]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from supervisor.config.settings import load_all  # noqa: E402
from supervisor.core.events import parse_event  # noqa: E402
from supervisor.core.privacy import redact  # noqa: E402
from supervisor.engine.planner import plan  # noqa: E402
from tests.helpers import sh  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def ticket_events(i: int) -> list:
    t = f"S{i:07d}"
    start = sh(2026, 11, 2) + timedelta(minutes=(i * 7) % (60 * 24 * 40))
    kind = ("complaint", "help", "consultation", "suggestion")[i % 4]
    raws = [
        {"id": f"{t}-1", "ticket": t, "type": "created", "at": start.isoformat(), "kind": kind, "category": ("市容环境", "物业管理", "市场管理")[i % 3], "urgent": i % 10 == 0, "caller": f"138{i % 5000:08d}", "grid": "G01"},
        {"id": f"{t}-2", "ticket": t, "type": "dispatched", "at": (start + timedelta(minutes=5)).isoformat(), "unit": "城管执法中队", "co_units": ["市场监管所"] if i % 7 == 0 else []},
    ]
    if i % 3:
        raws.append({"id": f"{t}-3", "ticket": t, "type": "signed", "at": (start + timedelta(minutes=50)).isoformat(), "unit": "城管执法中队"})
    if i % 5 == 0:
        raws.append({"id": f"{t}-4", "ticket": t, "type": "replied", "at": (start + timedelta(days=2)).isoformat(), "unit": "城管执法中队"})
        raws.append({"id": f"{t}-5", "ticket": t, "type": "visited", "at": (start + timedelta(days=3)).isoformat(), "satisfaction": "dissatisfied" if i % 15 == 0 else "satisfied"})
    return [redact(parse_event(r), b"k") for r in raws]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--matcher", default="durable_rules")
    args = ap.parse_args()
    loaded = load_all(ROOT / "config", env={})
    if args.matcher != loaded.policy.matcher.name:
        from supervisor.engine.policy import load_policy
        from supervisor.policy.rulebook import rule_files

        policy = load_policy(rule_files(ROOT / "rules"), loaded.calendar, templates=loaded.templates, matcher=args.matcher)
    else:
        policy = loaded.policy
    samples = []
    started = time.perf_counter()
    events_total = timers = 0
    for i in range(args.tickets):
        evs = ticket_events(i)
        events_total += len(evs)
        # arrival one event at a time, as the API sees them
        ladders: list = []
        for k in range(1, len(evs) + 1):
            p = plan(evs[0].ticket, evs[:k], ladders, policy, new_event_ids={evs[k - 1].id})
            ladders = [lad for lad in ladders if (lad.rule, lad.cycle) not in {(s.rule, s.cycle) for s in p.stopped}] + list(p.stopped) + list(p.opened)
            timers += len(p.timers)
        if (i + 1) % 10_000 == 0:
            samples.append({"tickets": i + 1, "rss_mb": round(rss_mb(), 1), "elapsed_s": round(time.perf_counter() - started, 1)})
            print(json.dumps(samples[-1]), flush=True)
    elapsed = time.perf_counter() - started
    result = {
        "tickets": args.tickets,
        "events": events_total,
        "plans": events_total,
        "timers_planned": timers,
        "matcher": policy.matcher.name,
        "elapsed_s": round(elapsed, 1),
        "events_per_s": round(events_total / elapsed),
        "rss_mb_first_sample": samples[0]["rss_mb"] if samples else None,
        "rss_mb_last_sample": samples[-1]["rss_mb"] if samples else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "samples": samples,
        "pid": os.getpid(),
    }
    out = ROOT / "bench" / "results" / f"engine_soak_{policy.matcher.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}))


if __name__ == "__main__":
    main()
