"""Run every benchmark, print a table, write bench/results/latest.json.

    python bench/run.py [--quick] [--only ingest,ingest2,timers,rules,memory,peer] [--no-profile]

Needs the `bench` extra (apscheduler<4, sqlalchemy, psycopg2-binary, psutil) and a PostgreSQL
server at BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres). Every database
it makes is named bench_*, is its own, and is dropped at the end. Benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ADMIN_URL, create_db, drop_all  # noqa: E402


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), 0)
    import asyncpg

    async def pgv():
        c = await asyncpg.connect(ADMIN_URL)
        try:
            return await c.fetchval("SHOW server_version"), await c.fetchval("SHOW autovacuum")
        finally:
            await c.close()

    pg, autovacuum = asyncio.run(pgv())
    return {"nproc": int(subprocess.check_output(["nproc"]).strip()), "cpu": cpu, "mem_gib": round(mem / 2**20, 1),
            "postgresql": pg, "autovacuum": autovacuum, "python": platform.python_version(), "date": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip


def table(r: dict) -> list[tuple[str, str, str, str, str]]:
    rows = []

    def add(name, fig, base, ratio, target):
        rows.append((name, fig, base, ratio, target))

    for key, label in (("ingest", "1 ingest through the daemon (`run`), 4 clients x 500-event batches (events/s)"),
                       ("ingest2", "1 ... with `run --workers 2`")):
        if key in r and "error" not in r[key]:
            x = r[key]
            add(label, f"{x['events_per_s']:,} (load {x['load_avg'][0]:.1f})",
                f"{x['baseline_executemany_rows_per_s']:,} (bare executemany, mean of before/after {x['baseline_before_after']})",
                f"{x['ratio']:.3f}", f">= 0.09x (goal 0.18x): {'met' if x['met'] else 'MISSED'}")
            add(f"{label.split(' (')[0]}: p99 / p50 of a 500-event request (s)", f"{x['request_p99_s']} / {x['request_p50_s']}", "-", "-",
                f"p99 <= 0.25 s: {'met' if x['p99_met'] else 'MISSED'}")
            add(f"{label.split(' (')[0]}: nothing lost; daemon RSS start -> end (MB)",
                f"{'yes' if x['nothing_lost'] else 'NO'} ({x['stored']:,} of {x['events']:,}); {x['rss_mb_start']} -> {x['rss_mb_end']}", "-", "-", "-")
    if "timers" in r and "error" not in r["timers"]:
        x = r["timers"]
        s, c = x["steady"], x["catch_up"]
        add(f"2 timer lag p50 / p99 at {x['pending_at_start']:,} pending, {x['rate_per_s']}/s due (s)",
            f"{s['lag_p50_s']} / {s['lag_p99_s']} (to commit {s['commit_lag_p50_s']} / {s['commit_lag_p99_s']})", "-", "-",
            f"p99 <= 1 s: {'met' if s['met'] else 'MISSED'}")
        add(f"2 catch-up, {c['due']:,} due at once (timers/s handled; fired/s)", f"{c['handled_per_s']:,}; {c['fired_per_s']:,}",
            f"{c['baseline_bare_claim_rows_per_s']:,} (bare SKIP LOCKED, batches of 100)", f"{c['ratio']:.3f}",
            f">= 0.3x: {'met' if c['ratio'] >= 0.3 else 'MISSED'}")
    if "rules" in r and "error" not in r["rules"]:
        x = r["rules"]
        add("3 rule evaluations/s, Policy.matcher (memo + durable_rules, warm)", f"{x['ours_match_per_s']:,}", f"{x['bare_durable_per_s']:,} (bare assert+retract)",
            f"{x['ratio_vs_bare_durable']:.3f}", "-")
        add("3 ... memo cold (one pass over 1,800 new messages; hit rate)", f"{x['memo_cold_one_pass_per_s']:,} ({x['memo_cold_hit_rate']:.0%})",
            f"{x['bare_durable_per_s']:,}", f"{x['memo_cold_one_pass_per_s'] / x['bare_durable_per_s']:.3f}", "-")
        add("3 ... DurableMatcher without the memo", f"{x['durable_without_memo_per_s']:,}", f"{x['bare_durable_per_s']:,}",
            f"{x['durable_without_memo_per_s'] / x['bare_durable_per_s']:.3f}", "-")
        add("3 rule evaluations/s, PythonMatcher", f"{x['python_matcher_per_s']:,}", f"{x['bare_durable_per_s']:,} (bare assert+retract)",
            f"{x['ratio_python_vs_bare_durable']:.3f}", "-")
        add("3 planner.plan calls/s (a ticket after each event)", f"{x['plan_calls_per_s']:,}", "-", "-", "-")
    if "memory" in r and "error" not in r["memory"]:
        x = r["memory"]
        for ph in ("steady", "reload", "report"):
            p = x[ph]
            note = ""
            if ph == "reload":
                note = f" ({p['tickets_replanned']:,} replanned at {p['replan_tickets_per_s']:,}/s{'' if p['complete'] else ', not finished'})"
            if p.get("stopped_at_rss_cap"):
                note += " (stopped at the 4 GiB cap)"
            add(f"4 daemon peak RSS, {x['open_tickets']:,} open tickets, {ph} (MB)", f"{p['vm_hwm_mb']:,}{note}", "-", "-",
                f"<= 500 MB: {'met' if p['vm_hwm_mb'] <= 500 else 'MISSED'}")
    if "peer" in r and "error" not in r["peer"]:
        x = r["peer"]
        a, o = x["apscheduler"], x["ours"]
        add(f"5 time to schedule {a['scheduled']:,} deadlines (s)", f"{o['plan_s']} (ours: ingest + plan, {o['timers_planned']:,} timers)",
            f"{a['schedule_s']} (APScheduler SQLAlchemyJobStore)", f"{o['plan_s'] / a['schedule_s']:.3f} (time)", "-")
        add(f"5 firing lag p50 / p99 (s), {a['fire_jobs']:,} jobs at {a['fire_rate_per_s']}/s", f"{o.get('lag_p50_s')} / {o.get('lag_p99_s')} (ours)",
            f"{a['lag_p50_s']} / {a['lag_p99_s']} (APScheduler, {a['fired']:,} fired)", "-", "-")
    return rows


def print_table(rows) -> str:
    head = ("benchmark", "ours", "baseline", "ratio", "target")
    md = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(md)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about 3 minutes)")
    ap.add_argument("--only", default="ingest,ingest2,timers,rules,memory,peer")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--tickets", type=int, help="open tickets / pending timers in the big database (default 1,000,000; --quick 100,000)")
    a = ap.parse_args()
    # a SIGTERM still drops the bench databases (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = set(a.only.split(","))
    quick = a.quick
    big_n = a.tickets or (100_000 if quick else 1_000_000)
    prof_dir = HERE / "results"
    prof_dir.mkdir(exist_ok=True)
    results: dict = {"machine": machine(), "mode": "quick" if quick else "full"}
    t_all = time.perf_counter()

    def section(name, fn):
        if name not in only:
            return
        t0 = time.perf_counter()
        print(f"== {name} ...", flush=True)
        try:
            results[name] = fn()
        except Exception as exc:
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
        print(f"   {name}: {time.perf_counter() - t0:.1f} s", flush=True)

    try:
        import b_daemon
        import b_peer
        import b_rules

        section("ingest", lambda: asyncio.run(b_daemon.bench(quick, 1, None if a.no_profile else str(prof_dir / "ingest_pyspy.txt"))))
        section("ingest2", lambda: asyncio.run(b_daemon.bench(quick, 2)))
        section("rules", lambda: b_rules.bench(quick))
        big = None
        if only & {"timers", "memory"}:
            import b_data

            async def mk():
                name, url = await create_db("big")
                info = await b_data.load_big(url, big_n)
                return name, url, info

            t0 = time.perf_counter()
            print(f"== loading {big_n:,} open tickets (COPY) ...", flush=True)
            big = asyncio.run(mk())
            results["big_database"] = big[2]
            print(f"   loaded in {time.perf_counter() - t0:.1f} s: {big[2]}", flush=True)
        if big is not None:
            import b_memory
            import b_timers

            section("timers", lambda: asyncio.run(b_timers.bench(big[1], quick, not a.no_profile)))
            section("memory", lambda: b_memory.bench(big[1], quick, big_n))
        section("peer", lambda: asyncio.run(b_peer.bench(quick, (results.get("timers") or {}).get("steady"))))
    finally:
        asyncio.run(drop_all())
    results["total_s"] = round(time.perf_counter() - t_all, 1)
    md = print_table(table(results))
    results["table_markdown"] = md
    out = HERE / "results" / "latest.json"
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    print()
    print(md)
    print(f"\nwritten {out} in {results['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
