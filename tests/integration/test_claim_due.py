"""fire_due's claim (queries.CLAIM_DUE) brings each claimed timer's active ladder and, for the
timers it judges firing, the ticket's state, in the one statement. engine.timers decides what
fires; the claim's own judgement (in SQL) must agree with it to the microsecond at the grace's
edge, or firing tickets' states are read a second time (PgStore.state_reads counts those) and
states of timers that do not fire are sent for nothing. A firing ticket with no stored state
still fires with none, as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from supervisor.core.state import TicketState, initial_state
from supervisor.storage.base import FirePolicy
from supervisor.storage.jsoncodec import state_text
from supervisor.storage.pg import PgStore

NOW = datetime(2026, 12, 7, 1, 0, 0, 500000, tzinfo=UTC)
GRACE = timedelta(minutes=5)
US = timedelta(microseconds=1)


async def _ticket(conn: asyncpg.Connection, ticket: str, *, stored: bool = True) -> None:
    if stored:
        state = initial_state(ticket)
        await conn.execute(
            "INSERT INTO tickets (ticket, state, status) VALUES ($1, $2::text::jsonb, 'open')",
            ticket, state_text(state),
        )  # fmt: skip


async def _ladder(conn: asyncpg.Connection, ticket: str, status: str, steps: list[datetime]) -> None:
    await conn.execute(
        "INSERT INTO ladders (ticket, rule, cycle, anchor_at, status) VALUES ($1, 'r', 1, $2, $3)",
        ticket, NOW - timedelta(days=1), status,
    )  # fmt: skip
    for step, due in enumerate(steps):
        await conn.execute(
            "INSERT INTO timers (ticket, rule, cycle, step, rep, due_at) VALUES ($1, 'r', 1, $2, 0, $3)",
            ticket, step, due,
        )  # fmt: skip


async def test_the_claims_judgement_is_the_verdicts_at_the_grace_edge(pool: asyncpg.Pool) -> None:
    store = PgStore(pool)
    # step 0 of a ladder whose step 1 is due too, claimed alone (limit 1: step 1 is not in the
    # batch, so the ticket's state can come only with step 0's row): exactly at, just inside and
    # just past the grace; step 1 supersedes it only past the grace
    cases = {
        "G-at": (NOW - GRACE, "fired"),
        "G-in": (NOW - GRACE + US, "fired"),
        "G-past": (NOW - GRACE - US, "superseded"),
    }
    for ticket, (due, expected) in cases.items():
        async with pool.acquire() as conn:
            await _ticket(conn, ticket)
            await _ladder(conn, ticket, "active", [due, NOW - US])
        seen: list[TicketState | None] = []

        def fire_fn(*, timer, ladder, state, linked, ticket=ticket, seen=seen):  # type: ignore[no-untyped-def]
            assert (timer.ticket, timer.step, ladder.status) == (ticket, 0, "active")
            seen.append(state)
            return []

        out = await store.fire_due(NOW, 1, fire_fn, FirePolicy(grace=GRACE))
        assert (out.fired, out.superseded, out.cancelled) == (
            (1, 0, 0) if expected == "fired" else (0, 1, 0)
        ), ticket
        assert [s.ticket if s else None for s in seen] == ([ticket] if expected == "fired" else [])
        assert store.state_reads == 0, ticket  # the state came with the claim
        async with pool.acquire() as conn:
            assert await conn.fetchval(
                "SELECT status FROM timers WHERE ticket = $1 AND step = 0", ticket
            ) == expected  # fmt: skip
            for table in ("timers", "ladders", "tickets"):
                await conn.execute(f"DELETE FROM {table}")  # noqa: S608 (a name of ours)


async def test_a_batch_fires_supersedes_and_cancels_as_before(pool: asyncpg.Pool) -> None:
    store = PgStore(pool)
    cases = {  # ticket: (ladder status, due times of steps 0 and 1)
        "B-in": ("active", [NOW - GRACE + US, NOW - US]),
        "B-past": ("active", [NOW - GRACE - US, NOW - US]),
        # step 1 not due yet: step 0 fires however late it is
        "B-alone": ("active", [NOW - timedelta(days=2), NOW + US]),
        # a ladder that no longer runs: its steps are cancelled, no state is read
        "B-acked": ("acked", [NOW - timedelta(hours=1)]),
    }
    async with pool.acquire() as conn:
        for ticket, (status, steps) in cases.items():
            await _ticket(conn, ticket)
            await _ladder(conn, ticket, status, steps)
    seen: list[tuple[str, int, TicketState | None]] = []

    def fire_fn(*, timer, ladder, state, linked):  # type: ignore[no-untyped-def]
        assert ladder.ticket == timer.ticket and ladder.status == "active"
        seen.append((timer.ticket, timer.step, state))
        return []

    out = await store.fire_due(NOW, 100, fire_fn, FirePolicy(grace=GRACE))
    assert sorted((t, s) for t, s, _ in seen) == [
        ("B-alone", 0), ("B-in", 0), ("B-in", 1), ("B-past", 1),
    ]  # fmt: skip
    assert (out.fired, out.superseded, out.cancelled) == (4, 1, 1)
    assert all(state is not None and state.ticket == t for t, _, state in seen)
    assert store.state_reads == 0
    async with pool.acquire() as conn:
        marks = dict(await conn.fetch("SELECT ticket || ':' || step, status FROM timers"))
    assert marks == {
        "B-in:0": "fired", "B-in:1": "fired", "B-past:0": "superseded", "B-past:1": "fired",
        "B-alone:0": "fired", "B-alone:1": "pending", "B-acked:0": "cancelled",
    }  # fmt: skip


async def test_a_firing_ticket_with_no_stored_state_fires_without_one(pool: asyncpg.Pool) -> None:
    store = PgStore(pool)
    async with pool.acquire() as conn:
        await _ticket(conn, "N-1", stored=False)
        await _ladder(conn, "N-1", "active", [NOW - timedelta(minutes=1)])
        await _ticket(conn, "N-2")
        await _ladder(conn, "N-2", "active", [NOW - timedelta(minutes=2)])
    seen: dict[str, TicketState | None] = {}

    def fire_fn(*, timer, ladder, state, linked):  # type: ignore[no-untyped-def]
        seen[timer.ticket] = state
        return []

    out = await store.fire_due(NOW, 100, fire_fn, FirePolicy(grace=GRACE))
    assert out.fired == 2
    assert seen["N-1"] is None
    assert seen["N-2"] is not None and seen["N-2"].ticket == "N-2"
    assert store.state_reads == 1  # N-1's state was looked for again, and is not there
