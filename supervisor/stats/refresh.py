"""Keeps the stats_* fact tables up to date with `events`, incrementally (the imperative shell).

Only tickets with events stored since the last refresh are derived again (supervisor.stats.facts),
in batches, each batch replacing its tickets' rows in one transaction. A change of the deadline
rules (their fingerprint) derives every ticket again. An advisory lock lets one refresh run at a
time across daemons and commands.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import asyncpg

from supervisor.core.events import event_from_store
from supervisor.engine.policy import Policy
from supervisor.stats.facts import COLUMNS, rows, ticket_facts

REFRESH_LOCK = 7_345_345_010
BATCH = 2000
# A transaction that took a sequence number before the last refresh may commit after it: tickets
# with events received this long before the last refresh are looked at again.
SLACK = timedelta(minutes=2)


_TOUCHED = """
SELECT DISTINCT ticket FROM events
WHERE seq > $1 OR ($2::timestamptz IS NOT NULL AND received_at > $2::timestamptz)
"""
_EVENTS = "SELECT id, ticket, type, at, data FROM events WHERE ticket = ANY($1::text[]) ORDER BY ticket, at, seq"
# 答复一次通过率's facts (migration 024, which fills them for the events stored before it): the
# first reply with text of each handling of the tickets, a re-opening starting a new one. In the
# order of time, a re-opening before a reply of the same instant, then id; a reply is its
# handling's first when the event just before it (of these two kinds) is no reply.
FIRST_REPLIES = "stats_first_replies"
_FIRST_REPLIES = """
INSERT INTO stats_first_replies (event_id, ticket, at, unit)
SELECT id, ticket, at, unit
FROM (SELECT e.id, e.ticket, e.at, e.type, e.data->>'unit' AS unit,
             lag(e.type) OVER (PARTITION BY e.ticket ORDER BY e.at, e.type <> 'reopened', e.id) AS before
      FROM events e
      WHERE ((e.type = 'replied' AND e.data ? 'text') OR e.type = 'reopened') AND e.ticket = ANY($1::text[])) r
WHERE type = 'replied' AND before IS DISTINCT FROM 'replied'
"""


async def refresh(pool: asyncpg.Pool, policy: Policy, *, batch: int = BATCH) -> int:
    """Bring the facts up to date; returns how many tickets were derived."""
    fp = policy.fingerprint  # what the facts depend on besides the events
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", REFRESH_LOCK)
        try:
            row = await conn.fetchrow("SELECT last_seq, policy, refreshed_at FROM stats_refresh")
            top = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events")
            if row is None or row["policy"] != fp:
                last_seq, since = 0, None
                async with conn.transaction():
                    for table in (*COLUMNS, FIRST_REPLIES):
                        await conn.execute(f"TRUNCATE {table}")
            else:
                last_seq, since = row["last_seq"], row["refreshed_at"] - SLACK
            tickets = [r["ticket"] for r in await conn.fetch(_TOUCHED, last_seq, since)]
            for i in range(0, len(tickets), batch):
                await _derive(conn, tickets[i : i + batch], policy)
            await conn.execute(
                """INSERT INTO stats_refresh (id, last_seq, policy, refreshed_at) VALUES (1, $1, $2, now())
                   ON CONFLICT (id) DO UPDATE SET last_seq = $1, policy = $2, refreshed_at = now()""",
                top,
                fp,
            )
            return len(tickets)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", REFRESH_LOCK)


async def _derive(conn: asyncpg.Connection, tickets: list[str], policy: Policy) -> None:
    by_ticket = defaultdict(list)
    for r in await conn.fetch(_EVENTS, tickets):
        by_ticket[r["ticket"]].append(
            event_from_store(r["id"], r["ticket"], r["type"], r["at"], r["data"])
        )
    out: dict[str, list[tuple]] = {table: [] for table in COLUMNS}
    for ticket, events in by_ticket.items():
        for table, table_rows in rows(ticket_facts(ticket, events, policy)).items():
            out[table].extend(table_rows)
    async with conn.transaction():
        for table in (*COLUMNS, FIRST_REPLIES):
            await conn.execute(f"DELETE FROM {table} WHERE ticket = ANY($1::text[])", tickets)
        for table, cols in COLUMNS.items():
            if out[table]:
                await conn.copy_records_to_table(table, records=out[table], columns=list(cols))
        await conn.execute(_FIRST_REPLIES, tickets)  # from the events (their order, as SQL sorts)
