"""4. The daemon's peak memory (VmHWM, and RSS sampled by psutil) with N open tickets in its
database: `hotline-supervisor run` as a subprocess, on a copy of config/ and rules/.

Phases, each a fresh daemon process:
  steady  - start, run the loops (scheduler, dispatcher, reports, watcher, heartbeat) for a while;
  reload  - then touch a rule file: the watcher reloads and re-plans every open ticket
            (measured separately: heavy; bounded in time, progress counted from updated_at);
  report  - a daemon whose config has a digest report due now: it loads every open ticket's state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psutil
from common import ROOT, SH

RSS_CAP = 4 * 2**30  # a phase is stopped when the daemon passes 4 GiB (the machine is shared)
EXE = str(Path(sys.executable).with_name("hotline-supervisor"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config_copy(report_now: bool) -> Path:
    d = Path(tempfile.mkdtemp(prefix="bench_cfg_"))
    shutil.copytree(ROOT / "config", d / "config")
    shutil.copytree(ROOT / "rules", d / "rules")
    s = (d / "config" / "settings.yaml").read_text(encoding="utf-8")
    s = s.replace("port: 8345", f"port: {_free_port()}").replace("  console: {}", "  console: {}")
    (d / "config" / "settings.yaml").write_text(s, encoding="utf-8")
    if report_now:
        at = (datetime.now(SH) - timedelta(minutes=1)).strftime("%H:%M")
        with open(d / "rules" / "reports.yaml", "a", encoding="utf-8") as f:
            f.write(f"""
  - id: bench-digest
    description: benchmark - a digest due now
    kind: digest
    schedule: {{days: every_day, at: "{at}"}}
    to: [liaison]
    template: digest
""")
    return d


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _run_phase(url: str, seconds: float, *, report_now: bool = False, reload_after: float | None = None,
               until_log: str | None = None) -> dict:
    cfg = _config_copy(report_now)
    env = {**os.environ, "DATABASE_URL": url, "HOTLINE_API_TOKENS": "bench-token", "HOTLINE_CALLER_KEY": "bench-key"}
    log_path = cfg / "daemon.log"
    with open(log_path, "w") as logf:
        proc = subprocess.Popen([EXE, "--config", str(cfg / "config"), "run"], env=env, cwd=cfg, stdout=subprocess.DEVNULL, stderr=logf)
    ps = psutil.Process(proc.pid)
    t0 = time.monotonic()
    peak_rss, samples, reloaded_at, finished_at, capped = 0, [], None, None, False
    try:
        while time.monotonic() - t0 < seconds:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                rss = ps.memory_info().rss
            except psutil.Error:
                break
            peak_rss = max(peak_rss, rss)
            if rss > RSS_CAP:
                capped = True
                break
            samples.append((round(time.monotonic() - t0, 1), rss))
            if reload_after is not None and reloaded_at is None and time.monotonic() - t0 >= reload_after:
                (cfg / "rules" / "sign-off.yaml").touch()
                os.utime(cfg / "rules" / "sign-off.yaml", (time.time() + 5, time.time() + 5))
                reloaded_at = time.monotonic() - t0
            if until_log and finished_at is None and until_log in log_path.read_text(errors="replace"):
                finished_at = time.monotonic() - t0
                seconds = min(seconds, finished_at + 3)
            time.sleep(0.25)
        hwm = _hwm_kb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = log_path.read_text(errors="replace")
    errors = [ln for ln in log.splitlines() if '"level": "ERROR"' in ln or "Traceback" in ln][:3]
    shutil.rmtree(cfg, ignore_errors=True)
    return {"seconds": round(time.monotonic() - t0, 1), "peak_rss_mb": round(peak_rss / 2**20, 1), "vm_hwm_mb": round(hwm / 1024, 1),
            "rss_at_5s_mb": round(next((r for t, r in samples if t >= 5), peak_rss) / 2**20, 1),
            "reload_at_s": reloaded_at, "done_at_s": finished_at, "errors": errors,
            "stopped_at_rss_cap": capped}  # fmt: skip


def bench(url: str, quick: bool, n_tickets: int) -> dict:
    import asyncio

    import asyncpg

    async def sql(q: str):
        c = await asyncpg.connect(url)
        try:
            return await c.fetchval(q)
        finally:
            await c.close()

    # the timer benchmark's outbox rows would keep the console dispatcher busy: not this test's
    asyncio.run(sql("TRUNCATE outbox"))
    out: dict = {"open_tickets": asyncio.run(sql("SELECT count(*) FROM tickets WHERE status <> 'closed'")), "target_mb": 500}
    out["steady"] = _run_phase(url, 10 if quick else 25)
    mark = asyncio.run(sql("SELECT now()::text"))
    rs = 20 if quick else 90
    out["reload"] = _run_phase(url, rs, reload_after=5, until_log="configuration reloaded")
    replanned = asyncio.run(sql(f"SELECT count(*) FROM tickets WHERE updated_at > '{mark}'"))
    took = (out["reload"]["done_at_s"] or out["reload"]["seconds"]) - 5
    out["reload"]["tickets_replanned"] = replanned
    out["reload"]["replan_tickets_per_s"] = round(replanned / max(took, 0.1))
    out["reload"]["complete"] = out["reload"]["done_at_s"] is not None
    out["report"] = _run_phase(url, 40 if quick else 120, report_now=True, until_log="report sent") if not quick else _run_phase(url, 30, report_now=True, until_log="report sent")
    out["met_steady"] = out["steady"]["vm_hwm_mb"] <= 500
    out["met_all_phases"] = all(out[k]["vm_hwm_mb"] <= 500 for k in ("steady", "reload", "report"))
    return out


if __name__ == "__main__":
    print(json.dumps(bench(sys.argv[1], True, 0), indent=1))
