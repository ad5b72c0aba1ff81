"""A whole daemon with the desk for the desk's tests: real PostgreSQL, accounts in a users.yaml,
the console notifier, a virtual clock on Wednesday 2026-11-25 10:00 (Beijing)."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from supervisor.core.clock import SystemClock
from supervisor.desk.users import add_user
from supervisor.server.daemon import Daemon
from tests.helpers import CONFIG, ev, loaded, sh

TOKEN = "desk-test-token"
PASSWORD = "desk-pass-123"
START = sh(2026, 11, 25, 9, 5)
NOW = sh(2026, 11, 25, 10, 0)
USERS = {  # login: (role, unit)
    "zhang-min": ("supervisor", None),
    "li-hua": ("leader", None),
    "wang-qiang": ("liaison", "城管执法中队"),
    "zhao-gang": ("head", "城管执法中队"),
    "sun-li": ("liaison", "市场监管所"),
}


class ShiftedClock(SystemClock):
    """Real time, shifted to start at `start`; `set` jumps it forward (the tests' "later")."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, when: datetime) -> None:
        if when > self.now():
            self.offset = when - datetime.now(UTC)

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        delay = max(0.0, (when - self.now()).total_seconds())
        try:
            await asyncio.wait_for(wake.wait() if wake else asyncio.sleep(delay), timeout=delay)
        except TimeoutError:
            pass


GRID_USERS = {"chen-jing": ["G01"]}  # 网格员: login -> grids


def write_users(folder: Path) -> None:
    for login, (role, unit) in USERS.items():
        add_user(folder / "users.yaml", login, role, unit, PASSWORD)
    for login, grids in GRID_USERS.items():
        add_user(folder / "users.yaml", login, "grid", None, PASSWORD, grids=grids)


def events() -> list[dict[str, Any]]:
    """A: dispatched Tuesday 16:00, sign-off due Wednesday 09:30 (2 working hours): the liaison is
    reminded at 09:00, the head chased at 09:30, the supervisor is next (10:30).
    B: dispatched this morning, awaiting sign-off. C: signed, due today 16:00 by the platform."""
    return [
        ev("A100", 1, "created", sh(2026, 11, 24, 8, 50), channel="phone", category="市容环境", kind="complaint",
           caller="13812345678", address="幸福路88号", summary="占道经营"),
        ev("A100", 2, "dispatched", sh(2026, 11, 24, 16, 0), unit="城管执法中队"),
        ev("B200", 1, "created", sh(2026, 11, 25, 9, 20), channel="wechat", category="市场管理", kind="complaint",
           address="和平街12号", summary="缺斤短两"),
        ev("B200", 2, "dispatched", sh(2026, 11, 25, 9, 30), unit="市场监管所"),
        ev("C300", 1, "created", sh(2026, 11, 18, 9, 0), channel="web", category="市容环境", kind="help",
           address="幸福路90号", urgent=True, summary="井盖缺失"),
        ev("C300", 2, "dispatched", sh(2026, 11, 18, 9, 10), unit="城管执法中队", reply_by=sh(2026, 11, 25, 16, 0).isoformat()),
        ev("C300", 3, "signed", sh(2026, 11, 18, 9, 20), unit="城管执法中队"),
    ]  # fmt: skip


def without_two_factor(settings: Any) -> Any:
    """The settings with two-factor sign-in off: tests that sign in as a supervisor or leader
    without walking the one-time-code step."""
    sec = settings.desk.security.model_copy(update={"two_factor_roles": []})
    return settings.model_copy(update={"desk": settings.desk.model_copy(update={"security": sec})})


@asynccontextmanager
async def desk_daemon(
    pg_url: str, tmp_path: Path, start: datetime = START, security: dict[str, Any] | None = None,
    env_extra: dict[str, str] | None = None, settings_update: dict[str, Any] | None = None,
) -> AsyncIterator[Daemon]:
    """`security`: desk.security settings for this test; by default two-factor sign-in is off
    (the tests that want it turn it on)."""
    base = loaded()
    s = base.settings
    sec = type(s.desk.security).model_validate(
        {**s.desk.security.model_dump(), "two_factor_roles": [], **(security or {})}
    )
    desk = s.desk.model_copy(update={"security": sec})
    s = s.model_copy(update={
        "http": s.http.model_copy(update={"port": 0}),
        "privacy": s.privacy.model_copy(update={"caller_key_file": str(tmp_path / "caller.key")}),
        "delivery": s.delivery.model_copy(update={"group_window_s": 0}),  # every message alone
        # B200's events (09:20, 09:30) are posted at 09:05 with the rest: within the tolerance
        "ingest": s.ingest.model_copy(update={"future_tolerance_s": 3600}),
        "desk": desk, **(settings_update or {}),
    })  # fmt: skip
    cfg = tmp_path / "config"
    cfg.mkdir()
    write_users(cfg)
    shutil.copy(CONFIG / "import.yaml", cfg / "import.yaml")  # the desk's 导入 page
    env = {"DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": TOKEN, "HOTLINE_DESK_KEY": "test-desk-key",
           **(env_extra or {})}  # fmt: skip
    daemon = Daemon(replace(base, settings=s, config_dir=cfg), env=env, clock=ShiftedClock(start))
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


async def post_events(port: int, evs: list[dict[str, Any]]) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"http://127.0.0.1:{port}/api/v1/events", json=evs,
                               headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        assert resp.status == 200, await resp.text()


async def until(probe, what: str, tries: int = 200) -> Any:
    """Wait for the daemon's loops: poll `probe` (async, truthy when done); fail after `tries`."""
    for _ in range(tries):
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def _sent(daemon: Daemon, n: int) -> bool:
    async with daemon.pool.acquire() as conn:
        sent = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE ticket = 'A100' AND status = 'sent'"
        )
        indexed = await conn.fetchval("SELECT count(*) FROM desk_deadlines")
        total = await conn.fetchval("SELECT count(*) FROM tickets")
    return sent >= n and indexed == total


async def settled(daemon: Daemon) -> None:
    """events() posted at 09:05: the liaison's reminder goes; then the clock moves to 10:00 and
    the head's SMS and call go; every ticket is in the desk's index."""
    await until(lambda: _sent(daemon, 1), "the liaison's reminder of A100 sent")
    assert isinstance(daemon.clock, ShiftedClock)
    daemon.clock.set(NOW)
    daemon.wake_scheduler.set()
    await until(lambda: _sent(daemon, 3), "the head's SMS and call of A100 sent, tickets indexed")


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


async def sign_in(
    http: aiohttp.ClientSession, base: str, login: str, password: str = PASSWORD
) -> int:
    page = await (await http.get(f"{base}/signin")).text()
    resp = await http.post(f"{base}/signin", data={"login": login, "password": password,
                           "csrf": csrf_of(page), "next": "/"}, allow_redirects=False)  # fmt: skip
    return resp.status
