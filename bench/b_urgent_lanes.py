"""Urgent first while the office is busy (issue 23): urgent delivery lag from due time to the
provider's answer, during a burst of ordinary SMS, while clients ingest.

    python bench/b_urgent_lanes.py [--urgent 300] [--burst 16000] [--rate 100] [--clients 4]
                                   [--workers 1] [--latency-ms 20] [--spread 60] [--timeout 600]

The real daemon (`hotline-supervisor run`, a subprocess; `--workers N`: N daemons on one
database) against a fake Twilio on 127.0.0.1 answering after `--latency-ms`, at `--rate` messages
per second per channel for the whole run (each daemon is given rate / workers). Before the
measured run, `--urgent` urgent tickets are stored (created + dispatched); when the daemon is up,
`--burst` ordinary SMS, each to another person, are queued ready, the first step of each urgent
ticket is made due at moments spread over `--spread` seconds starting 10 s later, and `--clients`
clients post 500-event batches of realistic ticket lives to /api/v1/events throughout.

Prints, for the urgent messages: lag from the step's due time (timers.due_at) to the provider's
answer (outbox.sent_at, written when the answer arrives) p50 / p99 / max, split into the timer's
lateness (timers.late_s) and the wait in the outbox; the ordinary messages sent meanwhile, in
order or not; events ingested meanwhile; every message accepted once; the load average. A
benchmark, not a test: figures go in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import asyncpg  # noqa: E402
from aiohttp import web  # noqa: E402
from b_daemon import _config_copy, _free_port, _wait_healthy  # noqa: E402
from b_ingest import _drive  # noqa: E402
from common import ROOT, SH, create_db, drop_db, event_stream  # noqa: E402

from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402


class SlowTwilio(FakeTwilio):
    """Answers every create after `latency_s`, as a provider across the network would."""

    def __init__(self, latency_s: float) -> None:
        super().__init__()
        self.latency_s = latency_s

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.latency_s)
        return await super()._create_message(request)

    async def _create_call(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.latency_s)
        return await super()._create_call(request)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))], 2)


def _configure(cfg: Path, fake_url: str, rate: float) -> None:
    p = cfg / "config" / "settings.yaml"
    s = p.read_text(encoding="utf-8")
    s = s.replace(
        "notifiers:\n  console: {}\n",
        'notifiers:\n  console: {}\n  twilio:\n    from_number: "+8610000000000"\n'
        f"    base_url: {fake_url}\n",
    )
    s = s.replace(
        '  quiet_hours: {start: "22:00", end: "07:30"}\n',
        f"  quiet_hours: null\n  rate_per_s: {{sms: {rate}, voice: {rate}}}\n",
    )
    p.write_text(s, encoding="utf-8")


async def _store_urgent(url: str, cfg: Path, n: int, env: dict[str, str]) -> None:
    """The urgent tickets, stored through the core before the daemon starts."""
    from supervisor.application import Supervisor, runtime_from
    from supervisor.config.settings import load_all
    from supervisor.core.clock import SystemClock
    from supervisor.storage.db import create_pool
    from supervisor.storage.pg import PgStore

    loaded = load_all(cfg / "config", env=env)
    pool = await create_pool(url, max_size=4)
    try:
        sup = Supervisor(PgStore(pool), runtime_from(loaded, b"bench-key"), SystemClock())
        at = (datetime.now(SH) - timedelta(minutes=2)).isoformat()
        events = []
        for i in range(n):
            t = f"U{i:05d}"
            events += [
                {"id": f"{t}-1", "ticket": t, "type": "created", "at": at, "kind": "complaint",
                 "category": "市容环境", "grid": "G01", "urgent": True, "channel": "phone"},
                {"id": f"{t}-2", "ticket": t, "type": "dispatched", "at": at, "unit": "城管执法中队"},
            ]  # fmt: skip
        for i in range(0, len(events), 1000):
            await sup.ingest(events[i : i + 1000])
        # nothing of theirs due before the measured run (_arm makes their first steps due)
        await pool.execute(
            "UPDATE timers SET due_at = due_at + interval '1 day' WHERE ticket LIKE 'U%'"
        )
    finally:
        await pool.close()


async def _arm(conn: asyncpg.Connection, burst: int, spread_s: float, urgent: int) -> datetime:
    """Queue the burst, and make each urgent ticket's first step due over the spread (its other
    steps a day later, so that nothing supersedes it). Returns when the first is due."""
    now = datetime.now(UTC)
    await conn.execute(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, name, address, channel,
                               text, urgent, not_before, created_at)
           SELECT 'R' || g, 'repeat-caller', 1, 0, 'supervisor', 'p' || g, '张敏',
                  '+86139' || lpad(g::text, 8, '0'), 'sms', '工单R' || g || ' 重复来电', false, $1, $1
           FROM generate_series(1, $2) AS g""",
        now, burst,
    )  # fmt: skip
    first = now + timedelta(seconds=10)
    await conn.execute(
        """WITH firsts AS (
               SELECT DISTINCT ON (ticket) id, ticket FROM timers
               WHERE ticket LIKE 'U%' AND status = 'pending' ORDER BY ticket, due_at, step
           ), numbered AS (SELECT id, ticket, row_number() OVER (ORDER BY ticket) - 1 AS k FROM firsts)
           UPDATE timers t SET due_at = CASE WHEN t.id = n.id
                                        THEN $1::timestamptz + make_interval(secs => n.k * $2::float8 / $3::int)
                                        ELSE t.due_at + interval '1 day' END
           FROM numbered n WHERE t.ticket = n.ticket AND t.status = 'pending'""",
        first, spread_s, max(urgent, 1),
    )  # fmt: skip
    return first


async def main(a: argparse.Namespace) -> dict:
    name, url = await create_db("urgent")
    port = _free_port()
    cfg = _config_copy(port)
    log = cfg / "daemon.log"
    proc = None
    try:
        async with SlowTwilio(a.latency_ms / 1000) as fake:
            _configure(cfg, fake.base_url, a.rate / a.workers)
            secrets = {"TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token}
            await _store_urgent(url, cfg, a.urgent, secrets)
            bodies_events = event_stream(a.tickets, datetime.now(SH).replace(microsecond=0))
            bodies = [
                json.dumps(bodies_events[i : i + 500], ensure_ascii=False).encode()
                for i in range(0, len(bodies_events), 500)
            ]
            env = {**os.environ, "DATABASE_URL": url, "HOTLINE_API_TOKENS": "bench-token",
                   "HOTLINE_CALLER_KEY": "bench-key", "PYTHONPATH": str(ROOT), **secrets}  # fmt: skip
            cmd = [sys.executable, "-m", "supervisor.cli", "--config", str(cfg / "config"), "run"]
            if a.workers > 1:
                cmd += ["--workers", str(a.workers)]
            with open(log, "w") as logf:  # noqa: ASYNC230
                proc = subprocess.Popen(  # noqa: ASYNC220
                    cmd, env=env, cwd=cfg, stdout=subprocess.DEVNULL, stderr=logf
                )
            await _wait_healthy(port, proc, log)
            await asyncio.sleep(1.0)
            conn = await asyncpg.connect(url)
            load0 = os.getloadavg()
            first_due = await _arm(conn, a.burst, a.spread, a.urgent)
            started = time.perf_counter()
            ingest = asyncio.create_task(_drive(port, bodies, a.clients))
            ingested_by_end = None
            while time.perf_counter() - started < a.timeout:
                await asyncio.sleep(1.0)
                row = await conn.fetchrow(
                    """SELECT (SELECT count(*) FROM timers WHERE ticket LIKE 'U%' AND status = 'pending'
                                 AND due_at < now() + interval '12 hours') AS due_left,
                              (SELECT count(*) FROM outbox WHERE urgent AND ticket LIKE 'U%'
                                 AND status IN ('pending', 'sending')) AS unsent"""
                )
                if not row["due_left"] and not row["unsent"]:
                    break
            wall = time.perf_counter() - started
            ingest_done = ingest.done()
            ingest.cancel()
            await asyncio.gather(ingest, return_exceptions=True)
            ingested_by_end = await conn.fetchval(
                "SELECT count(*) FROM events WHERE ticket LIKE 'B%'"
            )
            load1 = os.getloadavg()
            urgent_rows = await conn.fetch(
                """SELECT o.channel, extract(epoch FROM o.sent_at - t.due_at) AS lag,
                          t.late_s, extract(epoch FROM o.sent_at - o.created_at) AS wait, o.status
                   FROM outbox o JOIN timers t USING (ticket, rule, cycle, step, rep)
                   WHERE o.urgent AND o.ticket LIKE 'U%'"""
            )
            ordinary = await conn.fetch(
                "SELECT id, claimed_by FROM outbox WHERE ticket LIKE 'R%' AND status = 'sent'"
                " ORDER BY sent_at, id"
            )
            await conn.close()
        accepted = Counter((m["to"], m["body"]) for m in fake.messages) + Counter(
            (c["to"], c["twiml"]) for c in fake.calls
        )
        lags = [float(r["lag"]) for r in urgent_rows if r["lag"] is not None]
        # each daemon sends the ordinary rows it claimed in their order (not_before, id); two
        # daemons interleave, so the order is counted per daemon
        out_of_order = 0
        for daemon in {r["claimed_by"] for r in ordinary}:
            ids = [r["id"] for r in ordinary if r["claimed_by"] == daemon]
            out_of_order += sum(1 for x, y in zip(ids, ids[1:], strict=False) if y < x)
        return {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "urgent_tickets": a.urgent, "urgent_messages": len(urgent_rows),
            "urgent_unsent": sum(1 for r in urgent_rows if r["status"] != "sent"),
            "burst": a.burst, "rate_per_s": a.rate, "workers": a.workers,
            "provider_latency_ms": a.latency_ms, "clients": a.clients, "spread_s": a.spread,
            "urgent_due_to_answer_p50_s": pct(lags, 0.5), "urgent_due_to_answer_p99_s": pct(lags, 0.99),
            "urgent_due_to_answer_max_s": round(max(lags), 2) if lags else None,
            "timer_late_p50_s": pct([float(r["late_s"]) for r in urgent_rows], 0.5),
            "timer_late_p99_s": pct([float(r["late_s"]) for r in urgent_rows], 0.99),
            "outbox_wait_p50_s": pct([float(r["wait"]) for r in urgent_rows if r["wait"] is not None], 0.5),
            "outbox_wait_p99_s": pct([float(r["wait"]) for r in urgent_rows if r["wait"] is not None], 0.99),
            "ordinary_sent_meanwhile": len(ordinary),
            "ordinary_sent_out_of_order_per_daemon": out_of_order,
            "events_ingested_meanwhile": ingested_by_end, "ingest_ran_out": ingest_done,
            "accepted_twice": sum(1 for v in accepted.values() if v > 1),
            "wall_s": round(wall, 1), "first_due_utc": first_due.isoformat(timespec="seconds"),
            "loadavg_start": [round(x, 2) for x in load0], "loadavg_end": [round(x, 2) for x in load1],
        }  # fmt: skip
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        errors = [ln for ln in log.read_text(errors="replace").splitlines()
                  if "ERROR" in ln or "Traceback" in ln][:3] if log.exists() else []  # fmt: skip
        if errors:
            print("daemon log errors:", *errors, sep="\n  ", file=sys.stderr)
        import shutil

        shutil.rmtree(cfg, ignore_errors=True)
        await drop_db(name)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--urgent", type=int, default=300)
    ap.add_argument("--burst", type=int, default=16_000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--spread", type=float, default=60.0)
    ap.add_argument("--tickets", type=int, default=20_000, help="ticket lives the clients ingest")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main(args)), indent=1, ensure_ascii=False))
