"""Urgent first on PostgreSQL: the scheduler claims due steps of urgent tickets before the others
(timers.urgent, migration 005), whatever their due times."""

from __future__ import annotations

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.storage.pg import PgStore
from tests.helpers import ev, runtime, sh


async def test_due_steps_of_urgent_tickets_are_claimed_first(pool):
    start = sh(2026, 11, 23, 9, 0)
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(start))
    events = []
    for i in range(5):  # ordinary tickets, due first
        t = f"N{i}"
        events += [
            ev(t, 1, "created", start, kind="complaint", category="市容环境", grid="G01"),
            ev(t, 2, "dispatched", start, unit="城管执法中队"),
        ]
    later = sh(2026, 11, 23, 11, 0)
    events += [
        ev("U1", 1, "created", later, kind="complaint", category="市容环境", grid="G01",
           urgent=True),
        ev("U1", 2, "dispatched", later, unit="城管执法中队"),
    ]  # fmt: skip
    await sup.ingest(events)
    urgent_due = await pool.fetchval("SELECT min(due_at) FROM timers WHERE ticket = 'U1'")
    ordinary_due = await pool.fetchval("SELECT min(due_at) FROM timers WHERE ticket LIKE 'N%'")
    assert ordinary_due < urgent_due  # without urgency the ordinary steps would go first
    # 11:15: ordinary steps are due since 10:30, the urgent ticket's first step since 11:00 (and
    # not yet its second, which would supersede it)
    out = await sup.fire_due(limit=1, now=sh(2026, 11, 23, 11, 15))
    assert out.fired == 1
    assert {n.ticket for n in out.notifications} == {"U1"}
