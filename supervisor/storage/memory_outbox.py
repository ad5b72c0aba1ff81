"""The outbox half of MemoryStore: the same moves as pg_outbox.py, on dicts in memory.

One process, one event loop: no locks are needed; claimed rows are simply no longer 'pending'."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from supervisor.engine.firing import Notification
from supervisor.engine.planner import Ladder
from supervisor.storage.base import (
    DELIVERED,
    FINAL,
    NOT_DELIVERED,
    FallbackOutcome,
    Grouper,
    HeldMessage,
    Lane,
    LineClaim,
    OutboxRow,
    Reply,
    person,
    release_time,
)

if TYPE_CHECKING:
    from supervisor.config.delivery import Workday

_VIEW = tuple(OutboxRow.__annotations__)  # the columns a claimed row shows


def _copy(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Template parameters as stored: a deep copy (PostgreSQL keeps JSON, not the caller's dict)."""
    return None if params is None else copy.deepcopy(dict(params))


class MemoryOutbox:
    ladders: dict[tuple[str, str, int], Ladder]

    def _init_outbox(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self._keys: dict[tuple[Any, ...], int] = {}
        self._row_ids = 0
        self.attempts: list[dict[str, Any]] = []  # the ledger of hand-overs (004_attempts.sql)

    # -- writing ----------------------------------------------------------------------------------

    def _insert(self, values: dict[str, Any]) -> int | None:
        """A new pending row, unless one with the same key exists (the UNIQUE key)."""
        key = tuple(
            values[k] for k in ("ticket", "rule", "cycle", "step", "rep", "recipient", "channel")
        )
        if key in self._keys:
            return None
        self._row_ids += 1
        row = {
            "id": self._row_ids, "status": "pending", "attempts": 0, "provider_id": None,
            "last_error": None, "sent_at": None, "group_id": None, "claimed_at": None,
            "claimed_by": None, "delivery_status": None, "delivered_at": None, "in_flight": False,
            "params": None, **values,
        }  # fmt: skip
        self.rows[row["id"]] = row
        self._keys[key] = row["id"]
        return int(row["id"])

    def _queue(
        self, notes: Sequence[Notification], delivery: Any, workday: Workday | None = None
    ) -> list[Notification]:
        """Insert the messages; returns those that were new."""
        new = []
        for n in notes:
            values = {
                "ticket": n.ticket, "rule": n.rule, "cycle": n.cycle, "step": n.step,
                "rep": n.rep, "role": n.role, "recipient": n.to or "-", "name": n.name,
                "address": n.address, "channel": n.channel, "text": n.text, "urgent": n.urgent,
                "note": n.note, "not_before": release_time(n, delivery, workday), "created_at": n.at,
                "params": _copy(n.params),
            }  # fmt: skip
            if self._insert(values) is not None:
                new.append(n)
        return new

    async def enqueue(
        self, notes: Sequence[Notification], delivery: Any, workday: Workday | None = None
    ) -> None:
        self._queue(notes, delivery, workday)

    def _ladder_status(self, row: Mapping[str, Any]) -> str | None:
        lad = self.ladders.get((row["ticket"], row["rule"], row["cycle"]))
        return None if lad is None else lad.status

    def _group_of(self, outbox_id: int) -> list[dict[str, Any]]:
        row = self.rows.get(outbox_id)
        if row is None:
            return []
        lead = row["group_id"] or row["id"]
        return [r for r in self.rows.values() if (r["group_id"] or r["id"]) == lead]

    def _lead_rows(self, lead: int, status: str = "sending") -> list[dict[str, Any]]:
        return [r for r in self.rows.values() if r["group_id"] == lead and r["status"] == status]

    def _cancel_for_ack(
        self, key: tuple[str, str, int], roles: frozenset[str] | None = None
    ) -> None:
        """Cancel the ladder's pending messages (only those addressed to `roles`, when given)."""
        for r in self.rows.values():
            if (
                (r["ticket"], r["rule"], r["cycle"]) == key and r["status"] == "pending"
                and (roles is None or r["role"] in roles)
            ):  # fmt: skip
                r["status"], r["last_error"] = "cancelled", "acknowledged"

    # -- claiming ---------------------------------------------------------------------------------

    async def claim_ready(
        self,
        now: datetime,
        limit: int,
        worker: str,
        window: timedelta,
        group: Grouper,
        solo: frozenset[str] = frozenset(),
        lane: Lane = None,
    ) -> list[list[OutboxRow]]:
        for r in self.rows.values():
            status = self._ladder_status(r)
            if r["status"] == "pending" and r["not_before"] <= now + window and status not in (
                None, "active"
            ):  # fmt: skip
                r["status"], r["last_error"] = "cancelled", f"ladder {status}"
        ready = sorted(
            (r for r in self.rows.values() if _ready(r, now, lane)),
            key=lambda r: (not r["urgent"], r["not_before"], r["id"]),
        )[:limit]
        if not ready:
            return []
        taken = {r["id"] for r in ready}
        keys = {
            (r["channel"], person(r)) for r in ready if not r["urgent"] and r["channel"] not in solo
        }
        if keys and window:
            ready += sorted(
                (
                    r for r in self.rows.values()
                    if r["status"] == "pending" and not r["urgent"]
                    and r["not_before"] <= now + window
                    and (r["channel"], person(r)) in keys and r["id"] not in taken
                ),
                key=lambda r: (r["not_before"], r["id"]),
            )[:limit]  # fmt: skip
        messages = group([self._view(r) for r in ready])
        for m in messages:
            for v in m:
                r = self.rows[v["id"]]
                r.update(status="sending", claimed_at=now, claimed_by=worker, group_id=m[0]["id"])
        return messages

    @staticmethod
    def _view(row: Mapping[str, Any]) -> OutboxRow:
        view = {k: row[k] for k in _VIEW}
        view["params"] = _copy(row["params"])  # a copy, as a row read from PostgreSQL would be
        return cast(OutboxRow, view)

    async def claim_stale(
        self, now: datetime, cutoff: datetime, limit: int, worker: str
    ) -> dict[int, list[OutboxRow]]:
        stale = sorted(
            (
                r for r in self.rows.values()
                if r["status"] == "sending" and r["claimed_at"] < cutoff
                and (r["group_id"] or r["id"]) == r["id"]
            ),
            key=lambda r: r["claimed_at"],
        )[:limit]  # fmt: skip
        leads = {r["id"] for r in stale}
        groups: dict[int, list[OutboxRow]] = defaultdict(list)
        for r in sorted(self.rows.values(), key=lambda r: r["id"]):
            lead = r["group_id"] or r["id"]
            if lead in leads and r["status"] == "sending":
                groups[lead].append(self._view(r))
                r.update(claimed_at=now, claimed_by=worker, group_id=lead)
        return dict(groups)

    # -- recording --------------------------------------------------------------------------------

    async def touch(self, lead: int, now: datetime, worker: str) -> bool:
        rows = [r for r in self._lead_rows(lead) if r["claimed_by"] == worker]
        for r in rows:
            r.update(claimed_at=now, attempts=r["attempts"] + 1, in_flight=True)
        if rows:
            self.attempts.append({
                "lead": lead, "channel": rows[0]["channel"], "address": rows[0]["address"],
                "started_at": now, "outcome": None, "provider_id": None,
            })  # fmt: skip
        return bool(rows)

    async def touch_line(self, lead: int, now: datetime, worker: str) -> LineClaim:
        rows = self._lead_rows(lead)
        if not rows:
            return "lost"
        channel, address = rows[0]["channel"], rows[0]["address"]
        busy = any(
            r["status"] == "sending" and r.get("in_flight") and r["channel"] == channel
            and r["address"] == address and (r.get("group_id") or r["id"]) != lead
            for r in self.rows.values()
        )  # fmt: skip
        if busy:
            return "busy"
        return "ok" if await self.touch(lead, now, worker) else "lost"

    def _latest_attempt(self, lead: int) -> dict[str, Any] | None:
        return next((a for a in reversed(self.attempts) if a["lead"] == lead), None)

    async def record_attempt(self, lead: int, outcome: str, provider_id: str | None) -> None:
        a = self._latest_attempt(lead)
        if a is not None:
            a["outcome"] = outcome
            a["provider_id"] = a["provider_id"] or provider_id

    async def record_sent(self, lead: int, provider_id: str | None, at: datetime) -> None:
        for r in self._lead_rows(lead):
            r.update(status="sent", provider_id=provider_id, sent_at=at, last_error=None)
            r["in_flight"] = False

    async def record_retry(self, lead: int, when: datetime, error: str, worker: str) -> None:
        for r in self._lead_rows(lead):
            if r["claimed_by"] == worker:
                r.update(status="pending", not_before=when, last_error=error, claimed_by=None)
                r["in_flight"] = False

    async def release_held(
        self, channels: frozenset[str], reason: str, now: datetime, within: timedelta
    ) -> int:
        held = [
            r for r in self.rows.values()
            if r["status"] == "pending" and r["channel"] in channels
            and (r["last_error"] or "").startswith(reason) and now < r["not_before"] <= now + within
        ]  # fmt: skip
        for r in held:
            r["not_before"] = now
        return len(held)

    async def record_unknown(self, lead: int, error: str, worker: str) -> None:
        for r in self._lead_rows(lead):
            if r["claimed_by"] == worker:
                r["last_error"] = error

    async def fail_group(
        self,
        outbox_id: int,
        reason: str,
        statuses: Sequence[str],
        fallback: Mapping[str, str],
        now: datetime,
        held: datetime,
        takes: Callable[[str, str], bool] | None = None,
    ) -> FallbackOutcome:
        failed = [r for r in self._group_of(outbox_id) if r["status"] in statuses]
        if not failed:
            return FallbackOutcome([], None, None, 0)
        for r in failed:
            r.update(status="failed", last_error=reason, in_flight=False)
        channel = str(failed[0]["channel"])
        target = fallback.get(channel)
        created = 0
        if target is not None:
            for r in failed:
                if self._ladder_status(r) not in (None, "active"):
                    continue
                if takes is not None and not takes(str(r["recipient"]), target):
                    continue
                values = {k: r[k] for k in (
                    "ticket", "rule", "cycle", "step", "rep", "role", "recipient", "name",
                    "address", "text", "urgent",
                )}  # fmt: skip
                params = r.get("params") or {}
                if target == "voice" and "voice" in params:  # the call's own script
                    values["text"] = params["voice"]
                if target == "voice" and "call" in params:
                    values["params"] = {"call": params["call"]}
                values.update(
                    channel=target, note=f"fallback from {channel}: {reason}",
                    not_before=now if r["urgent"] else held, created_at=now,
                )  # fmt: skip
                created += self._insert(values) is not None
        return FallbackOutcome([r["id"] for r in failed], channel, target, created)

    # -- questions --------------------------------------------------------------------------------

    async def overlapping(
        self,
        address: str | None,
        channel: str,
        lead: int,
        lo: datetime,
        hi: datetime,
        text: str | None = None,
    ) -> int:
        return sum(
            1 for a in self.attempts
            if a["address"] == address and a["channel"] == channel and a["lead"] != lead
            and lo <= a["started_at"] <= hi and a["provider_id"] is None
            and a["outcome"] in (None, "unknown")
            and (text is None or self.rows[a["lead"]]["text"] == text)
        )  # fmt: skip

    async def known_ids(
        self, address: str | None, channel: str, since: datetime, lead: int | None = None
    ) -> frozenset[str]:
        rows = {
            r["provider_id"] for r in self.rows.values()
            if r["address"] == address and r["channel"] == channel and r["provider_id"]
            and r["sent_at"] is not None and r["sent_at"] >= since
            and (lead is None or (r["group_id"] or r["id"]) != lead)
        }  # fmt: skip
        tried = {
            a["provider_id"] for a in self.attempts
            if a["address"] == address and a["channel"] == channel and a["provider_id"]
            and a["started_at"] >= since and (lead is None or a["lead"] != lead)
        }  # fmt: skip
        return frozenset(rows | tried)

    async def attempt_started(self, lead: int) -> datetime | None:
        times = [
            a["started_at"] for a in self.attempts
            if a["lead"] == lead and a["outcome"] != "callback"
        ]  # fmt: skip
        return max(times, default=None)

    async def next_ready(self, stale_after: timedelta, lane: Lane = None) -> datetime | None:
        times = [
            r["not_before"] for r in self.rows.values()
            if r["status"] == "pending" and (lane != "urgent" or r["urgent"])
        ]  # fmt: skip
        if lane == "urgent":
            return min(times, default=None)
        times += [
            r["claimed_at"] + stale_after for r in self.rows.values() if r["status"] == "sending"
        ]
        return min(times, default=None)

    async def record_status(
        self, outbox_id: int | None, sid: str | None, state: str, at: datetime
    ) -> int | None:
        row = self.rows.get(outbox_id) if outbox_id is not None else None
        if row is None and sid is not None:
            row = next((r for r in sorted(self.rows.values(), key=lambda r: r["id"])
                        if r["provider_id"] == sid), None)  # fmt: skip
        if row is None or not state:
            return None
        for r in self._group_of(row["id"]):
            if r["delivery_status"] not in FINAL:
                r["delivery_status"] = state
            if state in DELIVERED and r["delivered_at"] is None:
                r["delivered_at"] = at
            if r["status"] == "sending" and state not in NOT_DELIVERED:
                r.update(status="sent", sent_at=at)
            if r["provider_id"] is None:
                r["provider_id"] = sid
        if sid and not any(a["provider_id"] == sid for a in self.attempts):
            lead = row["group_id"] or row["id"]
            open_ = [
                a for a in self.attempts
                if a["lead"] == lead and a["provider_id"] is None
                and a["outcome"] in (None, "unknown")
            ]  # fmt: skip
            if open_:
                open_[-1]["provider_id"] = sid
                open_[-1]["outcome"] = open_[-1]["outcome"] or "callback"
            else:
                self.attempts.append({
                    "lead": lead, "channel": row["channel"], "address": row["address"],
                    "started_at": at, "outcome": "callback", "provider_id": sid,
                })  # fmt: skip
        return int(row["id"])

    async def call_rows(self, outbox_id: int) -> list[OutboxRow]:
        return [self._view(r) for r in sorted(self._group_of(outbox_id), key=lambda r: r["id"])]

    async def record_keypress(
        self, outbox_id: int, digits: str, result: str, at: datetime
    ) -> None:
        for r in self._group_of(outbox_id):
            r.update(keypress=digits, keypress_result=result, keypress_at=at)

    async def mark_failed(self, outbox_id: int, reason: str) -> None:
        for r in self._group_of(outbox_id):
            if r["status"] in ("sending", "sent"):
                r.update(status="failed", last_error=reason)

    async def latest_sent_to(self, address: str, ticket: str | None = None) -> Reply | None:
        sent = [
            r for r in self.rows.values()
            if r["address"] == address and r["status"] == "sent"
            and self._ladder_status(r) == "active" and (ticket is None or r["ticket"] == ticket)
        ]  # fmt: skip
        if not sent:
            return None
        r = max(sent, key=lambda r: (r["sent_at"], r["id"]))
        return Reply(r["ticket"], r["rule"], r["recipient"])

    async def roles_sent(self, ticket: str, recipient: str) -> frozenset[str]:
        return frozenset(
            r["role"] for r in self.rows.values()
            if r["ticket"] == ticket and r["recipient"] == recipient and r["status"] == "sent"
        )  # fmt: skip

    async def outbox_summary(self, now: datetime) -> tuple[int, list[HeldMessage]]:
        rows = sorted(self.rows.values(), key=lambda r: r["id"])
        held = [
            HeldMessage(r["recipient"], r["channel"], r["text"], r["not_before"])
            for r in rows
            if r["status"] == "pending" and r["not_before"] > now
        ]
        return sum(r["status"] == "sent" for r in rows), held


def _ready(row: Mapping[str, Any], now: datetime, lane: Lane) -> bool:
    """Pending, due, and in the lane (None: every lane)."""
    in_lane = lane is None or row["urgent"] == (lane == "urgent")
    return row["status"] == "pending" and row["not_before"] <= now and in_lane
