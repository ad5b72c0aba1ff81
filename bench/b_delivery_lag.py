"""Delivery lag under load: how late messages leave after they are due, urgent and not.

    python bench/b_delivery_lag.py [--urgent 300] [--burst 20000] [--rate 100] [--timeout 600]

A burst of `--burst` non-urgent reminders to one person is already queued (the repeat-caller
burst of issue 9) when `--urgent` urgent tickets come due; the daemon's scheduler loop
(Supervisor.fire_due) and dispatcher (Dispatcher.run) run on the real clock against a fake Twilio
on 127.0.0.1 sending `--rate` messages/s per channel. Prints the lag (sent_at - not_before) p50 /
p99 for urgent and non-urgent messages, and how long the first urgent message waited. Its
database is its own (bench_lag_*) and dropped at the end. A benchmark, not a test: the lead runs
it; figures go in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import create_db, drop_all  # noqa: E402


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))], 3)


async def main(urgent: int, burst: int, rate: float, timeout_s: float) -> dict:
    from notifiers.registry import build_notifiers, close_all
    from supervisor.application import Supervisor, runtime_from
    from supervisor.config.notifier_settings import NotifierSettings
    from supervisor.config.settings import load_all
    from supervisor.core.clock import SystemClock
    from supervisor.delivery.outbox import Dispatcher
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore
    from tests.fakes.fake_twilio import FakeTwilio

    _, url = await create_db("lag")
    pool = await create_pool(url, max_size=6)
    loaded = load_all(HERE.parent / "config", env={})
    clock = SystemClock()
    now = clock.now()
    store = PgStore(pool)
    sup = Supervisor(store, runtime_from(loaded, b"bench-key"), clock)
    # the burst: non-urgent reminders to one supervisor, all ready now
    await pool.execute(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, name, address, channel,
                               text, urgent, not_before, created_at)
           SELECT 'R' || g, 'repeat-caller', 1, 0, 'supervisor', 'zhang-min', '张敏',
                  '+8613800138001', 'sms', '工单R' || g || ' 重复来电', false, $1, $1
           FROM generate_series(1, $2) AS g""",
        now, burst,
    )  # fmt: skip
    # urgent tickets dispatched 40 minutes ago: their sign-off steps are due now
    at = (now - timedelta(minutes=40)).isoformat()
    events = []
    for i in range(urgent):
        t = f"U{i:05d}"
        events += [
            {"id": f"{t}-1", "ticket": t, "type": "created", "at": at, "kind": "complaint",
             "category": "市容环境", "grid": "G01", "urgent": True, "channel": "phone"},
            {"id": f"{t}-2", "ticket": t, "type": "dispatched", "at": at, "unit": "城管执法中队"},
        ]  # fmt: skip
    for i in range(0, len(events), 1000):
        await sup.ingest(events[i : i + 1000])

    settings = loaded.settings.delivery.model_copy(
        update={"quiet_hours": None, "rate_per_s": {"sms": rate, "voice": rate}}
    )
    async with FakeTwilio() as fake:
        notifiers = build_notifiers(
            NotifierSettings.model_validate(
                {"twilio": {"from_number": "+8610000000000", "base_url": fake.base_url}}
            ),
            {"TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token},
            stream=io.StringIO(),
        )
        d = Dispatcher(store, notifiers, settings, clock, worker_id="bench")
        stop, wake = asyncio.Event(), asyncio.Event()

        async def scheduler() -> None:
            while not stop.is_set():
                out = await sup.fire_due(limit=500)
                if out.notifications:
                    wake.set()
                if out.fired + out.cancelled + out.superseded < 500:
                    await asyncio.sleep(0.2)

        started = time.perf_counter()
        tasks = [asyncio.create_task(scheduler()), asyncio.create_task(d.run(stop, wake))]
        while time.perf_counter() - started < timeout_s:
            left = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE urgent AND status <> 'sent'"
            )
            fired = await pool.fetchval("SELECT count(*) FROM outbox WHERE urgent")
            if fired and not left:
                break
            await asyncio.sleep(0.5)
        stop.set()
        wake.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_all(notifiers)
    rows = await pool.fetch(
        "SELECT urgent, extract(epoch FROM sent_at - not_before) AS lag FROM outbox WHERE status = 'sent'"
    )
    await pool.close()
    lags = {u: [float(r["lag"]) for r in rows if r["urgent"] == u] for u in (True, False)}
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "urgent_tickets": urgent, "burst": burst, "rate_per_s": rate,
        "urgent_sent": len(lags[True]), "others_sent": len(lags[False]),
        "urgent_lag_p50_s": pct(lags[True], 0.5), "urgent_lag_p99_s": pct(lags[True], 0.99),
        "urgent_lag_max_s": max(lags[True], default=None),
        "others_lag_p50_s": pct(lags[False], 0.5),
        "others_mean_s": round(statistics.fmean(lags[False]), 3) if lags[False] else None,
        "wall_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--urgent", type=int, default=300)
    ap.add_argument("--burst", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args()
    try:
        print(json.dumps(asyncio.run(main(a.urgent, a.burst, a.rate, a.timeout)), indent=1))
    finally:
        asyncio.run(drop_all())
