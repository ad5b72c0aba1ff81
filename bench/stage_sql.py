"""Wall time of each stage of PgStore.ingest, one batch at a time (no concurrency, so a stage's
time is its own): the SQL statements by name, the commit, and the Python between them.

    python bench/stage_sql.py [TICKETS]

A proxy around the pool's connections times every statement (by the queries.py name of its SQL)
and the transaction's commit, wall time and the PostgreSQL backend's CPU (its schedstat); the rest of Supervisor.ingest is Python (validate, fold, plan,
serialise). Prints ms per 500-event batch and µs per event.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from datetime import datetime

from common import SH, create_db, drop_db, event_stream, runtime

SPENT: dict[str, float] = defaultdict(float)
# the PostgreSQL backend's CPU per stage (/proc/PID/schedstat: nanoseconds on a CPU, exact)
PG_CPU: dict[str, float] = defaultdict(float)
# this process's CPU in each statement's call (encoding the arguments, sending, decoding the rows)
PY_CPU: dict[str, float] = defaultdict(float)


def _backend_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except OSError:  # not on Linux, or another host: no backend figures
        return 0.0


def _name(sql: str) -> str:
    from supervisor.storage import queries as q

    for name, text in vars(q).items():
        if isinstance(text, str) and text == sql:
            return name
    return sql.split()[0] + " …"


class _Tx:
    def __init__(self, tx, pid: int) -> None:
        self.tx = tx
        self.pid = pid

    async def __aenter__(self):
        t0 = time.perf_counter()
        await self.tx.__aenter__()
        SPENT["begin"] += time.perf_counter() - t0
        return self

    async def __aexit__(self, *exc):
        t0, c0 = time.perf_counter(), _backend_cpu(self.pid)
        out = await self.tx.__aexit__(*exc)
        SPENT["commit"] += time.perf_counter() - t0
        PG_CPU["commit"] += _backend_cpu(self.pid) - c0
        return out


class _Conn:
    def __init__(self, conn) -> None:
        self.conn = conn

    def transaction(self):
        return _Tx(self.conn.transaction(), self.conn.get_server_pid())

    def __getattr__(self, attr):
        real = getattr(self.conn, attr)
        if attr not in (
            "execute",
            "fetch",
            "fetchval",
            "fetchrow",
            "executemany",
            "copy_records_to_table",
        ):
            return real

        async def timed(*args, **kw):
            pid = self.conn.get_server_pid()
            t0, c0, p0 = time.perf_counter(), _backend_cpu(pid), time.process_time()
            try:
                return await real(*args, **kw)
            finally:
                key = "sql " + (_name(args[0]) if args and isinstance(args[0], str) else attr)
                SPENT[key] += time.perf_counter() - t0
                PG_CPU[key] += _backend_cpu(pid) - c0
                PY_CPU[key] += time.process_time() - p0

        return timed


class _Pool:
    def __init__(self, pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def acquire(self, *a, **kw):
        async with self.pool.acquire(*a, **kw) as conn:
            yield _Conn(conn)

    def __getattr__(self, attr):
        return getattr(self.pool, attr)


async def _explain(pool, tickets: list[str]) -> None:
    """The generic plans (what asyncpg's prepared statements settle on) of the ticket lookups."""
    from supervisor.storage import queries as q

    tickets = sorted(set(tickets))
    async with pool.acquire() as c:
        await c.execute("SET plan_cache_mode = force_generic_plan")
        for name, args in (
            ("LOAD_LADDERS", (tickets,)),
            ("SELECT_FOR_UPDATE", (tickets, [None] * len(tickets))),
            ("CANCEL_TIMERS", (tickets[:50], ["sign-off"] * 50, [1] * 50)),
        ):
            sql = getattr(q, name)
            async with c.transaction():
                plan = await c.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
            print(f"-- {name}")
            print("\n".join(r[0] for r in plan))


async def main(n_tickets: int) -> None:
    from supervisor.application import Supervisor
    from supervisor.core.clock import SystemClock
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore

    name, url = await create_db("stages")
    try:
        pool = await create_pool(url, max_size=2)
        sup = Supervisor(PgStore(_Pool(pool)), runtime(), SystemClock())  # type: ignore[arg-type]
        events = event_stream(n_tickets, datetime.now(SH).replace(microsecond=0))
        bodies = [
            json.dumps(events[i : i + 500], ensure_ascii=False).encode()
            for i in range(0, len(events), 500)
        ]
        from supervisor.server.body import decode_body

        # warm-up batches (prepared statements, caches), then ANALYZE as autovacuum would
        for body in bodies[:4]:
            await sup.ingest(decode_body(body))
        async with pool.acquire() as c:
            await c.execute("ANALYZE tickets, events, ladders, timers")
        SPENT.clear()
        PG_CPU.clear()
        PY_CPU.clear()
        t_all = time.perf_counter()
        analyzed = 0.0
        for i, body in enumerate(bodies[4:]):
            await sup.ingest(decode_body(body))
            if i % 10 == 9:  # as autovacuum would (common.Analyzer), not counted
                t0 = time.perf_counter()
                async with pool.acquire() as c:
                    await c.execute("ANALYZE tickets, events, ladders, timers")
                analyzed += time.perf_counter() - t0
        total = time.perf_counter() - t_all - analyzed
        if "--explain" in sys.argv:
            await _explain(pool, [e["ticket"] for e in events[-500:]])
        await pool.close()
    finally:
        await drop_db(name)
    n = len(events) - 4 * 500
    batches = len(bodies) - 4
    sql = sum(SPENT.values())
    SPENT["python (validate, fold, plan, serialise, asyncpg encode)"] = total - sql
    print(f"{n} events in {batches} batches, {total:.2f} s: {n / total:,.0f} events/s, one client")
    pg = sum(PG_CPU.values())
    print(f"PostgreSQL backend CPU in the statements and commits: {pg / n * 1e6:.1f} µs per event")
    print(f"this process's CPU in the statements' calls: {sum(PY_CPU.values()) / n * 1e6:.1f} µs per event")
    print("| stage | ms per batch | µs per event | share | backend CPU µs per event | our CPU µs per event |")
    print("|---|---|---|---|---|---|")
    for k, v in sorted(SPENT.items(), key=lambda kv: -kv[1]):
        cpu = f"{PG_CPU[k] / n * 1e6:.1f}" if k in PG_CPU else ""
        py = f"{PY_CPU[k] / n * 1e6:.1f}" if k in PY_CPU else ""
        print(f"| {k} | {v / batches * 1e3:.1f} | {v / n * 1e6:.1f} | {v / total:.1%} | {cpu} | {py} |")


if __name__ == "__main__":
    nums = [a for a in sys.argv[1:] if a.isdigit()]
    asyncio.run(main(int(nums[0]) if nums else 3000))
