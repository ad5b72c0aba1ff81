"""Ingest and replan on the same tickets at once: whatever the locks, each ticket must end as a
replan of its stored events derives it (nothing folded onto a state or ladders read stale)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.storage.pg import PgStore
from tests.helpers import ev, runtime, sh

START = sh(2026, 11, 23, 9, 0)  # a Monday


def opened(t: str, minute: int) -> list[dict]:
    at = START + timedelta(minutes=minute)
    return [
        ev(t, 1, "created", at, kind="complaint", category="市容环境", grid="G01"),
        ev(t, 2, "dispatched", at, unit="城管执法中队"),
    ]


async def test_batches_and_replans_at_once_leave_what_a_replan_derives(pool: asyncpg.Pool) -> None:
    """Ingests and replans of the same tickets, concurrently: each ticket's stored state, ladders
    and timers end as a replan of its stored events derives them (nothing read stale)."""
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(START))
    tickets = [f"T{i:02d}" for i in range(40)]
    await sup.ingest([e for i, t in enumerate(tickets) for e in opened(t, i)])
    later = [
        ev(t, 3, "signed", START + timedelta(minutes=30 + i), unit="城管执法中队")
        for i, t in enumerate(tickets)
    ]
    await asyncio.gather(
        *(sup.ingest(later[i : i + 5]) for i in range(0, len(later), 5)),
        sup.replan(),
        sup.replan(),
    )

    async def stored() -> list[tuple]:
        async with pool.acquire() as c:
            states = await c.fetch("SELECT ticket, state::text FROM tickets ORDER BY ticket")
            ladders = await c.fetch(
                "SELECT ticket, rule, cycle, status, reason FROM ladders ORDER BY 1, 2, 3"
            )
            timers = await c.fetch(
                "SELECT ticket, rule, cycle, step, rep, due_at, status FROM timers"
                " ORDER BY 1, 2, 3, 4, 5"
            )
        return [tuple(r) for r in [*states, *ladders, *timers]]

    before = await stored()
    assert await sup.replan() == 40
    assert await stored() == before
