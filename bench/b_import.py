"""Benchmark: importing a 100,000-row platform export end to end (target: under 60 s), twice.

The export is an .xlsx written with xlsxwriter (constant memory) the way the platform writes
them: a merged title row, Chinese headers, dates as text without seconds and as date cells.
Most tickets are closed (created, dispatched, signed, replied, visited, closed); one in five is
still open. The import reads it with python-calamine and stores every event through
Supervisor.ingest (validation, fold, rules, timers), as `hotline-supervisor import` does; the
second import of the same file must store nothing.

    python bench/b_import.py [--rows 100000] [--digest] [--profile FILE] [--once]

`--digest` prints md5 digests of what the first import stored (events, tickets, ladders, timers,
matter keys, desk deadlines, stats rows): two versions of the code that store the same thing print
the same digests. `--profile FILE` writes a cProfile of the first import (in CPU time: the machine may be shared); `--once` skips the second.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import platform
import time
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import xlsxwriter
from common import (
    ADMIN_URL,
    CATEGORIES,
    ROOT,
    SH,
    UNITS,
    Analyzer,
    create_db,
    drop_all,
    place,
    runtime,
)  # fmt: skip

from supervisor.storage.db import create_pool

HEADERS = ["工单编号", "受理时间", "来源渠道", "诉求类型", "诉求归口", "是否紧急", "来电号码", "事发地址", "所属网格",
           "诉求内容", "承办单位", "派单时间", "签收时间", "办结时限", "回复时间", "回复内容", "回访时间", "回访结果",
           "是否解决", "结案时间"]  # fmt: skip


DIGESTS = {
    "events": "SELECT id, ticket, type, at, data::text FROM events ORDER BY id",
    "tickets": "SELECT ticket, state::text, status, unit, caller_hash, category, created_at FROM tickets"
    " ORDER BY ticket",
    "ladders": "SELECT ticket, rule, cycle, anchor_at, trigger_event, status, reason FROM ladders"
    " ORDER BY ticket, rule, cycle",
    "timers": "SELECT ticket, rule, cycle, step, rep, due_at, status, urgent FROM timers"
    " ORDER BY ticket, rule, cycle, step, rep",
    "matter_keys": "SELECT kind, key, ticket, created_at, caller_hash, address_key, summary_key"
    " FROM matter_keys ORDER BY kind, key, ticket",
    "reviews": "SELECT id, ticket, at, data::text FROM events WHERE type IN ('reviewed', 'review_decided')"
    " ORDER BY id",
    "desk_deadlines": "SELECT ticket, status, unit, signed_at, replied_at, sign_by, reply_by,"
    " commitment_due, policy FROM desk_deadlines ORDER BY ticket",
    "outbox": "SELECT ticket, rule, cycle, step, rep, role, recipient, channel, text, not_before"
    " FROM outbox ORDER BY ticket, rule, cycle, step, rep, recipient",
}


async def digests(conn) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = {}
    for name, sql in DIGESTS.items():
        h = hashlib.md5()
        rows = await conn.fetch(sql)
        for r in rows:
            h.update(repr(tuple(r.values())).encode())
        out[name] = f"{len(rows)} {h.hexdigest()}"
    return out


def write_export(path: Path, rows: int) -> None:
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("工单列表")
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws.write(0, 0, "某某街道12345热线工单明细")
    ws.write_row(1, 0, HEADERS)
    start = datetime(2026, 9, 1, 8)
    for i in range(rows):
        r = i + 2
        at = start + timedelta(seconds=70 * i)
        u = i % len(UNITS)
        open_ = i % 5 == 0
        p = place(i)
        ws.write_row(r, 0, [f"2026{i:08d}", at.strftime("%Y-%m-%d %H:%M"), "电话", "投诉" if i % 10 else "求助",
                            CATEGORIES[u], "否", f"139{(i * 7919) % 100_000_000:08d}", p["address"],
                            p["grid"], p["summary"], UNITS[u]])  # fmt: skip
        ws.write_datetime(r, 11, at + timedelta(minutes=5), date_fmt)
        ws.write_string(r, 12, (at + timedelta(minutes=40)).strftime("%Y/%m/%d %H:%M"))
        ws.write_datetime(r, 13, at + timedelta(days=7), date_fmt)
        if not open_:
            ws.write_string(r, 14, (at + timedelta(days=1)).strftime("%Y-%m-%d %H:%M"))
            ws.write_string(r, 15, "已处理")
            ws.write_datetime(r, 16, at + timedelta(days=2), date_fmt)
            ws.write_string(r, 17, "满意" if i % 9 else "不满意")
            ws.write_string(r, 18, "是" if i % 9 else "否")
            ws.write_datetime(r, 19, at + timedelta(days=3), date_fmt)
    wb.close()


async def main(rows: int, digest: bool = False, profile: str | None = None, once: bool = False) -> None:
    from supervisor.application import Supervisor
    from supervisor.core.clock import VirtualClock
    from supervisor.imports.command import import_file
    from supervisor.imports.mapping import load_mapping
    from supervisor.storage.pg import PgStore

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; PostgreSQL at {ADMIN_URL}"
    )
    mapping = load_mapping(ROOT / "config" / "import.yaml")
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.xlsx"
        t0 = time.perf_counter()
        write_export(path, rows)
        print(
            f"export: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB written in {time.perf_counter() - t0:.1f} s"
        )
        _, url = await create_db("import")
        pool = await create_pool(url, max_size=4)
        try:
            sup = Supervisor(
                PgStore(pool), runtime(), VirtualClock(datetime(2026, 12, 1, 9, tzinfo=SH))
            )
            import psutil

            async with pool.acquire() as c1, pool.acquire() as c2, pool.acquire() as c3, pool.acquire() as c4:
                backends = [psutil.Process(c.get_server_pid()) for c in (c1, c2, c3, c4)]  # fmt: skip

            def pg_cpu() -> dict[int, float]:  # the pool's backends: what the import costs PostgreSQL
                out = {}
                for p in backends:
                    try:
                        out[p.pid] = sum(p.cpu_times()[:2])
                    except psutil.Error:  # the pool closed an idle connection (it had no work)
                        pass
                return out

            async with Analyzer(url):
                for attempt in (1,) if once else (1, 2):
                    prof = cProfile.Profile(time.process_time) if profile and attempt == 1 else None
                    t0, c0, p0 = time.perf_counter(), time.process_time(), pg_cpu()
                    if prof:
                        prof.enable()
                    s = await import_file(sup, path, mapping)
                    if prof:
                        prof.disable()
                        prof.dump_stats(profile)
                    took = time.perf_counter() - t0
                    p1 = pg_cpu()
                    cpu, pg = time.process_time() - c0, sum(v - p0.get(k, v) for k, v in p1.items())
                    print(f"import {attempt}: {took:.1f} s: rows {s.rows_read:,}, new {s.events_new:,}, known "
                          f"{s.events_known:,}, skipped {s.rows_skipped}; {s.rows_read / took:,.0f} rows/s; "
                          f"CPU: import {cpu:.1f} s + PostgreSQL {pg:.1f} s; load {os.getloadavg()[0]:.1f}")  # fmt: skip
            async with pool.acquire() as conn:
                print("events stored:", await conn.fetchval("SELECT count(*) FROM events"))
                if digest:
                    for k, v in (await digests(conn)).items():
                        print(f"md5 {k}: {v}")
        finally:
            await pool.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--digest", action="store_true", help="md5 of what the first import stored")
    ap.add_argument("--profile", help="a cProfile of the first import, written to this file")
    ap.add_argument("--once", action="store_true", help="import once (no second, re-import run)")
    args = ap.parse_args()
    try:
        asyncio.run(main(args.rows, args.digest, args.profile, args.once))
    finally:
        asyncio.run(drop_all())
