"""The desk's deadline index: each ticket's computed sign_by / reply_by kept in desk_deadlines.

"Overdue" over a million tickets must be one indexed query, so each ticket's deadlines are kept in
a table. Ingest writes them, in its own transaction, from the deadlines the planner computed
(PgStore._apply, with src_updated_at = the ticket's updated_at). This loop is the safety net: it
reads the tickets changed since its watermark (tickets.updated_at) whose row is missing or stale,
computes their deadlines with the same pure function (deadlines.compute) and upserts them; after a
rules reload (another `policy` fingerprint) it computes the open tickets again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from supervisor.core.state import TicketState
from supervisor.core.workcal import CalendarGapError
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.engine.policy import Policy

log = logging.getLogger("hotline.desk")

# A transaction that began before the watermark but committed after it is still found:
# each pass looks back this far and skips rows whose desk entry is current.
OVERLAP = timedelta(seconds=30)
# Closed tickets keep their row this long (the 单位 page's "deadlines missed this week"), then go:
# the table holds the open tickets and last week's closures, not the whole history, so joining it
# stays cheap with a million tickets.
KEEP_CLOSED = "8 days"
PRUNE_EVERY_S = 600.0

CHANGED = f"""
SELECT t.ticket, t.state, t.status, t.unit, t.updated_at FROM tickets t
LEFT JOIN desk_deadlines d ON d.ticket = t.ticket
WHERE (t.updated_at, t.ticket) > ($1, $2)
  AND (t.status <> 'closed' OR t.updated_at > now() - interval '{KEEP_CLOSED}')
  AND (d.ticket IS NULL OR d.src_updated_at <> t.updated_at OR d.policy <> $3)
ORDER BY t.updated_at, t.ticket
LIMIT $4
"""
STALE_POLICY = """
SELECT t.ticket, t.state, t.status, t.unit, t.updated_at FROM tickets t
JOIN desk_deadlines d ON d.ticket = t.ticket
WHERE t.status <> 'closed' AND d.policy <> $1 AND t.ticket > $2
ORDER BY t.ticket LIMIT $3
"""
UPSERT = """
INSERT INTO desk_deadlines (ticket, sign_by, reply_by, commitment_due, src_updated_at, policy,
                            status, unit, signed_at, replied_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[],
                     $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::timestamptz[],
                     $10::timestamptz[])
ON CONFLICT (ticket) DO UPDATE SET sign_by = EXCLUDED.sign_by, reply_by = EXCLUDED.reply_by,
    status = EXCLUDED.status, unit = EXCLUDED.unit, signed_at = EXCLUDED.signed_at,
    replied_at = EXCLUDED.replied_at,
    commitment_due = EXCLUDED.commitment_due, src_updated_at = EXCLUDED.src_updated_at,
    policy = EXCLUDED.policy
"""
LAST_SEEN = "SELECT max(src_updated_at) FROM desk_deadlines"
NEWEST = "SELECT max(updated_at) FROM tickets"
PRUNE = f"""
DELETE FROM desk_deadlines d USING tickets t
WHERE t.ticket = d.ticket AND t.status = 'closed' AND t.updated_at < now() - interval '{KEEP_CLOSED}'
"""


def compute_row(state: TicketState, policy: Policy) -> tuple[datetime | None, ...]:
    try:
        d = dl.compute(state, policy.deadlines, policy.calendar, state_fields(state))
    except CalendarGapError:
        return (None, None, None)  # the calendar warning says why; the ticket shows no deadline
    return (d.sign_by, d.reply_by, d.commitment_due)


async def _upsert(
    conn: asyncpg.Connection, rows: list[asyncpg.Record], policy: Policy, fp: str
) -> None:
    states = [
        TicketState.from_json(r["state"]) if r["state"].get("ticket") else TicketState(r["ticket"])
        for r in rows
    ]
    computed = [compute_row(s, policy) for s in states]
    await conn.execute(
        UPSERT,
        [r["ticket"] for r in rows],
        [c[0] for c in computed],
        [c[1] for c in computed],
        [c[2] for c in computed],
        [r["updated_at"] for r in rows],
        [fp] * len(rows),
        [r["status"] for r in rows],
        [r["unit"] for r in rows],
        [s.signed_at for s in states],
        [s.replied_at for s in states],
    )


class DeadlineIndex:
    """Keeps desk_deadlines current; `refresh` does one pass (tests call it directly)."""

    def __init__(self, pool: asyncpg.Pool, policy: Callable[[], Policy], batch: int = 2000) -> None:
        self.pool = pool
        self.policy = policy
        self.batch = batch
        self._since: datetime | None = None  # tickets updated before this are indexed
        self._fingerprint: str | None = None
        self._pruned_at = float("-inf")

    async def refresh(self) -> int:
        """One pass: index what changed since the watermark; returns how many rows it wrote."""
        policy = self.policy()
        fp = policy.fingerprint
        done = 0
        async with self.pool.acquire() as conn:
            if self._since is None:
                last = await conn.fetchval(LAST_SEEN)
                self._since = last - OVERLAP if last else _EPOCH
            if self._fingerprint not in (None, fp):
                done += await self._recompute_open(conn, policy, fp)
            self._fingerprint = fp
            # where this pass will have looked up to, matching or not (old closures are skipped
            # by CHANGED, so the last row written can lie far behind)
            top = await conn.fetchval(NEWEST)
            since, after = self._since, ""
            while True:
                rows = await conn.fetch(CHANGED, since, after, fp, self.batch)
                if not rows:
                    break
                await _upsert(conn, rows, policy, fp)
                done += len(rows)
                since, after = rows[-1]["updated_at"], rows[-1]["ticket"]
                if len(rows) < self.batch:
                    break
            self._since = max(self._since, since - OVERLAP, (top or _EPOCH) - OVERLAP)
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                await conn.execute(PRUNE)
                self._pruned_at = time.monotonic()
        return done

    async def _recompute_open(self, conn: asyncpg.Connection, policy: Policy, fp: str) -> int:
        done, last = 0, ""
        while True:
            rows = await conn.fetch(STALE_POLICY, fp, last, self.batch)
            if not rows:
                return done
            await _upsert(conn, rows, policy, fp)
            done += len(rows)
            last = rows[-1]["ticket"]

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, interval_s: float = 1.0) -> None:
        """Refresh every `interval_s` (sooner when woken) until `stop`; errors are logged."""
        while not stop.is_set():
            try:
                await self.refresh()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning(
                    "desk index refresh failed; retrying", extra={"error": type(exc).__name__}
                )
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=interval_s)
            except TimeoutError:
                pass


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
