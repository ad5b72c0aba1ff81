"""The dispatcher: takes ready rows from the outbox, sends them, and writes down what happened.

Each message moves pending -> sending -> sent | failed (| back to pending for a retry). The store
carries the moves out (storage/base.py: claim_ready, claim_stale, touch, record_*, fail_group);
this module decides which move to make. Sending happens outside any transaction. Rows sent
together as one message (a group, see policy.py) share a lead row, and every state change applies
to the whole group.

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
from datetime import datetime, timedelta
from typing import cast

from notifiers.base import Notifier, Outgoing, SendResult
from supervisor.core.clock import Clock
from supervisor.delivery.policy import (
    DeliverySettings,
    backoff_s,
    compose_group,
    release_at,
    split_groups,
)
from supervisor.delivery.sending import Batch, DispatchStats, TokenBucket, address_for
from supervisor.storage.base import OutboxRow, Store
from supervisor.storage.pg_outbox import person

log = logging.getLogger(__name__)

MAX_SLEEP = timedelta(seconds=30)  # the loop looks again at least this often
MIN_SLEEP = timedelta(seconds=1)  # ...and not more often, when rows are ready but locked elsewhere
# Channels whose provider records do not keep the content, so find_sent matches by time alone.
CONTENT_BLIND = frozenset({"voice"})
AMBIGUITY_WINDOW = timedelta(seconds=30)  # longer than a send's time-out plus clock slack


class Dispatcher:
    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        settings: DeliverySettings,
        clock: Clock,
        *,
        worker_id: str,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.notifiers = notifiers
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id
        self._rng = rng or random.Random()
        self._buckets: dict[str, TokenBucket] = {}

    # -- one pass -----------------------------------------------------------------------------

    async def run_once(self, limit: int = 100) -> DispatchStats:
        """Reconcile stale claims, claim ready rows, send them, record the results."""
        stats = DispatchStats()
        now = self.clock.now()
        batches = await self._claim_stale(now, limit)
        batches += await self._claim_ready(now, limit)
        stats.claimed = sum(len(b.rows) for b in batches)
        by_channel: dict[str, list[Batch]] = defaultdict(list)
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
        return await self.store.next_ready(timedelta(seconds=self.settings.reconcile_after_s))

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

    async def _claim_ready(self, now: datetime, limit: int) -> list[Batch]:
        window = timedelta(seconds=self.settings.group_window_s)
        messages = await self.store.claim_ready(now, limit, self.worker_id, window, self._group)
        return [self._batch(rows) for rows in messages]

    def _group(self, rows: list[OutboxRow]) -> list[list[OutboxRow]]:
        """Urgent rows go alone; the others by person and channel, cut to the SMS budget."""
        out: list[list[OutboxRow]] = []
        together: dict[tuple[str, str], list[OutboxRow]] = defaultdict(list)
        for r in sorted(rows, key=lambda r: r["id"]):
            if r["urgent"] or not self.settings.group_window_s:
                out.append([r])
            else:
                together[(r["channel"], person(r))].append(r)
        for group in together.values():
            for chunk in split_groups(group, self.settings.group_max_segments):
                out.append([cast(OutboxRow, r) for r in chunk])
        return out

    def _batch(self, rows: list[OutboxRow], since: datetime | None = None) -> Batch:
        return Batch(rows[0]["id"], rows, compose_group(rows), since)

    async def _claim_stale(self, now: datetime, limit: int) -> list[Batch]:
        cutoff = now - timedelta(seconds=self.settings.reconcile_after_s)
        groups = await self.store.claim_stale(now, cutoff, limit, self.worker_id)
        batches = []
        for lead, rows in groups.items():
            # Rebuilt from the same rows in the same order, the text is the one sent before,
            # which is what find_sent compares.
            since = next(r["claimed_at"] for r in rows if r["id"] == lead)
            if not any(r["in_flight"] for r in rows):
                since = None  # claimed but never handed to the provider: nothing to ask about
            batches.append(Batch(lead, rows, compose_group(rows), since))
        return batches

    # -- sending ------------------------------------------------------------------------------

    async def _send_channel(self, batches: list[Batch]) -> DispatchStats:
        stats = DispatchStats()
        for b in batches:
            stats.messages += 1
            await self._deliver(b, stats)
        return stats

    async def _deliver(self, b: Batch, stats: DispatchStats) -> None:
        notifier = self.notifiers.get(b.channel)
        if notifier is None:
            await self._give_up(b, f"no notifier for channel {b.channel}", stats)
            return
        to = address_for(b.first, notifier)
        if to is None:
            await self._give_up(b, f"no phone number for recipient {b.first['recipient']}", stats)
            return
        msg = Outgoing(key=f"outbox:{b.lead}", channel=b.channel, to=to, text=b.text,
                       urgent=bool(b.first["urgent"]) and len(b.rows) == 1)  # fmt: skip

        if b.since is not None and not await self._reconcile(b, notifier, msg, stats):
            return

        await self._bucket(b.channel).take()
        if not await self.store.touch(b.lead, self.clock.now(), self.worker_id):
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
        self, b: Batch, notifier: Notifier, msg: Outgoing, stats: DispatchStats
    ) -> bool:
        """Ask the provider about an earlier attempt; True when the message should be sent."""
        assert b.since is not None
        if b.channel in CONTENT_BLIND:
            others = await self.store.overlapping(
                b.first["address"], b.channel, b.lead,
                b.since - AMBIGUITY_WINDOW, b.since + AMBIGUITY_WINDOW,
            )  # fmt: skip
            if others:
                # Two unresolved calls to one person at once: a call found could be either's.
                # Place this one again: a second call is better than a missed escalation.
                log.info("reconcile skipped: overlapping attempts", extra=b.log_extra())
                return True
        try:
            # what the provider accepted for our other messages to this person is not this one
            known = await self.store.known_ids(
                b.first["address"], b.channel, b.since - timedelta(hours=1)
            )
            found = await notifier.find_sent(msg, b.since, known)
        except Exception as exc:
            # The provider cannot be asked: resend after a backoff rather than risk silence.
            error = f"could not reconcile ({type(exc).__name__}); resending"
            log.warning("reconcile failed", extra=b.log_extra(error=error))
            await self._retry(b, error, None, b.attempts, stats)
            return False
        if found is not None:
            await self.store.record_sent(b.lead, found, self.clock.now())
            stats.reconciled += 1
            log.info("reconciled: already sent", extra=b.log_extra(provider_id=found))
            return False
        if b.attempts >= self.settings.max_attempts:
            reason = f"gave up after {b.attempts} attempts: {b.first['last_error'] or 'no answer'}"
            await self._give_up(b, reason, stats)
            return False
        return True

    async def _record(
        self, b: Batch, result: SendResult, attempts: int, stats: DispatchStats
    ) -> None:
        now = self.clock.now()
        if result.outcome == "sent":
            await self.store.record_sent(b.lead, result.provider_id, now)
            stats.sent += 1
            log.info("sent", extra=b.log_extra(provider_id=result.provider_id, rows=len(b.rows)))
        elif result.outcome == "retry":
            await self._retry(b, result.error or "retry", result.retry_after_s, attempts, stats)
        elif result.outcome == "failed":
            await self._give_up(b, result.error or "failed", stats)
        else:  # unknown: leave it 'sending'; it is reconciled once its claim is stale
            await self.store.record_unknown(b.lead, result.error or "unknown", self.worker_id)
            stats.unknown += 1
            log.warning("send outcome unknown", extra=b.log_extra(error=result.error))

    async def _retry(
        self,
        b: Batch,
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
        await self.store.record_retry(b.lead, when, error, self.worker_id)
        stats.retried += 1
        log.info("retry later", extra=b.log_extra(error=error, delay_s=round(delay, 1)))

    async def _give_up(self, b: Batch, reason: str, stats: DispatchStats) -> None:
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
        held = release_at(now, False, self.settings)
        out = await self.store.fail_group(
            outbox_id, reason, statuses, self.settings.fallback, now, held
        )
        if not out.failed:
            return 0
        extra = {"outbox": out.failed, "channel": out.channel, "reason": reason}
        log.warning(
            "delivery failed", extra={**extra, "fallback": out.target, "fallback_rows": out.created}
        )
        return out.created

    def _bucket(self, channel: str) -> TokenBucket:
        if channel not in self._buckets:
            self._buckets[channel] = TokenBucket(self.settings.rate_for(channel), self.clock)
        return self._buckets[channel]
