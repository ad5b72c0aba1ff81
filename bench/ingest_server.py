"""The ingest server under test, as its own process: supervisor.server.api.make_app around a Supervisor on
a PgStore, on 127.0.0.1 (no scheduler loop: nothing fires during the run). Prints "PORT <n>" when
it listens; stops on SIGTERM.

    python bench/ingest_server.py DATABASE_URL [--pool N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import runtime  # noqa: E402


async def main(url: str, pool_size: int) -> None:
    from aiohttp import web

    from supervisor.application import Supervisor
    from supervisor.core.clock import SystemClock
    from supervisor.server.api import make_app
    from supervisor.server.metrics import Metrics
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore

    pool = await create_pool(url, max_size=pool_size)
    sup = Supervisor(PgStore(pool), runtime(), SystemClock())

    async def health():
        return True, {}

    app = make_app(sup, tokens=["bench-token"], metrics=Metrics(), health=health, max_body_bytes=16 * 1024 * 1024)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await runner.cleanup()
    await pool.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--pool", type=int, default=10)
    ap.add_argument("--profile")
    a = ap.parse_args()
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        try:
            asyncio.run(main(a.url, a.pool))
        finally:
            prof.disable()
            prof.dump_stats(a.profile)
    else:
        asyncio.run(main(a.url, a.pool))
