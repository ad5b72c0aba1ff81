"""The outbox half of MemoryStore: the same moves as pg_outbox.py, on dicts in memory.

One process, one event loop: no locks are needed; claimed rows are simply no longer 'pending'."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from supervisor.core.firing import Notification
from supervisor.core.planner import Ladder
from supervisor.storage.base import (
    DELIVERED,
    FINAL,
    NOT_DELIVERED,
    FallbackOutcome,
    Grouper,
    HeldMessage,
    OutboxRow,
    Reply,
    release_time,
)
from supervisor.storage.pg_outbox import person

_VIEW = tuple(OutboxRow.__annotations__)  # the columns a claimed row shows


class MemoryOutbox:
    ladders: dict[tuple[str, str, int], Ladder]

    def _init_outbox(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self._keys: dict[tuple[Any, ...], int] = {}
        self._row_ids = 0

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
            **values,
        }  # fmt: skip
        self.rows[row["id"]] = row
        self._keys[key] = row["id"]
        return int(row["id"])

    def _queue(self, notes: Sequence[Notification], delivery: Any) -> list[Notification]:
        """Insert the messages; returns those that were new."""
        new = []
        for n in notes:
            values = {
                "ticket": n.ticket, "rule": n.rule, "cycle": n.cycle, "step": n.step,
                "rep": n.rep, "role": n.role, "recipient": n.to or "-", "name": n.name,
                "address": n.address, "channel": n.channel, "text": n.text, "urgent": n.urgent,
                "note": n.note, "not_before": release_time(n, delivery), "created_at": n.at,
            }  # fmt: skip
            if self._insert(values) is not None:
                new.append(n)
        return new

    async def enqueue(self, notes: Sequence[Notification], delivery: Any) -> None:
        self._queue(notes, delivery)

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

    def _cancel_for_ack(self, key: tuple[str, str, int]) -> None:
        for r in self.rows.values():
            if (r["ticket"], r["rule"], r["cycle"]) == key and r["status"] == "pending":
                r["status"], r["last_error"] = "cancelled", "acknowledged"

    # -- claiming ---------------------------------------------------------------------------------

    async def claim_ready(
        self, now: datetime, limit: int, worker: str, window: timedelta, group: Grouper
    ) -> list[list[OutboxRow]]:
        for r in self.rows.values():
            status = self._ladder_status(r)
            if r["status"] == "pending" and r["not_before"] <= now + window and status not in (
                None, "active"
            ):  # fmt: skip
                r["status"], r["last_error"] = "cancelled", f"ladder {status}"
        ready = sorted(
            (r for r in self.rows.values() if r["status"] == "pending" and r["not_before"] <= now),
            key=lambda r: (not r["urgent"], r["not_before"], r["id"]),
        )[:limit]
        if not ready:
            return []
        taken = {r["id"] for r in ready}
        keys = {(r["channel"], person(r)) for r in ready if not r["urgent"]}
        if keys and window:
            ready += [
                r for r in self.rows.values()
                if r["status"] == "pending" and not r["urgent"] and r["not_before"] <= now + window
                and (r["channel"], person(r)) in keys and r["id"] not in taken
            ]  # fmt: skip
        messages = group([self._view(r) for r in ready])
        for m in messages:
            for v in m:
                r = self.rows[v["id"]]
                r.update(status="sending", claimed_at=now, claimed_by=worker, group_id=m[0]["id"])
        return messages

    @staticmethod
    def _view(row: Mapping[str, Any]) -> OutboxRow:
        return cast(OutboxRow, {k: row[k] for k in _VIEW})

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
        return bool(rows)

    async def record_sent(self, lead: int, provider_id: str | None, at: datetime) -> None:
        for r in self._lead_rows(lead):
            r.update(status="sent", provider_id=provider_id, sent_at=at, last_error=None)
            r["in_flight"] = False

    async def record_retry(self, lead: int, when: datetime, error: str, worker: str) -> None:
        for r in self._lead_rows(lead):
            if r["claimed_by"] == worker:
                r.update(status="pending", not_before=when, last_error=error, claimed_by=None)
                r["in_flight"] = False

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
                values = {k: r[k] for k in (
                    "ticket", "rule", "cycle", "step", "rep", "role", "recipient", "name",
                    "address", "text", "urgent",
                )}  # fmt: skip
                values.update(
                    channel=target, note=f"fallback from {channel}: {reason}",
                    not_before=now if r["urgent"] else held, created_at=now,
                )  # fmt: skip
                created += self._insert(values) is not None
        return FallbackOutcome([r["id"] for r in failed], channel, target, created)

    # -- questions --------------------------------------------------------------------------------

    async def overlapping(
        self, address: str | None, channel: str, lead: int, lo: datetime, hi: datetime
    ) -> int:
        return sum(
            1 for r in self.rows.values()
            if r["address"] == address and r["channel"] == channel and r["status"] == "sending"
            and r["in_flight"] and (r["group_id"] or r["id"]) != lead
            and lo <= r["claimed_at"] <= hi
        )  # fmt: skip

    async def known_ids(self, address: str | None, channel: str, since: datetime) -> frozenset[str]:
        return frozenset(
            r["provider_id"] for r in self.rows.values()
            if r["address"] == address and r["channel"] == channel and r["provider_id"]
            and r["sent_at"] is not None and r["sent_at"] >= since
        )  # fmt: skip

    async def next_ready(self, stale_after: timedelta) -> datetime | None:
        times = [r["not_before"] for r in self.rows.values() if r["status"] == "pending"]
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
        return int(row["id"])

    async def mark_failed(self, outbox_id: int, reason: str) -> None:
        for r in self._group_of(outbox_id):
            if r["status"] in ("sending", "sent"):
                r.update(status="failed", last_error=reason)

    async def latest_sent_to(self, address: str) -> Reply | None:
        sent = [
            r for r in self.rows.values()
            if r["address"] == address and r["status"] == "sent"
            and self._ladder_status(r) == "active"
        ]  # fmt: skip
        if not sent:
            return None
        r = max(sent, key=lambda r: (r["sent_at"], r["id"]))
        return Reply(r["ticket"], r["rule"], r["recipient"])

    async def outbox_summary(self, now: datetime) -> tuple[int, list[HeldMessage]]:
        rows = sorted(self.rows.values(), key=lambda r: r["id"])
        held = [
            HeldMessage(r["recipient"], r["channel"], r["text"], r["not_before"])
            for r in rows
            if r["status"] == "pending" and r["not_before"] > now
        ]
        return sum(r["status"] == "sent" for r in rows), held
