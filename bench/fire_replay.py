"""`fire_step` alone, replayed in one process: CPU per fired step and an md5 of every message.

    python bench/fire_replay.py record FILE [TICKETS]   # ingest a varied stream, fire, record
    python bench/fire_replay.py replay FILE [--reps N] [--profile OUT] [--rule RULE[:STEPS]]

`record` ingests TICKETS tickets (common.ticket_events, each cut after a varied number of its
events, so tickets wait at every stage: not dispatched, not signed, not replied, not visited)
into a MemoryStore, then fires everything due at several moments (an hour to three weeks
later), and pickles each `fire_step` call the daemon made (rule id, step index, repetition,
cycle, anchor, state, the ticket's deadlines, extra, moment). `replay` rebuilds the runtime
from this tree's config and calls `fire_step` for every recorded call, REPS times (a fresh
runtime each time, so no memo of one repetition serves the next; one call of each step first,
untimed, as a long-lived daemon has done), and prints CPU µs per call (process time of the
calls alone; the mean and the least of the repetitions), the messages, and the md5 of every
Notification's repr in call order. `--rule RULE[:STEPS]` keeps only one rule's calls (the
catch-up bench fires `reply-deadline:0,1` only).

    python bench/fire_replay.py compare FILE OTHER_ROOT [--reps N] [--rule RULE[:STEPS]]

`compare` puts another tree's `supervisor` package beside this one's, in the same process (a
copy named `supervisor_other`, its imports renamed), checks that both build the same messages
(every Notification's repr) and times the two in turn, REPS rounds: on a machine shared with
other work, two trees timed in separate processes differ by more than what is measured. Both
runtimes come from this tree's config. (`replay` always runs the tree it lives in: common.py
puts it first on sys.path.)
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import hashlib
import pickle
import shutil
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from common import SH, runtime, ticket_events

START = datetime(2026, 11, 2, 9, tzinfo=SH)
MOMENTS = (timedelta(hours=1), timedelta(hours=5), timedelta(days=1), timedelta(days=2),
           timedelta(days=4), timedelta(days=8), timedelta(days=15), timedelta(days=22))  # fmt: skip


def _stream(n: int) -> list[dict]:
    evs = []
    for i in range(n):
        life = ticket_events(i, START + timedelta(seconds=97 * i), "R")
        evs.extend(life[: 1 + (i * 5) % 6])  # 1..6 events: every stage
    evs.sort(key=lambda e: e["at"])
    return evs


async def _record(n: int) -> list[tuple]:
    import supervisor.application as app
    from supervisor.core.clock import VirtualClock
    from supervisor.storage.memory import MemoryStore

    calls: list[tuple] = []
    real = app.fire_step

    def recorder(**kw):
        d = kw["deadlines"]
        d = d() if callable(d) else d
        calls.append((kw["rule"].id, kw["step"].index, kw["rep"], kw["cycle"], kw["anchor_at"],
                      kw["state"], d, kw["extra"], kw["at"]))  # fmt: skip
        return real(**{**kw, "deadlines": d})

    app.fire_step = recorder
    sup = app.Supervisor(MemoryStore(), runtime(), VirtualClock(START))
    evs = _stream(n)
    for lo in range(0, len(evs), 500):
        await sup.ingest(evs[lo : lo + 500])
    last = max(e["at"] for e in evs)
    base = datetime.fromisoformat(last)
    for m in MOMENTS:
        while True:
            out = await sup.fire_due(limit=10_000, now=base + m)
            if out.fired + out.cancelled + out.superseded == 0:
                break
    return calls


def record(path: str, n: int) -> None:
    calls = asyncio.run(_record(n))
    Path(path).write_bytes(pickle.dumps(calls))
    rules: dict[str, int] = {}
    for c in calls:
        rules[c[0]] = rules.get(c[0], 0) + 1
    print(f"{len(calls)} calls recorded: {rules}")


def _selected(calls: list[tuple], only: str | None) -> list[tuple]:
    """The calls of one rule (RULE) or of some of its steps (RULE:STEP,STEP)."""
    if not only:
        return calls
    rule_id, _, steps = only.partition(":")
    return [c for c in calls if c[0] == rule_id and (not steps or str(c[1]) in steps.split(","))]


def _arguments(calls: list[tuple], rt) -> list[dict]:
    """fire_step's keyword arguments for each recorded call, with `rt`'s rules and config."""
    rules = rt.policy.rules_by_id
    args = []
    for rule_id, step, rep, cycle, anchor, state, d, extra, at in calls:
        rule = rules[rule_id]
        args.append(dict(rule=rule, step=rule.steps[step], rep=rep, cycle=cycle,
                         anchor_at=anchor, state=state, deadlines=(lambda d=d: d),
                         directory=rt.directory, templates=rt.templates, at=at, extra=extra,
                         calendar=rt.policy.calendar))  # fmt: skip
    return args


def replay(path: str, reps: int, profile: str | None, only: str | None) -> None:
    from supervisor.engine.firing import fire_step

    calls = pickle.loads(Path(path).read_bytes())
    calls = _selected(calls, only)
    from supervisor.server.daemon import GC_GEN0_THRESHOLD

    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])  # as the daemon runs
    cpu_total, digest, messages, cpu_min = 0.0, None, 0, float("inf")
    for r in range(reps):
        args = _arguments(calls, runtime())
        # the daemon's templates are long-lived: what each works out once (the names it reads,
        # its compiled plans) is worked out before the clock starts, by one call of each step
        firsts = {(kw["rule"].id, kw["step"].index): kw for kw in reversed(args)}
        for kw in firsts.values():
            fire_step(**kw)
        gc.collect()
        gc.freeze()  # what is loaded is frozen, as in the daemon
        prof = cProfile.Profile() if profile and r == reps - 1 else None
        outs = []
        if prof:
            prof.enable()
        t0 = time.process_time()
        for kw in args:
            outs.append(fire_step(**kw))
        cpu = time.process_time() - t0
        if prof:
            prof.disable()
            prof.dump_stats(profile)
        cpu_total += cpu
        cpu_min = min(cpu_min, cpu)
        h = hashlib.md5()
        messages = 0
        for out in outs:
            for n in out:
                h.update(repr(n).encode())
                messages += 1
        if digest is not None and digest != h.hexdigest():
            raise SystemExit("repetitions differ")
        digest = h.hexdigest()
        print(f"rep {r}: {cpu / len(calls) * 1e6:.2f} µs per call")
    print(
        f"{len(calls)} calls, {messages} messages, md5 {digest}; "
        f"CPU {cpu_total / reps / len(calls) * 1e6:.2f} µs per call (mean of {reps}; "
        f"least {cpu_min / len(calls) * 1e6:.2f})"
    )


def _other_package(root: str) -> str:
    """`root`/supervisor copied as supervisor_other (imports renamed); the copy's parent dir."""
    import re
    import tempfile

    parent = tempfile.mkdtemp(prefix="fire_replay_")
    dest = Path(parent) / "supervisor_other"
    shutil.copytree(Path(root) / "supervisor", dest)
    for path in dest.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\b(from|import) supervisor([. ])", r"\1 supervisor_other\2", text)
        text = text.replace('"supervisor.', '"supervisor_other.')
        path.write_text(text, encoding="utf-8")
    return parent


def compare(path: str, other_root: str, reps: int, only: str | None) -> None:
    from common import ROOT

    calls = _selected(pickle.loads(Path(path).read_bytes()), only)
    parent = _other_package(other_root)
    sys.path.insert(0, parent)
    try:
        _compare(calls, other_root, reps, ROOT)
    finally:
        shutil.rmtree(parent)


def _compare(calls: list[tuple], other_root: str, reps: int, root: Path) -> None:
    import importlib

    def setup(pkg: str):
        settings = importlib.import_module(pkg + ".config.settings")
        app = importlib.import_module(pkg + ".application")
        firing = importlib.import_module(pkg + ".engine.firing")
        rt = app.runtime_from(settings.load_all(root / "config", env={}), b"bench-key")
        return firing.fire_step, _arguments(calls, rt)

    sides = {"other": setup("supervisor_other"), "this": setup("supervisor")}
    built = {k: [repr(n) for kw in args for n in fire(**kw)] for k, (fire, args) in sides.items()}
    if built["other"] != built["this"]:
        raise SystemExit("the two trees build different messages")
    gc.collect()
    gc.freeze()
    gc.disable()
    times: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(reps):
        for label in sides if r % 2 else reversed(sides):
            fire, args = sides[label]
            t0 = time.process_time()
            for kw in args:
                fire(**kw)
            times[label].append((time.process_time() - t0) / len(args) * 1e6)
    print(f"{len(calls)} calls, {len(built['this'])} messages, the same in both trees")
    for label, ts in times.items():
        ts.sort()
        name = other_root if label == "other" else str(root)
        print(f"{name}: CPU µs per call: mean {sum(ts) / len(ts):.2f}, median "
              f"{ts[len(ts) // 2]:.2f}, least {ts[0]:.2f} ({reps} rounds)")  # fmt: skip


if __name__ == "__main__":
    argv = sys.argv[1:]
    if len(argv) < 2 or argv[0] not in ("record", "replay", "compare") or (
        argv[0] == "compare" and len(argv) < 3
    ):
        sys.exit(__doc__)
    if argv[0] == "record":
        record(argv[1], int(argv[2]) if len(argv) > 2 else 3000)
    elif argv[0] == "compare":
        opt = {argv[i]: argv[i + 1] for i in range(3, len(argv) - 1, 2)}
        compare(argv[1], argv[2], int(opt.get("--reps", 10)), opt.get("--rule"))
    else:
        opt = {argv[i]: argv[i + 1] for i in range(2, len(argv) - 1, 2)}
        replay(argv[1], int(opt.get("--reps", 3)), opt.get("--profile"), opt.get("--rule"))
