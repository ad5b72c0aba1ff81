"""The store contract in memory: what `simulate` and the rule unit tests run on. It keeps the
same rules as PgStore (unique step keys, only pending timers move, ack cancels) so that the core
behaves the same on both."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from supervisor.core.events import Event
from supervisor.core.firing import Notification
from supervisor.core.matter import Candidate, MatterKey, MatterSpec, matches
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
        # same-matter keys: (kind, key) -> candidates, the index PgStore keeps in matter_keys
        self.matter_index: dict[tuple[str, str], list[Candidate]] = {}

    async def ingest(
        self,
        events: Sequence[Event],
        plan_fn: PlanFn,
        windows: frozenset[int],
        matter: MatterSpec | None = None,
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
        if matter is not None and matter.active:
            # in time order, so a batch's earlier tickets are candidates for its later ones
            for ev in sorted((e for e in new if e.type == "created"), key=lambda e: e.at):
                keys = matter.keys(ev.data)
                found = self.matter_candidates(keys, ev.at - matter.horizon, ev.at)
                counts.setdefault(ev.id, {}).update(matter.fields(ev.ticket, ev.at, ev.data, found))
                me = matter.candidate(ev.ticket, ev.at, ev.data)
                for k in keys:
                    self.matter_index.setdefault((k.kind, k.key), []).append(me)
        for ticket in sorted({e.ticket for e in new}):
            ladders = [lad for key, lad in self.ladders.items() if key[0] == ticket]
            p = plan_fn(ticket, list(self.by_ticket[ticket]), ladders, new_ids, counts, None)
            self._apply(p)
            out.plans[ticket] = p
        return out

    def matter_candidates(
        self, keys: Iterable[MatterKey], lo: datetime, hi: datetime
    ) -> list[Candidate]:
        """Tickets stored under any of `keys`, created in (lo, hi]: the index lookup."""
        out: dict[str, Candidate] = {}
        for k in keys:
            for c in self.matter_index.get((k.kind, k.key), []):
                if lo < c.at <= hi:
                    out.setdefault(c.ticket, c)
        return list(out.values())

    def matter_linked(
        self, ticket: str, matter: MatterSpec, *, both_ways: bool = False
    ) -> list[tuple[str, datetime, str | None]]:
        """The tickets about the same matter as `ticket` within the horizon before it (and after
        it, `both_ways`, for the ticket view), this one included, oldest first."""
        me = self.states.get(ticket)
        if me is None or me.created_at is None:
            return []
        data = {"address": me.address, "grid": me.grid, "summary": me.summary}
        hi = me.created_at + (matter.horizon if both_ways else timedelta(0))
        found = self.matter_candidates(matter.keys(data), me.created_at - matter.horizon, hi)
        same = matches(ticket, me.address, me.summary, found, matter.config)
        rows = [(c.ticket, c.at, c.caller) for c in same]
        rows.append((ticket, me.created_at, me.caller_hash))
        return sorted(rows, key=lambda r: (r[1], r[0]))

    async def matter_links(self, ticket: str, matter: MatterSpec) -> list[str]:
        """The other tickets about the same matter, before and after it (ticket view)."""
        return [t for t, _, _ in self.matter_linked(ticket, matter, both_ways=True) if t != ticket]

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
        matter: MatterSpec | None = None,
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
                if matter is not None and s.rule in matter.rules:
                    linked: list[Any] = self.matter_linked(s.ticket, matter)
                elif s.rule in linked_rules:
                    linked = self._linked(s.ticket, linked_window)
                else:
                    linked = []
                for n in fire_fn(due_timer, lad, self.states.get(s.ticket), linked):
                    key = (n.ticket, n.rule, n.cycle, n.step, n.rep, n.to or "-", n.channel)
                    if key not in self.outbox:
                        self.outbox[key] = n
                        out.notifications.append(n)
        return out

    async def ack(self, ticket: str, rule: str | None, by: str, via: str, at: datetime) -> int:
        n = 0
        for key, lad in list(self.ladders.items()):
            if key[0] == ticket and (rule is None or key[1] == rule) and lad.status == "active":
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
