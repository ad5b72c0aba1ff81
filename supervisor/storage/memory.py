"""The store contract in memory: what `simulate` and the rule unit tests run on. It keeps the
same rules as PgStore (unique step keys, only pending timers move, ack cancels) so that the core
behaves the same on both."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from supervisor.core.acks import AckScope
from supervisor.core.events import Event
from supervisor.core.firing import Notification
from supervisor.core.planner import Ladder, Plan, TimerSpec
from supervisor.core.state import TicketState
from supervisor.storage.pg import DueTimer, FireFn, FireOutcome, IngestOutcome, PlanFn


@dataclass
class _Timer:
    id: int
    spec: TimerSpec
    status: str = "pending"


class MemoryStore:
    def __init__(self, not_before: Callable[[Notification], datetime] | None = None) -> None:
        self.events: dict[str, Event] = {}
        self.by_ticket: dict[str, list[Event]] = {}
        self.states: dict[str, TicketState] = {}
        self.ladders: dict[tuple[str, str, int], Ladder] = {}
        self.timers: dict[tuple[str, str, int, int, int], _Timer] = {}
        self.outbox: dict[tuple, Notification] = {}
        self._heap: list[tuple[datetime, int, tuple]] = []
        self._ids = 0
        self.not_before = not_before or (lambda n: n.at)

    async def ingest(
        self, events: Sequence[Event], plan_fn: PlanFn, windows: frozenset[int]
    ) -> IngestOutcome:
        out = IngestOutcome()
        new: list[Event] = []
        for ev in events:
            if ev.id in self.events:
                out.duplicates.append(ev.id)
                continue
            self.events[ev.id] = ev
            self.by_ticket.setdefault(ev.ticket, []).append(ev)
            out.accepted.append(ev.id)
            new.append(ev)
        new_ids = {e.id for e in new}
        counts: dict[str, dict[str, int]] = {}
        created = [e for e in new if e.type == "created" and e.data.get("caller_hash")]
        for ev in created if windows else []:
            counts[ev.id] = {}
            for m in windows:
                lo = ev.at - timedelta(minutes=m)
                in_batch = {
                    o.ticket for o in created
                    if o.ticket != ev.ticket and o.data["caller_hash"] == ev.data["caller_hash"]
                    and o.data.get("category") == ev.data.get("category") and lo < o.at <= ev.at
                }  # fmt: skip
                counts[ev.id][f"repeat_calls__{m}m"] = (
                    1 + self._repeats(ev, m, exclude=in_batch) + len(in_batch)
                )
        for ticket in sorted({e.ticket for e in new}):
            ladders = [lad for key, lad in self.ladders.items() if key[0] == ticket]
            p = plan_fn(ticket, list(self.by_ticket[ticket]), ladders, new_ids, counts, None)
            self._apply(p)
            out.plans[ticket] = p
        return out

    def _linked(self, ticket: str, window: timedelta) -> list[tuple[str, datetime]]:
        me = self.states.get(ticket)
        if me is None or not me.caller_hash or me.created_at is None:
            return []
        lo = me.created_at - window
        return sorted(
            (
                (t, st.created_at)
                for t, st in self.states.items()
                if st.caller_hash == me.caller_hash
                and st.category == me.category
                and st.created_at is not None
                and lo < st.created_at <= me.created_at
            ),
            key=lambda x: (x[1], x[0]),
        )

    def _repeats(
        self, ev: Event, minutes: int, exclude: set[str] | frozenset[str] = frozenset()
    ) -> int:
        lo = ev.at - timedelta(minutes=minutes)
        n = 0
        for ticket, st in self.states.items():
            if (
                ticket != ev.ticket
                and st.caller_hash == ev.data["caller_hash"]
                and st.category == ev.data.get("category")
            ):
                if st.created_at is not None and lo < st.created_at <= ev.at:
                    n += 1
        return n

    def _apply(self, p: Plan) -> None:
        self.states[p.state.ticket] = p.state
        for lad in p.opened:
            self.ladders.setdefault((lad.ticket, lad.rule, lad.cycle), lad)
        for lad in p.stopped:
            key = (lad.ticket, lad.rule, lad.cycle)
            if key in self.ladders and self.ladders[key].status == "active":
                self.ladders[key] = lad
                for tkey, timer in self.timers.items():
                    if tkey[:3] == key and timer.status == "pending":
                        timer.status = "cancelled"
        for spec in p.timers:
            self._upsert(spec)

    def _upsert(self, spec: TimerSpec) -> None:
        key = (spec.ticket, spec.rule, spec.cycle, spec.step, spec.rep)
        timer = self.timers.get(key)
        if timer is None:
            self._ids += 1
            timer = self.timers[key] = _Timer(self._ids, spec)
        elif timer.status != "pending" or timer.spec.due_at == spec.due_at:
            return
        else:
            timer.spec = spec
        heapq.heappush(self._heap, (spec.due_at, timer.id, key))

    async def next_due(self) -> datetime | None:
        while self._heap:
            due, tid, key = self._heap[0]
            timer = self.timers[key]
            if timer.status == "pending" and timer.spec.due_at == due and timer.id == tid:
                return due
            heapq.heappop(self._heap)
        return None

    async def fire_due(
        self,
        now: datetime,
        limit: int,
        fire_fn: FireFn,
        grace: timedelta,
        linked_rules: frozenset[str] = frozenset(),
        linked_window: timedelta = timedelta(0),
    ) -> FireOutcome:
        out = FireOutcome()
        claimed: list[_Timer] = []
        while self._heap and len(claimed) < limit:
            due = await self.next_due()
            if due is None or due > now:
                break
            _, _, key = heapq.heappop(self._heap)
            claimed.append(self.timers[key])
        for timer in claimed:
            s = timer.spec
            later_due = (
                any(
                    t.status == "pending"
                    and k[:3] == (s.ticket, s.rule, s.cycle)
                    and (k[3], k[4]) > (s.step, s.rep)
                    and t.spec.due_at <= now
                    for k, t in self.timers.items()
                )
                if now - s.due_at > grace
                else False
            )
            due_timer = DueTimer(
                timer.id, s.ticket, s.rule, s.cycle, s.step, s.rep, s.due_at, later_due
            )
            lad = self.ladders.get((s.ticket, s.rule, s.cycle))
            if lad is None or lad.status != "active":
                timer.status = "cancelled"
                out.cancelled += 1
            elif later_due:
                timer.status = "superseded"
                out.superseded += 1
            else:
                timer.status = "fired"
                out.fired += 1
                out.lags_s.append((now - s.due_at).total_seconds())
                for n in fire_fn(
                    due_timer,
                    lad,
                    self.states.get(s.ticket),
                    self._linked(s.ticket, linked_window) if s.rule in linked_rules else [],
                ):
                    key = (n.ticket, n.rule, n.cycle, n.step, n.rep, n.to or "-", n.channel)
                    if key not in self.outbox:
                        self.outbox[key] = n
                        out.notifications.append(n)
        return out

    async def ack(
        self,
        ticket: str,
        rule: str | None,
        by: str,
        via: str,
        at: datetime,
        scope: AckScope | None = None,
    ) -> int:
        n = 0
        for key, lad in list(self.ladders.items()):
            if key[0] == ticket and (rule is None or key[1] == rule) and lad.status == "active":
                if scope is not None:  # only what the acknowledger may end (core.acks)
                    steps = scope.steps.get(key[1], frozenset())
                    if not steps:
                        continue
                    if key[1] in scope.whole:
                        self.ladders[key] = replace(lad, status="acked", reason=f"acknowledged via {via}")
                    for tkey, timer in self.timers.items():
                        if tkey[:3] == key and timer.status == "pending" and tkey[3] in steps:
                            timer.status = "cancelled"
                    n += 1
                    continue
                self.ladders[key] = replace(lad, status="acked", reason=f"acknowledged via {via}")
                for tkey, timer in self.timers.items():
                    if tkey[:3] == key and timer.status == "pending":
                        timer.status = "cancelled"
                n += 1
        return n

    async def replan(self, plan_fn: PlanFn) -> int:
        n = 0
        for ticket, evs in self.by_ticket.items():
            if self.states.get(ticket) and self.states[ticket].status == "closed":
                continue
            ladders = [lad for key, lad in self.ladders.items() if key[0] == ticket]
            p = plan_fn(ticket, list(evs), ladders, set(), {}, None)
            keep = {(t.ticket, t.rule, t.cycle, t.step, t.rep) for t in p.timers}
            for key, timer in self.timers.items():
                if key[0] == ticket and timer.status == "pending" and key not in keep:
                    timer.status = "cancelled"
            self._apply(p)
            n += 1
        return n
