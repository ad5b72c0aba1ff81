"""Demo tickets are tagged by their id prefix (`DEMO-`), so a later plain `run` can tell them from
real work: it stops them firing (and says so), and `run --reset-demo` or `run --demo` deletes
them. Real ticket ids never start with the prefix (docs/api.md reserves it)."""

from __future__ import annotations

import asyncpg

DEMO_PREFIX = "DEMO-"
_LIKE = DEMO_PREFIX.replace("-", "\\-") + "%"

# Every table with a `ticket` column holds per-ticket data (no foreign keys tie them).
_TABLES = """
SELECT table_name FROM information_schema.columns
WHERE column_name = 'ticket' AND table_schema = current_schema()
  AND table_name IN (SELECT table_name FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE')
ORDER BY table_name
"""


async def count_demo(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM tickets WHERE ticket LIKE $1", _LIKE))


async def silence_demo(pool: asyncpg.Pool) -> int:
    """Stop the demo tickets' ladders, timers and unsent messages; returns the demo tickets."""
    async with pool.acquire() as conn, conn.transaction():
        n = await conn.fetchval("SELECT count(*) FROM tickets WHERE ticket LIKE $1", _LIKE)
        await conn.execute(
            "UPDATE timers SET status = 'cancelled' WHERE ticket LIKE $1 AND status = 'pending'",
            _LIKE,
        )
        await conn.execute(
            "UPDATE outbox SET status = 'cancelled', last_error = 'demo data' WHERE ticket LIKE $1 AND status = 'pending'",
            _LIKE,
        )
        await conn.execute(
            "UPDATE ladders SET status = 'stopped', reason = 'demo data' WHERE ticket LIKE $1 AND status = 'active'",
            _LIKE,
        )
    return int(n)


async def purge_demo(pool: asyncpg.Pool) -> int:
    """Delete everything of the demo tickets; returns how many tickets went."""
    async with pool.acquire() as conn, conn.transaction():
        n = await conn.fetchval("SELECT count(*) FROM tickets WHERE ticket LIKE $1", _LIKE)
        for row in await conn.fetch(_TABLES):
            table = row["table_name"]
            await conn.execute(f'DELETE FROM "{table}" WHERE ticket LIKE $1', _LIKE)
    return int(n)
