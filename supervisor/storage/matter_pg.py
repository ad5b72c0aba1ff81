"""Same-matter keys in PostgreSQL (table matter_keys, migration 008): store and look up by index.

Kept apart from pg.py so the store's main module only calls in; the matching itself is pure
(supervisor/core/matter.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import asyncpg

from supervisor.core.events import Event
from supervisor.core.matter import Candidate, MatterKey, MatterSpec, matches

LOOKUP = """
SELECT DISTINCT ON (m.ticket) m.ticket, m.created_at, m.caller_hash, m.address_key, m.summary_key
FROM unnest($1::text[], $2::text[]) AS k(kind, key)
JOIN matter_keys m ON m.kind = k.kind AND m.key = k.key
WHERE m.created_at > $3 AND m.created_at <= $4
ORDER BY m.ticket
"""
INSERT = """
INSERT INTO matter_keys (kind, key, ticket, created_at, caller_hash, address_key, summary_key)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[])
ON CONFLICT (kind, key, ticket) DO NOTHING
"""
# Two batches about one matter must see each other: the second waits for the first to commit.
LOCK_KEYS = """
SELECT pg_advisory_xact_lock(7346, k) FROM (SELECT DISTINCT hashtext(h) AS k FROM unnest($1::text[]) AS h ORDER BY 1) AS s
"""


async def candidates(
    conn: asyncpg.Connection, keys: Iterable[MatterKey], lo: datetime, hi: datetime
) -> list[Candidate]:
    keys = list(keys)
    if not keys:
        return []
    rows = await conn.fetch(LOOKUP, [k.kind for k in keys], [k.key for k in keys], lo, hi)
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
    await conn.execute(LOCK_KEYS, all_keys)
    out: dict[str, dict[str, int]] = {}
    for ev, keys in keyed:
        if not keys:
            continue
        found = await candidates(conn, keys, ev.at - spec.horizon, ev.at)
        out[ev.id] = spec.fields(ev.ticket, ev.at, ev.data, found)
        me = spec.candidate(ev.ticket, ev.at, ev.data)
        await conn.execute(
            INSERT,
            [k.kind for k in keys], [k.key for k in keys], [ev.ticket] * len(keys),
            [ev.at] * len(keys), [me.caller] * len(keys), [me.address_key] * len(keys),
            [me.summary_key] * len(keys),
        )  # fmt: skip
    return out


async def linked(
    conn: asyncpg.Connection,
    ticket: str,
    address: str | None,
    grid: str | None,
    summary: str | None,
    created_at: datetime,
    caller: str | None,
    spec: MatterSpec,
    *,
    both_ways: bool = False,
) -> list[tuple[str, datetime, str | None]]:
    """The tickets about the same matter as `ticket` (itself included), oldest first: within the
    horizon before it, and after it too with `both_ways` (the ticket view links both ways)."""
    keys = spec.keys({"address": address, "grid": grid, "summary": summary})
    hi = created_at + (spec.horizon if both_ways else timedelta(0))
    found = await candidates(conn, keys, created_at - spec.horizon, hi)
    same = matches(ticket, address, summary, found, spec.config)
    rows = [(c.ticket, c.at, c.caller) for c in same] + [(ticket, created_at, caller)]
    return sorted(rows, key=lambda r: (r[1], r[0]))
