"""The read side of PgStore: the ticket view, periodic reports, heartbeats and the health ping."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from supervisor.core.state import TicketState
from supervisor.engine.firing import Notification
from supervisor.policy.rulebook import Report
from supervisor.storage import queries as q
from supervisor.storage.pg_outbox import PgOutbox


class PgReads(PgOutbox):
    async def ticket_view(self, ticket: str) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(q.VIEW_TICKET, ticket)
            if row is None:
                return None
            events = await conn.fetch(q.VIEW_EVENTS, ticket)
            ladders = await conn.fetch(q.VIEW_LADDERS, ticket)
            timers = await conn.fetch(q.VIEW_TIMERS, ticket)
            outbox = await conn.fetch(q.VIEW_OUTBOX, ticket)
            linked: list[str] = []
            if row["caller_hash"]:
                linked = [r["ticket"] for r in await conn.fetch(
                    q.VIEW_LINKED, row["caller_hash"], row["category"], ticket)]  # fmt: skip
        state = dict(row["state"])
        state.pop("caller_hash", None)  # matching key: not for display
        return {
            "ticket": ticket,
            "state": state,
            "linked": linked,
            "timeline": [
                {
                    "id": e["id"],
                    "type": e["type"],
                    "at": e["at"].isoformat(),
                    **{k: v for k, v in e["data"].items() if k != "caller_hash"},
                }
                for e in events
            ],
            "ladders": [_jsonable(dict(r)) for r in ladders],
            "timers": [_jsonable(dict(r)) for r in timers],
            "messages": [_jsonable(dict(r)) for r in outbox],
        }

    async def run_report(
        self, report: Report, period: int | str, at: datetime, runtime: Any
    ) -> list[Notification] | None:
        """Run one period of a report once across all daemons: the report_runs key decides who.
        Ticket states are streamed through the report with a cursor, never all held at once."""
        from supervisor.engine.reports import builder

        if report.kind == "monthly_stats":  # SQL aggregates, not ticket states: supervisor/stats
            from supervisor.stats.scheduled import run_monthly

            return await run_monthly(self, report, period, at, runtime)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(q.CLAIM_REPORT_RUN, report.id, str(period)):
                return None
            b = builder(report, at, runtime)
            args = (at - timedelta(days=31),) if report.kind == "look_back" else ()
            async for r in conn.cursor(q.REPORT_STATES[report.kind], *args, prefetch=2000):
                b.add(TicketState.from_json(r["state"]))
            notes = b.finish()
            if notes:
                await self._insert_outbox(
                    conn,
                    notes,
                    getattr(runtime, "delivery", None),
                    getattr(runtime, "workday", None),
                )
            return notes

    async def heartbeat(self, daemon: str, at: datetime) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(q.HEARTBEAT, daemon, at)

    async def ping(self) -> None:
        async with self.pool.acquire(timeout=3) as conn:
            await conn.fetchval(q.PING)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}
