"""`run --workers N`: N daemon processes on one database, sharing the HTTP port (SO_REUSEPORT).

Each worker is a whole daemon (`run --reuse-port` in a child process): the kernel spreads the
API's connections over them, and their loops already share one database safely (ingest locks
tickets in one order, the scheduler and the dispatcher claim rows with FOR UPDATE SKIP LOCKED,
a report's period is a primary key). The parent only starts the workers, passes SIGTERM, SIGINT
and SIGHUP on to them, starts a worker again when one dies, and stops when they have stopped.
Workers are separate interpreters, not forks: durable_rules' engine runs threads, which a fork
would not carry over. Without DATABASE_URL the parent starts the embedded PostgreSQL once and
gives its address to the workers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("hotline.workers")

RESTART_DELAY_S = 1.0


def worker_command(config: str) -> list[str]:
    return [sys.executable, "-m", "supervisor.cli", "--config", config, "run", "--reuse-port"]


class Workers:
    def __init__(self, n: int, config: str, env: dict[str, str]) -> None:
        self.n = n
        self.config = config
        self.env = env
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * n
        self.stopping = False

    def _start(self, i: int) -> None:
        self.procs[i] = subprocess.Popen(
            worker_command(self.config), env=self.env, preexec_fn=_die_with_parent
        )
        log.info("worker started", extra={"worker": i, "pid": self.procs[i].pid})  # type: ignore[union-attr]

    def _signal_all(self, sig: int) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.send_signal(sig)

    def _on_signal(self, sig: int, _frame: Any) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        self._signal_all(sig)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        for i in range(self.n):
            self._start(i)
        while True:
            alive = 0
            for i, p in enumerate(self.procs):
                if p is None:
                    continue
                code = p.poll()
                if code is None:
                    alive += 1
                elif not self.stopping:
                    log.error("worker exited; starting it again", extra={"worker": i, "code": code})
                    time.sleep(RESTART_DELAY_S)
                    if not self.stopping:
                        self._start(i)
                        alive += 1
                else:
                    self.procs[i] = None
            if self.stopping and alive == 0:
                return 0
            time.sleep(0.2)


def run_workers(n: int, config: str, settings: Any, env: dict[str, str] | None = None) -> int:
    """Start N workers for the configuration folder `config` and wait for them."""
    env = dict(os.environ if env is None else env)
    if settings.http.port == 0:
        print("--workers needs a fixed http.port in settings.yaml (not 0)", file=sys.stderr)
        return 1
    from supervisor.config.settings import caller_key

    caller_key(settings, env)  # made once here if it must be: workers must not race to make it
    embedded = None
    if not env.get(settings.database.url_env):
        from supervisor.storage.db import EmbeddedPostgres

        embedded = EmbeddedPostgres(Path(settings.database.embedded_dir))
        env[settings.database.url_env] = embedded.start()
    try:
        return Workers(n, config, env).run()
    finally:
        if embedded is not None:
            embedded.stop()


def _die_with_parent() -> None:
    """In the worker, before it runs: ask Linux to send it SIGTERM when the parent dies, even by
    SIGKILL, so no worker outlives `run --workers` (elsewhere, nothing: the parent's own signal
    handling still stops them)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
