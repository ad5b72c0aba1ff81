"""The storage boundary. PgStore is the real one (asyncpg); MemoryStore (memstore.py) keeps the
same contract in memory for `simulate` and fast unit tests.

A store only moves data. The decisions are made by the two callbacks it is handed, inside its
transaction: `plan_fn` (events -> ladders and timers, planner.plan) and `fire_fn` (a due step ->
notifications, notify.fire_step). So a step's outbox rows are written in the transaction that
marks its timer fired, and a ticket's events, state, ladders and timers change together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from supervisor.core.events import Event, event_from_store
from supervisor.core.firing import Notification
from supervisor.core.matter import MatterSpec
from supervisor.core.planner import Ladder, Plan, TimerSpec
from supervisor.core.state import TicketState
from supervisor.policy.rulebook import Report
from supervisor.storage import matter_pg

# (ticket, events, its ladders, ids of the new events, repeat-call counts, the stored state the
# events fold onto, or None when `events` is the whole history)
PlanFn = Callable[
    [str, list[Event], list[Ladder], set[str], dict[str, dict[str, int]], TicketState | None], Plan
]


@dataclass(frozen=True)
class DueTimer:
    id: int
    ticket: str
    rule: str
    cycle: int
    step: int
    rep: int
    due_at: datetime
    superseded: bool  # a later step of the same ladder is due too and this one is late


# (timer, its ladder, the ticket's state, the tickets linked to it: same caller, same category as
# (ticket, created_at); for same-matter rules, the matter's as (ticket, created_at, caller hash))
FireFn = Callable[[DueTimer, Ladder | None, TicketState | None, list[Any]], list[Notification]]


@dataclass
class IngestOutcome:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)


@dataclass
class FireOutcome:
    fired: int = 0
    cancelled: int = 0
    superseded: int = 0
    notifications: list[Notification] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)


class Store(Protocol):
    async def ingest(
        self,
        events: Sequence[Event],
        plan_fn: PlanFn,
        windows: frozenset[int],
        matter: MatterSpec | None = None,
    ) -> IngestOutcome: ...
    async def fire_due(
        self,
        now: datetime,
        limit: int,
        fire_fn: FireFn,
        grace: timedelta,
        linked_rules: frozenset[str] = frozenset(),
        linked_window: timedelta = timedelta(0),
        matter: MatterSpec | None = None,
    ) -> FireOutcome: ...
    async def next_due(self) -> datetime | None: ...
    async def matter_links(self, ticket: str, matter: MatterSpec) -> list[str]: ...
    async def ack(self, ticket: str, rule: str | None, by: str, via: str, at: datetime) -> int: ...
    async def replan(self, plan_fn: PlanFn) -> int: ...


# --- SQL ---------------------------------------------------------------------------------------

LOCK_TICKETS = """
INSERT INTO tickets (ticket, state, status) SELECT t, '{}'::jsonb, 'new' FROM unnest($1::text[]) AS t
ON CONFLICT (ticket) DO NOTHING;
"""
SELECT_FOR_UPDATE = (
    "SELECT ticket, state FROM tickets WHERE ticket = ANY($1::text[]) ORDER BY ticket FOR UPDATE"
)
INSERT_EVENTS = """
INSERT INTO events (id, ticket, type, at, data)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]::jsonb[])
ON CONFLICT (id) DO NOTHING RETURNING id
"""
LOAD_EVENTS = "SELECT id, ticket, type, at, data FROM events WHERE ticket = ANY($1::text[]) ORDER BY ticket, at, seq"
LOAD_LADDERS = """
SELECT ticket, rule, cycle, anchor_at, trigger_event, status, reason FROM ladders
WHERE ticket = ANY($1::text[]) ORDER BY ticket, rule, cycle
"""
# For each new `created` event: the caller's other tickets in that category within the window.
COUNT_REPEATS = """
SELECT e.id, count(t.ticket) AS n
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS e(id, ticket, hash, category, at)
LEFT JOIN tickets t ON t.caller_hash = e.hash AND t.category IS NOT DISTINCT FROM e.category
     AND t.ticket <> e.ticket AND t.created_at > e.at - $6::interval AND t.created_at <= e.at
GROUP BY e.id
"""
LOCK_CALLERS = """
SELECT pg_advisory_xact_lock(7345, k) FROM (SELECT DISTINCT hashtext(h) AS k FROM unnest($1::text[]) AS h ORDER BY 1) AS s
"""
LINKED = """
SELECT ticket, created_at FROM tickets
WHERE caller_hash = $1 AND category IS NOT DISTINCT FROM $2 AND created_at > $3 AND created_at <= $4
ORDER BY created_at, ticket
"""
UPDATE_TICKETS = """
UPDATE tickets AS t SET state = v.state::jsonb, status = v.status, unit = v.unit, caller_hash = v.caller_hash,
       category = v.category, created_at = v.created_at, updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
     AS v(ticket, state, status, unit, caller_hash, category, created_at)
WHERE t.ticket = v.ticket
"""
INSERT_LADDERS = """
INSERT INTO ladders (ticket, rule, cycle, anchor_at, trigger_event)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::text[])
ON CONFLICT DO NOTHING
"""
STOP_LADDERS = """
UPDATE ladders AS l SET status = v.status, reason = v.reason
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[]) AS v(ticket, rule, cycle, status, reason)
WHERE l.ticket = v.ticket AND l.rule = v.rule AND l.cycle = v.cycle AND l.status = 'active'
"""
CANCEL_TIMERS = """
UPDATE timers AS t SET status = 'cancelled'
FROM unnest($1::text[], $2::text[], $3::int[]) AS v(ticket, rule, cycle)
WHERE t.ticket = v.ticket AND t.rule = v.rule AND t.cycle = v.cycle AND t.status = 'pending'
"""
# A replanned step keeps its row: only a pending one moves. A fired one is never re-armed.
UPSERT_TIMERS = """
INSERT INTO timers (ticket, rule, cycle, step, rep, due_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::timestamptz[])
ON CONFLICT (ticket, rule, cycle, step, rep) DO UPDATE SET due_at = EXCLUDED.due_at
WHERE timers.status = 'pending' AND timers.due_at <> EXCLUDED.due_at
"""
CLAIM_DUE = """
SELECT t.id, t.ticket, t.rule, t.cycle, t.step, t.rep, t.due_at,
       EXISTS (SELECT 1 FROM timers l
               WHERE l.ticket = t.ticket AND l.rule = t.rule AND l.cycle = t.cycle
                 AND (l.step, l.rep) > (t.step, t.rep) AND l.status = 'pending' AND l.due_at <= $1) AS later_due
FROM timers t
WHERE t.status = 'pending' AND t.due_at <= $1
ORDER BY t.due_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
LOAD_STATES = "SELECT ticket, state FROM tickets WHERE ticket = ANY($1::text[])"
MARK_TIMERS = """
UPDATE timers AS t SET status = v.status, fired_at = $1, late_s = v.late_s
FROM unnest($2::bigint[], $3::text[], $4::float8[]) AS v(id, status, late_s)
WHERE t.id = v.id
"""
INSERT_OUTBOX = """
INSERT INTO outbox (ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text, urgent, note, not_before, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[], $14::timestamptz[], $15::timestamptz[])
ON CONFLICT DO NOTHING
"""
NEXT_DUE = "SELECT min(due_at) FROM timers WHERE status = 'pending'"


async def _repeat_counts(
    conn: asyncpg.Connection, created: list[Event], windows: frozenset[int]
) -> dict[str, dict[str, int]]:
    """repeat_calls per window for new `created` events: tickets already stored, plus the other
    tickets created earlier in the same batch (not stored yet), plus this one."""
    counts: dict[str, dict[str, int]] = {e.id: {} for e in created}
    args = (
        [e.id for e in created], [e.ticket for e in created], [e.data["caller_hash"] for e in created],
        [e.data.get("category") for e in created], [e.at for e in created],
    )  # fmt: skip
    for minutes in windows:
        key = f"repeat_calls__{minutes}m"
        stored = {
            r["id"]: r["n"]
            for r in await conn.fetch(COUNT_REPEATS, *args, timedelta(minutes=minutes))
        }
        for e in created:
            lo = e.at - timedelta(minutes=minutes)
            in_batch = {
                o.ticket for o in created
                if o.ticket != e.ticket and o.data["caller_hash"] == e.data["caller_hash"]
                and o.data.get("category") == e.data.get("category") and lo < o.at <= e.at
            }  # fmt: skip
            counts[e.id][key] = 1 + stored.get(e.id, 0) + len(in_batch)
    return counts


def _ladder(row: Any) -> Ladder:
    return Ladder(
        row["ticket"],
        row["rule"],
        row["cycle"],
        row["anchor_at"],
        row["trigger_event"],
        row["status"],
        row["reason"],
    )


class PgStore:
    def __init__(
        self, pool: asyncpg.Pool, not_before: Callable[[Notification], datetime] | None = None
    ) -> None:
        self.pool = pool
        # when a message may go (quiet hours, grouping): the delivery policy decides
        self.not_before = not_before or (lambda n: n.at)

    async def ingest(
        self,
        events: Sequence[Event],
        plan_fn: PlanFn,
        windows: frozenset[int],
        matter: MatterSpec | None = None,
    ) -> IngestOutcome:
        outcome = IngestOutcome()
        if not events:
            return outcome
        unique: dict[str, Event] = {}
        for ev in events:
            if ev.id in unique:
                outcome.duplicates.append(ev.id)
            else:
                unique[ev.id] = ev
        batch = list(unique.values())
        tickets = sorted({e.ticket for e in batch})
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(LOCK_TICKETS, tickets)
            stored = {r["ticket"]: r["state"] for r in await conn.fetch(SELECT_FOR_UPDATE, tickets)}
            new_ids = set(
                r["id"]
                for r in await conn.fetch(
                    INSERT_EVENTS,
                    [e.id for e in batch],
                    [e.ticket for e in batch],
                    [e.type for e in batch],
                    [e.at for e in batch],
                    [json.dumps(e.data, ensure_ascii=False) for e in batch],
                )
            )
            outcome.accepted = [e.id for e in batch if e.id in new_ids]
            outcome.duplicates += [e.id for e in batch if e.id not in new_ids]
            changed = sorted({e.ticket for e in batch if e.id in new_ids})
            if not changed:
                return outcome
            # Events in order after what is stored (the usual case) fold onto the stored state;
            # a late event (earlier than the last one folded) re-folds the ticket's whole history.
            new_by_ticket: dict[str, list[Event]] = {t: [] for t in changed}
            for e in batch:
                if e.id in new_ids:
                    new_by_ticket[e.ticket].append(e)
            starts: dict[str, TicketState | None] = {}
            refold: list[str] = []
            for t in changed:
                state = stored.get(t) or {}
                start = TicketState.from_json(state) if state.get("event_count") else None
                if (
                    start is not None
                    and start.last_event_at is not None
                    and min(e.at for e in new_by_ticket[t]) >= start.last_event_at
                ):
                    starts[t] = start
                else:
                    starts[t] = None
                    refold.append(t)
            all_events: dict[str, list[Event]] = {
                t: ([] if t in refold else new_by_ticket[t]) for t in changed
            }
            if refold:
                for r in await conn.fetch(LOAD_EVENTS, refold):
                    all_events[r["ticket"]].append(
                        event_from_store(r["id"], r["ticket"], r["type"], r["at"], r["data"])
                    )
            ladders: dict[str, list[Ladder]] = {t: [] for t in changed}
            for r in await conn.fetch(LOAD_LADDERS, changed):
                ladders[r["ticket"]].append(_ladder(r))
            created = [
                e
                for e in batch
                if e.id in new_ids and e.type == "created" and e.data.get("caller_hash")
            ]
            if windows and created:
                # Two batches with calls from one caller must see each other: the second waits for
                # the first to commit. Taken after every ticket lock, in one order: no deadlock.
                await conn.execute(LOCK_CALLERS, [e.data["caller_hash"] for e in created])
            counts = await _repeat_counts(conn, created, windows) if windows and created else {}
            if matter is not None and matter.active:  # same matter: matter_pg.py, migration 008
                new_events = [e for e in batch if e.id in new_ids]
                for eid, fields in (
                    await matter_pg.match_created(conn, new_events, matter)
                ).items():
                    counts.setdefault(eid, {}).update(fields)
            plans = {
                t: plan_fn(t, all_events[t], ladders[t], new_ids, counts, starts[t])
                for t in changed
            }
            await self._apply(conn, plans)
            outcome.plans = plans
        return outcome

    async def _apply(self, conn: asyncpg.Connection, plans: dict[str, Plan]) -> None:
        states = [p.state for p in plans.values()]
        await conn.execute(
            UPDATE_TICKETS,
            [s.ticket for s in states],
            [json.dumps(s.to_json(), ensure_ascii=False) for s in states],
            [s.status for s in states],
            [s.unit for s in states],
            [s.caller_hash for s in states],
            [s.category for s in states],
            [s.created_at for s in states],
        )
        opened = [lad for p in plans.values() for lad in p.opened]
        if opened:
            await conn.execute(
                INSERT_LADDERS,
                [x.ticket for x in opened], [x.rule for x in opened], [x.cycle for x in opened],
                [x.anchor_at for x in opened], [x.trigger_event for x in opened],
            )  # fmt: skip
        stopped = [lad for p in plans.values() for lad in p.stopped]
        if stopped:
            args = (
                [x.ticket for x in stopped],
                [x.rule for x in stopped],
                [x.cycle for x in stopped],
            )
            await conn.execute(
                STOP_LADDERS, *args, [x.status for x in stopped], [x.reason for x in stopped]
            )
            await conn.execute(CANCEL_TIMERS, *args)
        timers = [t for p in plans.values() for t in p.timers]
        if timers:
            await self._upsert_timers(conn, timers)

    async def _upsert_timers(self, conn: asyncpg.Connection, timers: Sequence[TimerSpec]) -> None:
        await conn.execute(
            UPSERT_TIMERS,
            [t.ticket for t in timers], [t.rule for t in timers], [t.cycle for t in timers],
            [t.step for t in timers], [t.rep for t in timers], [t.due_at for t in timers],
        )  # fmt: skip

    async def fire_due(
        self,
        now: datetime,
        limit: int,
        fire_fn: FireFn,
        grace: timedelta,
        linked_rules: frozenset[str] = frozenset(),
        linked_window: timedelta = timedelta(0),
        matter: MatterSpec | None = None,
    ) -> FireOutcome:
        out = FireOutcome()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM_DUE, now, limit)
            if not rows:
                return out
            tickets = sorted({r["ticket"] for r in rows})
            states = {
                r["ticket"]: TicketState.from_json(r["state"])
                for r in await conn.fetch(LOAD_STATES, tickets)
            }
            ladders = {
                (r["ticket"], r["rule"], r["cycle"]): _ladder(r)
                for r in await conn.fetch(LOAD_LADDERS, tickets)
            }
            linked: dict[str, list[Any]] = {}
            ids, statuses, lates = [], [], []
            notes: list[Notification] = []
            for r in rows:
                timer = DueTimer(
                    r["id"],
                    r["ticket"],
                    r["rule"],
                    r["cycle"],
                    r["step"],
                    r["rep"],
                    r["due_at"],
                    bool(r["later_due"]) and now - r["due_at"] > grace,
                )
                lad = ladders.get((timer.ticket, timer.rule, timer.cycle))
                late = (now - timer.due_at).total_seconds()
                if lad is None or lad.status != "active":
                    status = "cancelled"
                    out.cancelled += 1
                elif timer.superseded:
                    status = "superseded"
                    out.superseded += 1
                else:
                    state = states.get(timer.ticket)
                    if (
                        matter is not None and timer.rule in matter.rules
                        and state is not None and state.created_at
                    ):  # fmt: skip
                        # same-matter messages list the matter's tickets (matter_pg.py)
                        linked[timer.ticket] = await matter_pg.linked(
                            conn, timer.ticket, state.address, state.grid, state.summary,
                            state.created_at, state.caller_hash, matter,
                        )  # fmt: skip
                    elif (
                        state is not None and state.caller_hash and state.created_at
                        and timer.rule in linked_rules and timer.ticket not in linked
                    ):  # fmt: skip
                        # only for rules whose messages list them (repeat callers), in the window
                        linked[timer.ticket] = [
                            (x["ticket"], x["created_at"])
                            for x in await conn.fetch(
                                LINKED,
                                state.caller_hash,
                                state.category,
                                state.created_at - linked_window,
                                state.created_at,
                            )  # fmt: skip
                        ]
                    produced = fire_fn(timer, lad, state, linked.get(timer.ticket, []))
                    notes.extend(produced)
                    status = "fired"
                    out.fired += 1
                    out.lags_s.append(late)
                ids.append(timer.id)
                statuses.append(status)
                lates.append(late)
            if notes:
                await self._insert_outbox(conn, notes)
            await conn.execute(MARK_TIMERS, now, ids, statuses, lates)
            out.notifications = notes
        return out

    async def _insert_outbox(self, conn: asyncpg.Connection, notes: Sequence[Notification]) -> None:
        await conn.execute(
            INSERT_OUTBOX,
            [n.ticket for n in notes], [n.rule for n in notes], [n.cycle for n in notes], [n.step for n in notes],
            [n.rep for n in notes], [n.role for n in notes], [n.to or "-" for n in notes], [n.name for n in notes],
            [n.address for n in notes], [n.channel for n in notes], [n.text for n in notes], [n.urgent for n in notes],
            [n.note for n in notes], [self.not_before(n) for n in notes], [n.at for n in notes],
        )  # fmt: skip

    async def next_due(self) -> datetime | None:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(NEXT_DUE)

    async def ack(self, ticket: str, rule: str | None, by: str, via: str, at: datetime) -> int:
        """Acknowledge the active ladders of a ticket (one rule, or all): they stop, their pending
        timers and unsent messages are cancelled. Returns how many ladders were acknowledged."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """UPDATE ladders SET status = 'acked', acked_by = $3, acked_at = $4, reason = 'acknowledged via ' || $5
                   WHERE ticket = $1 AND ($2::text IS NULL OR rule = $2) AND status = 'active'
                   RETURNING ticket, rule, cycle""",
                ticket, rule, by, at, via,
            )  # fmt: skip
            for r in rows:
                await conn.execute(
                    "UPDATE timers SET status = 'cancelled' WHERE ticket=$1 AND rule=$2 AND cycle=$3 AND status='pending'",
                    r["ticket"],
                    r["rule"],
                    r["cycle"],
                )
                await conn.execute(
                    "UPDATE outbox SET status = 'cancelled', last_error = 'acknowledged' WHERE ticket=$1 AND rule=$2 AND cycle=$3 AND status='pending'",
                    r["ticket"],
                    r["rule"],
                    r["cycle"],
                )
                await conn.execute(
                    "INSERT INTO acks (ticket, rule, cycle, by_whom, via, at) VALUES ($1,$2,$3,$4,$5,$6)",
                    r["ticket"],
                    r["rule"],
                    r["cycle"],
                    by,
                    via,
                    at,
                )
            return len(rows)

    async def replan(self, plan_fn: PlanFn, batch: int = 500) -> int:
        """Re-derive the ladders and timers of every open ticket (after a rules edit)."""
        done = 0
        last = ""
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                tickets = [r["ticket"] for r in await conn.fetch(
                    "SELECT ticket FROM tickets WHERE status <> 'closed' AND ticket > $1 ORDER BY ticket LIMIT $2 FOR UPDATE", last, batch)]  # fmt: skip
                if not tickets:
                    return done
                last = tickets[-1]
                evs: dict[str, list[Event]] = {t: [] for t in tickets}
                for r in await conn.fetch(LOAD_EVENTS, tickets):
                    evs[r["ticket"]].append(
                        event_from_store(r["id"], r["ticket"], r["type"], r["at"], r["data"])
                    )
                lads: dict[str, list[Ladder]] = {t: [] for t in tickets}
                for r in await conn.fetch(LOAD_LADDERS, tickets):
                    lads[r["ticket"]].append(_ladder(r))
                plans = {t: plan_fn(t, evs[t], lads[t], set(), {}, None) for t in tickets if evs[t]}
                # steps a rules edit removed: their pending rows go
                keep = {
                    (x.ticket, x.rule, x.cycle, x.step, x.rep)
                    for p in plans.values()
                    for x in p.timers
                }
                pending = await conn.fetch(
                    "SELECT id, ticket, rule, cycle, step, rep FROM timers WHERE ticket = ANY($1::text[]) AND status = 'pending'",
                    tickets,
                )
                drop = [
                    r["id"]
                    for r in pending
                    if (r["ticket"], r["rule"], r["cycle"], r["step"], r["rep"]) not in keep
                ]
                if drop:
                    await conn.execute(
                        "UPDATE timers SET status = 'cancelled' WHERE id = ANY($1::bigint[])", drop
                    )
                await self._apply(conn, plans)
                done += len(plans)

    async def matter_links(self, ticket: str, matter: MatterSpec) -> list[str]:
        """The other tickets about the same matter, before and after it (ticket view)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT state FROM tickets WHERE ticket = $1", ticket)
            if row is None:
                return []
            s = TicketState.from_json(row["state"])
            if s.created_at is None:
                return []
            rows = await matter_pg.linked(
                conn, ticket, s.address, s.grid, s.summary, s.created_at, s.caller_hash, matter,
                both_ways=True,
            )  # fmt: skip
        return [t for t, _, _ in rows if t != ticket]

    async def ticket_view(self, ticket: str) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT state, status, caller_hash, category FROM tickets WHERE ticket = $1", ticket
            )
            if row is None:
                return None
            events = await conn.fetch(
                "SELECT id, type, at, data, received_at FROM events WHERE ticket = $1 ORDER BY at, seq",
                ticket,
            )
            ladders = await conn.fetch(
                "SELECT rule, cycle, anchor_at, status, reason, acked_by, acked_at FROM ladders WHERE ticket = $1 ORDER BY rule, cycle",
                ticket,
            )
            timers = await conn.fetch(
                "SELECT rule, cycle, step, rep, due_at, status, fired_at FROM timers WHERE ticket = $1 ORDER BY due_at",
                ticket,
            )
            outbox = await conn.fetch(
                "SELECT rule, cycle, step, role, recipient, channel, text, status, created_at, sent_at FROM outbox WHERE ticket = $1 ORDER BY id",
                ticket,
            )
            linked: list[str] = []
            if row["caller_hash"]:
                linked = [r["ticket"] for r in await conn.fetch(
                    "SELECT ticket FROM tickets WHERE caller_hash = $1 AND category IS NOT DISTINCT FROM $2 AND ticket <> $3 ORDER BY created_at",
                    row["caller_hash"], row["category"], ticket)]  # fmt: skip
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


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}


# What a report reads, filtered in SQL; the report filters again on the decoded state.
REPORT_STATES = {
    "digest": "SELECT state FROM tickets WHERE status IN ('dispatched', 'signed', 'reopened')",
    "look_back": """
        SELECT state FROM tickets
        WHERE ((state->>'dissatisfied_count')::int > 0 OR (state->>'reopened_count')::int > 0)
          AND updated_at > $1
    """,
}


async def run_report(
    store: PgStore, report: Report, period: int, at: datetime, runtime: Any
) -> list[Notification] | None:
    """Run one period of a report once across all daemons: the report_runs key decides who.
    Ticket states are streamed through the report with a cursor, never all held at once."""
    from supervisor.core.reports import builder

    async with store.pool.acquire() as conn, conn.transaction():
        won = await conn.fetchval(
            "INSERT INTO report_runs (report, period) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
            report.id,
            str(period),
        )
        if not won:
            return None
        b = builder(report, at, runtime)
        sql = REPORT_STATES[report.kind]
        args = (at - timedelta(days=31),) if report.kind == "look_back" else ()
        async for r in conn.cursor(sql, *args, prefetch=2000):
            b.add(TicketState.from_json(r["state"]))
        notes = b.finish()
        if notes:
            await store._insert_outbox(conn, notes)
        return notes
