"""The outbox half of PgStore: queue, claim, record, fall back, status callbacks, replies.

Claims are short transactions with FOR UPDATE SKIP LOCKED, so several workers never take the same
row; the send itself happens outside any transaction (delivery/outbox.py). Rows sent together as
one message share `group_id`, the id of the group's first row (the lead), and every state change
applies to the whole group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import orjson

from supervisor.engine.firing import Notification
from supervisor.storage import queries as q
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
from supervisor.storage.jsoncodec import dumps

if TYPE_CHECKING:
    from supervisor.config.delivery import Workday


def _row(r: Any) -> OutboxRow:
    return cast(OutboxRow, dict(r))


def _json(params: Mapping[str, Any] | None) -> str | None:
    # stored as jsonb: the same value as json.dumps(params, ensure_ascii=False) gave, faster
    return None if params is None else dumps(params)


def _outbox_rows(notes: Sequence[Notification], not_before: Sequence[datetime]) -> bytes | None:
    """`notes` as INSERT_OUTBOX_ROWS_MARK_TIMERS reads them: one JSON array of rows, each
    INSERT_OUTBOX's sixteen columns in order, the times as ISO text in UTC and params as a JSON
    value (null for none), as the UTF-8 bytes orjson writes (a str decoded from them, for the
    client to encode back, cost more than writing them). None when that could store anything
    other than what the arrays of INSERT_OUTBOX store (a time without a zone; anything orjson
    would not write as `dumps` does, whose params go through json.dumps; a NUL character, which
    PostgreSQL refuses in either form): the caller then sends the arrays."""
    times: dict[datetime, str] = {}  # a batch's notes share `at` and a few release times

    def utc(when: datetime) -> str:
        text = times.get(when)
        if text is None:
            if when.tzinfo is None or when.utcoffset() is None:
                raise TypeError("a time without a zone")
            text = times[when] = when.astimezone(UTC).isoformat()
        return text

    try:
        rows = [
            (*_HEAD(n), n.to or "-", *_MIDDLE(n), utc(nb), utc(n.at), n.params)
            for n, nb in zip(notes, not_before, strict=True)
        ]
        doc = orjson.dumps(rows, option=_ROWS)
    except TypeError:  # orjson.JSONEncodeError is one
        return None
    return None if b"\\u0000" in doc else doc


# a row's columns around `recipient` (n.to or "-"), each group read in one call
_HEAD = attrgetter("ticket", "rule", "cycle", "step", "rep", "role")
_MIDDLE = attrgetter("name", "address", "channel", "text", "urgent", "note")
# as jsoncodec.dumps: whatever it leaves to json.dumps (a subclass, a dataclass, a datetime in
# params) makes orjson refuse the rows, and the arrays go instead
_ROWS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class PgOutbox:
    pool: asyncpg.Pool

    async def _insert_outbox(
        self,
        conn: asyncpg.Connection,
        notes: Sequence[Notification],
        delivery: Any,
        workday: Workday | None = None,
        marks: tuple[datetime, list[int], list[str], list[float]] | None = None,
    ) -> None:
        """Queue `notes`; with `marks` (fired_at, timer ids, statuses, lateness), the same
        statement also marks the claimed timers (fire_due: one round trip, not two)."""
        released: dict[tuple[datetime, bool], datetime] = {}  # notes of one batch share `at`
        not_before = []
        for n in notes:
            key = (n.at, n.urgent)
            when = released.get(key)
            if when is None:
                when = released[key] = release_time(n, delivery, workday)
            not_before.append(when)
        if marks is not None:
            doc = _outbox_rows(notes, not_before)
            if doc is not None:
                await conn.execute(q.INSERT_OUTBOX_ROWS_MARK_TIMERS, doc, *marks)
                return
        await conn.execute(
            q.INSERT_OUTBOX if marks is None else q.INSERT_OUTBOX_MARK_TIMERS,
            [n.ticket for n in notes], [n.rule for n in notes], [n.cycle for n in notes], [n.step for n in notes],
            [n.rep for n in notes], [n.role for n in notes], [n.to or "-" for n in notes], [n.name for n in notes],
            [n.address for n in notes], [n.channel for n in notes], [n.text for n in notes], [n.urgent for n in notes],
            [n.note for n in notes], not_before, [n.at for n in notes],
            [_json(n.params) for n in notes],
            *(marks or ()),
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
        lane: Lane = None,
    ) -> list[list[OutboxRow]]:
        """Cancel messages of stopped ladders, take ready rows (urgent first) and, when grouping,
        the other pending rows for the same people that become ready within the window (at most
        `limit` of them, none on the `solo` channels, whose messages always go alone); mark them
        all 'sending' under this worker, as the messages `group` makes of them."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(q.CANCEL_STOPPED, now + window)
            rows = [_row(r) for r in await conn.fetch(q.CLAIM_READY_LANES[lane], now, limit)]
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

    async def touch_line(self, lead: int, now: datetime, worker: str) -> LineClaim:
        """`touch`, unless another group's message to the same address and channel is in flight.
        The advisory lock (per channel and address, held to the end of the transaction) makes the
        look and the touch one step for every worker: two unconfirmed calls to one number are
        never both handed over."""
        async with self.pool.acquire() as conn, conn.transaction():
            line = await conn.fetchrow(q.LINE_OF, lead)
            if line is None:
                return "lost"
            await conn.execute(q.LINE_LOCK, line["channel"], line["address"])
            if await conn.fetchval(q.LINE_BUSY, line["channel"], line["address"], lead):
                return "busy"
            return "ok" if await conn.fetch(q.TOUCH, lead, now, worker) else "lost"

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

    async def release_held(
        self, channels: frozenset[str], reason: str, now: datetime, within: timedelta
    ) -> int:
        """A provider is back: its held rows (waiting for a probe, `reason`) become ready now."""
        async with self.pool.acquire() as conn:
            status = await conn.execute(q.RELEASE_HELD, sorted(channels), reason, now, within)
        return int(status.split()[-1])

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
        takes: Callable[[str, str], bool] | None = None,
    ) -> FallbackOutcome:
        """Mark the group of `outbox_id` failed (if in one of `statuses`) and insert its rows
        again on the fallback channel, keyed by the outbox UNIQUE key (idempotent, no loops);
        with `takes`, only for recipients who take the fallback channel."""
        async with self.pool.acquire() as conn, conn.transaction():
            failed = await conn.fetch(q.FAIL_GROUP, outbox_id, reason, list(statuses))
            if not failed:
                return FallbackOutcome([], None, None, 0)
            channel = failed[0]["channel"]
            target = fallback.get(channel)
            again = [r["id"] for r in failed
                     if target is not None and (takes is None or takes(r["recipient"], target))]  # fmt: skip
            created = []
            if again:
                note = f"fallback from {channel}: {reason}"
                created = await conn.fetch(q.INSERT_FALLBACK, again, target, note, now, held)
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

    async def next_ready(self, stale_after: timedelta, lane: Lane = None) -> datetime | None:
        async with self.pool.acquire() as conn:
            if lane == "urgent":
                return cast(datetime | None, await conn.fetchval(q.NEXT_READY_URGENT))
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

    async def call_rows(self, outbox_id: int) -> list[OutboxRow]:
        """The rows of the message (group) `outbox_id` belongs to, whatever their status."""
        async with self.pool.acquire() as conn:
            return [_row(r) for r in await conn.fetch(q.CALL_ROWS, outbox_id)]

    async def record_keypress(
        self, outbox_id: int, digits: str, result: str, at: datetime
    ) -> None:
        """The key pressed during a call, and what it did, on every row of its group."""
        async with self.pool.acquire() as conn:
            await conn.execute(q.RECORD_KEYPRESS, outbox_id, digits, result, at)

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
