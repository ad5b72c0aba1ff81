"""The same-matter half of PgStore: matter keys in PostgreSQL (table matter_keys, migration 008),
stored and looked up by index. The statements are in queries.py (MATTER_*); the matching itself is
pure (supervisor/core/matter.py). PgStore's ingest and fire_due call in here inside their own
transactions; `matter_links` serves the ticket view."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import asyncpg

from supervisor.core.events import Event
from supervisor.core.matter import Candidate, MatterKey, MatterSpec, matches
from supervisor.core.state import TicketState
from supervisor.storage import queries as q
from supervisor.storage.base import LinkedTicket


async def candidates(
    conn: asyncpg.Connection, keys: Iterable[MatterKey], lo: datetime, hi: datetime
) -> list[Candidate]:
    """Tickets stored under any of `keys`, created in (lo, hi]."""
    keys = list(keys)
    if not keys:
        return []
    rows = await conn.fetch(q.MATTER_LOOKUP, [k.kind for k in keys], [k.key for k in keys], lo, hi)
    return [
        Candidate(
            r["ticket"], r["created_at"], r["caller_hash"], r["address_key"], r["summary_key"]
        )
        for r in rows
    ]


async def match_created(
    conn: asyncpg.Connection, events: Sequence[Event], spec: MatterSpec
) -> dict[str, dict[str, int]]:
    """For the new `created` events: the same-matter counts per event id, and their keys stored
    (in time order, so a batch's earlier tickets count for its later ones)."""
    created = sorted((e for e in events if e.type == "created"), key=lambda e: e.at)
    keyed = [(e, spec.keys(e.data)) for e in created]
    all_keys = sorted({f"{k.kind}:{k.key}" for _, keys in keyed for k in keys})
    if not all_keys:
        return {}
    await conn.execute(q.MATTER_LOCK_KEYS, all_keys)
    out: dict[str, dict[str, int]] = {}
    for ev, keys in keyed:
        if not keys:
            continue
        found = await candidates(conn, keys, ev.at - spec.horizon, ev.at)
        out[ev.id] = spec.fields(ev.ticket, ev.at, ev.data, found)
        me = spec.candidate(ev.ticket, ev.at, ev.data)
        await conn.execute(
            q.MATTER_INSERT,
            [k.kind for k in keys], [k.key for k in keys], [ev.ticket] * len(keys),
            [ev.at] * len(keys), [me.caller] * len(keys), [me.address_key] * len(keys),
            [me.summary_key] * len(keys),
        )  # fmt: skip
    return out


async def matter_linked(
    conn: asyncpg.Connection,
    state: TicketState,
    spec: MatterSpec,
    *,
    both_ways: bool = False,
) -> list[LinkedTicket]:
    """The tickets about the same matter as `state`'s ticket (itself included), oldest first:
    within the horizon before it, and after it too with `both_ways` (the ticket view links both
    ways). Empty for a ticket not created yet."""
    if state.created_at is None:
        return []
    keys = spec.keys({"address": state.address, "grid": state.grid, "summary": state.summary})
    hi = state.created_at + (spec.horizon if both_ways else timedelta(0))
    found = await candidates(conn, keys, state.created_at - spec.horizon, hi)
    same = matches(state.ticket, state.address, state.summary, found, spec.config)
    rows = [LinkedTicket(c.ticket, c.at, c.caller) for c in same]
    rows.append(LinkedTicket(state.ticket, state.created_at, state.caller_hash))
    return sorted(rows, key=lambda r: (r.created_at, r.ticket))


class PgMatter:
    pool: asyncpg.Pool

    async def matter_links(self, ticket: str, matter: MatterSpec) -> list[str]:
        """The other tickets about the same matter, before and after it (ticket view)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(q.MATTER_TICKET, ticket)
            if row is None:
                return []
            rows = await matter_linked(
                conn, TicketState.from_json(row["state"]), matter, both_ways=True
            )
        return [r.ticket for r in rows if r.ticket != ticket]
