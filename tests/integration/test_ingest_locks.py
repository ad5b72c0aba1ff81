"""Who waits for whom on a ticket: ingest and replan take the same advisory lock per ticket
(queries.LOCK_TICKETS) before reading it, and ingest reads the stored states without a row lock
(queries.SELECT_STORED). A replan must therefore take the lock too, before it reads anything."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.storage import queries as q
from supervisor.storage.pg import PgStore
from tests.helpers import ev, runtime, sh

START = sh(2026, 11, 23, 9, 0)  # a Monday


def opened(t: str, minute: int) -> list[dict]:
    at = START + timedelta(minutes=minute)
    return [
        ev(t, 1, "created", at, kind="complaint", category="市容环境", grid="G01"),
        ev(t, 2, "dispatched", at, unit="城管执法中队"),
    ]


async def test_a_replan_waits_for_a_batch_holding_its_ticket(pool: asyncpg.Pool) -> None:
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(START))
    await sup.ingest(opened("T1", 0))
    async with pool.acquire() as other, other.transaction():
        await other.execute(q.LOCK_TICKETS, ["T1"])  # as a batch about T1 in flight
        replan = asyncio.create_task(sup.replan())
        await asyncio.sleep(0.3)
        assert not replan.done()
    assert await asyncio.wait_for(replan, 10) == 1


async def test_a_batch_waits_for_a_replan_holding_its_ticket(pool: asyncpg.Pool) -> None:
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(START))
    await sup.ingest(opened("T1", 0))
    async with pool.acquire() as other, other.transaction():
        await other.execute(q.LOCK_TICKETS, ["T1"])  # as a replan of T1 in flight
        ingest = asyncio.create_task(
            sup.ingest([ev("T1", 3, "signed", START + timedelta(minutes=5), unit="城管执法中队")])
        )
        await asyncio.sleep(0.3)
        assert not ingest.done()
    assert (await asyncio.wait_for(ingest, 10)).accepted == ["T1-3"]


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
