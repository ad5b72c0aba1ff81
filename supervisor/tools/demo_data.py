"""Demo tickets are tagged by their id prefix (`DEMO-`), so a later plain `run` can tell them from
real work: it stops them firing (and says so), and `run --reset-demo` or `run --demo` deletes
them. Real ticket ids never start with the prefix: the API refuses it outside `run --demo`
(docs/api.md). The daemon's store
is PostgreSQL; the SQL is named in storage/queries.py."""

from __future__ import annotations

import logging
from typing import Any

from supervisor.core.events import DEMO_PREFIX
from supervisor.storage import queries as q
from supervisor.storage.pg import PgStore

log = logging.getLogger("hotline.daemon")
_LIKE = DEMO_PREFIX.replace("-", "\\-") + "%"


async def count_demo(store: PgStore) -> int:
    return int(await store.pool.fetchval(q.COUNT_DEMO, _LIKE))


async def silence_demo(store: PgStore) -> int:
    """Stop the demo tickets' ladders, timers and unsent messages; returns the demo tickets."""
    async with store.pool.acquire() as conn, conn.transaction():
        n = await conn.fetchval(q.COUNT_DEMO, _LIKE)
        await conn.execute(q.SILENCE_DEMO_TIMERS, _LIKE)
        await conn.execute(q.SILENCE_DEMO_OUTBOX, _LIKE)
        await conn.execute(q.SILENCE_DEMO_LADDERS, _LIKE)
    return int(n)


async def purge_demo(store: PgStore) -> int:
    """Delete everything of the demo tickets; returns how many tickets went."""
    async with store.pool.acquire() as conn, conn.transaction():
        n = await conn.fetchval(q.COUNT_DEMO, _LIKE)
        for row in await conn.fetch(q.TICKET_TABLES):
            await conn.execute(q.DELETE_DEMO_ROWS.format(table=row["table_name"]), _LIKE)
    return int(n)


async def demo_messages(store: PgStore) -> list[Any]:
    """The demo tickets' messages, oldest first, for the demo's console."""
    async with store.pool.acquire() as conn:
        return list(await conn.fetch(q.DEMO_MESSAGES, DEMO_PREFIX + "%"))


async def at_start(store: Any, mode: str) -> None:
    """At the daemon's start: "purge" deletes an earlier demo's tickets (`run --demo`,
    `run --reset-demo`); "silence" stops them firing and says how to delete them."""
    if mode == "purge":
        n = await purge_demo(store)
        if n:
            log.info(f"removed {n} demo tickets of an earlier `run --demo`")
    elif await count_demo(store):
        n = await silence_demo(store)
        log.warning(
            f"{n} demo tickets ({DEMO_PREFIX}...) of an earlier `run --demo` are in "
            "the database: their reminders are stopped; `run --reset-demo` deletes them"
        )
