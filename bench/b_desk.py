"""The desk with 1,000,000 tickets: latency of the overview and of the list's first page.

The database is built in SQL (generate_series, one INSERT ... SELECT per table, then ANALYZE):
N tickets over the past 3 years, most closed; OPEN_SHARE of them still being handled (awaiting
sign-off, handling, re-handled). One ticket in four was replied with text and the reply reviewed;
one review in ten sent it back, and all but the last 60 of those were decided (待审核 holds 60). desk_deadlines holds the open tickets and last week's closures,
as the desk's index keeps it. One ladder and two messages (liaison, head; some failed) per open
ticket.
Then the desk's own aiohttp app (setup_desk, no daemon loops) serves real HTTP on loopback and
each page is fetched REQUESTS times in a row by one client, signed in as a supervisor.

    python bench/b_desk.py [--tickets 1000000] [--requests 200] [--keep] [--db NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from types import SimpleNamespace

import aiohttp
import asyncpg
from aiohttp import web
from common import ADMIN_URL, ROOT, create_db, drop_all, now_utc, pct, runtime, with_db

from supervisor.core.clock import SystemClock
from supervisor.desk import auth
from supervisor.desk.app import fingerprint, setup_desk
from supervisor.storage.db import create_pool

OPEN_SHARE = 0.03
UNITS = [
    "城管执法中队",
    "市场监管所",
    "社区卫生服务中心",
    "物业管理办公室",
    "住房保障科",
    "生态环境所",
]
CATEGORIES = ["市容环境", "市场管理", "公共卫生", "物业管理", "住房保障", "环境污染"]

BUILD = [
    # tickets: id T0000001..; created over 3 years back from now, newest = highest id
    """
INSERT INTO tickets (ticket, state, status, unit, caller_hash, category, created_at, updated_at)
SELECT 'T' || lpad(i::text, 7, '0'),
       jsonb_build_object('ticket', 'T' || lpad(i::text, 7, '0'), 'status', st, 'urgent', (i % 17 = 0),
         'kind', 'complaint', 'address', '幸福路' || (i % 997) || '号', 'caller_masked', '138****' || lpad((i % 10000)::text, 4, '0'),
         'summary', '占道经营', 'event_count', 3, 'category', cat, 'unit', u, 'grid', 'G' || (i % 40), 'channel', 'phone',
         'created_at', to_char(c AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS+08:00'),
         'signed_at', CASE WHEN st <> 'dispatched' THEN to_char((c + interval '1 hour') AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS+08:00') END,
         'replied_at', CASE WHEN st = 'closed' THEN to_char((c + interval '3 days') AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS+08:00') END),
       st, u, md5(i::text), cat, c, c + interval '4 days'
FROM (SELECT i, $1::timestamptz - (($2 - i) * (interval '3 years' / $2)) AS c,
             ($3::text[])[1 + i % 6] AS u, ($4::text[])[1 + (i / 7) % 6] AS cat,
             CASE WHEN i > $2 * (1 - $5::float8)
                  THEN (ARRAY['dispatched', 'signed', 'signed', 'reopened', 'replied'])[1 + i % 5]
                  ELSE 'closed' END AS st
      FROM generate_series(1, $2) AS i) AS g
""",
    """
INSERT INTO desk_deadlines (ticket, status, unit, signed_at, replied_at, sign_by, reply_by,
                            commitment_due, src_updated_at, policy)
SELECT ticket, status, unit, (state->>'signed_at')::timestamptz, (state->>'replied_at')::timestamptz,
       created_at + interval '2 hours', created_at + interval '7 days', NULL, updated_at, 'bench'
FROM tickets WHERE status <> 'closed' OR updated_at > now() - interval '8 days'  -- as the index keeps it
""",
    """
INSERT INTO ladders (ticket, rule, cycle, anchor_at, status)
SELECT ticket, CASE WHEN status = 'dispatched' THEN 'sign-off' ELSE 'reply-deadline' END, 1,
       created_at + interval '7 days', CASE WHEN (hashtext(ticket) & 3) = 0 THEN 'acked' ELSE 'active' END
FROM tickets WHERE status <> 'closed'
""",
    """
INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, channel, text, not_before, created_at, status, attempts)
SELECT l.ticket, l.rule, 1, s.step, s.role, s.role || '-1', 'sms', '【12345催办】工单' || l.ticket || '请按时办理。',
       l.anchor_at, l.anchor_at - interval '1 day' + s.step * interval '1 hour',
       CASE WHEN (hashtext(l.ticket) % 50) = 0 THEN 'failed' ELSE 'sent' END, 1 + (hashtext(l.ticket) & 1)
FROM ladders l CROSS JOIN (VALUES (0, 'liaison'), (1, 'head')) AS s(step, role)
""",
    # 答复审核: one ticket in four replied with text and reviewed; one review in ten sent the reply
    # back, and the staff decided all of those but the last 60 (the 待审核 queue)
    """
INSERT INTO events (id, ticket, type, at, data)
SELECT 'p-' || ticket, ticket, 'replied', created_at + interval '2 days',
       jsonb_build_object('unit', unit, 'result', '已处理', 'text', '经核实，已安排人员处理，群众表示满意。')
FROM tickets WHERE hashtext(ticket) & 3 = 0
""",
    """
INSERT INTO events (id, ticket, type, at, data)
SELECT 'v-' || ticket, ticket, 'reviewed', at + interval '1 minute',
       jsonb_build_object('of', id, 'outcome', CASE WHEN hashtext(ticket) & 63 < 6 THEN 'returned' ELSE 'passed' END,
                          'findings', CASE WHEN hashtext(ticket) & 63 < 6 THEN jsonb_build_array('缺少处理结果：未写明结果') ELSE '[]'::jsonb END,
                          'checks', CASE WHEN hashtext(ticket) & 63 < 6 THEN jsonb_build_array('result') ELSE '[]'::jsonb END)
FROM events WHERE type = 'replied'
""",
    """
INSERT INTO events (id, ticket, type, at, data)
SELECT 'd-' || ticket, ticket, 'review_decided', at + interval '1 hour', jsonb_build_object('of', data->>'of', 'decision', 'pass')
FROM (SELECT *, row_number() OVER (ORDER BY at DESC) AS k FROM events
      WHERE type = 'reviewed' AND data->>'outcome' = 'returned') r
WHERE k > 60
""",
    # what autovacuum does on a normal server (this one runs with autovacuum off): statistics, and
    # the visibility map that index-only scans need
    "VACUUM ANALYZE tickets, desk_deadlines, ladders, outbox, timers, events",
]

PAGES = [
    ("overview", "/"),
    ("overview.json", "/overview.json"),
    ("list, first page", "/tickets"),
    ("list.json, first page", "/tickets.json"),
    ("list, overdue", "/tickets?view=overdue"),
    ("list, one unit", "/tickets?unit=市场监管所"),
    ("units", "/units"),
    ("reviews (待审核)", "/reviews"),
    ("grid view (网格)", "/grid"),
    ("grid.json", "/grid.json"),
]


async def build(url: str, n: int) -> float:
    t0 = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(BUILD[0], now_utc(), n, UNITS, CATEGORIES, OPEN_SHARE)
        for sql in BUILD[1:]:
            await conn.execute(sql)
    finally:
        await conn.close()
    return time.perf_counter() - t0


async def measure(url: str, requests: int) -> dict:
    pool = await create_pool(url, max_size=4)
    host = SimpleNamespace(
        pool=pool,
        supervisor=SimpleNamespace(runtime=runtime(), clock=SystemClock()),
        loaded=SimpleNamespace(config_dir=ROOT / "config", warnings=[]),
    )
    app = web.Application()
    desk = setup_desk(app, host, env={auth.KEY_ENV: "bench-key"}, run_index=False)  # type: ignore[arg-type]
    desk.add_ephemeral_user("bench", "supervisor", "bench-password")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    user, pw_hash = desk.users()["bench"]  # a session in the store, as a sign-in makes one
    sid, _ = await desk.sessions.create("bench", fingerprint(user, pw_hash), "127.0.0.1")
    out: dict = {}
    try:
        async with aiohttp.ClientSession(cookies={auth.COOKIE: sid}) as http:
            for name, path in PAGES:
                url_ = f"http://127.0.0.1:{port}{path}"
                for _ in range(5):  # warm: prepared statements, caches
                    async with http.get(url_) as r:
                        assert r.status == 200, (path, r.status, await r.text())
                        await r.read()
                times = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    async with http.get(url_) as r:
                        await r.read()
                    times.append((time.perf_counter() - t0) * 1000)
                out[name] = {"p50_ms": round(pct(times, 50), 1), "p95_ms": round(pct(times, 95), 1),
                             "p99_ms": round(pct(times, 99), 1), "max_ms": round(max(times), 1)}  # fmt: skip
                print(f"{name:24} p50 {out[name]['p50_ms']:7.1f} ms  p95 {out[name]['p95_ms']:7.1f} ms"
                      f"  p99 {out[name]['p99_ms']:7.1f} ms", flush=True)  # fmt: skip
    finally:
        await runner.cleanup()
        await pool.close()
    return out


async def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    parser.add_argument("--db", help="measure a database kept by an earlier --keep run (no build; migrated)")
    args = parser.parse_args()
    if args.db:
        name, url, args.keep = args.db, with_db(ADMIN_URL, args.db), True
    else:
        name, url = await create_db("desk")
    try:
        secs = 0.0 if args.db else await build(url, args.tickets)
        conn = await asyncpg.connect(url)
        if args.db:  # a kept database: the migrations of this tree (indexes added since it was built)
            from supervisor.storage.db import migrate

            print(f"migrations applied: {await migrate(conn)}", flush=True)
            await conn.execute("ANALYZE events")
        counts = {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("tickets", "ladders", "outbox", "events")
        }
        open_n = await conn.fetchval("SELECT count(*) FROM tickets WHERE status <> 'closed'")
        await conn.close()
        print(f"built in {secs:.0f} s: {counts}, open tickets {open_n}", flush=True)
        load_before = os.getloadavg()
        result = await measure(url, args.requests)
        load_after = os.getloadavg()
        print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}", flush=True)
        report = {"tickets": args.tickets, "open": open_n, "rows": counts, "build_s": round(secs, 1),
                  "requests_per_page": args.requests, "pages": result,
                  "loadavg_before": load_before, "loadavg_after": load_after,
                  "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()}}  # fmt: skip
        return report
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            await drop_all()


if __name__ == "__main__":
    figures = asyncio.run(main())
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "desk.json").write_text(
        json.dumps(figures, ensure_ascii=False, indent=1)
    )
