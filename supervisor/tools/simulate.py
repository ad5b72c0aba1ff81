"""Replaying events on a virtual clock through the daemon's own core (Supervisor + MemoryStore).

Events are replayed in `at` order (a stable sort: ties keep file order), so a file grouped by
ticket is not mistaken for late arrivals; `as_arrived` keeps file order instead, where an event
arrives at its `at` or at once if the clock has passed it (a late event). Before each arrival,
every timer due by then fires, in due-time order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from supervisor.application import BatchRejected, Runtime, Supervisor, validate_batch
from supervisor.core.acks import ack_scope, rule_step_roles, ticket_roles
from supervisor.core.clock import VirtualClock
from supervisor.core.events import Event
from supervisor.engine import reports
from supervisor.engine.firing import Notification
from supervisor.errors import HotlineError
from supervisor.storage.memory import MemoryStore


@dataclass
class JsonlError(HotlineError):
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def read_jsonl(path: Path | str, text: str | None = None) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line; a line that is not JSON is an error."""
    text = Path(path).read_text(encoding="utf-8") if text is None else text
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise JsonlError(
                str(path), number, f"not JSON: {exc.msg} (column {exc.colno})"
            ) from None
    return out


def validate_lines(path: str, lines: Sequence[tuple[int, Any]], caller_key: bytes) -> list[Event]:
    try:
        return validate_batch([raw for _, raw in lines], caller_key)
    except BatchRejected as exc:
        index, problem = exc.problems[0]
        more = f" (and {len(exc.problems) - 1} more problems)" if len(exc.problems) > 1 else ""
        raise JsonlError(
            path, lines[index][0], f"{problem.field}: {problem.message}{more}"
        ) from None


class Simulation:
    def __init__(self, runtime: Runtime, start: datetime) -> None:
        self.store = MemoryStore()
        self.clock = VirtualClock(start)
        self.supervisor = Supervisor(self.store, runtime, self.clock)
        self.notifications: list[Notification] = []

    async def advance(self, until: datetime) -> None:
        """Fire every timer and periodic report due by `until`, in time order."""
        rt = self.supervisor.runtime
        runs = sorted(
            (at, i, report)
            for i, report in enumerate(rt.policy.reports)
            if report.kind != "monthly_stats"  # SQL aggregates over PostgreSQL: not simulated
            for at in reports.occurrences(report, self.clock.now(), until, rt.policy.calendar)
        )
        while True:
            due = await self.store.next_due()
            report_at = runs[0][0] if runs else None
            if report_at is not None and (due is None or report_at < due) and report_at <= until:
                at, _, report = runs.pop(0)
                self.clock.set(at)
                self.notifications.extend(
                    reports.build(report, at, self.store.states.values(), runtime=rt)
                )
                continue
            if due is None or due > until:
                break
            self.clock.set(due)
            out = await self.supervisor.fire_due(limit=10_000, now=max(due, self.clock.now()))
            self.notifications.extend(out.notifications)
        self.clock.set(until)

    async def arrive(self, event: Event) -> None:
        if event.at > self.clock.now():
            await self.advance(event.at)
        await self.supervisor.ingest_events([event])

    async def ack(self, ticket: str, rule: str | None, by: str, at: datetime) -> None:
        """As the daemon acknowledges (core.acks): a contact ends only what is addressed to
        them and below; a name that is no contact acts as the supervisor (the API's default)."""
        await self.advance(at)
        rt = self.supervisor.runtime
        state = self.store.states.get(ticket)
        roles = ticket_roles(rt.directory, by, state) if state is not None else frozenset()
        open_rules = sorted({
            key[1] for key, lad in self.store.ladders.items()
            if key[0] == ticket and (rule is None or key[1] == rule) and lad.status == "active"
        })  # fmt: skip
        scope = ack_scope(
            roles or {"supervisor"}, rule_step_roles(rt.policy.rules_by_id, open_rules)
        )
        await self.store.ack(ticket, rule, by, "test", self.clock.now(), scope=scope)


def in_time_order(events: Sequence[Event]) -> tuple[list[Event], int]:
    """Events sorted by `at` (stable), and how many were not where the sort put them."""
    ordered = sorted(events, key=lambda e: e.at)
    return ordered, sum(1 for a, b in zip(events, ordered, strict=True) if a is not b)


async def simulate(
    events: Iterable[Event],
    runtime: Runtime,
    until: datetime | None = None,
    *,
    as_arrived: bool = False,
) -> list[Notification]:
    events = list(events)
    if not as_arrived:
        events, _ = in_time_order(events)
    if not events:
        return []
    sim = Simulation(runtime, min(e.at for e in events))
    for ev in events:
        await sim.arrive(ev)
    last = max(e.at for e in events)
    await sim.advance(until or last + timedelta(days=30))
    return sorted(sim.notifications, key=lambda n: n.at)


def plan_deliveries(
    notes: Sequence[Notification], settings: Any, templates: Any, workday: Any = None
) -> list[dict[str, Any]]:
    """What would actually go out: quiet hours hold non-urgent messages, and messages for one
    person and channel released together go as one (delivery.py's policy, as the dispatcher
    applies it)."""
    from supervisor.config import delivery
    from supervisor.core.clock import SHANGHAI
    from supervisor.delivery.sending import compose

    window = timedelta(seconds=settings.group_window_s)
    pending = sorted(
        (
            (delivery.not_before(n.at, n.urgent, settings, workday), i, n)
            for i, n in enumerate(notes)
        ),
        key=lambda x: (x[0], x[1]),
    )
    taken: set[int] = set()
    out: list[dict[str, Any]] = []

    for when, i, n in pending:
        if i in taken:
            continue
        taken.add(i)
        group = [n]
        if not n.urgent and settings.group_window_s > 0 and not delivery.is_report(n.ticket):
            for when2, j, m in pending:
                if j in taken or m.urgent or (m.to, m.channel) != (n.to, n.channel):
                    continue
                if delivery.is_report(m.ticket):
                    continue
                if m.at <= when and when2 <= when + window:
                    group.append(m)
                    taken.add(j)
        rows: list[dict[str, Any]] = [
            {"ticket": g.ticket, "rule": g.rule, "text": g.text, "name": g.name, "channel": g.channel,
             "params": g.params or {}} for g in group
        ]  # fmt: skip
        parts = (
            [rows] if n.channel == "voice"  # one call counts them all (core/spoken.py)
            else delivery.split_groups(rows, settings.group_max_segments, None)
        )  # fmt: skip
        for part in parts:
            # a message alone carries the provider parameters it would be sent with
            provider_params = {
                k: v["params"] for k, v in dict(part[0]["params"]).items()
                if len(part) == 1 and n.channel == "sms" and k in ("aliyun", "tencent")
            }  # fmt: skip
            out.append({
                "at": when.astimezone(SHANGHAI).isoformat(),
                "to": n.to,
                "channel": n.channel,
                "urgent": n.urgent,
                "tickets": list(dict.fromkeys(r["ticket"] for r in part)),  # each once
                "rules": sorted({g.rule for g in group if g.ticket in {r["ticket"] for r in part}}),
                "held": when != n.at,
                # why it waited: quiet hours (22:00-07:30, non-working days) or grouping
                "held_by": None if when == n.at else (
                    "quiet_hours" if delivery.quiet_release(n.at, settings.quiet_hours) != n.at
                    else "grouping"
                ),
                "text": compose(part),
                **({"params": provider_params} if provider_params else {}),
            })  # fmt: skip
    return sorted(out, key=lambda d: d["at"])
