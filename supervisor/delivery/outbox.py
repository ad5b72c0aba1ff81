"""The dispatcher: takes ready rows from the outbox, sends them, and writes down what happened.

Each message moves pending -> sending -> sent | failed (| back to pending for a retry). The store
carries the moves out (storage/base.py: claim_ready, claim_stale, touch, record_*, fail_group);
this module decides which move to make. Sending happens outside any transaction; urgent messages
go first. Rows sent together as one message (a group, see policy.py) share a lead row, and every
state change applies to the whole group; template-only providers (Aliyun, Tencent) send each
message alone, with its parameters. Non-urgent retries wait through the office's non-working days
(`workday`).

Outcomes (notifiers/base.py SendResult), each also written to the attempts ledger:
- sent: status 'sent' with the provider's id.
- retry (definitely not accepted, e.g. 429, connection refused): back to 'pending' after a
  jittered, capped backoff (or the provider's Retry-After), for as long as the message is within
  its channel's `retry_horizon_s` (hours by default); past it, the fallback below.
- failed (permanent, e.g. an invalid number): the row is 'failed' with the reason, and a new row
  on the fallback channel (sms -> voice by default) is inserted with the same key and a note
  saying why; the UNIQUE key makes this idempotent and stops fallback loops. A Twilio status
  callback reporting undelivered/failed/busy/no-answer does the same (`delivery_failed`).
- unknown (maybe accepted: a 5xx or a time-out after the request went out): the row stays
  'sending', to be reconciled once its claim is older than `reconcile_after_s`: the provider is
  asked (`find_sent`) before anything is resent (see _reconcile and docs/RELIABILITY.md for
  exactly when a duplicate can reach a person).

A circuit breaker per provider (breaker.py) stops sends while the provider is down: the messages
go to a fallback channel whose provider is up, or wait, pending, until a single probe finds the
provider back; `on_outage` tells the supervisors by whatever channel still works.

Personal data: phone numbers are never logged; logs carry outbox ids and recipient contact ids.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from notifiers.base import Notifier, Outgoing, SendResult
from supervisor.config.delivery import (
    DeliverySettings,
    Workday,
    backoff_s,
    expired,
    release_at,
)
from supervisor.core.clock import Clock
from supervisor.delivery.breaker import Breaker, held_reason
from supervisor.delivery.sending import (
    Batch,
    DispatchStats,
    LimitedFn,
    OutageFn,
    TakesFn,
    TokenBucket,
    address_for,
    compose,
    group_rows,
    provider_of,
    solo_channels,
)
from supervisor.storage.base import Lane, OutboxRow, Store

log = logging.getLogger(__name__)

MAX_SLEEP = timedelta(seconds=30)  # the loop looks again at least this often
MIN_SLEEP = timedelta(seconds=1)  # ...and not more often, when rows are ready but locked elsewhere
ORDINARY_PASS = 100  # rows claimed per pass
URGENT_PASS = 10  # ...in the urgent lane: small, so a pass is over in moments
# Channels whose provider records do not keep the content, so find_sent matches by time alone.
CONTENT_BLIND = frozenset({"voice"})
AMBIGUITY_WINDOW = timedelta(seconds=30)  # longer than a send's time-out plus clock slack
# Channels on which a person has at most one unconfirmed message at a time: a call's record at
# Twilio keeps no content, so two calls to one number whose answers were both lost could not be
# told apart by reconciliation (the "placed twice" case). The second waits until the first is
# confirmed (sent, refused, or reconciled); without status callbacks this is what keeps every
# call placed once.
ONE_AT_A_TIME = CONTENT_BLIND
LINE_BUSY_WAIT = timedelta(seconds=5)
LIMIT_WAIT_S = 60.0  # a per-recipient limit that did not say how long it lasts


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
        on_outage: OutageFn | None = None,
        workday: Workday | None = None,
        on_limited: LimitedFn | None = None,
        takes: TakesFn | None = None,
    ) -> None:
        self.store = store
        self.notifiers = notifiers
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id
        # the office calendar: non-urgent retries and fallbacks wait through non-working days
        self.workday = workday
        self._rng = rng or random.Random()
        self._buckets: dict[str, TokenBucket] = {}
        self.breakers: dict[str, Breaker] = {}
        self._releases = 0  # outages ended (backlogs released) so far
        # the urgent lane's passes under way: the ordinary lane waits for them between messages
        self._urgent_busy = 0
        self._urgent_idle = asyncio.Event()
        self._urgent_idle.set()
        self._back: set[str] = set()  # providers back in this pass
        # told when a provider goes down or comes back: (provider, down, its channels)
        self.on_outage = on_outage
        # told when a provider limits a recipient: (contact id, the provider's answer)
        self.on_limited = on_limited
        # does a contact take a channel (its `channels`)? Fallback rows go only to those who do
        self.takes = takes

    # -- one pass -----------------------------------------------------------------------------

    async def run_once(self, limit: int = 100, lane: Lane = None) -> DispatchStats:
        """Reconcile stale claims, claim ready rows, send them, record the results. `lane`:
        only urgent rows ("urgent", which reconciles nothing), only the others ("ordinary"), or
        everything, urgent first (None)."""
        stats = DispatchStats()
        releases = self._releases
        now = self.clock.now()
        batches = [] if lane == "urgent" else await self._claim_stale(now, limit)
        batches += await self._claim_ready(now, limit, lane)
        stats.claimed = sum(len(b.rows) for b in batches)
        by_channel: dict[str, list[Batch]] = defaultdict(list)
        for b in sorted(batches, key=lambda b: not b.urgent):  # urgent first (stable)
            by_channel[b.channel].append(b)
        if lane == "urgent":
            # each urgent message on its own (the rate still spaces them): a busy event loop
            # (ingest) then delays them once, not once per message before them
            sends = [self._send_channel([b], releases) for bs in by_channel.values() for b in bs]
        else:
            # Channels send side by side (a slow SMS queue must not hold up calls); within a
            # channel, one after another at the channel's rate.
            sends = [self._send_channel(bs, releases, lane) for bs in by_channel.values()]
        if lane == "urgent" and sends:
            self._urgent_busy += 1
            self._urgent_idle.clear()
        try:
            results = await asyncio.gather(*sends, return_exceptions=True)
        finally:
            if lane == "urgent" and sends:
                self._urgent_busy -= 1
                if not self._urgent_busy:
                    self._urgent_idle.set()
        for r in results:
            if isinstance(r, BaseException):
                raise r
            stats.add(r)
        while self._back:  # a probe of this pass ended an outage
            await self._release(self._back.pop())
        return stats

    async def next_ready(self, lane: Lane = None) -> datetime | None:
        """When run_once next has something to do: the earliest pending row, or the earliest
        'sending' row becoming stale (the urgent lane: its earliest pending row)."""
        stale = timedelta(seconds=self.settings.reconcile_after_s)
        return await self.store.next_ready(stale, lane)

    async def run(
        self,
        stop: asyncio.Event,
        wake: asyncio.Event,
        on_stats: Callable[[DispatchStats], None] | None = None,
        urgent_wake: asyncio.Event | None = None,
    ) -> None:
        """The daemon loop: run_once while there is work, then sleep until the next ready row,
        `wake` (new rows were queued) or `stop`, at most MAX_SLEEP. `on_stats` sees each pass's
        figures (the daemon's metrics). With `urgent_wake` (set with `wake` when rows are
        queued), urgent rows have a lane of their own beside it: small passes of urgent rows
        only, so an urgent message never waits for a pass of ordinary ones to finish (a pass of
        100 at the provider's pace takes seconds); the bucket lets it go first."""
        if urgent_wake is None:
            await self._lane(stop, wake, on_stats, None, ORDINARY_PASS)
            return
        await asyncio.gather(
            self._lane(stop, urgent_wake, on_stats, "urgent", URGENT_PASS),
            self._lane(stop, wake, on_stats, "ordinary", ORDINARY_PASS),
        )

    async def _lane(
        self,
        stop: asyncio.Event,
        wake: asyncio.Event,
        on_stats: Callable[[DispatchStats], None] | None,
        lane: Lane,
        limit: int,
    ) -> None:
        while not stop.is_set():
            busy = False
            ready: datetime | None = None
            try:
                stats = await self.run_once(limit, lane)
                if on_stats is not None:
                    on_stats(stats)
                busy = stats.claimed > 0
                if not busy:
                    ready = await self.next_ready(lane)
            except Exception:
                # A database outage or a bug in one pass must not end delivery for good.
                log.exception(
                    "dispatch pass failed", extra={"worker": self.worker_id, "lane": lane}
                )
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

    async def _claim_ready(self, now: datetime, limit: int, lane: Lane = None) -> list[Batch]:
        window = timedelta(seconds=self.settings.group_window_s)
        messages = await self.store.claim_ready(
            now, limit, self.worker_id, window, self._group, solo_channels(self.notifiers), lane
        )
        return [self._batch(rows) for rows in messages]

    def _group(self, rows: list[OutboxRow]) -> list[list[OutboxRow]]:
        """Urgent rows go alone, and so do those of template-only providers; the others by
        person and channel, cut to the SMS budget (sending.group_rows)."""
        return group_rows(rows, self.settings, solo_channels(self.notifiers))

    def _batch(self, rows: list[OutboxRow], since: datetime | None = None) -> Batch:
        return Batch(rows[0]["id"], rows, compose(rows), since)

    async def _claim_stale(self, now: datetime, limit: int) -> list[Batch]:
        cutoff = now - timedelta(seconds=self.settings.reconcile_after_s)
        groups = await self.store.claim_stale(now, cutoff, limit, self.worker_id)
        batches = []
        for lead, rows in groups.items():
            # The same rows in the same order rebuild the text sent before (find_sent compares
            # it); `since` is the attempt's start: a reconciler killed before asking re-stamped
            # claimed_at (the lead's claimed_at is the start only for rows older than the ledger)
            since = None  # claimed but never handed to the provider: nothing to ask about
            if any(r["in_flight"] for r in rows):
                claimed = next(r["claimed_at"] for r in rows if r["id"] == lead)
                since = await self.store.attempt_started(lead) or claimed
            batches.append(Batch(lead, rows, compose(rows), since))
        return batches

    # -- sending ------------------------------------------------------------------------------

    async def _send_channel(
        self, batches: list[Batch], releases: int, lane: Lane = None
    ) -> DispatchStats:
        stats = DispatchStats()
        for b in batches:
            if lane == "ordinary":
                await self._urgent_idle.wait()  # the urgent lane's messages go first
            if not b.urgent and b.since is None and self._releases != releases:
                # an outage ended during this pass and its backlog was released: ordinary rows
                # claimed before that go back, so the next pass takes the urgent ones first
                await self.store.record_retry(b.lead, self.clock.now(), "requeued", self.worker_id)
                continue
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
                       urgent=b.urgent and len(b.rows) == 1,
                       params=b.first.get("params") if len(b.rows) == 1 else None)  # fmt: skip
        breaker = self.breaker(provider_of(notifier))
        if not breaker.allow(self.clock.now()):
            await self._hold(b, breaker, stats)  # the provider is down: no request at all
            return
        if b.since is not None and not await self._reconcile(b, notifier, msg, breaker, stats):
            return

        await self._bucket(b.channel).take(b.urgent)
        now = self.clock.now()
        if b.channel in ONE_AT_A_TIME:
            claim = await self.store.touch_line(b.lead, now, self.worker_id)
        else:
            claim = "ok" if await self.store.touch(b.lead, now, self.worker_id) else "lost"
        if claim != "ok":
            breaker.probing = False
            if claim == "busy":
                await self._line_busy(b, stats)
            else:
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
        await self.store.record_attempt(b.lead, result.outcome, result.provider_id)
        # The provider answered (a per-recipient limit is an answer too): it is up.
        if result.outcome in ("sent", "failed", "limited"):
            await self._provider_up(breaker)
        else:
            await self._provider_failed(breaker)
        await self._record(b, result, attempts, stats, breaker)

    async def _reconcile(
        self, b: Batch, notifier: Notifier, msg: Outgoing, breaker: Breaker, stats: DispatchStats
    ) -> bool:
        """Ask the provider about an earlier attempt; True when the message should be sent.

        A message found at the provider is taken as this row's only when no other row's attempt
        could own it: another unresolved attempt to the same person around the same moment (for
        calls, whatever the text: a call's content is not kept) means it is sent again rather
        than guessed: a duplicate, never a loss."""
        assert b.since is not None
        text = None if b.channel in CONTENT_BLIND else b.first["text"]
        lo, hi = b.since - AMBIGUITY_WINDOW, b.since + AMBIGUITY_WINDOW
        if await self.store.overlapping(b.first["address"], b.channel, b.lead, lo, hi, text):
            log.info("reconcile skipped: overlapping attempts", extra=b.log_extra())
            return not await self._expired(b, b.attempts, stats)
        try:
            # ids of our OTHER messages to this person (not this group's: a kill between
            # record_attempt and record_sent leaves its SID in the ledger, and that is the one)
            hour = b.since - timedelta(hours=1)
            known = await self.store.known_ids(b.first["address"], b.channel, hour, lead=b.lead)
            found = await notifier.find_sent(msg, b.since, known)
        except Exception as exc:
            # The provider cannot be asked: resend after a backoff rather than risk silence.
            await self._provider_failed(breaker)
            error = f"could not reconcile ({type(exc).__name__}); resending"
            log.warning("reconcile failed", extra=b.log_extra(error=error))
            await self._retry(b, error, None, b.attempts, stats, breaker)
            return False
        if found is not None:
            await self._provider_up(breaker)
            await self.store.record_attempt(b.lead, "sent", found)
            await self.store.record_sent(b.lead, found, self.clock.now())
            stats.reconciled += 1
            log.info("reconciled: already sent", extra=b.log_extra(provider_id=found))
            return False
        # Not at the provider: the attempt is settled as never placed (it is sent again). Left
        # "unknown" in the ledger, it would look unresolved to the next message to this person
        # (`overlapping`), which would then be resent without asking: a duplicate call.
        await self.store.record_attempt(b.lead, "absent", None)
        return not await self._expired(b, b.attempts, stats)

    async def _expired(self, b: Batch, attempts: int, stats: DispatchStats) -> bool:
        """Give the message up on this channel (and fall back) when it is past retrying."""
        if not expired(b.first["created_at"], attempts, b.channel, self.clock.now(), self.settings):
            return False
        last = b.first["last_error"] or "no answer"
        await self._give_up(b, f"gave up after {attempts} attempts: {last}", stats)
        return True

    async def _record(
        self,
        b: Batch,
        result: SendResult,
        attempts: int,
        stats: DispatchStats,
        breaker: Breaker | None = None,
    ) -> None:
        now = self.clock.now()
        if result.outcome == "sent":
            await self.store.record_sent(b.lead, result.provider_id, now)
            stats.sent += 1
            log.info("sent", extra=b.log_extra(provider_id=result.provider_id, rows=len(b.rows)))
        elif result.outcome == "retry":
            await self._retry(
                b, result.error or "retry", result.retry_after_s, attempts, stats, breaker
            )
        elif result.outcome == "failed":
            await self._give_up(b, result.error or "failed", stats)
        elif result.outcome == "limited":
            await self._limited(b, result, attempts, stats)
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
        breaker: Breaker | None = None,
    ) -> None:
        if await self._expired(b, attempts, stats):
            return
        delay = max(backoff_s(attempts, self.settings, self._rng), retry_after_s or 0.0)
        now = self.clock.now()
        if breaker is not None and breaker.down:
            # the provider's failure, not the message's: it waits for the next probe like the
            # held rows (and is released with them), not for a backoff grown during the outage
            delay = (breaker.next_try(now) - now).total_seconds()
            error = f"{held_reason(breaker.provider)} ({error})"
        when = release_at(now + timedelta(seconds=delay), b.urgent, self.settings, self.workday)
        await self.store.record_retry(b.lead, when, error, self.worker_id)
        stats.retried += 1
        log.info("retry later", extra=b.log_extra(error=error, delay_s=round(delay, 1)))

    async def _limited(
        self, b: Batch, result: SendResult, attempts: int, stats: DispatchStats
    ) -> None:
        """The provider limits this recipient (per number or template): that person's message
        waits the limit out, jittered; a limit that outlasts the channel's retry horizon (a
        daily one) gives the message up on this channel now (and falls back, to people who take
        the fallback channel). The supervisor is told, at most once a day per person."""
        error = result.error or "limited"
        stats.limited += 1
        if self.on_limited is not None:
            try:
                await self.on_limited(str(b.first["recipient"]), error)
            except Exception:  # telling must never stop delivery
                log.exception("limit notice failed", extra=b.log_extra())
        wait = (result.retry_after_s or LIMIT_WAIT_S) * (1 + self._rng.uniform(0, 0.2))
        now = self.clock.now()
        horizon = b.first["created_at"] + self.settings.horizon_for(b.channel)
        if now + timedelta(seconds=wait) > horizon:
            await self._give_up(b, f"recipient limited past the retry horizon: {error}", stats)
            return
        if await self._expired(b, attempts, stats):
            return
        when = release_at(now + timedelta(seconds=wait), b.urgent, self.settings, self.workday)
        await self.store.record_retry(b.lead, when, error, self.worker_id)
        log.info("recipient limited", extra=b.log_extra(error=error, delay_s=round(wait, 1)))

    async def _line_busy(self, b: Batch, stats: DispatchStats) -> None:
        """Another call to this number is unconfirmed: look again shortly (no attempt counted,
        no quiet-hours wait: the message was already due)."""
        wait = min(LINE_BUSY_WAIT, timedelta(seconds=self.settings.reconcile_after_s))
        when = self.clock.now() + wait
        error = "waiting: another call to this number is unconfirmed"
        await self.store.record_retry(b.lead, when, error, self.worker_id)
        stats.line_busy += 1
        log.info("line busy", extra=b.log_extra())

    async def _hold(self, b: Batch, breaker: Breaker, stats: DispatchStats) -> None:
        """The provider is down: fall back to a channel whose provider is up, or wait (pending)
        until the breaker lets a probe through; past the horizon, give up (and fall back)."""
        target = self.settings.fallback.get(b.channel)
        other = self.notifiers.get(target) if target else None
        if other is not None and not self.breaker(provider_of(other)).down:
            await self._give_up(
                b, f"{breaker.provider} unavailable; falling back to {target}", stats
            )
            return
        if await self._expired(b, b.attempts, stats):
            return
        now = self.clock.now()
        when = release_at(breaker.next_try(now), b.urgent, self.settings, self.workday)
        await self.store.record_retry(b.lead, when, held_reason(breaker.provider), self.worker_id)
        stats.held += 1

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
        held = release_at(now, False, self.settings, self.workday)
        out = await self.store.fail_group(
            outbox_id, reason, statuses, self.settings.fallback, now, held, self.takes
        )
        if not out.failed:
            return 0
        extra = {"outbox": out.failed, "channel": out.channel, "reason": reason}
        log.warning(
            "delivery failed", extra={**extra, "fallback": out.target, "fallback_rows": out.created}
        )
        return out.created

    # -- providers ----------------------------------------------------------------------------

    def breaker(self, provider: str) -> Breaker:
        if provider not in self.breakers:
            st = self.settings
            self.breakers[provider] = Breaker(provider, st.breaker_threshold, st.breaker_probe_s)
        return self.breakers[provider]

    def outages(self) -> dict[str, datetime]:
        """Providers down now, and since when (for /healthz and /metrics)."""
        return {p: b.down_since for p, b in self.breakers.items() if b.down_since is not None}

    async def _provider_up(self, breaker: Breaker) -> None:
        if breaker.succeeded(self.clock.now()):
            log.warning("provider back", extra={"provider": breaker.provider})
            # the backlog goes now, not at each row's next probe time (claimed urgent first);
            # again at the end of this pass, for rows held by it while the probe was out
            self._releases += 1
            self._back.add(breaker.provider)
            await self._release(breaker.provider)
            await self._tell(breaker.provider, False)

    async def _release(self, provider: str) -> None:
        probe = timedelta(seconds=self.settings.breaker_probe_s)
        released = await self.store.release_held(
            self._channels_of(provider), held_reason(provider), self.clock.now(), probe
        )
        if released:
            log.info("held messages released", extra={"provider": provider, "rows": released})

    async def _provider_failed(self, breaker: Breaker) -> None:
        if breaker.failed(self.clock.now()):
            log.error("provider down", extra={"provider": breaker.provider})
            await self._tell(breaker.provider, True)

    async def _tell(self, provider: str, down: bool) -> None:
        if self.on_outage is None:
            return
        channels = self._channels_of(provider)
        try:
            await self.on_outage(provider, down, channels)
        except Exception:  # telling must never stop delivery
            log.exception("outage notice failed", extra={"provider": provider})

    def _channels_of(self, provider: str) -> frozenset[str]:
        return frozenset(c for c, n in self.notifiers.items() if provider_of(n) == provider)

    def _bucket(self, channel: str) -> TokenBucket:
        if channel not in self._buckets:
            self._buckets[channel] = TokenBucket(self.settings.rate_for(channel), self.clock)
        return self._buckets[channel]
