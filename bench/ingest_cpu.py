"""CPU per event of `Supervisor.ingest` in one process against a fresh database, one client, a
fixed stream: the daemon's ingest work without HTTP, the loops or the other clients' noise.

    python bench/ingest_cpu.py [TICKETS] [--profile FILE] [--gc-threshold N] [--stages]

Posts the stream (common.event_stream from a fixed start) in 500-event batches, as the API
decodes them; ANALYZEs every 10 batches as autovacuum would (not counted). Reports CPU seconds
of this process and of its PostgreSQL backend per event (process time, which other processes'
load disturbs far less than wall time), the collector's passes, and md5 digests of every stored
ladder, timer, ticket state and event: two versions of the code that store the same thing print
the same digests. `--gc-threshold N` sets the young generation's threshold after start-up, as
the daemon does (default: the daemon's); `--profile FILE` writes a cProfile of the measured part;
`--stages` splits this process's CPU by stage (each stage's functions wrapped in a CPU clock).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import hashlib
import json
import sys
import time
from datetime import datetime, timedelta

import asyncpg
import psutil
from common import SH, GcMeter, create_db, drop_db, event_stream, runtime

START = datetime(2026, 11, 2, 9, tzinfo=SH)

DIGESTS = {
    "ladders": "SELECT ticket, rule, cycle, anchor_at, trigger_event, status, reason FROM ladders"
    " ORDER BY ticket, rule, cycle",
    "timers": "SELECT ticket, rule, cycle, step, rep, due_at, status FROM timers"
    " ORDER BY ticket, rule, cycle, step, rep",
    "tickets": "SELECT ticket, state::text FROM tickets ORDER BY ticket",
    "events": "SELECT id, ticket, type, at, data::text FROM events ORDER BY id",
}


async def _digests(conn: asyncpg.Connection) -> dict[str, str]:
    out = {}
    for name, sql in DIGESTS.items():
        h = hashlib.md5()
        for r in await conn.fetch(sql):
            h.update(repr(tuple(r.values())).encode())
        out[name] = h.hexdigest()
    return out


STAGES: dict[str, float] = {}


def _timed_stages() -> None:
    """Wrap each stage's function in a CPU clock (process time; a stage's awaits included)."""
    import functools
    import inspect

    import supervisor.application as app
    import supervisor.server.body as body
    import supervisor.storage.jsoncodec as jsoncodec
    import supervisor.storage.pg as pg

    def wrap(owner: object, attr: str, stage: str) -> None:
        fn = getattr(owner, attr)
        STAGES.setdefault(stage, 0.0)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*a, **kw):
                t0 = time.process_time()
                try:
                    return await fn(*a, **kw)
                finally:
                    STAGES[stage] += time.process_time() - t0

            setattr(owner, attr, timed_async)
        else:

            @functools.wraps(fn)
            def timed(*a, **kw):
                t0 = time.process_time()
                try:
                    return fn(*a, **kw)
                finally:
                    STAGES[stage] += time.process_time() - t0

            setattr(owner, attr, timed)

    wrap(body, "decode_body", "parse (body JSON)")
    wrap(app, "validate_batch", "validate + redact")
    wrap(app, "plan", "plan (fold, messages, deadlines, ladders, timers)")
    wrap(app.Reviewer, "review_ticket", "review")
    wrap(jsoncodec, "loads", "jsonb decode (stored states)")
    wrap(pg, "_insert_events", "insert events")
    wrap(pg, "match_created", "same matter")
    wrap(pg, "_repeat_counts", "repeat callers")
    wrap(pg.PgStore, "_apply", "write (serialise + SQL)")


async def main(n_tickets: int, profile: str | None, threshold: int | None) -> dict:
    from supervisor.application import Supervisor
    from supervisor.core.clock import VirtualClock
    from supervisor.server import body

    try:
        from supervisor.server.daemon import GC_GEN0_THRESHOLD
    except ImportError:  # a tree from before the daemon set it: Python's default
        GC_GEN0_THRESHOLD = 700
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore

    name, url = await create_db("ingestcpu")
    try:
        pool = await create_pool(url, min_size=1, max_size=1)
        clock = VirtualClock(START + timedelta(days=60))
        sup = Supervisor(PgStore(pool), runtime(), clock)
        events = event_stream(n_tickets, START)
        bodies = [
            json.dumps(events[i : i + 500], ensure_ascii=False).encode()
            for i in range(0, len(events), 500)
        ]
        for raw in bodies[:4]:  # warm-up: prepared statements, caches
            await sup.ingest(body.decode_body(raw))
        async with pool.acquire() as c:
            await c.execute("ANALYZE tickets, events, ladders, timers")
            backend = await c.fetchval("SELECT pg_backend_pid()")
        pg = psutil.Process(backend)
        for k in list(STAGES):
            STAGES[k] = 0.0
        gc.collect()
        gc.freeze()
        gc.set_threshold(threshold if threshold is not None else GC_GEN0_THRESHOLD)
        meter = GcMeter().start()
        prof = cProfile.Profile() if profile else None
        me = psutil.Process()
        cpu_py = cpu_pg = 0.0
        t_wall = time.perf_counter()
        for i, raw in enumerate(bodies[4:]):
            a_py, a_pg = me.cpu_times(), pg.cpu_times()
            if prof:
                prof.enable()
            await sup.ingest(body.decode_body(raw))
            if prof:
                prof.disable()
            b_py, b_pg = me.cpu_times(), pg.cpu_times()
            cpu_py += b_py.user + b_py.system - a_py.user - a_py.system
            cpu_pg += b_pg.user + b_pg.system - a_pg.user - a_pg.system
            if i % 10 == 9:
                async with pool.acquire() as c:
                    await c.execute("ANALYZE tickets, events, ladders, timers")
        wall = time.perf_counter() - t_wall
        gc.callbacks.clear()
        async with pool.acquire() as c:
            digests = await _digests(c)
        await pool.close()
    finally:
        await drop_db(name)
    if prof and profile:
        prof.dump_stats(profile)
    n = len(events) - 4 * 500
    return {
        "events": n,
        "python_cpu_us_per_event": round(cpu_py / n * 1e6, 1),
        "postgresql_cpu_us_per_event": round(cpu_pg / n * 1e6, 1),
        "wall_s": round(wall, 2),
        "gc_cpu_us_per_event": round(meter.cpu_s / n * 1e6, 1),
        "gc_passes": meter.passes,
        "gc_threshold": gc.get_threshold(),
        "load_avg": [round(x, 1) for x in psutil.getloadavg()],
        "md5": digests,
        **(
            {
                "stages_us_per_event": {
                    **{k: round(v / n * 1e6, 1) for k, v in STAGES.items()},
                    "rest (locks, loads, round trips, event loop)": round(
                        (cpu_py - sum(STAGES.values())) / n * 1e6, 1
                    ),
                }
            }
            if STAGES
            else {}
        ),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    prof = args[args.index("--profile") + 1] if "--profile" in args else None
    th = int(args[args.index("--gc-threshold") + 1]) if "--gc-threshold" in args else None
    nums = [a for a in args if a.isdigit() and a not in (prof, str(th))]
    if "--stages" in args:
        _timed_stages()
    out = asyncio.run(main(int(nums[0]) if nums else 3000, prof, th))
    print(json.dumps(out, indent=1))
