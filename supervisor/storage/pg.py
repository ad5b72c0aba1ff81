"""The PostgreSQL store (asyncpg): tickets, ladders and timers; the outbox is in pg_outbox.py,
the ticket view, reports and heartbeats in pg_reads.py, the same-matter half in pg_matter.py. The
SQL is in queries.py; the decisions come from the core (see base.py)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from supervisor.core.acks import AckScope
from supervisor.core.events import Event, event_from_store
from supervisor.core.matter import MatterSpec
from supervisor.core.state import TicketState
from supervisor.engine import timers as timer_rules
from supervisor.engine.firing import Notification
from supervisor.engine.planner import Ladder, Plan, TimerSpec, ladder
from supervisor.storage import queries as q
from supervisor.storage.base import (
    AckSubject,
    DueTimer,
    FireFn,
    FireOutcome,
    FirePolicy,
    FollowUp,
    IngestOutcome,
    Lane,
    LinkedTicket,
    PlanFn,
)
from supervisor.storage.jsoncodec import dumps, loads_jsonb, read_back, state_text
from supervisor.storage.matter_cache import MatterCache
from supervisor.storage.pg_matter import PgMatter, match_created, matter_linked
from supervisor.storage.pg_reads import PgReads
from supervisor.storage.turns import TicketTurns, Turn


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
    # the batch's calls per (caller, category): an import's batch holds a thousand new tickets,
    # and comparing each with every other was most of its time
    same: dict[tuple[str, Any], list[Event]] = {}
    for e in created:
        same.setdefault((e.data["caller_hash"], e.data.get("category")), []).append(e)
    for minutes in windows:
        key = f"repeat_calls__{minutes}m"
        stored = {
            r["id"]: r["n"]
            for r in await conn.fetch(q.COUNT_REPEATS, *args, timedelta(minutes=minutes))
        }
        for e in created:
            lo = e.at - timedelta(minutes=minutes)
            group = same[(e.data["caller_hash"], e.data.get("category"))]
            in_batch = {o.ticket for o in group if o.ticket != e.ticket and lo < o.at <= e.at}
            counts[e.id][key] = 1 + stored.get(e.id, 0) + len(in_batch)
    return counts


class StateCache:
    """The ticket states this process wrote, each with the id (xid8) of the transaction that
    wrote it, most recently used last. A batch asks the table for a held ticket's state only if
    another transaction wrote the row since (its xmin differs): another daemon, a replan, a
    rolled-back write here never counts. Held as `jsoncodec.read_back` gives them, so a batch
    folds onto exactly what reading the row would give. At most `limit` tickets (about 3 KB
    each)."""

    # an xmin is 32 bits: a held version is compared only while fewer transactions than that
    # have begun since, so that no later writer can carry the same number
    SPAN = 1 << 31

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._held: OrderedDict[str, tuple[int, TicketState]] = OrderedDict()

    def lookup(self, tickets: Sequence[str], xid: int) -> dict[str, tuple[int, TicketState]]:
        """The held (xid, state) of `tickets` still comparable in transaction `xid`."""
        held = self._held
        out = {}
        for t in tickets:
            entry = held.get(t)
            if entry is not None and xid - entry[0] < self.SPAN:
                out[t] = entry
        return out

    def store(self, states: Sequence[TicketState], xid: int) -> None:
        """States transaction `xid` wrote and committed."""
        held = self._held
        for state in states:
            back = read_back(state)
            if back is None:
                held.pop(state.ticket, None)
                continue
            old = held.get(state.ticket)
            if old is None or old[0] < xid:
                held[state.ticket] = (xid, back)
                held.move_to_end(state.ticket)
        while len(held) > self.limit:
            held.popitem(last=False)


# How long the second half of a batch waits for this process's earlier batches (turns.py).
# They end in well under a second; a longer wait means a circle through another daemon or a
# replan (which PostgreSQL cannot see), broken by rolling back and storing in one step.
TURN_WAIT_S = 3.0


class _Taken(Exception):
    """A lock the second half of a batch needs is held by another transaction."""


def _halves(
    events: Sequence[Event], contended: frozenset[str]
) -> tuple[list[Event], list[Event]] | None:
    """The batch split for `PgStore.ingest`: the events of the tickets no earlier batch of this
    process holds, then the others; None when there is nothing to split. A ticket with a
    `created` event goes second: the repeat-call counts and same-matter matching of new
    tickets lock callers and matter keys (queries.LOCK_CALLERS, MATTER_LOCK_KEYS), which every
    transaction takes after all of its tickets' locks (so no two wait for each other)."""
    if not contended:
        return None
    late = set(contended)
    late.update(e.ticket for e in events if e.type == "created")
    first: list[Event] = []
    second: list[Event] = []
    for e in events:
        (second if e.ticket in late else first).append(e)
    return (first, second) if first and second else None


# From this many events a batch is staged with COPY (imports); below, one INSERT of arrays.
STAGE_FROM = 2000


async def _insert_events(conn: asyncpg.Connection, batch: Sequence[Event]) -> set[str]:
    """Store the events not stored yet; returns the ids stored now."""
    if len(batch) >= STAGE_FROM:
        await conn.execute(q.STAGE_EVENTS)
        await conn.copy_records_to_table(
            "events_stage",
            records=[(e.id, e.ticket, e.type, e.at, dumps(e.data)) for e in batch],
        )
        return {r["id"] for r in await conn.fetch(q.INSERT_STAGED_EVENTS)}
    rows = await conn.fetch(
        q.INSERT_EVENTS,
        [e.id for e in batch],
        [e.ticket for e in batch],
        [e.type for e in batch],
        [e.at for e in batch],
        [dumps(e.data) for e in batch],
    )
    return {r["id"] for r in rows}


async def _events_of(conn: asyncpg.Connection, tickets: list[str]) -> dict[str, list[Event]]:
    """The stored events of `tickets`, each ticket's in order."""
    out: dict[str, list[Event]] = {t: [] for t in tickets}
    for r in await conn.fetch(q.LOAD_EVENTS, tickets):
        out[r["ticket"]].append(event_from_store(r["id"], r["ticket"], r["type"], r["at"], r["data"]))
    return out


async def _ladders_of(conn: asyncpg.Connection, tickets: list[str]) -> dict[str, list[Ladder]]:
    """The ladders of `tickets`."""
    out: dict[str, list[Ladder]] = {t: [] for t in tickets}
    for r in await conn.fetch(q.LOAD_LADDERS, tickets):
        out[r["ticket"]].append(_ladder(r))
    return out


def _ladder(row: Any) -> Ladder:
    return ladder(
        row["ticket"],
        row["rule"],
        row["cycle"],
        row["anchor_at"],
        row["trigger_event"],
        row["status"],
        row["reason"],
    )


def _due_timer(row: Any, superseded: bool) -> DueTimer:
    """DueTimer(...) of a claimed row, built without the frozen dataclass's __init__ (which sets
    each of its 8 fields through object.__setattr__): every field, in field order, so the object
    is the same (eq, repr)."""
    t = _new(DueTimer)
    t.__dict__.update(
        id=row["id"], ticket=row["ticket"], rule=row["rule"], cycle=row["cycle"],
        step=row["step"], rep=row["rep"], due_at=row["due_at"], superseded=superseded,
    )  # fmt: skip
    return t


_new = object.__new__


class PgStore(PgMatter, PgReads):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.matter_cache = MatterCache()
        self.states = StateCache()
        self.turns = TicketTurns()
        self.fallbacks = 0  # split batches stored in one step after all (_Taken)
        self.state_reads = 0  # fire_due batches that read firing states apart from the claim

    async def ingest(
        self,
        events: Sequence[Event],
        plan_fn: PlanFn,
        windows: frozenset[int],
        matter: MatterSpec | None = None,
        follow_up: FollowUp | None = None,
    ) -> IngestOutcome:
        if not events:
            return IngestOutcome()
        turn = self.turns.enter({e.ticket for e in events})
        try:
            halves = _halves(events, turn.contended)
            if halves is not None:
                try:
                    return await self._ingest_tx(
                        events, plan_fn, windows, matter, follow_up, turn, halves
                    )
                except _Taken:
                    self.fallbacks += 1  # stored below in one step, as if never split
            # in one step: after this process's earlier batches about these tickets (holding no
            # lock while it waits, it is in no one's way), so that they are stored in the order
            # they came (PostgreSQL's lock queues alone may let a later batch overtake)
            await turn.wait(None)
            return await self._ingest_tx(events, plan_fn, windows, matter, follow_up, turn, None)
        finally:
            self.turns.leave(turn)

    async def _ingest_tx(
        self,
        events: Sequence[Event],
        plan_fn: PlanFn,
        windows: frozenset[int],
        matter: MatterSpec | None,
        follow_up: FollowUp | None,
        turn: Turn,
        halves: tuple[list[Event], list[Event]] | None,
    ) -> IngestOutcome:
        """The batch in one transaction. With `halves` (turns.py), the tickets no earlier batch
        of this process has in flight are stored and planned first, while those batches run;
        then, once they have ended, the rest. Holding the first half's locks, the batch never
        waits for PostgreSQL: the rest's locks must be free (else `_Taken`, the transaction is
        rolled back and the caller stores the batch in one step), and the wait for the earlier
        batches is bounded (TURN_WAIT_S), so no wait that PostgreSQL cannot see closes a
        circle for long."""
        outcome = IngestOutcome()
        async with self.pool.acquire() as conn, conn.transaction():
            xid = await conn.fetchval(q.CURRENT_XID)
            if halves is None:
                plans = await self._ingest_on(conn, xid, events, plan_fn, windows, matter, outcome)
            else:
                first, second = halves
                plans = await self._ingest_on(conn, xid, first, plan_fn, windows, matter, outcome)
                if not await turn.wait(TURN_WAIT_S):
                    raise _Taken
                later = IngestOutcome()
                plans |= await self._ingest_on(
                    conn, xid, second, plan_fn, windows, matter, later, wait=False
                )
                outcome.accepted += later.accepted
                outcome.duplicates += later.duplicates
            outcome.plans = plans
            written = dict(plans)
            more, more_plan = follow_up() if follow_up is not None else ((), plan_fn)
            if more:  # the review's findings, in this transaction (base.FollowUp)
                written |= await self._ingest_on(
                    conn, xid, more, more_plan, windows, None, IngestOutcome()
                )
        # committed: the states this transaction wrote are what the rows hold, until changed
        self.states.store([p.state for p in written.values()], xid)
        return outcome

    async def _ingest_on(
        self,
        conn: asyncpg.Connection,
        xid: int,
        events: Sequence[Event],
        plan_fn: PlanFn,
        windows: frozenset[int],
        matter: MatterSpec | None,
        outcome: IngestOutcome,
        wait: bool = True,
    ) -> dict[str, Plan]:
        """One batch in transaction `xid`: its events stored, its changed tickets planned and
        written; `outcome` told what was new. Returns the plans written. `wait=False`: raise
        `_Taken` rather than wait for a ticket's lock."""
        unique: dict[str, Event] = {}
        for ev in events:
            if ev.id in unique:
                outcome.duplicates.append(ev.id)
            else:
                unique[ev.id] = ev
        batch = list(unique.values())
        tickets = sorted({e.ticket for e in batch})
        if wait:
            await conn.execute(q.LOCK_TICKETS, tickets)
        elif not await conn.fetchval(q.TRY_LOCK_TICKETS, tickets):
            raise _Taken
        held = self.states.lookup(tickets, xid)
        versions = [held[t][0] & 0xFFFFFFFF if t in held else None for t in tickets]
        # the row's state, or None where this process holds what the row has (`held`)
        try:
            rows = await conn.fetch(
                q.SELECT_FOR_UPDATE if wait else q.SELECT_FOR_UPDATE_NOWAIT, tickets, versions
            )
        except asyncpg.exceptions.LockNotAvailableError:
            raise _Taken from None
        stored = {r["ticket"]: r["state"] for r in rows}
        new_ids = await _insert_events(conn, batch)
        outcome.accepted = [e.id for e in batch if e.id in new_ids]
        outcome.duplicates += [e.id for e in batch if e.id not in new_ids]
        changed = sorted({e.ticket for e in batch if e.id in new_ids})
        if not changed:
            return {}
        # Events in order after what is stored (the usual case) fold onto the stored state;
        # a late event (earlier than the last one folded) re-folds the ticket's whole history.
        new_by_ticket: dict[str, list[Event]] = {t: [] for t in changed}
        for e in batch:
            if e.id in new_ids:
                new_by_ticket[e.ticket].append(e)
        # A ticket with no folded state has no events stored before this batch (state and
        # events change in one transaction): its history is the new events, nothing to load.
        starts: dict[str, TicketState | None] = {}
        refold: list[str] = []
        for t in changed:
            state = stored.get(t)
            if state is None and t in stored:  # the row has what this process holds
                start: TicketState | None = held[t][1]
            elif state and state.get("event_count"):
                start = TicketState.from_json(state)
            else:
                start = None
            if start is not None and not start.event_count:
                start = None
            if start is None:
                starts[t] = None
            elif (
                start.last_event_at is not None
                and min(e.at for e in new_by_ticket[t]) >= start.last_event_at
            ):
                starts[t] = start
            else:
                starts[t] = None
                refold.append(t)
        refolding = set(refold)
        all_events: dict[str, list[Event]] = {
            t: ([] if t in refolding else new_by_ticket[t]) for t in changed
        }
        if refold:
            all_events |= await _events_of(conn, refold)
        ladders = await _ladders_of(conn, changed)
        created = [
            e
            for e in batch
            if e.id in new_ids and e.type == "created" and e.data.get("caller_hash")
        ]
        if windows and created:
            # Two batches with calls from one caller must see each other: the second waits for
            # the first to commit. Taken after every ticket lock, in one order: no deadlock.
            await conn.execute(q.LOCK_CALLERS, [e.data["caller_hash"] for e in created])
        counts = await _repeat_counts(conn, created, windows) if windows and created else {}
        if matter is not None and matter.active:  # same matter: pg_matter.py, migration 008
            new_events = [e for e in batch if e.id in new_ids]
            found = await match_created(conn, new_events, matter, self.matter_cache)
            for eid, fields in found.items():
                counts.setdefault(eid, {}).update(fields)
        plans = {
            t: plan_fn(
                ticket=t,
                events=all_events[t],
                ladders=ladders[t],
                new_ids=new_ids,
                repeat_counts=counts,
                start=starts[t],
            )  # fmt: skip
            for t in changed
        }
        await self._apply(conn, plans, stored)
        return plans

    async def _apply(
        self,
        conn: asyncpg.Connection,
        plans: dict[str, Plan],
        stored: Collection[str] | None = None,
    ) -> None:
        """Write the plans. `stored`: the tickets that have a row (the others are inserted);
        None: every one has (a replan)."""
        states = [p.state for p in plans.values()]
        for sql, part in (
            (q.UPDATE_TICKETS, [s for s in states if stored is None or s.ticket in stored]),
            (q.INSERT_TICKETS, [s for s in states if stored is not None and s.ticket not in stored]),
        ):
            if part:
                await conn.execute(
                    sql,
                    [s.ticket for s in part],
                    [state_text(s) for s in part],
                    [s.status for s in part],
                    [s.unit for s in part],
                    [s.caller_hash for s in part],
                    [s.category for s in part],
                    [s.created_at for s in part],
                )
        ps = list(plans.values())
        await conn.execute(
            q.UPSERT_DESK_DEADLINES,
            [p.state.ticket for p in ps], [p.deadlines.sign_by for p in ps],
            [p.deadlines.reply_by for p in ps], [p.deadlines.commitment_due for p in ps],
            [p.policy for p in ps], [p.state.status for p in ps], [p.state.unit for p in ps],
            [p.state.signed_at for p in ps], [p.state.replied_at for p in ps],
        )  # fmt: skip
        opened = [lad for p in plans.values() for lad in p.opened]
        if opened:
            await conn.execute(
                q.INSERT_LADDERS,
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
                q.STOP_LADDERS, *args, [x.status for x in stopped], [x.reason for x in stopped]
            )
            await conn.execute(q.CANCEL_TIMERS, *args)
        timers = [t for p in plans.values() for t in p.timers]
        if timers:
            # the ticket's urgency orders the scheduler's claims (urgent first)
            urgent = {p.state.ticket: bool(p.state.urgent) for p in plans.values()}
            await self._upsert_timers(conn, timers, urgent)

    async def _upsert_timers(
        self, conn: asyncpg.Connection, timers: Sequence[TimerSpec], urgent: dict[str, bool]
    ) -> None:
        await conn.execute(
            q.UPSERT_TIMERS,
            [t.ticket for t in timers], [t.rule for t in timers], [t.cycle for t in timers],
            [t.step for t in timers], [t.rep for t in timers], [t.due_at for t in timers],
            [urgent.get(t.ticket, False) for t in timers],
        )  # fmt: skip

    async def fire_due(
        self, now: datetime, limit: int, fire_fn: FireFn, policy: FirePolicy, lane: Lane = None
    ) -> FireOutcome:
        out = FireOutcome()
        async with self.pool.acquire() as conn, conn.transaction():
            grace = policy.grace
            # the claimed timers, each with its active ladder and, where it will fire, its
            # ticket's state (queries.py: CLAIM_DUE)
            rows = await conn.fetch(q.CLAIM_DUE_LANES[lane], now, limit, grace)
            if not rows:
                return out
            ladders: dict[tuple[str, str, int], Ladder] = {}
            raw: dict[str, bytes] = {}
            for r in rows:
                if r["status"] is not None:  # the ladder's: active, or none (NULL)
                    ladders[(r["ticket"], r["rule"], r["cycle"])] = _ladder(r)
                    if r["state"] is not None:
                        raw[r["ticket"]] = r["state"]
            timers = [
                _due_timer(r, bool(r["later_due"]) and timer_rules.past_grace(now, r["due_at"], grace))
                for r in rows
            ]  # fmt: skip
            verdicts = [
                timer_rules.verdict(ladders.get((t.ticket, t.rule, t.cycle)), t.superseded)
                for t in timers
            ]
            firing = {t.ticket for t, v in zip(timers, verdicts, strict=True) if v == "fired"}
            missing = sorted(firing - raw.keys())
            if missing:  # not judged firing by the claim (or no state stored): read here
                self.state_reads += 1
                raw.update((r["ticket"], r["state"]) for r in await conn.fetch(q.LOAD_STATES, missing))
            # decoded once a ticket, as the jsonb codec decodes the value
            states = {t: TicketState.from_json(loads_jsonb(raw[t])) for t in firing if t in raw}
            # per (ticket, kind): the same-matter tickets, or the caller's (repeat callers)
            linked: dict[tuple[str, str], list[LinkedTicket]] = {}
            matter = policy.matter
            ids: list[int] = []
            statuses: list[str] = []
            lates: list[float] = []
            notes: list[Notification] = []
            for timer, status in zip(timers, verdicts, strict=True):
                late = timer_rules.lateness_s(now, timer.due_at)
                if status == "cancelled":
                    out.cancelled += 1
                elif status == "superseded":
                    out.superseded += 1
                else:
                    lad = ladders.get((timer.ticket, timer.rule, timer.cycle))
                    assert lad is not None
                    state = states.get(timer.ticket)
                    kind = (
                        "matter" if matter is not None and timer.rule in matter.rules
                        else "caller" if timer.rule in policy.linked_rules else ""
                    )  # fmt: skip
                    key = (timer.ticket, kind)
                    fetch = kind and state is not None and state.created_at and key not in linked
                    if fetch and matter is not None and kind == "matter":
                        # same-matter messages list the matter's tickets (pg_matter.py)
                        assert state is not None
                        linked[key] = await matter_linked(conn, state, matter)
                    elif fetch and kind == "caller" and state is not None and state.caller_hash:
                        # only for rules whose messages list them (repeat callers), in the window
                        assert state.created_at is not None
                        linked[key] = [
                            LinkedTicket(x["ticket"], x["created_at"])
                            for x in await conn.fetch(
                                q.LINKED,
                                state.caller_hash,
                                state.category,
                                state.created_at - policy.linked_window,
                                state.created_at,
                            )  # fmt: skip
                        ]
                    notes.extend(
                        fire_fn(
                            timer=timer,
                            ladder=lad,
                            state=state,
                            linked=linked.get(key, []),
                        )  # fmt: skip
                    )
                    out.fired += 1
                    out.lags_s.append(late)
                ids.append(timer.id)
                statuses.append(status)
                lates.append(late)
            if notes:  # the messages and the timers' marks in one statement
                marks = (now, ids, statuses, lates)
                await self._insert_outbox(conn, notes, policy.delivery, policy.workday, marks)
            else:
                await conn.execute(q.MARK_TIMERS, now, ids, statuses, lates)
            out.notifications = notes
        return out

    async def next_due(self, lane: Lane = None) -> datetime | None:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(q.NEXT_DUE_LANES[lane])

    async def ack(
        self,
        ticket: str,
        rule: str | None,
        by: str,
        via: str,
        at: datetime,
        scope: AckScope | None = None,
    ) -> int:
        """Acknowledge the active ladders of a ticket (one rule, or all): they stop, their pending
        timers and unsent messages are cancelled. Returns how many ladders were acknowledged.
        With a `scope` (core.acks), only what it covers ends: its whole rules' ladders stop;
        in the others, the covered steps' timers and the covered roles' messages are cancelled
        and the ladder runs on (see docs/RELIABILITY.md)."""
        if scope is not None:
            return await self._ack_scoped(ticket, rule, by, via, at, scope)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(q.ACK_LADDERS, ticket, rule, by, at, via)
            for r in rows:
                key = (r["ticket"], r["rule"], r["cycle"])
                await conn.execute(q.ACK_TIMERS, *key)
                await conn.execute(q.ACK_OUTBOX, *key)
                await conn.execute(q.INSERT_ACK, *key, by, via, at, None)
            return len(rows)

    async def _ack_scoped(
        self, ticket: str, rule: str | None, by: str, via: str, at: datetime, scope: AckScope
    ) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            ladders = await conn.fetch(q.ACK_SCOPE_LADDERS, ticket, rule)
            done = 0
            for r in ladders:
                steps = sorted(scope.steps.get(r["rule"], frozenset()))
                if not steps:
                    continue
                key = (ticket, r["rule"], r["cycle"])
                # the ladder is locked (FOR UPDATE): a parallel repeat waits, then ends nothing
                if set(steps) <= set(await conn.fetchval(q.ACKED_STEPS, *key)):
                    continue  # a repeat: these steps were acknowledged already
                done += 1
                if r["rule"] in scope.whole:
                    await conn.execute(q.ACK_LADDER, *key, by, at, via)
                await conn.execute(q.ACK_STEP_TIMERS, *key, steps)
                await conn.execute(q.ACK_ROLE_OUTBOX, *key, sorted(scope.roles))
                await conn.execute(q.INSERT_ACK, *key, by, via, at, steps)
            return done

    async def ack_subject(self, ticket: str, rule: str | None) -> AckSubject | None:
        async with self.pool.acquire() as conn:
            raw = await conn.fetchval(q.ACK_STATE, ticket)
            if raw is None:
                return None
            rules = [r["rule"] for r in await conn.fetch(q.ACK_OPEN_RULES, ticket, rule)]
            acked = [] if rules else [r["rule"] for r in await conn.fetch(q.ACKED_RULES, ticket, rule)]
        state = TicketState.from_json(dict(raw)) if raw else TicketState(ticket=ticket)
        return AckSubject(state, rules, acked)

    async def stored_events(self, ids: Sequence[str]) -> list[Event]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(q.EVENTS_BY_ID, list(ids))
        return [
            event_from_store(r["id"], r["ticket"], r["type"], r["at"], dict(r["data"]))
            for r in rows
        ]

    async def replan(self, plan_fn: PlanFn, batch: int = 500) -> int:
        """Re-derive the ladders and timers of every open ticket (after a rules edit)."""
        done = 0
        last = ""
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                tickets = [r["ticket"] for r in await conn.fetch(q.OPEN_TICKETS, last, batch)]
                if not tickets:
                    return done
                last = tickets[-1]
                evs = await _events_of(conn, tickets)
                lads = await _ladders_of(conn, tickets)
                plans = {
                    t: plan_fn(
                        ticket=t,
                        events=evs[t],
                        ladders=lads[t],
                        new_ids=set(),
                        repeat_counts={},
                        start=None,
                    )  # fmt: skip
                    for t in tickets
                    if evs[t]
                }
                # steps a rules edit removed: their pending rows go
                keep = {
                    (x.ticket, x.rule, x.cycle, x.step, x.rep)
                    for p in plans.values()
                    for x in p.timers
                }
                pending = await conn.fetch(q.PENDING_TIMERS, tickets)
                drop = [
                    r["id"]
                    for r in pending
                    if (r["ticket"], r["rule"], r["cycle"], r["step"], r["rep"]) not in keep
                ]
                if drop:
                    await conn.execute(q.CANCEL_TIMER_IDS, drop)
                await self._apply(conn, plans)
                done += len(plans)
