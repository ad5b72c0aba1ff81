"""The store contract in memory: what `simulate` and fast tests run on. It keeps the same rules as
PgStore (unique step keys, only pending timers move, ack cancels) so that the core behaves the
same on both; tests/contract runs the same tests on the two."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from supervisor.core.acks import AckScope
from supervisor.core.events import Event
from supervisor.core.matter import MatterSpec
from supervisor.core.state import TicketState
from supervisor.engine import timers as timer_rules
from supervisor.engine.firing import Notification
from supervisor.engine.planner import Ladder, Plan, TimerSpec
from supervisor.policy.rulebook import Report
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
from supervisor.storage.memory_matter import MemoryMatter
from supervisor.storage.memory_outbox import MemoryOutbox


@dataclass
class _Timer:
    id: int
    spec: TimerSpec
    status: str = "pending"


class MemoryStore(MemoryMatter, MemoryOutbox):
    def __init__(self) -> None:
        self.events: dict[str, Event] = {}
        self.by_ticket: dict[str, list[Event]] = {}
        self.states: dict[str, TicketState] = {}
        self.ladders: dict[tuple[str, str, int], Ladder] = {}
        self.timers: dict[tuple[str, str, int, int, int], _Timer] = {}
        self._heap: list[tuple[datetime, int, tuple]] = []
        self._ids = 0
        self.heartbeats: dict[str, datetime] = {}
        self.report_runs: set[tuple[str, str]] = set()
        self.acks: list[tuple[str, str, int, str, str, datetime]] = []
        self.acked_steps: dict[tuple[str, str, int], frozenset[int]] = {}
        self._init_outbox()
        self._init_matter()

    async def ingest(
        self,
        events: Sequence[Event],
        plan_fn: PlanFn,
        windows: frozenset[int],
        matter: MatterSpec | None = None,
        follow_up: FollowUp | None = None,
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
        if matter is not None and matter.active:  # same matter: memory_matter.py
            self._match_created(new, matter, counts)
        for ticket in sorted({e.ticket for e in new}):
            ladders = [lad for key, lad in self.ladders.items() if key[0] == ticket]
            p = plan_fn(
                ticket=ticket, events=list(self.by_ticket[ticket]), ladders=ladders,
                new_ids=new_ids, repeat_counts=counts, start=None,
            )  # fmt: skip
            self._apply(p)
            out.plans[ticket] = p
        more, more_plan = follow_up() if follow_up is not None else ((), plan_fn)
        if more:  # the review's findings (base.FollowUp)
            await self.ingest(more, more_plan, windows)
        return out

    def _linked(self, ticket: str, window: timedelta) -> list[LinkedTicket]:
        me = self.states.get(ticket)
        if me is None or not me.caller_hash or me.created_at is None:
            return []
        lo = me.created_at - window
        return sorted(
            (
                LinkedTicket(t, st.created_at)
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

    async def next_due(self, lane: Lane = None) -> datetime | None:
        if lane == "urgent":
            return None  # this store keeps no urgency: every timer is in the ordinary lane
        while self._heap:
            due, tid, key = self._heap[0]
            timer = self.timers[key]
            if timer.status == "pending" and timer.spec.due_at == due and timer.id == tid:
                return due
            heapq.heappop(self._heap)
        return None

    async def fire_due(
        self, now: datetime, limit: int, fire_fn: FireFn, policy: FirePolicy, lane: Lane = None
    ) -> FireOutcome:
        out = FireOutcome()
        if lane == "urgent":
            return out  # no urgency kept here (next_due): nothing in the urgent lane
        claimed: list[_Timer] = []
        while self._heap and len(claimed) < limit:
            due = await self.next_due()
            if due is None or due > now:
                break
            _, _, key = heapq.heappop(self._heap)
            claimed.append(self.timers[key])
        for timer in claimed:
            s = timer.spec
            superseded = timer_rules.past_grace(now, s.due_at, policy.grace) and any(
                t.status == "pending"
                and k[:3] == (s.ticket, s.rule, s.cycle)
                and (k[3], k[4]) > (s.step, s.rep)
                and t.spec.due_at <= now
                for k, t in self.timers.items()
            )
            due_timer = DueTimer(
                timer.id, s.ticket, s.rule, s.cycle, s.step, s.rep, s.due_at, superseded
            )
            lad = self.ladders.get((s.ticket, s.rule, s.cycle))
            timer.status = timer_rules.verdict(lad, superseded)
            if timer.status == "cancelled":
                out.cancelled += 1
            elif timer.status == "superseded":
                out.superseded += 1
            else:
                assert lad is not None
                out.fired += 1
                out.lags_s.append(timer_rules.lateness_s(now, s.due_at))
                matter = policy.matter
                if matter is not None and s.rule in matter.rules:
                    linked = self.matter_linked(s.ticket, matter)
                elif s.rule in policy.linked_rules:
                    linked = self._linked(s.ticket, policy.linked_window)
                else:
                    linked = []
                notes = fire_fn(
                    timer=due_timer, ladder=lad, state=self.states.get(s.ticket), linked=linked
                )
                out.notifications.extend(self._queue(notes, policy.delivery, policy.workday))
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
            if key[0] != ticket or (rule is not None and key[1] != rule) or lad.status != "active":
                continue
            if scope is None:
                whole, steps, roles = True, None, None
            else:  # only what the acknowledger may end (core.acks)
                covered = scope.steps.get(key[1], frozenset())
                if not covered or covered <= self.acked_steps.get(key, frozenset()):
                    continue  # nothing to end, or a repeat (as PgStore: acks.steps)
                self.acked_steps[key] = self.acked_steps.get(key, frozenset()) | covered
                whole, steps, roles = key[1] in scope.whole, covered, scope.roles
            if whole:
                self.ladders[key] = replace(lad, status="acked", reason=f"acknowledged via {via}")
            for tkey, timer in self.timers.items():
                if (
                    tkey[:3] == key and timer.status == "pending"
                    and (steps is None or tkey[3] in steps)
                ):  # fmt: skip
                    timer.status = "cancelled"
            self._cancel_for_ack(key, roles)
            self.acks.append((*key, by, via, at))
            n += 1
        return n

    async def ack_subject(self, ticket: str, rule: str | None) -> AckSubject | None:
        if ticket not in self.by_ticket and ticket not in self.states:
            return None
        state = self.states.get(ticket) or TicketState(ticket=ticket)
        rules = sorted({
            key[1] for key, lad in self.ladders.items()
            if key[0] == ticket and (rule is None or key[1] == rule) and lad.status == "active"
        })  # fmt: skip
        acked = [] if rules else sorted({
            key[1] for key, lad in self.ladders.items()
            if key[0] == ticket and (rule is None or key[1] == rule) and lad.status == "acked"
        })  # fmt: skip
        return AckSubject(state, rules, acked)

    async def stored_events(self, ids: Sequence[str]) -> list[Event]:
        return [self.events[i] for i in dict.fromkeys(ids) if i in self.events]

    async def replan(self, plan_fn: PlanFn) -> int:
        n = 0
        for ticket, evs in self.by_ticket.items():
            if self.states.get(ticket) and self.states[ticket].status == "closed":
                continue
            ladders = [lad for key, lad in self.ladders.items() if key[0] == ticket]
            p = plan_fn(
                ticket=ticket, events=list(evs), ladders=ladders, new_ids=set(),
                repeat_counts={}, start=None,
            )  # fmt: skip
            keep = {(t.ticket, t.rule, t.cycle, t.step, t.rep) for t in p.timers}
            for key, timer in self.timers.items():
                if key[0] == ticket and timer.status == "pending" and key not in keep:
                    timer.status = "cancelled"
            self._apply(p)
            n += 1
        return n

    async def ticket_view(self, ticket: str) -> dict[str, Any] | None:
        """The same shape as PgStore.ticket_view, from memory."""
        state = self.states.get(ticket)
        if state is None:
            return None
        shown = dict(state.to_json())
        shown.pop("caller_hash", None)  # matching key: not for display
        linked = [
            t for t, st in sorted(self.states.items(), key=lambda x: (x[1].created_at or 0, x[0]))
            if t != ticket and state.caller_hash and st.caller_hash == state.caller_hash
            and st.category == state.category
        ]  # fmt: skip
        iso = _iso
        return {
            "ticket": ticket,
            "state": shown,
            "linked": linked,
            "timeline": [
                {
                    "id": e.id,
                    "type": e.type,
                    "at": e.at.isoformat(),
                    **{k: v for k, v in e.data.items() if k != "caller_hash"},
                }
                for e in sorted(self.by_ticket.get(ticket, []), key=lambda e: e.at)
            ],  # fmt: skip
            "ladders": [
                {
                    "rule": lad.rule,
                    "cycle": lad.cycle,
                    "anchor_at": iso(lad.anchor_at),
                    "status": lad.status,
                    "reason": lad.reason,
                }
                for key, lad in sorted(self.ladders.items())
                if key[0] == ticket
            ],  # fmt: skip
            "timers": [
                {
                    "rule": t.spec.rule,
                    "cycle": t.spec.cycle,
                    "step": t.spec.step,
                    "rep": t.spec.rep,
                    "due_at": iso(t.spec.due_at),
                    "status": t.status,
                }
                for t in sorted(self.timers.values(), key=lambda t: t.spec.due_at)
                if t.spec.ticket == ticket
            ],  # fmt: skip
            "messages": [
                {
                    k: iso(r[k])
                    for k in (
                        "rule",
                        "cycle",
                        "step",
                        "role",
                        "recipient",
                        "channel",
                        "text",
                        "status",
                        "created_at",
                        "sent_at",
                    )
                }
                for r in sorted(self.rows.values(), key=lambda r: r["id"])
                if r["ticket"] == ticket
            ],  # fmt: skip
        }

    async def run_report(
        self, report: Report, period: int | str, at: datetime, runtime: Any
    ) -> list[Notification] | None:
        from supervisor.engine.reports import builder

        if (report.id, str(period)) in self.report_runs:
            return None
        self.report_runs.add((report.id, str(period)))
        b = builder(report, at, runtime)
        for state in self.states.values():
            b.add(state)
        notes = b.finish()
        self._queue(notes, getattr(runtime, "delivery", None), getattr(runtime, "workday", None))
        return notes

    async def heartbeat(self, daemon: str, at: datetime) -> None:
        self.heartbeats[daemon] = at

    async def ping(self) -> None:
        return None


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v
