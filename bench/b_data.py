"""The big database shared by the timer and memory benchmarks, bulk-loaded with COPY.

N open tickets, each patterned on one ticket planned by the real core (created, dispatched,
signed: status 'signed', its reply-deadline ladder active): tickets (real state JSON), 3 events,
1 ladder and ONE pending timer each (a step of its ladder, due 1-30 days ahead: the earlier steps
count as already handled and are not loaded), so N tickets = N pending timers.
Extra tickets (window / catch-up) are added later by `add_tickets`.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from datetime import datetime, timedelta

import asyncpg
from common import copy_rows, now_utc, template_ticket

_TPL: dict | None = None


def tpl() -> dict:
    global _TPL
    if _TPL is None:
        t = template_ticket("signed")
        p = t["plan"]
        lad = p.opened[0]
        _TPL = {
            "state": p.state.to_json(),
            "events": [(e.type, e.at, {k: v for k, v in e.data.items()}) for e in t["events"]],
            "rule": lad.rule,
            "steps": sorted({x.step for x in p.timers}),
            "anchor": lad.anchor_at,
            "unit": p.state.unit,
            "category": p.state.category,
            "caller_hash": p.state.caller_hash,
            "created_at": p.state.created_at,
        }
    return _TPL


def _caller(ticket: str) -> str:
    """A caller hash per ticket; one ticket in 50 shares its caller with the next (repeat callers)."""
    k = int(ticket[1:])
    return hashlib.sha256(f"{ticket[0]}{k - k % 2 if k % 50 < 2 else k}".encode()).hexdigest()


def _state_text(ticket: str) -> str:
    st = dict(tpl()["state"])
    st["ticket"] = ticket
    st["caller_hash"] = _caller(ticket)
    return json.dumps(st, ensure_ascii=False)


async def add_tickets(conn: asyncpg.Connection, tickets: list[str], *, rule: str | None = None,
                      timers: list[tuple[str, int, datetime]] | None = None, with_events: bool = True) -> None:
    """Tickets (state, events, one active ladder of `rule`) and the given timers
    (ticket, step, due_at) of that ladder, cycle 1."""
    T = tpl()
    rule = rule or T["rule"]
    state = dict(T["state"])
    await copy_rows(conn, "tickets", ["ticket", "state", "status", "unit", "caller_hash", "category", "created_at"],
                    ((t, _state_text(t), state["status"], T["unit"], _caller(t), T["category"], T["created_at"]) for t in tickets))
    if with_events:
        await copy_rows(conn, "events", ["id", "ticket", "type", "at", "data"],
                        ((f"{t}-{k + 1}", t, typ, at, json.dumps({**data, "caller_hash": _caller(t)} if "caller_hash" in data else data, ensure_ascii=False)) for t in tickets for k, (typ, at, data) in enumerate(T["events"])))
    await copy_rows(conn, "ladders", ["ticket", "rule", "cycle", "anchor_at", "status"],
                    ((t, rule, 1, T["anchor"], "active") for t in tickets))
    if timers:
        await copy_rows(conn, "timers", ["ticket", "rule", "cycle", "step", "rep", "due_at"],
                        ((t, rule, 1, step, 0, due) for t, step, due in timers))


async def load_big(url: str, n: int) -> dict:
    """n open tickets + 3n events + n ladders + n pending timers, due 1-30 days ahead."""
    rnd = random.Random(1)
    t0 = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        # drop the secondary indexes while loading; build them after (as a restore would)
        await conn.execute("DROP INDEX IF EXISTS events_ticket; DROP INDEX IF EXISTS tickets_caller; DROP INDEX IF EXISTS tickets_open;")
        base = now_utc() + timedelta(days=1)
        steps = tpl()["steps"]
        chunk = 100_000
        for lo in range(0, n, chunk):
            ids = [f"M{i:08d}" for i in range(lo, min(n, lo + chunk))]
            await add_tickets(conn, ids, timers=[(t, steps[k % len(steps)], base + timedelta(seconds=rnd.uniform(0, 29 * 86400))) for k, t in enumerate(ids)])
        await conn.execute("""
            CREATE INDEX IF NOT EXISTS events_ticket ON events (ticket, at, seq);
            CREATE INDEX IF NOT EXISTS tickets_caller ON tickets (caller_hash, category, created_at) WHERE caller_hash IS NOT NULL;
            CREATE INDEX IF NOT EXISTS tickets_open ON tickets (status) WHERE status <> 'closed';
        """)
        await conn.execute("VACUUM ANALYZE")
        sizes = {r["t"]: r["n"] for r in await conn.fetch(
            "SELECT relname AS t, n_live_tup AS n FROM pg_stat_user_tables WHERE relname IN ('tickets','events','ladders','timers')")}  # fmt: skip
        db_size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await conn.close()
    return {"tickets": n, "rows": sizes, "db_size": db_size, "load_s": round(time.perf_counter() - t0, 1)}
