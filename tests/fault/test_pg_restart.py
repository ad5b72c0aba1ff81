"""PostgreSQL restarted in the middle of a run (an embedded pgserver, stopped and started on the
same data directory) while events are POSTed and reminders fire: the daemon reconnects by itself
and loses nothing. Events acknowledged with 200 are stored; POSTs that failed during the outage
are retried by the client and then accepted; every due reminder is delivered once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg

from supervisor.storage.db import EmbeddedPostgres
from tests.fault.conftest import (
    API_TOKEN,
    DaemonProc,
    FakeTwilioProc,
    daemon_env,
    free_port,
    make_config,
    report,
    tally,
    urgent_ticket_events,
    wait_for,
)

TICKETS = 300
PER_POST = 5  # tickets per POST (10 events)


async def test_postgres_restart_mid_run_loses_nothing(tmp_path, fake_proc: FakeTwilioProc):
    started = time.monotonic()
    pg = EmbeddedPostgres(tmp_path / "pg")
    uri = pg.start()
    port = free_port()
    cfg = make_config(tmp_path, twilio_url=fake_proc.base_url, http_port=port)
    daemon = DaemonProc(cfg, daemon_env(uri), tmp_path / "daemon.log")
    statuses: Counter = Counter()
    acked: set[str] = set()
    posts = {"post_attempts": 0, "retried_batches": 0}
    try:
        await daemon.started(timeout=90)
        now = datetime.now(UTC)
        batches = []
        for b in range(0, TICKETS, PER_POST):
            evs = []
            for i in range(b, b + PER_POST):
                evs += urgent_ticket_events(
                    f"2028{i:07d}",
                    now - timedelta(minutes=10),
                    now + timedelta(seconds=5 + i * 0.1),
                )
            batches.append(evs)

        async def post_all(http: aiohttp.ClientSession) -> None:
            for evs in batches:
                deadline = time.monotonic() + 120
                tries = 0
                while True:
                    tries += 1
                    posts["post_attempts"] += 1
                    try:
                        async with http.post(
                            f"http://127.0.0.1:{port}/api/v1/events",
                            json=evs,
                            headers={"Authorization": f"Bearer {API_TOKEN}"},
                            timeout=aiohttp.ClientTimeout(total=10),
                        ) as resp:
                            statuses[resp.status] += 1
                            if resp.status == 200:
                                body = await resp.json()
                                acked.update(r["id"] for r in body["results"])
                                break
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        statuses[type(exc).__name__] += 1
                    assert time.monotonic() < deadline, f"a batch was never accepted: {statuses}"
                    await asyncio.sleep(0.3)
                posts["retried_batches"] += tries > 1
                await asyncio.sleep(0.05)

        async with aiohttp.ClientSession() as http:
            client = asyncio.create_task(post_all(http))
            # restart while events come in and the first reminders fire
            await wait_for(lambda: len(acked) >= TICKETS * 2 // 3, 60, "a third of the events")
            down_at = time.monotonic()
            await asyncio.to_thread(pg.stop)
            await asyncio.sleep(3)  # the outage
            uri2 = await asyncio.to_thread(pg.start)
            outage_s = time.monotonic() - down_at
            assert uri2 == uri
            await asyncio.wait_for(client, 180)
            assert daemon.alive(), daemon.text()[-3000:]

            conn = await asyncpg.connect(uri)
            try:
                expected = 3 * TICKETS

                async def done() -> bool:
                    return await conn.fetchval(
                        "SELECT count(*) FILTER (WHERE status = 'sent') = $1 AND count(*) = $1 FROM outbox",
                        expected,
                    )

                await wait_for(done, 180, "every reminder after the restart", interval=0.5)
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200
                stored = {r["id"] for r in await conn.fetch("SELECT id FROM events")}
                t = await tally(conn, fake_proc.records())
            finally:
                await conn.close()
        assert daemon.terminate() == 0, daemon.text()[-3000:]
        log = daemon.text()
        figures = {
            **t.summary(),
            "events_acknowledged": len(acked),
            "post_statuses": {str(k): v for k, v in statuses.items()},
            **posts,
            "outage_s": round(outage_s, 1),
            "loop_errors": log.count('"loop iteration failed; going on"'),
            "dispatch_pass_failures": log.count('"dispatch pass failed"'),
            "seconds": round(time.monotonic() - started, 1),
        }
        report("pg_restart", figures)
        assert len(acked) == 2 * TICKETS
        assert acked <= stored, f"acknowledged but not stored: {sorted(acked - stored)[:5]}"
        assert t.rows == 3 * TICKETS and t.once == 3 * TICKETS, figures
        assert not t.duplicates and not t.missing and t.extra_accepted == 0
    finally:
        daemon.close()
        pg.stop()
