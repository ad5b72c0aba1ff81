"""1. Ingest: events/s through POST /api/v1/events, end to end (validated, folded, rules evaluated,
timers planned, committed), beside asyncpg executemany of the same rows into a bare table."""

from __future__ import annotations

import asyncio
import json
import os
import pstats
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
from common import CREATED_DBS, SH, Analyzer, create_db, drop_db, event_stream

HERE = Path(__file__).resolve().parent


async def _baseline(url: str, events: list[dict]) -> float:
    rows = [(e["id"], e["ticket"], e["type"], datetime.fromisoformat(e["at"]),
             json.dumps({k: v for k, v in e.items() if k not in ("id", "ticket", "type", "at")}, ensure_ascii=False)) for e in events]  # fmt: skip
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS bare_events")
        await conn.execute("CREATE TABLE bare_events (id text PRIMARY KEY, ticket text, type text, at timestamptz, data jsonb)")
        t0 = time.perf_counter()
        for i in range(0, len(rows), 500):
            async with conn.transaction():
                await conn.executemany("INSERT INTO bare_events VALUES ($1, $2, $3, $4, $5::jsonb)", rows[i : i + 500])
        dt = time.perf_counter() - t0
    finally:
        await conn.close()
    return len(rows) / dt


def _cpu_s(server_pid: int) -> dict[str, float]:
    """CPU seconds so far (user + system): the server process, every PostgreSQL process, this one."""
    import psutil

    def cpu(pr) -> float:
        t = pr.cpu_times()
        return t.user + t.system

    pg = 0.0
    for pr in psutil.process_iter(["name"]):
        if (pr.info.get("name") or "").startswith("postgres"):
            try:
                pg += cpu(pr)
            except psutil.Error:
                pass
    return {"server": cpu(psutil.Process(server_pid)), "postgresql": pg, "clients": cpu(psutil.Process())}


async def _start_server(url: str, profile: str | None) -> tuple[subprocess.Popen, int]:
    cmd = [sys.executable, str(HERE / "ingest_server.py"), url, "--pool", "10"]
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220 - a server for the whole run
    line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
    if not line.startswith("PORT"):
        proc.terminate()
        raise RuntimeError(f"ingest server did not start: {line!r}")
    return proc, int(line.split()[1])


async def _drive(port: int, bodies: list[bytes], clients: int) -> tuple[float, list[float], int]:
    q: asyncio.Queue = asyncio.Queue()
    for b in bodies:
        q.put_nowait(b)
    lat: list[float] = []
    accepted = 0
    headers = {"Authorization": "Bearer bench-token", "Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while not q.empty():
            body = q.get_nowait()
            t0 = time.perf_counter()
            async with session.post(f"http://127.0.0.1:{port}/api/v1/events", data=body, headers=headers) as r:
                out = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}: {str(out)[:300]}")
                accepted += out["accepted"]
            lat.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        dt = time.perf_counter() - t0
    return dt, lat, accepted


async def bench(quick: bool, profile_dir: Path | None = None) -> dict:
    n_tickets = 4_000 if quick else 25_000
    batch, clients = 500, 4
    start = datetime(2026, 11, 2, 9, 0, tzinfo=SH)
    events = event_stream(n_tickets, start)
    bodies = [json.dumps(events[i : i + batch], ensure_ascii=False).encode() for i in range(0, len(events), batch)]
    name, url = await create_db("ingest")
    try:
        base_rate = await _baseline(url, events)
        proc, port = await _start_server(url, None)
        try:
            # warm-up: a separate ticket range, so the measured run starts cold on its own tickets
            warm = event_stream(200, start, prefix="W")
            await _drive(port, [json.dumps(warm[i : i + batch]).encode() for i in range(0, len(warm), batch)], 1)
            async with Analyzer(url) as an:
                cpu0 = _cpu_s(proc.pid)
                dt, lat, accepted = await _drive(port, bodies, clients)
                cpu1 = _cpu_s(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
        assert accepted == len(events), (accepted, len(events))
        conn = await asyncpg.connect(url)
        try:
            counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("events", "ladders", "timers")}
        finally:
            await conn.close()
        rate = len(events) / dt
        lat.sort()
        result = {
            "events": len(events), "tickets": n_tickets, "batch": batch, "clients": clients,
            "seconds": round(dt, 2), "events_per_s": round(rate), "baseline_executemany_rows_per_s": round(base_rate),
            "ratio": round(rate / base_rate, 4), "target_events_per_s": 10_000, "met": rate >= 10_000,
            "request_p50_s": round(lat[len(lat) // 2], 3), "request_p99_s": round(lat[int(len(lat) * 0.99)], 3),
            "rows_written": counts, "autovacuum": an.autovacuum, "analyze_runs_by_bench": an.runs,
            # where the CPU went during the measured run (seconds, and share of the wall time)
            "cpu_s": {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0},
            "cpu_share_of_wall": {k: round((cpu1[k] - cpu0[k]) / dt, 2) for k in cpu0},
            "server_cpu_us_per_event": round((cpu1["server"] - cpu0["server"]) / len(events) * 1e6),
            "matcher": os.environ.get("BENCH_MATCHER") or "settings (durable_rules)",
        }
        if profile_dir is not None and not result["met"]:
            result["profile_top"] = await _profile(url, profile_dir, quick)
        return result
    finally:
        await drop_db(name)


async def _profile(url_unused: str, profile_dir: Path, quick: bool) -> list[str]:
    """Run a smaller ingest again under cProfile in the server process; the top entries."""
    name, url = await create_db("ingestprof")
    try:
        start = datetime(2026, 11, 2, 9, 0, tzinfo=SH)
        events = event_stream(1_500 if quick else 4_000, start, prefix="P")
        bodies = [json.dumps(events[i : i + 500], ensure_ascii=False).encode() for i in range(0, len(events), 500)]
        prof = str(profile_dir / "ingest_server.prof")
        proc, port = await _start_server(url, prof)
        try:
            await _drive(port, bodies, 4)
        finally:
            proc.terminate()
            proc.wait(60)
        return top_entries(prof)
    finally:
        await drop_db(name)


def top_entries(path: str, n: int = 22, sort: str = "tottime") -> list[str]:
    import io

    s = io.StringIO()
    st = pstats.Stats(path, stream=s)
    st.sort_stats(sort).print_stats(n)
    lines = [ln.rstrip() for ln in s.getvalue().splitlines() if ln.strip()]
    i = next((k for k, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    total = next((ln for ln in lines if "function calls" in ln), "")
    return [total.strip()] + [ln.replace(os.path.expanduser("~"), "~") for ln in lines[i:]]


if __name__ == "__main__":
    # BENCH_MATCHER=python python bench/b_ingest.py [--quick] [--no-profile]: the server's policy
    # with that matcher instead of settings' (see common.loaded)
    r = asyncio.run(bench("--quick" in sys.argv, None if "--no-profile" in sys.argv else Path("/tmp")))
    print(json.dumps(r, indent=1, ensure_ascii=False))
    _ = CREATED_DBS
