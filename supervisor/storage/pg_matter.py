"""The same-matter half of PgStore: matter keys in PostgreSQL (table matter_keys, migration 008),
stored and looked up by index. The statements are in queries.py (MATTER_*); the matching itself is
pure (supervisor/core/matter.py). PgStore's ingest and fire_due call in here inside their own
transactions; `matter_links` serves the ticket view."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import asyncpg

from supervisor.core.events import Event
from supervisor.core.matter import Candidate, MatterKey, MatterSpec, NewTicket, match_batch, matches
from supervisor.core.state import TicketState
from supervisor.storage import queries as q
from supervisor.storage.base import LinkedTicket
from supervisor.storage.matter_cache import MatterCache


async def lookup(
    conn: asyncpg.Connection,
    keys: Iterable[MatterKey],
    lo: datetime,
    hi: datetime,
    limit: int,
) -> dict[MatterKey, list[Candidate]]:
    """Per key, the tickets stored under it created in (lo, hi], at most `limit` (the most recent)."""
    keys = sorted(set(keys), key=lambda k: (k.kind, k.key))
    if not keys:
        return {}
    rows = await conn.fetch(
        q.MATTER_LOOKUP, [k.kind for k in keys], [k.key for k in keys], lo, hi, limit
    )
    out: dict[MatterKey, list[Candidate]] = {}
    for r in rows:
        out.setdefault(MatterKey(r["kind"], r["key"]), []).append(
            Candidate(
                r["ticket"], r["created_at"], r["caller_hash"], r["address_key"], r["summary_key"]
            )
        )
    return out


async def match_created(
    conn: asyncpg.Connection,
    events: Sequence[Event],
    spec: MatterSpec,
    cache: MatterCache | None = None,
) -> dict[str, dict[str, int]]:
    """For the new `created` events: the same-matter counts per event id, and their keys stored.
    Three statements per batch: lock the keys, look them up (in `cache`, which reads only what
    was written since it last asked, and which keeps its keys' candidates grouped for matching
    across batches), store the new rows (core.matter's `match_batch` matches in
    between, in time order)."""
    created = [NewTicket(e.id, e.ticket, e.at, e.data) for e in events if e.type == "created"]
    keys = {k for e in created for k in spec.keys(e.data)}
    if not keys:
        return {}
    await conn.execute(q.MATTER_LOCK_KEYS, sorted(f"{k.kind}:{k.key}" for k in keys))
    lo = min(e.at for e in created) - spec.horizon
    hi = max(e.at for e in created)
    limit = spec.config.max_candidates
    if cache is not None:  # keys the cache holds grouped come as they are (`built`)
        found, built = await cache.lookup_grouped(conn, keys, lo, hi, limit)
    else:
        found, built = await lookup(conn, keys, lo, hi, limit), {}
    out, rows = match_batch(spec, created, found, built)
    if rows:
        await conn.execute(
            q.MATTER_INSERT,
            [k.kind for k, _ in rows], [k.key for k, _ in rows], [c.ticket for _, c in rows],
            [c.at for _, c in rows], [c.caller for _, c in rows], [c.address_key for _, c in rows],
            [c.summary_key for _, c in rows],
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
    found = await lookup(conn, keys, state.created_at - spec.horizon, hi, spec.config.max_candidates)
    pool = (c for cs in found.values() for c in cs)
    same = matches(state.ticket, state.address, state.summary, pool, spec.config)
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
