"""The ingest's state cache (pg.StateCache): a batch folds onto the state this process wrote only
while the row still holds it. Two daemons writing one ticket in turn, a replan, a rolled-back
batch: every ticket ends as a store without any cache would leave it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.storage.pg import PgStore, StateCache
from tests.helpers import ev, runtime, sh

START = sh(2026, 11, 23, 9, 0)  # a Monday


def lives(n: int) -> list[list[dict[str, Any]]]:
    """Four batches: each ticket's created+dispatched, signed, replied, visited."""
    at = [START + timedelta(minutes=i) for i in range(n)]
    t = [f"T{i:02d}" for i in range(n)]
    return [
        [e for i in range(n) for e in (
            ev(t[i], 1, "created", at[i], kind="complaint", category="市容环境", grid="G01",
               caller=f"1380000{i:04d}", summary="占道经营"),
            ev(t[i], 2, "dispatched", at[i], unit="城管执法中队"),
        )],
        [ev(t[i], 3, "signed", at[i] + timedelta(hours=1), unit="城管执法中队") for i in range(n)],
        [ev(t[i], 4, "replied", at[i] + timedelta(days=1), unit="城管执法中队", result="已处理")
         for i in range(n)],
        [ev(t[i], 5, "visited", at[i] + timedelta(days=2), satisfaction="satisfied",
            resolved=True) for i in range(n)],
    ]  # fmt: skip


async def stored(pool: asyncpg.Pool) -> list[tuple]:
    async with pool.acquire() as c:
        rows = [
            *await c.fetch("SELECT ticket, state::text FROM tickets ORDER BY ticket"),
            *await c.fetch("SELECT ticket, rule, cycle, status, reason FROM ladders ORDER BY 1, 2, 3"),
            *await c.fetch(
                "SELECT ticket, rule, cycle, step, rep, due_at, status FROM timers ORDER BY 1, 2, 3, 4, 5"
            ),
        ]
    return [tuple(r) for r in rows]


async def reference(pool: asyncpg.Pool, batches: list[list[dict[str, Any]]]) -> list[tuple]:
    """The same batches through a store whose cache holds nothing."""
    store = PgStore(pool)
    store.states = StateCache(limit=0)
    sup = Supervisor(store, runtime(), VirtualClock(START))
    for b in batches:
        await sup.ingest(b)
    return await stored(pool)


async def clear(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as c:
        await c.execute("TRUNCATE events, tickets, ladders, timers, desk_deadlines, matter_keys")


async def test_two_daemons_writing_in_turn_fold_onto_what_the_row_holds(pool: asyncpg.Pool) -> None:
    batches = lives(20)
    expected = await reference(pool, batches)
    await clear(pool)
    one, two = PgStore(pool), PgStore(pool)
    sups = [Supervisor(s, runtime(), VirtualClock(START)) for s in (one, two)]
    # one writes, two writes (one's cache is now stale), one writes again, two again
    for i, b in enumerate(batches):
        await sups[i % 2].ingest(b)
    assert await stored(pool) == expected
    assert one.states._held and two.states._held  # both did hold states


async def test_a_replan_between_batches_is_seen(pool: asyncpg.Pool) -> None:
    batches = lives(10)
    store = PgStore(pool)
    sup = Supervisor(store, runtime(), VirtualClock(START))
    await sup.ingest(batches[0])
    await sup.ingest(batches[1])
    await sup.replan()  # rewrites every open ticket's row: the held states are stale
    held = dict(store.states._held)
    await sup.ingest(batches[2])
    await sup.ingest(batches[3])
    after = await stored(pool)
    await clear(pool)
    assert after == await reference(pool, batches)
    assert held  # the replan did not empty the cache: the rows' versions told


async def test_a_rolled_back_batch_leaves_nothing_held(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = lives(10)
    store = PgStore(pool)
    sup = Supervisor(store, runtime(), VirtualClock(START))
    await sup.ingest(batches[0])
    real = PgStore._apply

    async def fail_after_writing(self, conn, plans, stored=None):
        await real(self, conn, plans, stored)
        raise RuntimeError("the batch fails after writing its states")

    monkeypatch.setattr(PgStore, "_apply", fail_after_writing)
    with pytest.raises(RuntimeError):
        await sup.ingest(batches[1])
    monkeypatch.undo()
    for b in batches[1:]:
        await sup.ingest(b)
    after = await stored(pool)
    await clear(pool)
    assert after == await reference(pool, batches)


async def test_hits_skip_the_rows_state() -> None:
    cache = StateCache(limit=2)
    from supervisor.core.state import TicketState

    cache.store([TicketState(ticket=t) for t in ("A", "B", "C")], xid=10)
    assert set(cache._held) == {"B", "C"}  # the least recently written went
    assert set(cache.lookup(["A", "B", "C"], xid=11)) == {"B", "C"}
    assert cache.lookup(["B"], xid=10 + StateCache.SPAN) == {}  # too far: not comparable
    cache.store([TicketState(ticket="B", status="signed")], xid=9)  # older than held: ignored
    assert cache._held["B"][1].status == "new"
