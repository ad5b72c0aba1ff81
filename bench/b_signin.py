"""Desk sign-in latency: POST /signin with the right password, through the whole path (CSRF
check, the account's counter row locked and updated in PostgreSQL, argon2id verification off
the event loop, the session row, the audit row), against the desk's own aiohttp app on loopback.

argon2 runs at argon2-cffi's defaults (the cost users.yaml hashes are made with: argon2id,
time_cost 3, memory 64 MiB, parallelism 4). One client signs in REQUESTS times in a row, then
CONCURRENT clients sign in at once (an office arriving at 09:00).

    python bench/b_signin.py [--requests 100] [--concurrent 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher
from common import ROOT, create_db, drop_all, pct, runtime

from supervisor.core.clock import SystemClock
from supervisor.desk.app import setup_desk
from supervisor.desk.users import add_user
from supervisor.storage.db import create_pool

PASSWORD = "Bench-pass-2026"


async def sign_in(http: aiohttp.ClientSession, base: str, login: str) -> float:
    page = await (await http.get(f"{base}/signin")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    t0 = time.perf_counter()
    async with http.post(f"{base}/signin", allow_redirects=False, data={
            "login": login, "password": PASSWORD, "csrf": token, "next": "/"}) as r:  # fmt: skip
        assert r.status == 302, (r.status, await r.text())
    return (time.perf_counter() - t0) * 1000


async def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=4)
    args = parser.parse_args()
    _, url = await create_db("signin")
    cfg = Path(tempfile.mkdtemp(prefix="b_signin-"))
    for i in range(args.concurrent + 1):
        add_user(cfg / "users.yaml", f"user-{i}", "supervisor", None, PASSWORD)
    pool = await create_pool(url, max_size=8)
    host = SimpleNamespace(
        pool=pool,
        supervisor=SimpleNamespace(runtime=runtime(), clock=SystemClock()),
        loaded=SimpleNamespace(config_dir=cfg, warnings=[]),
    )
    app = web.Application()
    desk = setup_desk(app, host, env={"HOTLINE_DESK_KEY": "bench"}, run_index=False, extras=False)  # type: ignore[arg-type]
    desk.security = desk.security.model_copy(update={"two_factor_roles": []})  # the password step
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            for _ in range(3):  # warm: prepared statements, the thread pool
                await sign_in(http, base, "user-0")
            one = [await sign_in(http, base, "user-0") for _ in range(args.requests)]
        rounds = max(1, args.requests // args.concurrent)
        many: list[float] = []
        jars = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(args.concurrent)]
        try:
            for _ in range(rounds):
                many += await asyncio.gather(
                    *(sign_in(j, base, f"user-{i + 1}") for i, j in enumerate(jars))
                )
        finally:
            for j in jars:
                await j.close()
    finally:
        await runner.cleanup()
        await pool.close()
        await drop_all()
    ph = PasswordHasher()
    stored = ph.hash(PASSWORD)
    alone = []
    for _ in range(min(args.requests, 30)):  # the argon2 part alone, same process and load
        t0 = time.perf_counter()
        ph.verify(stored, PASSWORD)
        alone.append((time.perf_counter() - t0) * 1000)
    out = {
        "argon2_verify_alone": {"n": len(alone), "p50_ms": round(pct(alone, 50), 1),
                                "p95_ms": round(pct(alone, 95), 1)},
        "argon2": {"type": "argon2id", "time_cost": ph.time_cost, "memory_kib": ph.memory_cost,
                   "parallelism": ph.parallelism},
        "one_client": {"n": len(one), "p50_ms": round(pct(one, 50), 1), "p95_ms": round(pct(one, 95), 1)},
        f"{args.concurrent}_at_once": {"n": len(many), "p50_ms": round(pct(many, 50), 1),
                                       "p95_ms": round(pct(many, 95), 1)},
        "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
    }  # fmt: skip
    print(json.dumps(out, indent=1), flush=True)
    return out


if __name__ == "__main__":
    figures = asyncio.run(main())
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "signin.json").write_text(json.dumps(figures, indent=1))
