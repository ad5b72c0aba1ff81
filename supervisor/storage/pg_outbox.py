"""The outbox half of PgStore: queue, claim, record, fall back, status callbacks, replies.

Claims are short transactions with FOR UPDATE SKIP LOCKED, so several workers never take the same
row; the send itself happens outside any transaction (delivery/outbox.py). Rows sent together as
one message share `group_id`, the id of the group's first row (the lead), and every state change
applies to the whole group."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from supervisor.engine.firing import Notification
from supervisor.storage import queries as q
from supervisor.storage.base import (
    DELIVERED,
    FINAL,
    NOT_DELIVERED,
    FallbackOutcome,
    Grouper,
    HeldMessage,
    OutboxRow,
    Reply,
    person,
    release_time,
)

if TYPE_CHECKING:
    from supervisor.config.delivery import Workday


def _row(r: Any) -> OutboxRow:
    return cast(OutboxRow, dict(r))


def _json(params: Mapping[str, Any] | None) -> str | None:
    return None if params is None else json.dumps(params, ensure_ascii=False)


class PgOutbox:
    pool: asyncpg.Pool

    async def _insert_outbox(
        self,
        conn: asyncpg.Connection,
        notes: Sequence[Notification],
        delivery: Any,
        workday: Workday | None = None,
    ) -> None:
        await conn.execute(
            q.INSERT_OUTBOX,
            [n.ticket for n in notes], [n.rule for n in notes], [n.cycle for n in notes], [n.step for n in notes],
            [n.rep for n in notes], [n.role for n in notes], [n.to or "-" for n in notes], [n.name for n in notes],
            [n.address for n in notes], [n.channel for n in notes], [n.text for n in notes], [n.urgent for n in notes],
            [n.note for n in notes], [release_time(n, delivery, workday) for n in notes], [n.at for n in notes],
            [_json(n.params) for n in notes],
        )  # fmt: skip

    async def enqueue(
        self, notes: Sequence[Notification], delivery: Any, workday: Workday | None = None
    ) -> None:
        if notes:
            async with self.pool.acquire() as conn:
                await self._insert_outbox(conn, notes, delivery, workday)

    async def claim_ready(
        self,
        now: datetime,
        limit: int,
        worker: str,
        window: timedelta,
        group: Grouper,
        solo: frozenset[str] = frozenset(),
    ) -> list[list[OutboxRow]]:
        """Cancel messages of stopped ladders, take ready rows (urgent first) and, when grouping,
        the other pending rows for the same people that become ready within the window (at most
        `limit` of them, none on the `solo` channels, whose messages always go alone); mark them
        all 'sending' under this worker, as the messages `group` makes of them."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(q.CANCEL_STOPPED, now + window)
            rows = [_row(r) for r in await conn.fetch(q.CLAIM_READY, now, limit)]
            if not rows:
                return []
            keys = {
                (r["channel"], person(r))
                for r in rows
                if not r["urgent"] and r["channel"] not in solo
            }
            if keys and window:
                joined = await conn.fetch(
                    q.JOIN_GROUP, now + window, [k[0] for k in keys], [k[1] for k in keys],
                    [r["id"] for r in rows], limit,
                )  # fmt: skip
                rows += [_row(r) for r in joined]
            messages = group(rows)
            ids = [r["id"] for m in messages for r in m]
            leads = [m[0]["id"] for m in messages for _ in m]
            await conn.execute(q.MARK_SENDING, now, worker, ids, leads)
        return messages

    async def claim_stale(
        self, now: datetime, cutoff: datetime, limit: int, worker: str
    ) -> dict[int, list[OutboxRow]]:
        """Take over 'sending' groups whose claim is older than `cutoff`: lead id -> rows."""
        async with self.pool.acquire() as conn, conn.transaction():
            leads = [r["id"] for r in await conn.fetch(q.CLAIM_STALE, cutoff, limit)]
            if not leads:
                return {}
            groups: dict[int, list[OutboxRow]] = defaultdict(list)
            for r in await conn.fetch(q.GROUP_ROWS, leads):
                row = dict(r)
                groups[row.pop("lead")].append(cast(OutboxRow, row))
            await conn.execute(q.RESTAMP, now, worker, leads)
        return dict(groups)

    async def touch(self, lead: int, now: datetime, worker: str) -> bool:
        """Just before a send: still ours? Counts the attempt and marks the group in flight."""
        async with self.pool.acquire() as conn:
            return bool(await conn.fetch(q.TOUCH, lead, now, worker))

    async def record_attempt(self, lead: int, outcome: str, provider_id: str | None) -> None:
        """What came of the group's latest attempt: sent (with the provider's id), retry (definitely
        not accepted), failed (refused), unknown (maybe accepted)."""
        async with self.pool.acquire() as conn:
            await conn.execute(q.RECORD_ATTEMPT, lead, outcome, provider_id)

    async def record_sent(self, lead: int, provider_id: str | None, at: datetime) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(q.RECORD_SENT, lead, provider_id, at)

    async def record_retry(self, lead: int, when: datetime, error: str, worker: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(q.RECORD_RETRY, lead, when, error, worker)

    async def record_unknown(self, lead: int, error: str, worker: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(q.RECORD_UNKNOWN, lead, error, worker)

    async def fail_group(
        self,
        outbox_id: int,
        reason: str,
        statuses: Sequence[str],
        fallback: Mapping[str, str],
        now: datetime,
        held: datetime,
    ) -> FallbackOutcome:
        """Mark the group of `outbox_id` failed (if in one of `statuses`) and insert its rows
        again on the fallback channel, keyed by the outbox UNIQUE key (idempotent, no loops)."""
        async with self.pool.acquire() as conn, conn.transaction():
            failed = await conn.fetch(q.FAIL_GROUP, outbox_id, reason, list(statuses))
            if not failed:
                return FallbackOutcome([], None, None, 0)
            channel = failed[0]["channel"]
            target = fallback.get(channel)
            created = []
            if target is not None:
                note = f"fallback from {channel}: {reason}"
                created = await conn.fetch(
                    q.INSERT_FALLBACK, [r["id"] for r in failed], target, note, now, held
                )
        return FallbackOutcome([r["id"] for r in failed], channel, target, len(created))

    async def overlapping(
        self,
        address: str | None,
        channel: str,
        lead: int,
        lo: datetime,
        hi: datetime,
        text: str | None = None,
    ) -> int:
        """Unresolved attempts of other rows to this person between lo and hi (with this text,
        when given): a provider message found in that time could be theirs."""
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval(q.OVERLAPPING, address, channel, lead, lo, hi, text))

    async def known_ids(
        self, address: str | None, channel: str, since: datetime, lead: int | None = None
    ) -> frozenset[str]:
        """Provider ids learnt since `since` for messages to this person, except those of the
        group led by `lead` (its own ids are its, not another message's)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(q.KNOWN_IDS, address, channel, since, lead)
        return frozenset(r["provider_id"] for r in rows)

    async def attempt_started(self, lead: int) -> datetime | None:
        """When the group's latest hand-over to the provider began (the ledger); None if never."""
        async with self.pool.acquire() as conn:
            return cast(datetime | None, await conn.fetchval(q.ATTEMPT_STARTED, lead))

    async def next_ready(self, stale_after: timedelta) -> datetime | None:
        async with self.pool.acquire() as conn:
            return cast(datetime | None, await conn.fetchval(q.NEXT_READY, stale_after))

    async def record_status(
        self, outbox_id: int | None, sid: str | None, state: str, at: datetime
    ) -> int | None:
        """A provider's status callback: find the row (by our key, else the provider's id) and
        record the status on its group. Returns the row id, or None when no row matches."""
        async with self.pool.acquire() as conn, conn.transaction():
            row_id = await conn.fetchval(q.FIND_ROW, outbox_id, sid)
            if row_id is None or not state:
                return None
            await conn.execute(
                q.RECORD_STATUS, row_id, state, sid, list(FINAL), list(DELIVERED),
                list(NOT_DELIVERED), at,
            )  # fmt: skip
            if sid and not await conn.fetch(q.CALLBACK_ATTEMPT, row_id, sid):
                await conn.execute(q.INSERT_CALLBACK_ATTEMPT, row_id, sid, at)
        return int(row_id)

    async def mark_failed(self, outbox_id: int, reason: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(q.MARK_FAILED, outbox_id, reason)

    async def latest_sent_to(self, address: str, ticket: str | None = None) -> Reply | None:
        async with self.pool.acquire() as conn:
            if ticket is None:
                row = await conn.fetchrow(q.LATEST_SENT, address)
            else:
                row = await conn.fetchrow(q.LATEST_SENT_FOR, address, ticket)
        return None if row is None else Reply(row["ticket"], row["rule"], row["recipient"])

    async def roles_sent(self, ticket: str, recipient: str) -> frozenset[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(q.ROLES_SENT, ticket, recipient)
        return frozenset(r["role"] for r in rows)

    async def outbox_summary(self, now: datetime) -> tuple[int, list[HeldMessage]]:
        """How many messages were sent, and those held (quiet hours, grouping) past `now`."""
        async with self.pool.acquire() as conn:
            held = await conn.fetch(q.HELD, now)
            sent = await conn.fetchval(q.COUNT_SENT)
        return int(sent), [
            HeldMessage(r["recipient"], r["channel"], r["text"], r["not_before"]) for r in held
        ]
