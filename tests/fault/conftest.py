"""Fault-suite helpers: a generated configuration folder, the daemon and the fake Twilio as
separate processes (so they can be killed with SIGKILL), and ways to read what happened.

Everything is bounded: every wait has a timeout, every process we start is killed in a finally
(by its own pid, never by name)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from tests.helpers import CONFIG, ROOT

SID = "AC" + "0" * 32
TOKEN = "test-token"
FROM = "+8610000000000"
API_TOKEN = "fault-suite-token"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_config(
    root: Path,
    *,
    twilio_url: str,
    http_port: int = 0,
    delivery: dict[str, Any] | None = None,
    scheduler: dict[str, Any] | None = None,
    twilio: dict[str, Any] | None = None,
    reports: bool = False,
) -> Path:
    """config/ and rules/ copied under `root`, with settings for a fast, fault-injected run:
    no quiet hours, no grouping, high send rates, short reconcile window, Twilio at `twilio_url`.
    Without `reports`, the periodic reports are left out so every outbox row is a reminder."""
    cfg = root / "config"
    rules = root / "rules"
    shutil.copytree(CONFIG, cfg, dirs_exist_ok=True)
    ignore = ["tests"] + ([] if reports else ["reports.yaml"])
    shutil.copytree(
        ROOT / "rules", rules, ignore=shutil.ignore_patterns(*ignore), dirs_exist_ok=True
    )
    settings = {
        "rules_dir": "../rules",
        "matcher": "durable_rules" if sys.version_info < (3, 13) else "python",
        "database": {
            "url_env": "DATABASE_URL",
            "embedded_dir": str(root / "var" / "pgdata"),
            "pool_size": 10,
        },
        "http": {"host": "127.0.0.1", "port": http_port, "tokens_env": "HOTLINE_API_TOKENS"},
        "privacy": {
            "caller_key_env": "HOTLINE_CALLER_KEY",
            "caller_key_file": str(root / "var" / "caller.key"),
        },
        "scheduler": {
            "batch": 500,
            "catch_up_grace_s": 10 * 86400,
            "max_sleep_s": 1.0,
            **(scheduler or {}),
        },
        "delivery": {
            "quiet_hours": None,
            "group_window_s": 0,
            "rate_per_s": {
                "sms": 5000,
                "voice": 5000,
                "console": 5000,
                "wecom": 5000,
                "dingtalk": 5000,
            },
            "max_attempts": 5,
            "backoff_base_s": 0.2,
            "backoff_cap_s": 1.0,
            "reconcile_after_s": 3,
            **(delivery or {}),
        },
        "notifiers": {
            "console": {},
            "twilio": {
                "from_number": FROM,
                "base_url": twilio_url,
                "timeout_s": 1.5,
                **(twilio or {}),
            },
        },
        "log_format": "json",
    }
    (cfg / "settings.yaml").write_text(
        yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return cfg


def daemon_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "PYTEST_"))}
    env.update(
        DATABASE_URL=database_url,
        HOTLINE_API_TOKENS=API_TOKEN,
        HOTLINE_CALLER_KEY="fault-suite-caller-key",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        PYTHONUNBUFFERED="1",
    )
    return env


class Proc:
    """A child process with its output in a file; killed by pid in `close`."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 (closed in close())
        self.p = subprocess.Popen(
            argv, stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int | None:
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.p.returncode

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.alive():
                self.kill9()
        self._out.close()

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):  # noqa: ASYNC109
    """Poll an (async or plain) predicate until it returns a truthy value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


class DaemonProc(Proc):
    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        super().__init__([PY, "-m", "supervisor.cli", "--config", str(config), "run"], log, env)
        self._from = log.stat().st_size if log.exists() else 0

    async def started(self, timeout: float = 60) -> None:  # noqa: ASYNC109
        def ok() -> bool:
            if not self.alive():
                raise AssertionError(
                    f"daemon exited with {self.p.returncode}:\n{self.text()[-3000:]}"
                )
            with open(self.log, "rb") as f:
                f.seek(self._from)
                return b"daemon started" in f.read()

        await wait_for(ok, timeout, "the daemon to start")


class FakeTwilioProc(Proc):
    """tests.fakes.fake_twilio as a separate process: it survives the daemon's SIGKILLs and
    logs every accepted message and call to a JSON-lines file."""

    def __init__(self, root: Path) -> None:
        self.accepted = root / "twilio-accepted.jsonl"
        self.accepted.touch()
        super().__init__(
            [PY, "-m", "tests.fakes.fake_twilio", "--port", "0", "--log", str(self.accepted)],
            root / "fake-twilio.out",
        )
        self.base_url = ""

    async def ready(self, timeout: float = 30) -> str:  # noqa: ASYNC109
        def url() -> str | None:
            for line in self.text().splitlines():
                if line.startswith("listening "):
                    return line.split(" ", 1)[1].strip()
            if not self.alive():
                raise AssertionError(f"fake twilio exited:\n{self.text()}")
            return None

        self.base_url = await wait_for(url, timeout, "the fake Twilio to listen")
        return self.base_url

    def count(self) -> int:
        with open(self.accepted, "rb") as f:
            return sum(1 for _ in f)

    def records(self) -> list[dict[str, Any]]:
        with open(self.accepted, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


# --- events -----------------------------------------------------------------------------------

UNITS = [
    "城管执法中队",
    "市场监管所",
    "社区卫生服务中心",
    "物业管理办公室",
    "住房保障科",
    "生态环境所",
]


def urgent_ticket_events(ticket: str, created: datetime, sign_by: datetime) -> list[dict[str, Any]]:
    """An urgent ticket dispatched with the platform's own sign_by: its sign-off-urgent ladder
    has step 0 (-30m, liaison SMS) due at once and step 1 (0: head SMS + voice) due at sign_by.
    reply_by is far away so no other ladder comes due during a test."""
    unit = UNITS[int(ticket[-3:]) % len(UNITS)]
    return [
        {"id": f"{ticket}-1", "ticket": ticket, "type": "created", "at": created.isoformat(),
         "channel": "phone", "category": "市容环境", "kind": "complaint", "urgent": True, "grid": "G01", "summary": "占道经营"},
        {"id": f"{ticket}-2", "ticket": ticket, "type": "dispatched", "at": (created + timedelta(seconds=30)).isoformat(),
         "unit": unit, "sign_by": sign_by.isoformat(), "reply_by": (sign_by + timedelta(days=20)).isoformat()},
    ]  # fmt: skip


async def ingest(
    database_url: str, config: Path, events: list[dict[str, Any]], batch: int = 1000
) -> int:
    """Store events through Supervisor on PgStore, in this process (as `ingest` does)."""
    from supervisor.application import Supervisor, runtime_from
    from supervisor.core.clock import SystemClock
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore
    from tests.helpers import loaded

    # The shipped rules (the generated folder copies them): one compiled policy per process.
    runtime = runtime_from(loaded(), b"fault-suite-caller-key")
    pool = await create_pool(database_url, max_size=2)
    try:
        sup = Supervisor(PgStore(pool), runtime, SystemClock())
        n = 0
        for i in range(0, len(events), batch):
            n += len((await sup.ingest(events[i : i + batch])).accepted)
        return n
    finally:
        await pool.close()


# --- what happened ------------------------------------------------------------------------------


def twiml(text: str) -> str:
    """The TwiML the voice notifier sends for `text` with the fault suite's settings (the
    default voice and language, no gather URL)."""
    from notifiers.twilio_voice import twiml_for
    from supervisor.config.notifier_settings import TwilioSettings

    s = TwilioSettings(from_number=FROM)
    return twiml_for(text, s.say_language, voice=s.voice)


@dataclass
class Tally:
    """Outbox rows against what the fake Twilio accepted."""

    rows: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_channel: Counter = field(default_factory=Counter)
    once: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # rows accepted 2+ times
    missing: list[dict[str, Any]] = field(default_factory=list)  # rows marked sent, never accepted
    voice_matched_other: list[dict[str, Any]] = field(default_factory=list)  # documented voice case
    extra_accepted: int = 0  # accepted messages that match no outbox row
    attempts: Counter = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "by_status": dict(self.by_status),
            "by_channel": dict(self.by_channel),
            "accepted_once": self.once,
            "duplicates": len(self.duplicates),
            "missing": len(self.missing),
            "voice_reconciled_to_another_call": len(self.voice_matched_other),
            "extra_accepted": self.extra_accepted,
            "attempts": dict(sorted(self.attempts.items())),
        }


async def tally(conn: asyncpg.Connection, accepted: Iterable[dict[str, Any]]) -> Tally:
    """Match every accepted SMS (to, body) and call (to, twiml) to its outbox row. The texts of a
    run's rows are distinct per (channel, address), which the caller asserts."""
    counts: Counter = Counter()
    sids: dict[str, tuple[str, str]] = {}
    for a in accepted:
        if a["kind"] == "message":
            key = ("sms", a["to"], a["body"])
        else:
            key = ("voice", a["to"], a["twiml"])
        counts[key] += 1
        sids[a["sid"]] = key
    t = Tally()
    rows = await conn.fetch(
        "SELECT id, ticket, rule, cycle, step, rep, recipient, channel, address, text, status, attempts, provider_id, last_error FROM outbox ORDER BY id"
    )
    keys = set()
    for r in rows:
        t.rows += 1
        t.by_status[r["status"]] += 1
        t.by_channel[r["channel"]] += 1
        t.attempts[r["attempts"]] += 1
        key = (r["channel"], r["address"], r["text"] if r["channel"] == "sms" else twiml(r["text"]))
        assert key not in keys, f"two outbox rows with the same text to the same number: {dict(r)}"
        keys.add(key)
        n = counts.get(key, 0)
        d = dict(r)
        d["accepted"] = n
        if n == 1:
            t.once += 1
        elif n > 1:
            t.duplicates.append(d)
        elif r["status"] == "sent":
            other = sids.get(r["provider_id"] or "")
            if r["channel"] == "voice" and other is not None and other[1] == r["address"]:
                # Documented (dispatcher.py): voice find_sent matches any call to the number.
                t.voice_matched_other.append(d)
            else:
                t.missing.append(d)
    t.extra_accepted = sum(n for k, n in counts.items() if k not in keys)
    return t


def report(name: str, figures: dict[str, Any]) -> None:
    """Print the figures (pytest -s shows them) and keep them in var/fault-figures.jsonl."""
    line = json.dumps({"test": name, **figures}, ensure_ascii=False, default=str)
    print(f"\nFIGURES {line}")
    out = os.environ.get("FAULT_FIGURES")
    if out:
        with contextlib.suppress(OSError), open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@pytest.fixture
async def fake_proc(tmp_path: Path) -> AsyncIterator[FakeTwilioProc]:
    fake = FakeTwilioProc(tmp_path)
    try:
        await fake.ready()
        yield fake
    finally:
        fake.terminate(timeout=5)
        fake.close()
