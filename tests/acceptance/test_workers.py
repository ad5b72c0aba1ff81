"""`run --workers 2`: two daemons share the port and the database; signals reach both; a worker
that dies is started again; events posted to either are stored once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.acceptance.test_daemon_process import _wait_for
from tests.helpers import ROOT, every_type


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    req = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _count(text: str, needle: str) -> int:
    return text.count(needle)


def _wait_count(proc, log: Path, needle: str, n: int, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if _count(text, needle) >= n:
            return text
        assert proc.poll() is None, text[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not seen {n} times:\n{log.read_text()[-3000:]}")


def _start_workers(tmp_path: Path, pg_url: str) -> tuple[subprocess.Popen, Path, int]:
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("*.json"))  # with its tests: a reload runs them
    port = _free_port()
    settings = (cfg / "settings.yaml").read_text(encoding="utf-8")
    settings = settings.replace("port: 8345", f"port: {port}").replace(
        "rules_dir: ../rules", f"rules_dir: {rules}"
    )
    (cfg / "settings.yaml").write_text(settings + "log_format: json\n", encoding="utf-8")
    log = tmp_path / "daemon.log"
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "HOTLINE_CALLER_KEY": "k",
        "HOTLINE_API_TOKENS": "t",
    }
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--config", str(cfg), "run", "--workers", "2"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, log, port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_do_not_outlive_a_parent_killed_outright(tmp_path: Path, pg_url: str):
    proc, log, port = _start_workers(tmp_path, pg_url)
    try:
        _wait_count(proc, log, "daemon started", 2)
        pids = set()
        for _ in range(200):
            pids.add(int(_get(f"http://127.0.0.1:{port}/healthz")["worker"].rsplit(":", 1)[1]))
            if len(pids) == 2:
                break
        assert len(pids) == 2, pids
        proc.kill()  # SIGKILL: the parent cannot forward anything
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in pids), "a worker outlived its parent"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_two_workers_share_the_port_and_the_database(tmp_path: Path, pg_url: str):
    proc, log, port = _start_workers(tmp_path, pg_url)
    try:
        _wait_count(proc, log, "daemon started", 2)
        seen = set()
        for _ in range(200):  # the kernel spreads new connections over both listeners
            seen.add(_get(f"http://127.0.0.1:{port}/healthz")["worker"])
            if len(seen) == 2:
                break
        assert len(seen) == 2, seen

        events = every_type()
        for i, ev in enumerate(events):  # one request each: they land on either worker
            body = json.dumps(ev if i % 2 else [ev]).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/events", data=body, method="POST",
                headers={"Authorization": "Bearer t", "Content-Type": "application/json", "Connection": "close"},
            )  # fmt: skip
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 200
        tickets = {ev["ticket"] for ev in events}
        stored = 0
        for t in tickets:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/tickets/{t}", headers={"Authorization": "Bearer t"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                timeline = json.loads(r.read())["timeline"]
                # the service's own reviews (答复审核) of the texts posted are not posted events
                stored += len([e for e in timeline if not e["id"].endswith("~review")])
        assert stored == len(events)  # each stored once, whichever worker took it

        # a worker killed outright is started again
        victim = next(iter(seen)).rsplit(":", 1)[1]
        os.kill(int(victim), signal.SIGKILL)
        _wait_for(proc, log, "worker exited; starting it again")
        _wait_count(proc, log, "daemon started", 3)

        proc.send_signal(signal.SIGHUP)
        _wait_count(proc, log, "configuration reloaded", 2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        text = log.read_text(encoding="utf-8")
        assert _count(text, "daemon stopped") == 2 and "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
