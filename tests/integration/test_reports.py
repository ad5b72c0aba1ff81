"""Periodic reports on PostgreSQL: once per period across daemons, streamed, right counts."""

from __future__ import annotations

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.engine import reports
from supervisor.storage.pg import PgStore
from tests.helpers import ev, runtime, sh


async def test_digest_and_look_back_run_once_per_period(pool):
    rt = runtime()
    sup = Supervisor(PgStore(pool), rt, VirtualClock(sh(2026, 11, 16, 9)))
    events = []
    for i in range(25):  # more than a message lists: the count says the rest
        t = f"D{i:02d}"
        events += [
            ev(t, 1, "created", sh(2026, 11, 16, 9), kind="help"),
            ev(t, 2, "dispatched", sh(2026, 11, 16, 9), unit="城管执法中队"),
        ]
    events += [
        ev("V1", 1, "created", sh(2026, 11, 16, 9), kind="complaint"),
        ev("V1", 2, "dispatched", sh(2026, 11, 16, 9), unit="市场监管所"),
        ev("V1", 3, "signed", sh(2026, 11, 16, 9, 30), unit="市场监管所"),
        ev("V1", 4, "contacted", sh(2026, 11, 16, 9, 40), phase="before"),
        ev("V1", 5, "replied", sh(2026, 11, 17, 10), unit="市场监管所"),
        ev("V1", 6, "visited", sh(2026, 11, 18, 10), satisfaction="dissatisfied"),
        ev("V1", 7, "reopened", sh(2026, 11, 18, 11)),
    ]
    await sup.ingest(events)
    store = sup.store
    digest = next(r for r in rt.policy.reports if r.id == "digest")
    look_back = next(r for r in rt.policy.reports if r.id == "look-back")
    at = sh(2026, 11, 19, 8, 30)  # Thursday: the 3 working-day help tickets are due today
    notes = await store.run_report(digest, reports.period(at), at, rt)
    by_unit = {n.ticket: n for n in notes}
    assert set(by_unit) == {"unit:城管执法中队"}  # V1 (re-opened, due 11-23) has nothing for today
    text = by_unit["unit:城管执法中队"].text
    assert "待签收25件" in text and "今日到期25件" in text and "等，详见督办台" in text
    assert await store.run_report(digest, reports.period(at), at, rt) is None  # another daemon
    monday = sh(2026, 11, 23, 9)
    notes = await store.run_report(look_back, reports.period(monday), monday, rt)
    assert (
        [n.role for n in notes] == ["supervisor"]
        and "V1" in notes[0].text
        and "1件" in notes[0].text
    )
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM outbox WHERE rule IN ('digest', 'look-back')")
            == 2
        )
