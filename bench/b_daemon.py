"""1. Ingest through the real daemon: `hotline-supervisor run` (HTTP API, scheduler, dispatcher,
reports, watcher, heartbeat) as a subprocess, 4 clients posting 500-event batches of realistic
ticket lives; beside asyncpg executemany of the same rows into a bare table, in the same run.

    python bench/b_daemon.py [--quick] [--workers N] [--pyspy FILE] [--tickets N] [--clients N]

Reports events/s, the ratio to executemany, p50/p99 request latency, nothing lost (every event
stored once, counted in the database), the daemon's RSS at the start and the end of the measured
run, and CPU seconds of the daemon process(es), of PostgreSQL and of the clients. With --pyspy,
py-spy samples the daemon during the measured run (collapsed stacks; see stages.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
from b_ingest import _drive
from common import ROOT, SH, Analyzer, create_db, drop_db, event_stream


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config_copy(port: int) -> Path:
    """config/ and rules/ copied, on a port of ours, with BENCH_MATCHER's matcher if set."""
    d = Path(tempfile.mkdtemp(prefix="bench_daemon_"))
    shutil.copytree(ROOT / "config", d / "config")
    shutil.copytree(ROOT / "rules", d / "rules")
    p = d / "config" / "settings.yaml"
    s = p.read_text(encoding="utf-8").replace("port: 8345", f"port: {port}")
    s = s.replace("max_body_bytes: 1048576", "max_body_bytes: 16777216")
    # the ticket lives run forward from now (past-dated events would make every timer due at
    # once): allow their later events (a ticket life is at most a few weeks)
    s = s.replace("future_tolerance_s: 300", "future_tolerance_s: 2592000")
    want = os.environ.get("BENCH_MATCHER")
    if want:
        s = s.replace("matcher: durable_rules", f"matcher: {want}")
    p.write_text(s, encoding="utf-8")
    return d


def _tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _cpu(daemon_pid: int, pg_pids: list[int]) -> dict:
    """CPU seconds so far (user + system): the daemon's process tree, the PostgreSQL backends
    serving this benchmark's database (other databases on the server are other people's), this
    process (the clients)."""
    import psutil

    def cpu(pr) -> float:
        try:
            t = pr.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    pg = {}
    for pid in pg_pids:
        try:
            pg[pid] = cpu(psutil.Process(pid))
        except psutil.Error:
            pass
    return {
        "daemon": sum(cpu(p) for p in _tree(daemon_pid)),
        "postgresql": pg,
        "clients": cpu(psutil.Process()),
    }


async def _backends(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


def _delta(a: dict, b: dict) -> dict[str, float]:
    """CPU seconds between two _cpu samples (PostgreSQL: the backends alive at both)."""
    pg = sum(
        v - a["postgresql"][pid] for pid, v in b["postgresql"].items() if pid in a["postgresql"]
    )
    return {
        "daemon": b["daemon"] - a["daemon"],
        "postgresql": pg,
        "clients": b["clients"] - a["clients"],
    }


def _rss_mb(daemon_pid: int) -> float:
    total = 0
    for p in _tree(daemon_pid):
        try:
            total += p.memory_info().rss
        except Exception:
            pass
    return round(total / 2**20, 1)


async def _baseline_cpu(url: str, events: list[dict]) -> tuple[float, float]:
    """asyncpg executemany of the same rows into a bare table, 500 per transaction (b_ingest's
    baseline), with the CPU it costs: (rows/s, CPU µs per row of PostgreSQL's backend + client)."""
    import psutil

    rows = [(e["id"], e["ticket"], e["type"], datetime.fromisoformat(e["at"]),
             json.dumps({k: v for k, v in e.items() if k not in ("id", "ticket", "type", "at")}, ensure_ascii=False)) for e in events]  # fmt: skip
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS bare_events")
        await conn.execute(
            "CREATE TABLE bare_events (id text PRIMARY KEY, ticket text, type text, at timestamptz, data jsonb)"
        )
        backend, me = psutil.Process(conn.get_server_pid()), psutil.Process()

        def cpu() -> float:
            return sum(t.user + t.system for t in (backend.cpu_times(), me.cpu_times()))

        c0, t0 = cpu(), time.perf_counter()
        for i in range(0, len(rows), 500):
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO bare_events VALUES ($1, $2, $3, $4, $5::jsonb)", rows[i : i + 500]
                )
        dt, used = time.perf_counter() - t0, cpu() - c0
    finally:
        await conn.close()
    return len(rows) / dt, used / len(rows) * 1e6


async def _wait_healthy(port: int, proc: subprocess.Popen, log: Path, limit_s: float = 60) -> None:
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s:
        while time.monotonic() - t0 < limit_s:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited {proc.returncode}: {log.read_text()[-2000:]}")  # noqa: ASYNC240
            try:
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("daemon did not become healthy")


async def bench(
    quick: bool,
    workers: int = 1,
    pyspy: str | None = None,
    n_tickets: int | None = None,
    start_at: datetime | None = None,
    clients: int = 4,
) -> dict:
    n_tickets = n_tickets or (4_000 if quick else 25_000)
    batch = 500
    # live: the first ticket opens now, so the scheduler works on what comes due during the run
    # (start=past makes every ladder due at once: a catch-up competing with the ingest)
    start = datetime.now(SH).replace(microsecond=0) if start_at is None else start_at
    events = event_stream(n_tickets, start)
    bodies = [
        json.dumps(events[i : i + batch], ensure_ascii=False).encode()
        for i in range(0, len(events), batch)
    ]
    name, url = await create_db("daemon")
    port = _free_port()
    cfg = _config_copy(port)
    log = cfg / "daemon.log"
    proc = None
    try:
        base_rate, base_cpu0 = await _baseline_cpu(url, events)
        env = {**os.environ, "DATABASE_URL": url, "HOTLINE_API_TOKENS": "bench-token", "HOTLINE_CALLER_KEY": "bench-key",
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        cmd = [sys.executable, "-m", "supervisor.cli", "--config", str(cfg / "config"), "run"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        with open(log, "w") as logf:  # noqa: ASYNC230
            proc = subprocess.Popen(cmd, env=env, cwd=cfg, stdout=subprocess.DEVNULL, stderr=logf)  # noqa: ASYNC220
        await _wait_healthy(port, proc, log)
        await asyncio.sleep(1.0 if workers > 1 else 0.2)  # every worker listening
        warm = event_stream(200, start, prefix="W")  # its own tickets, before the measured run
        await _drive(
            port, [json.dumps(warm[i : i + batch]).encode() for i in range(0, len(warm), batch)], 1
        )
        spy = None
        if pyspy:
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "-o", pyspy, "--rate", "200", "--subprocesses",  # noqa: ASYNC220
                                    "-p", str(proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            await asyncio.sleep(1.0)
        async with Analyzer(url) as an:
            rss0 = _rss_mb(proc.pid)
            pg_pids = await _backends(url)
            cpu0 = _cpu(proc.pid, pg_pids)
            dt, lat, accepted = await _drive(port, bodies, clients)
            cpu1 = _delta(cpu0, _cpu(proc.pid, pg_pids))
            rss1 = _rss_mb(proc.pid)
        # the baseline again, right after: the machine is shared, the mean of the two is the
        # same-run figure (both are recorded)
        base_after, base_cpu1 = await _baseline_cpu(url, events)
        stages = None
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            from stages import breakdown

            counts_by_stage, _, total = breakdown(pyspy)
            idle = sum(n for st, n in counts_by_stage.items() if st.startswith("threads"))
            busy = max(1, total - idle)
            stages = {
                st: round(n / busy, 3)
                for st, n in counts_by_stage.most_common()
                if not st.startswith("threads")
            }
        conn = await asyncpg.connect(url)
        try:
            counts = {
                t: await conn.fetchval(f"SELECT count(*) FROM {t}")
                for t in ("events", "ladders", "timers", "outbox")
            }
            stored = await conn.fetchval("SELECT count(*) FROM events WHERE ticket LIKE 'B%'")
        finally:
            await conn.close()
        rate = len(events) / dt
        lat.sort()
        base_before, base_rate = base_rate, (base_rate + base_after) / 2
        ratio = rate / base_rate
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return {
            "workers": workers, "events": len(events), "tickets": n_tickets, "batch": batch, "clients": clients,
            "seconds": round(dt, 2), "events_per_s": round(rate), "baseline_executemany_rows_per_s": round(base_rate),
            "baseline_before_after": [round(base_before), round(base_after)],
            # the same comparison in CPU, which the shared machine's load disturbs less
            "baseline_cpu_us_per_row": round((base_cpu0 + base_cpu1) / 2, 1),
            "cpu_ratio": round((base_cpu0 + base_cpu1) / 2 / ((cpu1["daemon"] + cpu1["postgresql"]) / len(events) * 1e6), 4),
            "ratio": round(ratio, 4), "target_ratio": 0.09, "goal_ratio": 0.18, "met": ratio >= 0.09,
            "request_p50_s": round(lat[len(lat) // 2], 3), "request_p99_s": round(p99, 3), "p99_met": p99 <= 0.25,
            "accepted": accepted, "stored": stored, "nothing_lost": accepted == stored == len(events),
            "rows": counts, "rss_mb_start": rss0, "rss_mb_end": rss1,
            "cpu_s": {k: round(v, 1) for k, v in cpu1.items()},
            "daemon_cpu_us_per_event": round(cpu1["daemon"] / len(events) * 1e6),
            "postgresql_cpu_us_per_event": round(cpu1["postgresql"] / len(events) * 1e6),
            "load_avg": os.getloadavg(), "autovacuum": an.autovacuum, "stages_share_of_daemon_samples": stages,
            "matcher": os.environ.get("BENCH_MATCHER") or "settings (durable_rules)",
        }  # fmt: skip
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        errors = (
            [
                ln
                for ln in log.read_text(errors="replace").splitlines()
                if "ERROR" in ln or "Traceback" in ln
            ][:3]
            if log.exists()
            else []
        )
        if errors:
            print("daemon log errors:", *errors, sep="\n  ", file=sys.stderr)
        shutil.rmtree(cfg, ignore_errors=True)
        await drop_db(name)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--pyspy")
    ap.add_argument("--tickets", type=int)
    ap.add_argument("--clients", type=int, default=4, help="requests in flight (the target is for 4)")
    a = ap.parse_args()
    print(
        json.dumps(
            asyncio.run(bench(a.quick, a.workers, a.pyspy, a.tickets, clients=a.clients)), indent=1, ensure_ascii=False
        )
    )
