"""Batches of one process about some of the same tickets, at once (storage/turns.py, PgStore.ingest):
a later batch stores the tickets no earlier batch holds first, then the rest once those have
ended. Whatever the interleaving, what is stored is what storing the batches one after the other
stores; a lock held elsewhere, or an earlier batch that does not end, sends the batch the one-step
way after all, and nothing is lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from supervisor.application import Supervisor, validate_batch
from supervisor.core.clock import VirtualClock
from supervisor.storage import pg
from supervisor.storage.pg import PgStore, _halves
from supervisor.storage.turns import TicketTurns
from tests.helpers import ev, runtime, sh
from tests.integration.test_state_cache import clear, stored

START = sh(2026, 11, 23, 9, 0)  # a Monday


def opened(i: int) -> list[dict[str, Any]]:
    t, at = f"T{i:02d}", START + timedelta(minutes=i)
    return [
        ev(t, 1, "created", at, kind="complaint", category="市容环境", grid=f"G{i % 3}",
           caller=f"1380000{i % 7:04d}", summary="占道经营", address=f"幸福路{i % 5}号"),
        ev(t, 2, "dispatched", at + timedelta(minutes=2), unit="城管执法中队"),
    ]  # fmt: skip


def later(i: int, n: int, etype: str, hours: float, **fields: Any) -> dict[str, Any]:
    return ev(f"T{i:02d}", n, etype, START + timedelta(minutes=i, hours=hours), **fields)


def stream() -> list[list[dict[str, Any]]]:
    """Batches as the platform sends them: the first opens tickets T50-T97; each of the others
    opens new tickets and carries later events of tickets opened in the batches before it (so
    consecutive batches share tickets) and of T50-T97 (which no other batch has)."""
    batches: list[list[dict[str, Any]]] = [[e for i in range(50, 98) for e in opened(i)]]
    for b in range(6):
        new = range(b * 8, b * 8 + 8)
        batch = [e for i in new for e in opened(i)]
        batch += [
            later(i, 3, "signed", 1, unit="城管执法中队") for i in range(max(0, b * 8 - 8), b * 8)
        ]
        batch += [
            later(i, 4, "replied", 30, unit="城管执法中队", result="已处理")
            for i in range(max(0, b * 8 - 16), max(0, b * 8 - 8))
        ]
        batch += [
            later(i, 5, "visited", 50, satisfaction="dissatisfied" if i % 4 == 0 else "satisfied",
                  resolved=i % 4 != 0)
            for i in range(max(0, b * 8 - 24), max(0, b * 8 - 16))
        ]  # fmt: skip
        batch += [
            later(i, 3, "signed", 1, unit="城管执法中队") for i in range(50 + b * 8, 58 + b * 8)
        ]
        batches.append(batch)
    return batches


async def one_by_one(pool: asyncpg.Pool, batches: list[list[dict[str, Any]]]) -> list[tuple]:
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(START))
    for b in batches:
        await sup.ingest(b)
    out = await stored(pool)
    await clear(pool)
    return out


async def two_stored(
    pool: asyncpg.Pool,
) -> tuple[list[list[dict[str, Any]]], list[tuple], PgStore, Supervisor]:
    """The stream's first three batches, what storing them one by one stores, and a store with
    the first two stored (the third is the test's)."""
    batches = stream()[:3]
    expected = await one_by_one(pool, batches)
    store = PgStore(pool)
    sup = Supervisor(store, runtime(), VirtualClock(START))
    await sup.ingest(batches[0])
    await sup.ingest(batches[1])
    return batches, expected, store, sup


class Calls:
    """PgStore._ingest_on's calls: which tickets, waiting for their locks or not."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[frozenset[str], bool]] = []
        self.types: list[tuple[int, set[str]]] = []
        real = PgStore._ingest_on

        async def spy(self_: PgStore, conn, xid, events, *args, wait: bool = True, **kw):  # type: ignore[no-untyped-def]
            self.calls.append((frozenset(e.ticket for e in events), wait))
            self.types.append((id(asyncio.current_task()), {e.type for e in events}))
            return await real(self_, conn, xid, events, *args, wait=wait, **kw)

        monkeypatch.setattr(PgStore, "_ingest_on", spy)

    @property
    def second_halves(self) -> list[frozenset[str]]:
        return [t for t, wait in self.calls if not wait]

    @property
    def first_halves_types(self) -> list[set[str]]:
        """The event types of each first half (the call just before a second half)."""
        out = []
        for i, (_, wait) in enumerate(self.calls):
            if not wait:
                task = self.types[i][0]
                out.append(next(t for k, t in reversed(self.types[:i]) if k == task))
        return out


@pytest.mark.parametrize("free", [True, False], ids=["split", "one-step"])
async def test_batches_at_once_store_what_one_by_one_stores(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, free: bool
) -> None:
    """Split (each batch has tickets no other one has) or not (without them, every ticket of a
    batch is held by an earlier one or new), the batches are stored as if one by one in the
    order they came (PostgreSQL's lock queues alone let a later one overtake: issue 22)."""
    batches = stream()
    if not free:
        batches = [batches[0], *([e for e in b if e["ticket"] < "T50"] for b in batches[1:])]
    expected = await one_by_one(pool, batches)
    calls = Calls(monkeypatch)
    store = PgStore(pool)
    sup = Supervisor(store, runtime(), VirtualClock(START))
    await sup.ingest(batches[0])
    # each batch starts while the ones before it are in flight
    tasks = []
    for b in batches[1:]:
        tasks.append(asyncio.create_task(sup.ingest(b)))
        await asyncio.sleep(0.005)
    outcomes = await asyncio.gather(*tasks)
    assert sum(len(o.accepted) for o in outcomes) == sum(len(b) for b in batches[1:])
    assert await stored(pool) == expected
    assert bool(calls.second_halves) == free, "the test did not test what it says"
    # new tickets (their callers' and matter keys' locks come after every ticket lock) go second
    assert all("created" not in types for types in calls.first_halves_types)
    assert store.fallbacks == 0
    assert len(store.turns) == 0  # every batch left


async def test_a_ticket_locked_elsewhere_sends_the_batch_the_one_step_way(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches, expected, store, sup = await two_stored(pool)
    calls = Calls(monkeypatch)
    # an earlier batch of this process holds T03 (signed in batches[1]); another daemon takes
    # T03's lock just as that batch ends
    earlier = store.turns.enter({"T03"})
    task = asyncio.create_task(sup.ingest(batches[2]))
    async with pool.acquire() as other:
        for _ in range(200):  # the first half is stored while T03 is held
            if calls.calls:
                break
            await asyncio.sleep(0.01)
        await other.execute("SELECT pg_advisory_lock(7347, hashtext('T03'))")
        store.turns.leave(earlier)
        await asyncio.sleep(0.3)
        assert not task.done()  # refused T03 (NOWAIT), rolled back, now waiting for the lock
        await other.execute("SELECT pg_advisory_unlock(7347, hashtext('T03'))")
    outcome = await task
    assert len(outcome.accepted) == len(batches[2])
    assert store.fallbacks == 1
    assert [wait for _, wait in calls.calls] == [True, False, True]
    assert await stored(pool) == expected


async def test_an_earlier_batch_that_does_not_end_is_waited_for_without_holding_locks(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second half waits for the earlier batch a bounded time: past it, the batch rolls back
    (its first half's locks released, for whoever waits for them) and waits holding nothing."""
    batches, expected, store, sup = await two_stored(pool)
    monkeypatch.setattr(pg, "TURN_WAIT_S", 0.2)
    earlier = store.turns.enter({"T03"})  # an earlier batch that does not end for a while
    task = asyncio.create_task(sup.ingest(batches[2]))
    for _ in range(300):
        if store.fallbacks:
            break
        await asyncio.sleep(0.01)
    assert store.fallbacks == 1 and not task.done()
    async with pool.acquire() as other:  # T50-T57 (the first half) are free again
        assert await other.fetchval("SELECT pg_try_advisory_lock(7347, hashtext('T50'))")
        await other.execute("SELECT pg_advisory_unlock(7347, hashtext('T50'))")
    store.turns.leave(earlier)
    outcome = await asyncio.wait_for(task, 10)
    assert len(outcome.accepted) == len(batches[2])
    assert await stored(pool) == expected


def test_halves_put_contended_and_new_tickets_second() -> None:
    batch = validate_batch(stream()[2], b"k" * 32)
    tickets = {e.ticket for e in batch}
    assert _halves(batch, frozenset()) is None  # nothing in flight: one step
    halves = _halves(batch, frozenset({"T03"}))
    assert halves is not None
    first, second = halves
    assert {e.ticket for e in second} == {"T03"} | {f"T{i:02d}" for i in range(8, 16)}
    assert {e.ticket for e in first} == tickets - {e.ticket for e in second}
    assert sorted(first + second, key=batch.index) == batch  # every event once
    assert [e for e in batch if e in first] == first  # each half in the batch's order
    # everything contended, or nothing but new tickets left first: one step
    assert _halves(batch, frozenset(tickets)) is None
    assert _halves(validate_batch(stream()[0], b"k" * 32), frozenset({"T50"})) is None


async def test_turns_wait_for_the_earlier_holders_only() -> None:
    turns = TicketTurns()
    a = turns.enter({"X", "Y"})
    b = turns.enter({"Y", "Z"})
    c = turns.enter({"Z"})
    assert a.contended == frozenset() and b.contended == {"Y"} and c.contended == {"Z"}
    assert not await c.wait(0.01)  # b has not ended
    waiter = asyncio.create_task(b.wait(5))
    await asyncio.sleep(0.01)
    waiter.cancel()  # a cancelled waiter leaves the holder's future alone
    await asyncio.sleep(0)
    assert not a.done.cancelled()
    turns.leave(a)
    assert await b.wait(0.01)
    turns.leave(b)
    assert await c.wait(0.01)
    turns.leave(c)
    assert len(turns) == 0
    assert turns.enter({"Y"}).contended == frozenset()  # ended holders are forgotten
