"""The dispatcher: takes ready rows from the outbox, sends them, and writes down what happened.

Each message moves pending -> sending -> sent | failed (| back to pending for a retry). Claiming
is a short transaction (FOR UPDATE SKIP LOCKED, so several workers never take the same row);
sending happens outside any transaction; each result is recorded in its own short transaction.
Rows sent together as one message (a group, see delivery.py) share `group_id`, the id of the
group's first row, and every state change applies to the whole group.

Outcomes (notifiers/base.py SendResult):
- sent: status 'sent' with the provider's id.
- retry (definitely not accepted, e.g. 429): back to 'pending' after a jittered backoff (or the
  provider's Retry-After); after `max_attempts` sends, the fallback below.
- failed (permanent, e.g. an invalid number): the row is 'failed' with the reason, and a new row
  on the fallback channel (sms -> voice by default) is inserted with the same key and a note
  saying why; the UNIQUE key makes this idempotent and stops fallback loops. A Twilio status
  callback reporting undelivered/failed/busy/no-answer does the same (`delivery_failed`).
- unknown (maybe accepted: a 5xx or a timeout after the request went out): the row stays
  'sending' with last_error, to be reconciled.

Reconciliation, because Twilio's create calls take no idempotency key: a 'sending' row whose
claim is older than `reconcile_after_s` (its worker crashed, or the send was ambiguous) is
claimed again, and before anything is resent the provider is asked (`find_sent`, from the time
of the last attempt): found -> marked sent with that id, nothing is resent; not found -> resent
(or, after `max_attempts` sends, the fallback); the provider cannot be asked -> back to pending
and resent after a backoff, without asking again, because a missed escalation is worse than a
duplicate. Just before each send the worker re-stamps its claim and checks it still holds it, so
a row another worker has taken over is not sent by both.

Exactly when a duplicate can reach a person:
1. a send was ambiguous and, when reconciling, the provider could not be asked (find_sent
   raised): the resend may repeat a message that had been accepted;
2. the provider accepted a message but did not list it yet when asked (its list lags), or the
   clocks differ by more than notifiers' CLOCK_SLACK;
3. a send lasted longer than `reconcile_after_s` (keep it above the notifier timeout) and another
   worker reconciled it while the provider had not yet recorded it;
4. after `max_attempts` ambiguous sends the fallback channel is used, and one of the ambiguous
   SMS had in fact been accepted (a call on top of an SMS, not the same message twice).
The opposite error, a message marked sent that was not, happens only when find_sent matches
another message: an identical SMS text to the same number in the window, or, for voice, any
call to that number in the window.

Personal data: phone numbers are never logged; logs carry outbox ids and recipient contact ids.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from notifiers.base import Notifier, Outgoing, SendResult
from supervisor.core.clock import Clock
from supervisor.delivery.policy import (
    DeliverySettings,
    Render,
    backoff_s,
    compose_group,
    release_at,
    split_groups,
)

log = logging.getLogger(__name__)

MAX_SLEEP = timedelta(seconds=30)  # the loop looks again at least this often
MIN_SLEEP = timedelta(seconds=1)  # ...and not more often, when rows are ready but locked elsewhere
PHONE_CHANNELS = frozenset({"sms", "voice"})
# Channels whose provider records do not keep the content, so find_sent matches by time alone.
CONTENT_BLIND = frozenset({"voice"})
AMBIGUITY_WINDOW = timedelta(seconds=30)  # longer than a send's time-out plus clock slack

# --- SQL ---------------------------------------------------------------------------------------

_COLUMNS = (
    "id, ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text, urgent,"
    " attempts, claimed_at, last_error, in_flight, params"
)
# Messages of ladders acknowledged or stopped since they were queued are not sent. (PgStore.ack
# cancels pending rows itself; this catches rows that came back to pending from a retry.)
CANCEL_STOPPED = """
WITH s AS (
    SELECT o.id, l.status FROM outbox o
    JOIN ladders l ON l.ticket = o.ticket AND l.rule = o.rule AND l.cycle = o.cycle
    WHERE o.status = 'pending' AND o.not_before <= $1 AND l.status <> 'active'
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET status = 'cancelled', last_error = 'ladder ' || s.status FROM s
WHERE outbox.id = s.id
"""
CLAIM_READY = f"""
SELECT {_COLUMNS} FROM outbox
WHERE status = 'pending' AND not_before <= $1
ORDER BY urgent DESC, not_before, id
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
# The rest of a group: pending non-urgent rows for the same person and channel that would become
# ready within the window anyway (Alertmanager's group_wait, see delivery.py).
JOIN_GROUP = f"""
SELECT {_COLUMNS} FROM outbox
WHERE status = 'pending' AND NOT urgent AND not_before <= $1
  AND (channel, coalesce(address, recipient)) IN (SELECT * FROM unnest($2::text[], $3::text[]))
  AND id <> ALL($4::bigint[])
FOR UPDATE SKIP LOCKED
"""
MARK_SENDING = """
UPDATE outbox AS o SET status = 'sending', claimed_at = $1, claimed_by = $2, group_id = v.lead
FROM unnest($3::bigint[], $4::bigint[]) AS v(id, lead)
WHERE o.id = v.id
"""
# The lead row's lock stands for its group's: only one worker reconciles a group.
CLAIM_STALE = """
SELECT id FROM outbox
WHERE status = 'sending' AND claimed_at < $1 AND coalesce(group_id, id) = id
ORDER BY claimed_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
GROUP_ROWS = f"""
SELECT coalesce(group_id, id) AS lead, {_COLUMNS} FROM outbox
WHERE coalesce(group_id, id) = ANY($1::bigint[]) AND status = 'sending'
ORDER BY id
"""
RESTAMP = """
UPDATE outbox SET claimed_at = $1, claimed_by = $2, group_id = coalesce(group_id, id)
WHERE coalesce(group_id, id) = ANY($3::bigint[]) AND status = 'sending'
"""
# Just before a send: still ours? The new claim time is also the `since` of a later reconcile.
TOUCH = """
UPDATE outbox SET claimed_at = $2, attempts = attempts + 1, in_flight = true
WHERE group_id = $1 AND status = 'sending' AND claimed_by = $3
RETURNING id
"""
# 'sent' is the truth whoever holds the claim; a callback may have marked the row failed already.
RECORD_SENT = """
UPDATE outbox SET status = 'sent', provider_id = $2, sent_at = $3, last_error = NULL, in_flight = false
WHERE group_id = $1 AND status = 'sending'
"""
RECORD_RETRY = """
UPDATE outbox SET status = 'pending', not_before = $2, last_error = $3, claimed_by = NULL, in_flight = false
WHERE group_id = $1 AND status = 'sending' AND claimed_by = $4
"""
RECORD_UNKNOWN = """
UPDATE outbox SET last_error = $2 WHERE group_id = $1 AND status = 'sending' AND claimed_by = $3
"""
FAIL_GROUP = """
UPDATE outbox SET status = 'failed', last_error = $2, in_flight = false
WHERE coalesce(group_id, id) = (SELECT coalesce(group_id, id) FROM outbox WHERE id = $1)
  AND status = ANY($3::text[])
RETURNING id, channel
"""
# Same key on another channel; not for a ladder that was acknowledged or stopped meanwhile.
INSERT_FALLBACK = """
INSERT INTO outbox (ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text,
                    urgent, note, not_before, created_at)
SELECT o.ticket, o.rule, o.cycle, o.step, o.rep, o.role, o.recipient, o.name, o.address, $2, o.text,
       o.urgent, $3, CASE WHEN o.urgent THEN $4::timestamptz ELSE $5::timestamptz END, $4
FROM outbox o
WHERE o.id = ANY($1::bigint[])
  AND NOT EXISTS (SELECT 1 FROM ladders l WHERE l.ticket = o.ticket AND l.rule = o.rule
                  AND l.cycle = o.cycle AND l.status <> 'active')
ON CONFLICT DO NOTHING
RETURNING id
"""
# Other unresolved attempts to the same person around the same moment: a provider that cannot
# compare content (voice) could not tell their calls apart.
OVERLAPPING = """
SELECT count(*) FROM outbox
WHERE address IS NOT DISTINCT FROM $1 AND channel = $2 AND status = 'sending' AND in_flight
  AND coalesce(group_id, id) <> $3 AND claimed_at BETWEEN $4 AND $5
"""
KNOWN_IDS = """
SELECT DISTINCT provider_id FROM outbox
WHERE address IS NOT DISTINCT FROM $1 AND channel = $2 AND provider_id IS NOT NULL AND sent_at >= $3
"""
NEXT_READY = """
SELECT least((SELECT min(not_before) FROM outbox WHERE status = 'pending'),
             (SELECT min(claimed_at) FROM outbox WHERE status = 'sending') + $1::interval)
"""


# --- values ------------------------------------------------------------------------------------


@dataclass
class DispatchStats:
    claimed: int = 0  # rows taken (new and reconciled)
    messages: int = 0  # messages handled (a group is one)
    sent: int = 0  # messages the provider accepted
    reconciled: int = 0  # messages found already accepted: marked sent, not resent
    retried: int = 0  # messages put back to pending
    unknown: int = 0  # ambiguous sends left for reconciliation
    failed: int = 0  # messages given up on this channel
    fallbacks: int = 0  # rows created on a fallback channel
    skipped: int = 0  # claims lost to another worker before sending

    def add(self, other: DispatchStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class _Batch:
    """One message to send: one row, or a group of rows for the same person and channel."""

    lead: int
    rows: list[dict[str, Any]]
    text: str
    since: datetime | None = None  # set when reconciling: the time of the last attempt
    ids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = [r["id"] for r in self.rows]

    @property
    def first(self) -> dict[str, Any]:
        return self.rows[0]

    @property
    def channel(self) -> str:
        return str(self.first["channel"])

    @property
    def attempts(self) -> int:
        return max(int(r["attempts"]) for r in self.rows)

    def log_extra(self, **more: object) -> dict[str, object]:
        return {
            "outbox": self.ids,
            "recipient": self.first["recipient"],
            "channel": self.channel,
            **more,
        }


class _TokenBucket:
    """Per-channel send rate for this process. Waits on the clock, so a VirtualClock in tests
    advances instead of sleeping. A burst of one: messages are spaced evenly."""

    def __init__(self, rate_per_s: float, clock: Clock) -> None:
        self._rate = rate_per_s
        self._clock = clock
        self._tokens = 1.0
        self._at: datetime | None = None
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = self._clock.now()
                if self._at is not None:
                    elapsed = max(0.0, (now - self._at).total_seconds())
                    self._tokens = min(1.0, self._tokens + elapsed * self._rate)
                self._at = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self._rate
                await self._clock.sleep_until(now + timedelta(seconds=wait))


# --- the dispatcher ------------------------------------------------------------------------------


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        notifiers: Mapping[str, Notifier],
        settings: DeliverySettings,
        clock: Clock,
        *,
        render_group: Render | None = None,
        worker_id: str,
        rng: random.Random | None = None,
    ) -> None:
        self.pool = pool
        self.notifiers = notifiers
        self.settings = settings
        self.clock = clock
        self.render_group = render_group
        self.worker_id = worker_id
        self._rng = rng or random.Random()
        self._buckets: dict[str, _TokenBucket] = {}

    # -- one pass -----------------------------------------------------------------------------

    async def run_once(self, limit: int = 100) -> DispatchStats:
        """Reconcile stale claims, claim ready rows, send them, record the results."""
        stats = DispatchStats()
        now = self.clock.now()
        batches = await self._claim_stale(now, limit)
        batches += await self._claim_ready(now, limit)
        stats.claimed = sum(len(b.rows) for b in batches)
        by_channel: dict[str, list[_Batch]] = defaultdict(list)
        for b in batches:
            by_channel[b.channel].append(b)
        # Channels send side by side (a slow SMS queue must not hold up calls); within a channel,
        # one after another at the channel's rate.
        results = await asyncio.gather(
            *(self._send_channel(bs) for bs in by_channel.values()), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
            stats.add(r)
        return stats

    async def next_ready(self) -> datetime | None:
        """When run_once next has something to do: the earliest pending row, or the earliest
        'sending' row becoming stale."""
        async with self.pool.acquire() as conn:
            return await conn.fetchval(
                NEXT_READY, timedelta(seconds=self.settings.reconcile_after_s)
            )

    async def run(
        self,
        stop: asyncio.Event,
        wake: asyncio.Event,
        on_stats: Callable[[DispatchStats], None] | None = None,
    ) -> None:
        """The daemon loop: run_once while there is work, then sleep until the next ready row,
        `wake` (new rows were queued) or `stop`, at most MAX_SLEEP. `on_stats` sees each pass's
        figures (the daemon's metrics)."""
        while not stop.is_set():
            busy = False
            ready: datetime | None = None
            try:
                stats = await self.run_once()
                if on_stats is not None:
                    on_stats(stats)
                busy = stats.claimed > 0
                if not busy:
                    ready = await self.next_ready()
            except Exception:
                # A database outage or a bug in one pass must not end delivery for good.
                log.exception("dispatch pass failed", extra={"worker": self.worker_id})
            if busy:
                await asyncio.sleep(0)  # let other tasks run between passes
                continue
            now = self.clock.now()
            until = now + MAX_SLEEP if ready is None else min(ready, now + MAX_SLEEP)
            await self._sleep(max(until, now + MIN_SLEEP), stop, wake)
            wake.clear()

    async def _sleep(self, until: datetime, stop: asyncio.Event, wake: asyncio.Event) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep_until(until, wake))
        stopper = asyncio.ensure_future(stop.wait())
        _, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- claiming -----------------------------------------------------------------------------

    async def _claim_ready(self, now: datetime, limit: int) -> list[_Batch]:
        window = timedelta(seconds=self.settings.group_window_s)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(CANCEL_STOPPED, now + window)
            rows = [dict(r) for r in await conn.fetch(CLAIM_READY, now, limit)]
            if not rows:
                return []
            keys = {
                (r["channel"], _person(r))
                for r in rows
                if not r["urgent"] and not self._templated(r["channel"])
            }
            if keys and window:
                joined = await conn.fetch(
                    JOIN_GROUP,
                    now + window,
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [r["id"] for r in rows],
                )
                rows += [dict(r) for r in joined]
            batches = self._group(rows)
            ids = [i for b in batches for i in b.ids]
            leads = [b.lead for b in batches for _ in b.ids]
            await conn.execute(MARK_SENDING, now, self.worker_id, ids, leads)
        return batches

    def _group(self, rows: list[dict[str, Any]]) -> list[_Batch]:
        """Urgent rows go alone; the others by person and channel, cut to the SMS budget."""
        batches: list[_Batch] = []
        together: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in sorted(rows, key=lambda r: r["id"]):
            if r["urgent"] or not self.settings.group_window_s or self._templated(r["channel"]):
                batches.append(self._batch([r]))
            else:
                together[(r["channel"], _person(r))].append(r)
        for group in together.values():
            for chunk in split_groups(group, self.settings.group_max_segments, self.render_group):
                batches.append(self._batch([dict(r) for r in chunk]))
        return batches

    def _templated(self, channel: str) -> bool:
        # A provider that sends only registered templates (Aliyun, Tencent) cannot send a group
        # composed as free text: each message goes alone with its own template and parameters.
        return bool(getattr(self.notifiers.get(channel), "templated", False))

    def _batch(self, rows: list[dict[str, Any]], since: datetime | None = None) -> _Batch:
        return _Batch(rows[0]["id"], rows, compose_group(rows, self.render_group), since)

    async def _claim_stale(self, now: datetime, limit: int) -> list[_Batch]:
        cutoff = now - timedelta(seconds=self.settings.reconcile_after_s)
        async with self.pool.acquire() as conn, conn.transaction():
            leads = [r["id"] for r in await conn.fetch(CLAIM_STALE, cutoff, limit)]
            if not leads:
                return []
            groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for r in await conn.fetch(GROUP_ROWS, leads):
                groups[r["lead"]].append(dict(r))
            await conn.execute(RESTAMP, now, self.worker_id, leads)
        batches = []
        for lead, rows in groups.items():
            # Rebuilt from the same rows in the same order, the text is the one sent before,
            # which is what find_sent compares.
            since = next(r["claimed_at"] for r in rows if r["id"] == lead)
            if not any(r["in_flight"] for r in rows):
                since = None  # claimed but never handed to the provider: nothing to ask about
            batches.append(_Batch(lead, rows, compose_group(rows, self.render_group), since))
        return batches

    # -- sending ------------------------------------------------------------------------------

    async def _send_channel(self, batches: list[_Batch]) -> DispatchStats:
        stats = DispatchStats()
        for b in batches:
            stats.messages += 1
            await self._deliver(b, stats)
        return stats

    async def _deliver(self, b: _Batch, stats: DispatchStats) -> None:
        notifier = self.notifiers.get(b.channel)
        if notifier is None:
            await self._give_up(b, f"no notifier for channel {b.channel}", stats)
            return
        to = _address_for(b.first, notifier)
        if to is None:
            await self._give_up(b, f"no phone number for recipient {b.first['recipient']}", stats)
            return
        msg = Outgoing(key=f"outbox:{b.lead}", channel=b.channel, to=to, text=b.text,
                       urgent=bool(b.first["urgent"]) and len(b.rows) == 1,
                       params=b.first.get("params") if len(b.rows) == 1 else None)  # fmt: skip

        if b.since is not None and not await self._reconcile(b, notifier, msg, stats):
            return

        await self._bucket(b.channel).take()
        async with self.pool.acquire() as conn:
            touched = await conn.fetch(TOUCH, b.lead, self.clock.now(), self.worker_id)
        if not touched:
            stats.skipped += 1
            log.info("claim lost before sending", extra=b.log_extra())
            return
        attempts = b.attempts + 1
        try:
            result = await notifier.send(msg)
        except Exception as exc:
            # A notifier bug: the request may or may not have gone out, so reconcile later.
            log.exception("notifier raised", extra=b.log_extra())
            result = SendResult("unknown", error=f"notifier raised {type(exc).__name__}")
        await self._record(b, result, attempts, stats)

    async def _reconcile(
        self, b: _Batch, notifier: Notifier, msg: Outgoing, stats: DispatchStats
    ) -> bool:
        """Ask the provider about an earlier attempt; True when the message should be sent."""
        assert b.since is not None
        if b.channel in CONTENT_BLIND:
            async with self.pool.acquire() as conn:
                others = await conn.fetchval(
                    OVERLAPPING, b.first["address"], b.channel, b.lead,
                    b.since - AMBIGUITY_WINDOW, b.since + AMBIGUITY_WINDOW,
                )  # fmt: skip
            if others:
                # Two unresolved calls to one person at once: a call found could be either's.
                # Place this one again: a second call is better than a missed escalation.
                log.info("reconcile skipped: overlapping attempts", extra=b.log_extra())
                return True
        try:
            # what the provider accepted for our other messages to this person is not this one
            async with self.pool.acquire() as conn:
                known = frozenset(
                    r["provider_id"]
                    for r in await conn.fetch(
                        KNOWN_IDS, b.first["address"], b.channel, b.since - timedelta(hours=1)
                    )
                )
            found = await notifier.find_sent(msg, b.since, known)
        except Exception as exc:
            # The provider cannot be asked: resend after a backoff rather than risk silence.
            error = f"could not reconcile ({type(exc).__name__}); resending"
            log.warning("reconcile failed", extra=b.log_extra(error=error))
            await self._retry(b, error, None, b.attempts, stats)
            return False
        if found is not None:
            async with self.pool.acquire() as conn:
                await conn.execute(RECORD_SENT, b.lead, found, self.clock.now())
            stats.reconciled += 1
            log.info("reconciled: already sent", extra=b.log_extra(provider_id=found))
            return False
        if b.attempts >= self.settings.max_attempts:
            reason = f"gave up after {b.attempts} attempts: {b.first['last_error'] or 'no answer'}"
            await self._give_up(b, reason, stats)
            return False
        return True

    async def _record(
        self, b: _Batch, result: SendResult, attempts: int, stats: DispatchStats
    ) -> None:
        now = self.clock.now()
        if result.outcome == "sent":
            async with self.pool.acquire() as conn:
                await conn.execute(RECORD_SENT, b.lead, result.provider_id, now)
            stats.sent += 1
            log.info("sent", extra=b.log_extra(provider_id=result.provider_id, rows=len(b.rows)))
        elif result.outcome == "retry":
            await self._retry(b, result.error or "retry", result.retry_after_s, attempts, stats)
        elif result.outcome == "failed":
            await self._give_up(b, result.error or "failed", stats)
        else:  # unknown: leave it 'sending'; it is reconciled once its claim is stale
            async with self.pool.acquire() as conn:
                await conn.execute(
                    RECORD_UNKNOWN, b.lead, result.error or "unknown", self.worker_id
                )
            stats.unknown += 1
            log.warning("send outcome unknown", extra=b.log_extra(error=result.error))

    async def _retry(
        self,
        b: _Batch,
        error: str,
        retry_after_s: float | None,
        attempts: int,
        stats: DispatchStats,
    ) -> None:
        if attempts >= self.settings.max_attempts:
            await self._give_up(b, f"gave up after {attempts} attempts: {error}", stats)
            return
        delay = max(backoff_s(attempts, self.settings, self._rng), retry_after_s or 0.0)
        now = self.clock.now()
        when = release_at(now + timedelta(seconds=delay), bool(b.first["urgent"]), self.settings)
        async with self.pool.acquire() as conn:
            await conn.execute(RECORD_RETRY, b.lead, when, error, self.worker_id)
        stats.retried += 1
        log.info("retry later", extra=b.log_extra(error=error, delay_s=round(delay, 1)))

    async def _give_up(self, b: _Batch, reason: str, stats: DispatchStats) -> None:
        stats.failed += 1
        stats.fallbacks += await self._fail_and_fall_back(b.lead, reason, ("sending",))

    # -- failures reported later ----------------------------------------------------------------

    async def delivery_failed(self, outbox_id: int, reason: str) -> int:
        """The provider reported, after accepting it, that a message did not arrive (a status
        callback: undelivered, failed, busy, no-answer...). Marks its group failed and falls back.
        Returns the number of fallback rows created; idempotent (callbacks are retried)."""
        return await self._fail_and_fall_back(outbox_id, reason, ("sending", "sent"))

    async def _fail_and_fall_back(
        self, outbox_id: int, reason: str, statuses: tuple[str, ...]
    ) -> int:
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            failed = await conn.fetch(FAIL_GROUP, outbox_id, reason, list(statuses))
            if not failed:
                return 0
            channel = failed[0]["channel"]
            target = self.settings.fallback.get(channel)
            created = []
            if target is not None:
                note = f"fallback from {channel}: {reason}"
                held = release_at(now, False, self.settings)
                created = await conn.fetch(
                    INSERT_FALLBACK, [r["id"] for r in failed], target, note, now, held
                )
        extra = {"outbox": [r["id"] for r in failed], "channel": channel, "reason": reason}
        log.warning(
            "delivery failed", extra={**extra, "fallback": target, "fallback_rows": len(created)}
        )
        return len(created)

    def _bucket(self, channel: str) -> _TokenBucket:
        if channel not in self._buckets:
            self._buckets[channel] = _TokenBucket(self.settings.rate_for(channel), self.clock)
        return self._buckets[channel]


def _person(row: Mapping[str, Any]) -> str:
    # Phone channels group by number (two contact ids may share a phone); robots by contact.
    return str(row["address"] or row["recipient"])


def _address_for(row: Mapping[str, Any], notifier: Notifier) -> str | None:
    if notifier.name == "console":
        # The console prints `to` as given: give it the contact id, never a number.
        return str(row["recipient"])
    if row["channel"] in PHONE_CHANNELS:
        return row["address"] or None
    return row["address"] or str(row["recipient"])
