"""2. Timers: firing lag under a steady stream of due timers with ~1,000,000 pending, and the
catch-up rate with 100,000 due at once; beside a bare FOR UPDATE SKIP LOCKED claim loop
(batches of 100) over the same table shape.

The loop is the daemon's scheduler loop (daemon._scheduler_loop), re-stated here without its
metrics: Supervisor.fire_due(limit=settings.scheduler.batch) on a real clock; when fewer than a
batch were handled it asks next_due() and sleeps until then (at most max_sleep_s). The catch-up
alone (`catch_up_only`, run as a script) runs it as the daemon's ordinary lane does while behind:
daemon.CATCH_UP_CLAIMERS such loops at once (`--loops N` to change).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from datetime import timedelta

import asyncpg
import psutil
from b_data import add_tickets, tpl
from common import GcMeter, loaded, now_utc, pct, runtime


async def scheduler_loop(
    sup,
    store,
    batch: int,
    max_sleep: float,
    until_mono: float | None,
    stop_when_idle: bool,
    record: list,
) -> dict:
    handled = fired = superseded = cancelled = 0
    last_work = time.monotonic()  # when the last pass that handled something ended
    while True:
        if until_mono is not None and time.monotonic() >= until_mono:
            break
        now = sup.clock.now()
        out = await sup.fire_due(limit=batch, now=now)
        done = now_utc()
        commit_extra = (done - now).total_seconds()
        record.extend(lag + commit_extra for lag in out.lags_s)
        n = out.fired + out.cancelled + out.superseded
        if n:
            last_work = time.monotonic()
        handled += n
        fired += out.fired
        superseded += out.superseded
        cancelled += out.cancelled
        if n >= batch:
            continue
        if stop_when_idle and n == 0:
            break
        nxt = await store.next_due()
        delay = (
            max_sleep if nxt is None else min(max_sleep, (nxt - sup.clock.now()).total_seconds())
        )
        if until_mono is not None:
            delay = min(delay, until_mono - time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)
    return {"handled": handled, "fired": fired, "superseded": superseded, "cancelled": cancelled,
            "last_work": last_work}


async def bench(url: str, quick: bool, profile: bool = True) -> dict:
    from supervisor.application import Supervisor
    from supervisor.core.clock import SystemClock
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore

    settings = loaded().settings
    batch, max_sleep = settings.scheduler.batch, settings.scheduler.max_sleep_s
    rate = 1000
    window_s = 15 if quick else 45
    n_catch = 20_000 if quick else 100_000
    pool = await create_pool(url, max_size=4)
    conn = await asyncpg.connect(url)
    result: dict = {"pending_at_start": await conn.fetchval("SELECT count(*) FROM timers WHERE status = 'pending'"),
                    "batch": batch, "rate_per_s": rate, "window_s": window_s}  # fmt: skip
    try:
        store = PgStore(pool)
        sup = Supervisor(store, runtime(), SystemClock())
        T = tpl()
        # --- steady stream: `rate` timers a second come due for window_s seconds -------------
        n_win = rate * window_s
        win = [f"W{i:08d}" for i in range(n_win)]
        t_start = now_utc() + timedelta(seconds=4)
        await add_tickets(
            conn,
            win,
            timers=[
                (t, T["steps"][0], t_start + timedelta(seconds=i / rate)) for i, t in enumerate(win)
            ],
        )
        await conn.execute("ANALYZE timers")
        lags: list[float] = []
        until = time.monotonic() + (t_start - now_utc()).total_seconds() + window_s + 3
        counts = await scheduler_loop(sup, store, batch, max_sleep, until, False, lags)
        counts.pop("last_work")
        late = [r["late_s"] for r in await conn.fetch(
            "SELECT late_s FROM timers WHERE ticket LIKE 'W%' AND status <> 'pending'")]  # fmt: skip
        left = await conn.fetchval(
            "SELECT count(*) FROM timers WHERE ticket LIKE 'W%' AND status = 'pending'"
        )
        outbox_lag = [r["lag"] for r in await conn.fetch(
            "SELECT extract(epoch FROM o.created_at - t.due_at)::float8 AS lag FROM outbox o JOIN timers t USING (ticket, rule, cycle, step, rep) WHERE o.ticket LIKE 'W%'")]  # fmt: skip
        result["steady"] = {
            "timers": n_win,
            **counts,
            "not_fired_in_window": left,
            "lag_p50_s": round(pct(late, 50), 4),
            "lag_p99_s": round(pct(late, 99), 4),
            "lag_max_s": round(max(late), 4) if late else None,
            "outbox_lag_p99_s": round(pct(outbox_lag, 99), 4),
            "commit_lag_p50_s": round(pct(lags, 50), 4),
            "commit_lag_p99_s": round(pct(lags, 99), 4),
            "target_p99_s": 1.0,
            "met": bool(late) and left == 0 and pct(lags, 99) <= 1.0,
        }
        # --- catch-up: n_catch due at once (an outage); a quarter superseded -----------------
        timers = await _catch_up_rows(conn, "C", n_catch, T)
        result["pending_at_catch_up"] = await conn.fetchval(
            "SELECT count(*) FROM timers WHERE status = 'pending'"
        )
        t0 = time.perf_counter()
        counts = await scheduler_loop(sup, store, batch, max_sleep, None, True, [])
        counts.pop("last_work")
        dt = time.perf_counter() - t0
        handled = counts["handled"]
        result["catch_up"] = {
            "due": len(timers),
            **counts,
            "seconds": round(dt, 2),
            "handled_per_s": round(handled / dt),
            "fired_per_s": round(counts["fired"] / dt),
            "target_per_s": 20_000,
            "met": handled / dt >= 20_000,
        }
        # --- baseline: a bare claim loop, batches of 100, same table shape and rows ----------
        await conn.execute("""
            CREATE TABLE bare_timers (LIKE timers INCLUDING ALL);
            -- the claim below orders by due_at alone: its index, as timers had it until
            -- migration 025 (the daemon's claim uses timers_due_urgent, copied above)
            CREATE INDEX ON bare_timers (due_at) WHERE status = 'pending';
            INSERT INTO bare_timers SELECT * FROM timers WHERE status = 'pending';
            INSERT INTO bare_timers (ticket, rule, cycle, step, rep, due_at)
              SELECT ticket, rule, cycle, step, rep, due_at FROM timers WHERE ticket LIKE 'C%';
            ANALYZE bare_timers;
        """)
        bconn = await asyncpg.connect(url)
        try:
            claim = """
                WITH c AS (SELECT id FROM bare_timers WHERE status = 'pending' AND due_at <= $1
                           ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED)
                UPDATE bare_timers t SET status = 'fired', fired_at = $1 FROM c WHERE t.id = c.id"""
            n = 0
            t0 = time.perf_counter()
            while True:
                tag = await bconn.execute(claim, now_utc())
                k = int(tag.split()[-1])
                if k == 0:
                    break
                n += k
            bdt = time.perf_counter() - t0
        finally:
            await bconn.close()
        base_rate = n / bdt
        result["catch_up"]["baseline_bare_claim_rows_per_s"] = round(base_rate)
        result["catch_up"]["baseline_rows"] = n
        result["catch_up"]["ratio"] = round(handled / dt / base_rate, 3)
        await conn.execute("DROP TABLE bare_timers")
        if profile and not result["catch_up"]["met"]:
            import cProfile

            from b_ingest import top_entries

            await _catch_up_rows(conn, "D", 10_000, T)
            prof = cProfile.Profile()
            prof.enable()
            await scheduler_loop(sup, store, batch, max_sleep, None, True, [])
            prof.disable()
            prof.dump_stats("/tmp/bench_catchup.prof")
            result["catch_up"]["profile_top"] = top_entries(
                "/tmp/bench_catchup.prof", 20, "tottime"
            )
            result["catch_up"]["profile_cumulative"] = top_entries(
                "/tmp/bench_catchup.prof", 25, "cumulative"
            )
        plan = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) "
            + __import__("supervisor.storage.queries", fromlist=["CLAIM_DUE"]).CLAIM_DUE.replace(
                "FOR UPDATE SKIP LOCKED", ""
            ),
            now_utc(),
            batch,
            timedelta(seconds=settings.scheduler.catch_up_grace_s),
        )
        result["claim_explain_idle"] = [r[0] for r in plan][-3:]
    finally:
        await conn.close()
        await pool.close()
    return result


async def _catch_up_rows(conn, prefix: str, n_catch: int, T: dict) -> list:
    """n_catch timers due in the past: a quarter are older steps of a ladder whose next step is
    due too (superseded after the grace), the rest single due steps (fired)."""
    pairs, singles = n_catch // 4, n_catch // 2
    now = now_utc()
    ct = [f"{prefix}{i:08d}" for i in range(pairs + singles)]
    timers = []
    for i, t in enumerate(ct):
        if i < pairs:
            timers += [
                (t, T["steps"][0], now - timedelta(minutes=40, seconds=i % 600)),
                (t, T["steps"][1], now - timedelta(minutes=10, seconds=i % 60)),
            ]
        else:
            timers.append((t, T["steps"][0], now - timedelta(minutes=30, seconds=i % 1200)))
    await add_tickets(conn, ct, timers=timers)
    await conn.execute("ANALYZE timers")
    return timers


async def catch_up_only(
    n_pending: int, n_catch: int, profile: bool, loops: int = 1, gc_threshold: int | None = None
) -> dict:
    """The catch-up part alone, on a database of its own: `n_pending` open tickets with a timer
    days ahead, then `n_catch` due at once; beside the bare claim on the same rows.

    The collector is set as the daemon sets it after start-up (server/daemon.py: what is loaded
    frozen, young generation threshold GC_GEN0_THRESHOLD); `gc_threshold` 0 leaves Python's
    defaults (what this bench measured before 2026-12-06's third pass), another number is the
    young threshold with the freeze. Reported: CPU of this process and of the database's
    backends per timer, and the collector's passes and CPU."""
    from b_data import load_big
    from common import create_db, drop_db

    from supervisor.application import Supervisor
    from supervisor.core.clock import SystemClock
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore

    name, url = await create_db("catchup")
    try:
        await load_big(url, n_pending)
        settings = loaded().settings
        pool = await create_pool(url, max_size=4)
        conn = await asyncpg.connect(url)
        try:
            store = PgStore(pool)
            sup = Supervisor(store, runtime(), SystemClock())
            await _catch_up_rows(conn, "C", n_catch, tpl())
            from supervisor.server.daemon import GC_GEN0_THRESHOLD

            if gc_threshold != 0:
                gc.collect()
                gc.freeze()
                gc.set_threshold(gc_threshold or GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
            meter = GcMeter().start()
            # each timed phase starts just after a checkpoint: one the WAL of what came before
            # set off (checkpoints every ~20 s while the rows are loaded) lands in neither by
            # accident (its full-page writes slowed whichever phase it fell in, by 20-30 %)
            await conn.execute("CHECKPOINT")
            async with pool.acquire() as c:  # the pool's backends (the loop uses one at a time)
                await c.fetchval("SELECT 1")
                pids = [r[0] for r in await conn.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]  # fmt: skip
            backends = [psutil.Process(p) for p in pids]
            pg0 = sum(b.cpu_times().user + b.cpu_times().system for b in backends)
            t0 = time.perf_counter()
            t0m = time.monotonic()
            cpu0 = time.process_time()
            runs = await asyncio.gather(*(scheduler_loop(sup, store, settings.scheduler.batch, settings.scheduler.max_sleep_s, None, True, [])
                                          for _ in range(loops)))  # fmt: skip
            counts = {k: sum(r[k] for r in runs) for k in runs[0] if k != "last_work"}
            # until the last timer was handled: a claimer whose last pass came back short while
            # the others still held the last rows then sleeps until the next due timer (days
            # ahead here: max_sleep_s, 30 s) before it finds nothing and stops, after the work
            dt = max(r["last_work"] for r in runs) - t0m
            cpu = time.process_time() - cpu0
            pg_cpu = sum(b.cpu_times().user + b.cpu_times().system for b in backends) - pg0
            # and the backends the pool opened since (more loops, more connections): all theirs
            for (pid,) in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"):  # fmt: skip
                if pid not in pids:
                    t = psutil.Process(pid).cpu_times()
                    pg_cpu += t.user + t.system
            meter.stop()
            out = {"pending": n_pending, "due": n_catch, "loops": loops, **counts, "seconds": round(dt, 2),
                   "handled_per_s": round(counts["handled"] / dt), "python_cpu_us_per_timer": round(cpu / counts["handled"] * 1e6),
                   "postgres_cpu_us_per_timer": round(pg_cpu / counts["handled"] * 1e6),
                   "gc": {"threshold": list(gc.get_threshold()), "frozen": gc.get_freeze_count(), "passes": meter.passes,
                          "cpu_us_per_timer": round(meter.cpu_s / counts["handled"] * 1e6, 1)}}  # fmt: skip
            await conn.execute("""
                CREATE TABLE bare_timers (LIKE timers INCLUDING ALL);
                -- the claim below orders by due_at alone: its index, as timers had it until
                -- migration 025 (the daemon's claim uses timers_due_urgent, copied above)
                CREATE INDEX ON bare_timers (due_at) WHERE status = 'pending';
                INSERT INTO bare_timers SELECT * FROM timers WHERE status = 'pending';
                INSERT INTO bare_timers (ticket, rule, cycle, step, rep, due_at)
                  SELECT ticket, rule, cycle, step, rep, due_at FROM timers WHERE ticket LIKE 'C%';
                ANALYZE bare_timers;
                CHECKPOINT;
            """)
            claim = """
                WITH c AS (SELECT id FROM bare_timers WHERE status = 'pending' AND due_at <= $1
                           ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED)
                UPDATE bare_timers t SET status = 'fired', fired_at = $1 FROM c WHERE t.id = c.id"""
            n = 0
            t0 = time.perf_counter()
            while True:
                k = int((await conn.execute(claim, now_utc())).split()[-1])
                if k == 0:
                    break
                n += k
            base = n / (time.perf_counter() - t0)
            out["baseline_bare_claim_rows_per_s"] = round(base)
            out["ratio"] = round(counts["handled"] / dt / base, 3)
            out["target_ratio"] = 0.3
            out["met"] = out["ratio"] >= 0.3
            if profile:
                import cProfile
                import pstats

                await _catch_up_rows(conn, "D", 10_000, tpl())
                prof = cProfile.Profile()
                prof.enable()
                await scheduler_loop(
                    sup,
                    store,
                    settings.scheduler.batch,
                    settings.scheduler.max_sleep_s,
                    None,
                    True,
                    [],
                )
                prof.disable()
                prof.dump_stats(os.environ.get("CATCHUP_PROF", "/tmp/bench_catchup_only.prof"))
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        finally:
            await conn.close()
            await pool.close()
        out["load_avg"] = __import__("os").getloadavg()
        return out
    finally:
        await drop_db(name)


if __name__ == "__main__":
    # python bench/b_timers.py [PENDING] [DUE] [--profile] [--loops N] [--gc-threshold N]: the
    # catch-up alone, with its baseline (--gc-threshold 0: Python's default collector)
    import json
    import sys

    argv = sys.argv[1:]
    from supervisor.server.daemon import CATCH_UP_CLAIMERS

    # the daemon's ordinary lane runs CATCH_UP_CLAIMERS claimers while it is behind
    loops = int(argv[argv.index("--loops") + 1]) if "--loops" in argv else CATCH_UP_CLAIMERS
    gc_threshold = int(argv[argv.index("--gc-threshold") + 1]) if "--gc-threshold" in argv else None
    for opt in ("--loops", "--gc-threshold"):
        if opt in argv:
            del argv[argv.index(opt) : argv.index(opt) + 2]
    nums = [int(a) for a in argv if a.isdigit()]
    r = asyncio.run(
        catch_up_only(
            nums[0] if nums else 100_000,
            nums[1] if len(nums) > 1 else 100_000,
            "--profile" in sys.argv,
            loops,
            gc_threshold,
        )
    )
    print(json.dumps(r, indent=1))
