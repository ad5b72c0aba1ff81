"""Benchmark: one month's statistics report over 1,000,000 tickets (target: under 10 s).

All N tickets are created in the reported month (the hardest case: every aggregate of the month
runs over all of them); the previous month and the 12-month trend are computed too. Rows are
generated in SQL (generate_series) straight into `events` and the stats_* fact tables, as the
refresh would have left them, and the facts are marked up to date; then `stats.command.build`
(refresh: nothing to do; the report) is timed, then the xlsx rendering.

Second figure: the refresh itself (deriving facts from events through the real deadline rules),
on a smaller number of tickets with full histories, in tickets/s: what a first backfill costs.

    python bench/b_report.py [--tickets 1000000] [--refresh-tickets 20000] [--keep] [--db NAME]
                             [--reports 2] [--out PREFIX]

--keep keeps the report's database (its name is printed); --db NAME times the report on such a
kept database without building it again (applying this tree's migrations first, timed);
--refresh-tickets 0 skips the refresh figure; --reports N times N reports; --out PREFIX writes the
last report as PREFIX.json and PREFIX.csv (to compare two trees' output with cmp).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from datetime import datetime
from pathlib import Path

from common import ADMIN_URL, CREATED_DBS, SH, create_db, drop_all, event_stream, runtime, with_db

from supervisor.storage.db import create_pool

MONTH_START = datetime(2026, 11, 1, tzinfo=SH)
NOW = datetime(2026, 12, 15, 10, tzinfo=SH)

FILL = [
    # created events: category, channel, kind, grid spread over the month
    """INSERT INTO events (id, ticket, type, at, data, received_at)
       SELECT 'c' || i, 'R' || i, 'created', $1::timestamptz + (i % 2592000) * interval '1 second',
              jsonb_build_object('category', (ARRAY['市容环境','市场监管','住房保障','环境污染','公共卫生','物业管理'])[1 + i % 6],
                                 'channel', CASE WHEN i % 50 = 1 THEN 'visit' WHEN i % 50 = 26 THEN 'grid'
                                                 ELSE (ARRAY['phone','wechat','web','provincial','app','sms'])[1 + i % 6] END,
                                 'kind', CASE WHEN i % 10 = 0 THEN 'help' ELSE 'complaint' END, 'grid', 'G' || (i % 40)),
              now() - interval '1 hour'
       FROM generate_series(1, $2) i""",
    """INSERT INTO events (id, ticket, type, at, data, received_at)
       SELECT 'r' || i, 'R' || i, 'returned', $1::timestamptz + (i % 2592000) * interval '1 second' + interval '30 minutes',
              jsonb_build_object('unit', 'U' || (i % 60), 'reason', '非本单位职责'), now() - interval '1 hour'
       FROM generate_series(1, $2) i WHERE i % 33 = 0""",
    """INSERT INTO events (id, ticket, type, at, data, received_at)
       SELECT 'o' || i, 'R' || i, 'reopened', $1::timestamptz + (i % 2592000) * interval '1 second' + interval '3 days', '{}'::jsonb,
              now() - interval '1 hour'
       FROM generate_series(1, $2) i WHERE i % 20 = 0""",
    # replies (answered with text, as the handlings below), some sent back by the review and
    # replied again; the staff passed a few of those; some tickets closed
    """INSERT INTO events (id, ticket, type, at, data, received_at)
       SELECT 'p' || i, 'R' || i, 'replied', $1::timestamptz + (i % 2592000) * interval '1 second' + (i % 7) * interval '1 day',
              jsonb_build_object('unit', 'U' || (i % 60), 'result', '已处理', 'text', '经核实，已处理完毕。'), now() - interval '1 hour'
       FROM generate_series(1, $2) i WHERE i % 30 <> 0""",
    """INSERT INTO events (id, ticket, type, at, data, received_at)
       SELECT 'w' || i, 'R' || i, 'reviewed', $1::timestamptz + (i % 2592000) * interval '1 second' + (i % 7) * interval '1 day' + interval '1 hour',
              jsonb_build_object('of', 'p' || i, 'outcome', CASE WHEN i % 40 = 1 THEN 'returned' ELSE 'passed' END,
                                 'findings', CASE WHEN i % 40 = 1 THEN jsonb_build_array('缺少处理结果：未写明结果', '答非所问：未回应诉求') ELSE '[]'::jsonb END),
              now() - interval '1 hour'
       FROM generate_series(1, $2) i WHERE i % 30 <> 0 AND i % 4 = 1""",
    """INSERT INTO events (id, ticket, type, at, data, received_at)
       SELECT 'd' || i, 'R' || i, 'review_decided', $1::timestamptz + (i % 2592000) * interval '1 second' + (i % 7) * interval '1 day' + interval '2 hours',
              jsonb_build_object('of', 'p' || i, 'decision', 'pass'), now() - interval '1 hour'
       FROM generate_series(1, $2) i WHERE i % 30 <> 0 AND i % 120 = 1""",
    """INSERT INTO events (id, ticket, type, at, data, received_at)
       SELECT 'q' || i, 'R' || i, 'replied', $1::timestamptz + (i % 2592000) * interval '1 second' + (i % 7) * interval '1 day' + interval '5 hours',
              jsonb_build_object('unit', 'U' || (i % 60), 'result', '已处理', 'text', '经核实，已处理完毕，补充说明。'), now() - interval '1 hour'
       FROM generate_series(1, $2) i WHERE i % 30 <> 0 AND i % 40 = 1""",
    """INSERT INTO events (id, ticket, type, at, data, received_at)
       SELECT 'x' || i, 'R' || i, 'closed', $1::timestamptz + (i % 2592000) * interval '1 second' + interval '8 days', '{}'::jsonb,
              now() - interval '1 hour'
       FROM generate_series(1, $2) i WHERE i % 3 = 1""",
    # the matcher's grid keys (one ticket in 100: a grid with a summary), 30 different summaries
    """INSERT INTO matter_keys (kind, key, ticket, created_at, summary_key)
       SELECT 'grid', 'G' || ((i / 100) % 40), 'R' || i, $1::timestamptz + (i % 2592000) * interval '1 second',
              substr(md5(((i / 100) % 30)::text), 1, 12)
       FROM generate_series(1, $2) i WHERE i % 100 = 0""",
    """INSERT INTO stats_tickets (ticket, created_at, unit, category, caller_hash, address_key, dispute_at, handled3_at, overdue_due)
       SELECT 'R' || i, $1::timestamptz + (i % 2592000) * interval '1 second', 'U' || (i % 60),
              (ARRAY['市容环境','市场监管','住房保障','环境污染','公共卫生','物业管理'])[1 + i % 6],
              CASE WHEN i % 5 = 0 THEN 'h' || (i % 40000) END, CASE WHEN i % 7 = 0 THEN '幸福路' || (i % 30000) || '号' END,
              CASE WHEN i % 100 = 0 THEN $1::timestamptz + (i % 2592000) * interval '1 second' + interval '1 hour' END,
              CASE WHEN i % 200 = 0 THEN $1::timestamptz + (i % 2592000) * interval '1 second' + interval '6 days' END,
              CASE WHEN i % 50 = 0 THEN $1::timestamptz + (i % 2592000) * interval '1 second' + interval '5 days' END
       FROM generate_series(1, $2) i""",
    """INSERT INTO stats_dispatches (ticket, n, at, unit, sign_due, signed_at)
       SELECT 'R' || i, 1, $1::timestamptz + (i % 2592000) * interval '1 second' + interval '10 minutes', 'U' || (i % 60),
              $1::timestamptz + (i % 2592000) * interval '1 second' + interval '130 minutes',
              CASE WHEN i % 25 <> 0 THEN $1::timestamptz + (i % 2592000) * interval '1 second' + (i % 180) * interval '1 minute' END
       FROM generate_series(1, $2) i""",
    """INSERT INTO stats_handlings (ticket, n, unit, reply_due, replied_at, reply_unit)
       SELECT 'R' || i, 0, 'U' || (i % 60), $1::timestamptz + (i % 2592000) * interval '1 second' + interval '5 days',
              CASE WHEN i % 30 <> 0 THEN $1::timestamptz + (i % 2592000) * interval '1 second' + (i % 7) * interval '1 day' END,
              'U' || (i % 60)
       FROM generate_series(1, $2) i""",
    """INSERT INTO stats_callbacks (event_id, ticket, at, unit, satisfaction, resolved)
       SELECT 'v' || i, 'R' || i, $1::timestamptz + (i % 2592000) * interval '1 second' + (1 + i % 7) * interval '1 day', 'U' || (i % 60),
              (ARRAY['satisfied','satisfied','satisfied','basically_satisfied','dissatisfied'])[1 + i % 5], i % 6 <> 0
       FROM generate_series(1, $2) i WHERE i % 10 < 7""",
    """INSERT INTO stats_commitments (ticket, n, made_at, unit, due, kept_at, ended_at)
       SELECT 'R' || i, 1, $1::timestamptz + (i % 2592000) * interval '1 second' + interval '1 day', 'U' || (i % 60),
              $1::timestamptz + (i % 2592000) * interval '1 second' + interval '10 days',
              CASE WHEN i % 3 <> 0 THEN $1::timestamptz + (i % 2592000) * interval '1 second' + interval '8 days' END, NULL
       FROM generate_series(1, $2) i WHERE i % 20 = 0""",
    """INSERT INTO tickets (ticket, state, status, unit, created_at)
       SELECT 'R' || i, '{}'::jsonb, 'signed', 'U' || (i % 60), $1::timestamptz + (i % 2592000) * interval '1 second'
       FROM generate_series(1, $2) i WHERE i % 10 = 0""",
    """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, channel, text, not_before, created_at, status)
       SELECT 'R' || i, 'sign-off', 0, s, (ARRAY['liaison','head','supervisor'])[1 + s], 'p', 'sms', '提醒',
              $1::timestamptz + (i % 2592000) * interval '1 second' + (s + 2) * interval '1 hour',
              $1::timestamptz + (i % 2592000) * interval '1 second' + (s + 2) * interval '1 hour', 'sent'
       FROM generate_series(1, $2) i, generate_series(0, 2) s WHERE i % 10 = 0""",
    """INSERT INTO acks (ticket, rule, cycle, by_whom, via, at)
       SELECT 'R' || i, 'sign-off', 0, 'zhang-min', 'sms', $1::timestamptz + (i % 2592000) * interval '1 second' + interval '4 hours' + (i % 90) * interval '1 minute'
       FROM generate_series(1, $2) i WHERE i % 20 = 0""",
]


async def main(
    tickets: int,
    refresh_tickets: int,
    keep: bool = False,
    db: str | None = None,
    reports: int = 2,
    out: str | None = None,
) -> None:
    from supervisor.stats.command import build, render
    from supervisor.stats.monthly import month
    from supervisor.stats.refresh import refresh

    rt = runtime()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; PostgreSQL at {ADMIN_URL}"
    )
    if db:
        name, url = db, with_db(ADMIN_URL, db)
    else:
        name, url = await create_db("report")
        if keep:
            CREATED_DBS.remove(name)  # not dropped at the end
            print(f"keeping database {name}")
    pool = await create_pool(url, max_size=4)
    try:
        t0 = time.perf_counter()
        async with pool.acquire() as conn:
            if db:  # a kept database: the migrations of this tree (indexes added since it was built)
                from supervisor.storage.db import migrate

                t1 = time.perf_counter()
                print(f"migrations applied: {await migrate(conn)} in {time.perf_counter() - t1:.2f} s")
                await conn.execute("ANALYZE")
            for sql in [] if db else FILL:
                await conn.execute(sql, MONTH_START, tickets)
            if not db:
                await conn.execute(
                    "INSERT INTO stats_refresh (id, last_seq, policy) VALUES (1, (SELECT max(seq) FROM events), $1)",
                    rt.policy.fingerprint,
                )
                await conn.execute("ANALYZE")
            counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in
                      ("events", "stats_tickets", "stats_dispatches", "stats_handlings", "stats_callbacks", "outbox", "matter_keys")}  # fmt: skip
        print(f"data ({name}): {tickets if not db else counts['stats_tickets']:,} tickets in {time.perf_counter() - t0:.1f} s: {counts}")
        period = month(MONTH_START.date())
        for attempt in range(1, reports + 1):
            t0 = time.perf_counter()
            report = await build(pool, rt.policy, period, NOW)
            took = time.perf_counter() - t0
            print(
                f"report {attempt}: {took:.2f} s (received {report['received']['total']:,}, closed {report['closed']:,}, units {len(report['units'])})"
            )
        if out:
            for fmt in ("json", "csv"):
                await asyncio.to_thread(Path(f"{out}.{fmt}").write_bytes, render(report, fmt))
            print(f"wrote {out}.json and {out}.csv")
        t0 = time.perf_counter()
        data = render(report, "xlsx")
        print(f"xlsx rendering: {time.perf_counter() - t0:.2f} s, {len(data):,} bytes")
    finally:
        await pool.close()

    if not refresh_tickets:
        return
    # the refresh: facts derived from full event histories through the deadline rules
    from supervisor.application import validate_batch

    _, url = await create_db("refresh")
    pool = await create_pool(url, max_size=4)
    try:
        events = validate_batch(event_stream(refresh_tickets, MONTH_START), rt.caller_key)
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO events (id, ticket, type, at, data) VALUES ($1, $2, $3, $4, $5)",
                [(e.id, e.ticket, e.type, e.at, e.data) for e in events],
            )
        t0 = time.perf_counter()
        n = await refresh(pool, rt.policy)
        took = time.perf_counter() - t0
        print(
            f"refresh: {n:,} tickets ({len(events):,} events) in {took:.2f} s = {n / took:,.0f} tickets/s"
        )
    finally:
        await pool.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--refresh-tickets", type=int, default=20_000)
    ap.add_argument("--keep", action="store_true", help="keep the report's database (prints its name)")
    ap.add_argument("--db", help="time the report on a database kept by an earlier --keep run")
    ap.add_argument("--reports", type=int, default=2, help="how many reports to time")
    ap.add_argument("--out", help="write the last report as OUT.json and OUT.csv")
    args = ap.parse_args()
    try:
        asyncio.run(main(args.tickets, args.refresh_tickets, args.keep, args.db, args.reports, args.out))
    finally:
        asyncio.run(drop_all())
