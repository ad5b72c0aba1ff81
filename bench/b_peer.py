"""5. The peer: APScheduler 3.x (BackgroundScheduler + SQLAlchemyJobStore on the same PostgreSQL):
time to schedule N deadlines, and firing lag of jobs coming due at a steady rate; beside ours:
time to plan N tickets' deadlines (ingest created + dispatched -> ladders and timers)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from common import SH, Analyzer, create_db, drop_db, pct, runtime, ticket_events, with_db

LAGS: list[float] = []
_LOCK = threading.Lock()


def fire(due_ts: float) -> None:
    """The job: record how late it runs."""
    lag = time.time() - due_ts
    with _LOCK:
        LAGS.append(lag)


def _apscheduler(url: str, n: int, n_fire: int, rate: int) -> dict:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    sa_url = url.replace("postgresql://", "postgresql+psycopg2://")
    sched = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=sa_url)},
                                executors={"default": ThreadPoolExecutor(10)},
                                job_defaults={"misfire_grace_time": None, "coalesce": False}, timezone=UTC)  # fmt: skip
    sched.start(paused=True)
    base = datetime.now(UTC) + timedelta(days=1)
    t0 = time.perf_counter()
    for i in range(n):
        due = base + timedelta(seconds=i * 20)
        sched.add_job(fire, "date", run_date=due, args=[due.timestamp()], id=f"j{i}")
    sched_s = time.perf_counter() - t0
    # the firing window: n_fire jobs at `rate`/s, starting a few seconds from now
    start = datetime.now(UTC) + timedelta(seconds=3 + n_fire / 2000)
    for i in range(n_fire):
        due = start + timedelta(seconds=i / rate)
        sched.add_job(fire, "date", run_date=due, args=[due.timestamp()], id=f"f{i}")
    LAGS.clear()
    sched.resume()
    deadline = time.time() + (start.timestamp() - time.time()) + n_fire / rate + 120
    while time.time() < deadline and len(LAGS) < n_fire:
        time.sleep(0.2)
    sched.shutdown(wait=True)
    lags = list(LAGS)
    return {"scheduled": n, "schedule_s": round(sched_s, 2), "schedule_per_s": round(n / sched_s),
            "fire_jobs": n_fire, "fire_rate_per_s": rate, "fired": len(lags),
            "lag_p50_s": round(pct(lags, 50), 4), "lag_p99_s": round(pct(lags, 99), 4),
            "lag_max_s": round(max(lags), 3) if lags else None}  # fmt: skip


async def _ours(url: str, n: int) -> dict:
    from supervisor.application import Supervisor
    from supervisor.core.clock import SystemClock
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore

    pool = await create_pool(url, max_size=4)
    try:
        sup = Supervisor(PgStore(pool), runtime(), SystemClock())
        start = datetime(2026, 11, 2, 9, 0, tzinfo=SH)
        raws = []
        for i in range(n):
            raws += ticket_events(i, start + timedelta(seconds=5 * i), "P")[:2]  # created + dispatched
        async with Analyzer(url) as an:
            t0 = time.perf_counter()
            for k in range(0, len(raws), 500):
                await sup.ingest(raws[k : k + 500])
            dt = time.perf_counter() - t0
        async with pool.acquire() as conn:
            timers = await conn.fetchval("SELECT count(*) FROM timers WHERE status = 'pending'")
    finally:
        await pool.close()
    return {"tickets": n, "plan_s": round(dt, 2), "tickets_per_s": round(n / dt), "timers_planned": timers,
            "autovacuum": an.autovacuum, "analyze_runs_by_bench": an.runs}


async def bench(quick: bool, our_lag: dict | None) -> dict:
    n = 10_000 if quick else 100_000
    n_fire, rate = (3_000, 1000) if quick else (15_000, 1000)
    name, url = await create_db("peer", migrate_it=False)
    oname, ourl = await create_db("peerours")
    try:
        aps = await asyncio.get_running_loop().run_in_executor(None, _apscheduler, url, n, n_fire, rate)
        ours = await _ours(ourl, n)
    finally:
        await drop_db(name)
        await drop_db(oname)
    out = {"apscheduler": aps, "ours": ours,
           "schedule_ratio_ours_vs_aps_time": round(ours["plan_s"] / aps["schedule_s"], 3)}  # fmt: skip
    if our_lag:
        out["ours"]["lag_p50_s"] = our_lag.get("lag_p50_s")
        out["ours"]["lag_p99_s"] = our_lag.get("lag_p99_s")
    return out


if __name__ == "__main__":
    import json
    import sys

    _ = with_db
    print(json.dumps(asyncio.run(bench("--quick" in sys.argv, None)), indent=1))
