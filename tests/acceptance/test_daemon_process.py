"""The daemon as a process: SIGHUP reloads (refusing an invalid edit), SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ROOT


def _wait_for(proc: subprocess.Popen, log: Path, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if needle in text:
            return text
        assert proc.poll() is None, text[-3000:]
        time.sleep(0.2)
    raise AssertionError(
        f"{needle!r} not seen in {timeout}s:\n{log.read_text(encoding='utf-8')[-3000:]}"
    )


def test_sighup_reload_and_sigterm_shutdown(tmp_path: Path, pg_url: str):
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    rules = tmp_path / "rules"
    # with rules/tests: a reload runs them first (reload.require_tests)
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("*.json"))
    settings = (cfg / "settings.yaml").read_text(encoding="utf-8")
    settings = settings.replace("port: 8345", "port: 0").replace(
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
            [sys.executable, str(ROOT / "main.py"), "--config", str(cfg), "run"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for(proc, log, "daemon started")
        sign = rules / "sign-off.yaml"
        good = sign.read_text(encoding="utf-8")
        sign.write_text(
            good.replace("template: sign_reminder", "template: nope", 1), encoding="utf-8"
        )
        proc.send_signal(signal.SIGHUP)
        text = _wait_for(proc, log, "configuration edit refused")
        assert "unknown template 'nope'" in text
        sign.write_text(good, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        _wait_for(proc, log, "configuration reloaded")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        text = log.read_text(encoding="utf-8")
        assert "daemon stopped" in text and "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_demo_without_a_token_makes_and_prints_one(tmp_path: Path, pg_url: str):
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    settings = (cfg / "settings.yaml").read_text(encoding="utf-8")
    settings = settings.replace("port: 8345", "port: 0").replace(
        "rules_dir: ../rules", f"rules_dir: {ROOT / 'rules'}"
    )
    (cfg / "settings.yaml").write_text(settings, encoding="utf-8")
    log = tmp_path / "daemon.log"
    env = {k: v for k, v in os.environ.items() if k not in ("HOTLINE_API_TOKENS", "HOTLINE_PORT")}
    env.update(DATABASE_URL=pg_url, HOTLINE_CALLER_KEY="k")
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--config", str(cfg), "run", "--demo"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        text = _wait_for(proc, log, "守护进程继续运行", timeout=90)
        line = next(x for x in text.splitlines() if "本次运行的 API 令牌" in x)
        token = line.rsplit("：", 1)[1].strip()
        assert len(token) >= 20
        assert f"Authorization: Bearer {token}" in text
        first_demo = next(x for x in text.splitlines() if "演示" in x)
        assert "! 表示紧急" in first_demo
        assert "no API token configured" not in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
