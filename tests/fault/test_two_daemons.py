"""Two daemons on one database: each reminder goes out once, and both daemons do work."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import asyncpg

from tests.fault.conftest import (
    DaemonProc,
    FakeTwilioProc,
    daemon_env,
    ingest,
    make_config,
    report,
    tally,
    urgent_ticket_events,
    wait_for,
)

TICKETS = 1000


async def test_two_daemons_share_the_work_without_duplicates(
    tmp_path, pg_url, fake_proc: FakeTwilioProc
):
    started = time.monotonic()
    cfg = make_config(
        tmp_path, twilio_url=fake_proc.base_url, delivery={"rate_per_s": {"sms": 300, "voice": 300}}
    )
    now = datetime.now(UTC)
    events = []
    for i in range(TICKETS):
        events += urgent_ticket_events(
            f"2027{i:07d}", now - timedelta(minutes=10), now + timedelta(seconds=8 + i * 0.01)
        )
    await ingest(pg_url, cfg, events)
    expected = 3 * TICKETS
    conn = await asyncpg.connect(pg_url)
    daemons = [DaemonProc(cfg, daemon_env(pg_url), tmp_path / f"daemon{n}.log") for n in (1, 2)]
    try:
        for d in daemons:
            await d.started()

        async def done() -> bool:
            return await conn.fetchval(
                "SELECT count(*) FILTER (WHERE status = 'sent') = $1 AND count(*) = $1 FROM outbox",
                expected,
            )

        await wait_for(done, 180, "both daemons to deliver every reminder", interval=0.5)
        for d in daemons:
            assert d.terminate() == 0, d.text()[-2000:]
        by_worker = {
            r["claimed_by"]: r["n"]
            for r in await conn.fetch("SELECT claimed_by, count(*) AS n FROM outbox GROUP BY 1")
        }
        fired = await conn.fetchval(
            "SELECT count(*) FROM timers WHERE rule = 'sign-off-urgent' AND step IN (0, 1) AND status = 'fired'"
        )
        beats = await conn.fetchval("SELECT count(*) FROM heartbeats")
        t = await tally(conn, fake_proc.records())
        report(
            "two_daemons",
            {
                **t.summary(),
                "by_worker": by_worker,
                "timers_fired": fired,
                "heartbeats": beats,
                "seconds": round(time.monotonic() - started, 1),
            },
        )

        assert fired == 2 * TICKETS
        assert t.rows == expected and t.once == expected, t.summary()
        assert (
            not t.duplicates
            and not t.missing
            and not t.voice_matched_other
            and t.extra_accepted == 0
        )
        assert len(by_worker) == 2 and all(n > 0 for n in by_worker.values()), by_worker
        assert beats == 2
    finally:
        for d in daemons:
            d.close()
        await conn.close()
