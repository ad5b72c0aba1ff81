"""The ingest's Python work without the database, in one process, under cProfile: body decode,
validate + redact, the fold onto the stored state, plan (messages, deadlines, match, ladders,
timers) and the state's serialisation, batch by batch as PgStore.ingest does them.

    python bench/core_profile.py [TICKETS] [--sort tottime|cumtime] [--no-profile]

Prints µs of Python per event per stage (timed without the profiler), then the profile.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import time
from collections import defaultdict
from datetime import datetime

from common import SH, event_stream, runtime


def run(n_tickets: int, profile: bool, sort: str) -> None:
    from supervisor.application import validate_batch
    from supervisor.core.state import TicketState
    from supervisor.engine.planner import plan
    from supervisor.server.body import decode_body

    rt = runtime()
    events = event_stream(n_tickets, datetime(2026, 11, 2, 9, tzinfo=SH))
    bodies = [
        json.dumps(events[i : i + 500], ensure_ascii=False).encode()
        for i in range(0, len(events), 500)
    ]
    stored: dict[str, dict] = {}
    ladders: dict[str, list] = defaultdict(list)
    spent: dict[str, float] = defaultdict(float)

    def go() -> None:
        for body in bodies:
            t0 = time.process_time()
            raws = decode_body(body)
            t1 = time.process_time()
            evs = validate_batch(raws, rt.caller_key)
            t2 = time.process_time()
            by_t: dict[str, list] = defaultdict(list)
            for e in evs:
                by_t[e.ticket].append(e)
            ids = {e.id for e in evs}
            plans = {}
            for t in sorted(by_t):
                st = stored.get(t)
                start = TicketState.from_json(st) if st else None
                plans[t] = p = plan(
                    t, by_t[t], ladders[t], rt.policy, new_event_ids=ids, windows={}, start=start
                )
                ladders[t].extend(p.opened)
            t3 = time.process_time()
            for t, p in plans.items():
                stored[t] = json.loads(json.dumps(p.state.to_json(), ensure_ascii=False))
            t4 = time.process_time()
            spent["parse"] += t1 - t0
            spent["validate+redact"] += t2 - t1
            spent["fold+plan"] += t3 - t2
            spent["serialise (+ decode as the store does)"] += t4 - t3

    if profile:
        prof = cProfile.Profile()
        prof.enable()
        go()
        prof.disable()
        pstats.Stats(prof).sort_stats(sort).print_stats(30)
    else:
        go()
        n = len(events)
        for k, v in spent.items():
            print(f"{k:45s} {v / n * 1e6:7.1f} µs/event")
        print(f"{'total':45s} {sum(spent.values()) / n * 1e6:7.1f} µs/event ({n} events)")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sort = sys.argv[sys.argv.index("--sort") + 1] if "--sort" in sys.argv else "tottime"
    run(int(args[0]) if args else 3000, "--no-profile" not in sys.argv, sort)
