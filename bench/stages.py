"""Per-stage CPU breakdown of the daemon from py-spy's collapsed stacks (`py-spy record --format raw`).

    python bench/stages.py PROFILE.txt [--top 25]

Each sample is given to the deepest stage marker on its stack (root to leaf: the last frame that
names a stage wins), so `json.loads` inside the API handler counts as "parse" but inside the
store's jsonb decoder as "load". The SQL stages (lock, insert, upsert, commit) show here only as
their Python side (asyncpg encoding); their database side is PostgreSQL's CPU (b_daemon's cpu_s)
and the wall time of each statement (stage_sql.py).
"""

from __future__ import annotations

import re
import sys
from collections import Counter

# (stage, function name, file fragment); later entries are deeper and so more specific
MARKERS: list[tuple[str, str, str]] = [
    ("http", "", "aiohttp/"),
    ("http", "post_events", "server/api.py"),
    ("parse", "decode_body", "server/body.py"),
    ("parse", "loads", "json/__init__.py"),  # the body before orjson: only right under the handler
    ("parse", "read", "aiohttp/web_request"),
    ("ingest other (SQL round trips, asyncpg)", "ingest", "storage/"),
    ("lock", "_lock", "storage/"),
    ("insert", "_insert_events", "storage/"),
    ("load (stored states, ladders)", "loads", "storage/jsoncodec.py"),
    ("load (stored states, ladders)", "_ladder", "storage/"),
    ("repeat callers", "_repeat_counts", "storage/"),
    ("same matter", "match_created", "storage/pg_matter.py"),
    ("desk index", "", "desk/index.py"),
    ("validate", "validate_batch", "application.py"),
    ("validate", "parse_event", "core/events.py"),
    ("validate", "validate_fast", "core/fastevents.py"),
    ("redact", "redact", "core/privacy.py"),
    ("fold", "from_json", "core/state.py"),
    ("fold", "from_stored", "core/statecodec.py"),
    ("plan", "plan", "engine/planner.py"),
    ("plan (deadlines, working time)", "message_for", "engine/planner.py"),
    ("plan (deadlines, working time)", "compute", "engine/deadlines.py"),
    ("plan (timers, working time)", "step_times", "engine/planner.py"),
    ("fold", "apply", "core/state.py"),
    ("match", "match", "policy/matcher.py"),
    ("match", "match_many", "policy/"),
    ("upsert", "_apply", "storage/"),
    ("upsert", "_upsert_timers", "storage/"),
    ("upsert (serialise state)", "to_json", "core/state.py"),
    ("upsert (serialise state)", "state_text", "storage/jsoncodec.py"),
    ("upsert (serialise state)", "to_stored", "core/statecodec.py"),
    ("scheduler (fire_due)", "fire_due", "storage/"),
    ("scheduler (fire_due)", "_scheduler_loop", "daemon.py"),
    ("dispatcher", "", "delivery/outbox.py"),
    ("dispatcher", "", "notifiers/"),
    ("metrics", "", "prometheus_client/"),
    ("commit", "__aexit__", "asyncpg/transaction.py"),
]
FRAME = re.compile(r"^(?P<fn>[^ ]+) \((?P<file>[^:)]+)")


def stage_of(frames: list[str]) -> str:
    if any(fr.startswith("Thread._bootstrap") for fr in frames[:3]):
        return "threads (durable_rules' pollers, executors)"
    found = "other (event loop, asyncio, GC)"
    for fr in frames:
        m = FRAME.match(fr.strip())
        if not m:
            continue
        fn, file = m.group("fn"), m.group("file")
        for stage, want_fn, want_file in MARKERS:
            if want_file in file and (not want_fn or fn == want_fn or fn.endswith("." + want_fn)):
                if stage == "parse" and found not in ("http", "parse"):
                    continue  # json.loads deeper in (durable_rules, the jsonb codec) is not the body
                found = stage
    return found


def breakdown(path: str) -> tuple[Counter, Counter, int]:
    stages: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            try:
                n = int(count)
            except ValueError:
                continue
            frames = stack.split(";")[1:]  # the first is the process
            stages[stage_of(frames)] += n
            leaves[frames[-1].strip() if frames else "(no Python frame)"] += n
            total += n
    return stages, leaves, total


def main() -> None:
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    stages, leaves, total = breakdown(path)
    # durable_rules' timer threads wait in Condition.wait; py-spy counts them as active, but an
    # idle process with them spends no CPU (measured): they are left out of the shares
    idle = sum(n for st, n in stages.items() if st.startswith("threads"))
    busy = total - idle
    print(f"{total} samples, {idle} in waiting threads (left out), {busy} in the event loop")
    print("| stage | samples | share |\n|---|---|---|")
    for st, n in stages.most_common():
        if not st.startswith("threads"):
            print(f"| {st} | {n} | {n / busy:.1%} |")
    print("\nleaf functions (self time):")
    for fr, n in leaves.most_common(top):
        print(f"  {n / total:6.1%}  {fr}")


if __name__ == "__main__":
    main()
