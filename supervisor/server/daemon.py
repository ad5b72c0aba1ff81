"""The daemon: HTTP server and background loops around one Supervisor, on PostgreSQL.

Loops (each a task under one stop event; a failed iteration is logged and the loop goes on):
- scheduler: claims due ladder steps in batches (FOR UPDATE SKIP LOCKED), writes their messages
  to the outbox in the same transaction, then sleeps until the next due time or a wake-up; in
  two lanes: urgent tickets' steps in small batches of their own, the others in `batch`es, so an
  urgent step never waits for a big batch of ordinary ones to be fired;
- dispatcher: sends the outbox (outbox.py), likewise in an urgent and an ordinary lane;
- reports: runs each periodic report once per period;
- watcher: reloads the configuration when a file changes (and on SIGHUP);
- heartbeat: records that this daemon is alive (for `status` and several daemons).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from notifiers.registry import build_notifiers, close_all
from supervisor.acking import AckOutcome, reply_ack
from supervisor.application import Supervisor, runtime_from
from supervisor.config.settings import Loaded, caller_key, load_all, named_api_tokens
from supervisor.config.yamlconf import ConfigInvalid
from supervisor.core.clock import Clock, SystemClock
from supervisor.delivery.outbox import Dispatcher
from supervisor.engine import reports
from supervisor.server.api import make_app
from supervisor.server.metrics import Metrics
from supervisor.server.ports import PortInUse, check_port_free
from supervisor.server.provider_hooks import setup_provider_hooks
from supervisor.server.twilio_hooks import setup_twilio_hooks
from supervisor.storage import queries as q
from supervisor.storage.base import Lane
from supervisor.storage.db import database
from supervisor.storage.pg import PgStore

GC_GEN0_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)

log = logging.getLogger("hotline.daemon")

URGENT_BATCH = 20  # due steps of urgent tickets claimed at a time by the urgent lane
# Claimers of the ordinary lane while it is behind (a pass came back full: more is due at once,
# after an outage or a holiday). Each claims a batch of its own (FOR UPDATE SKIP LOCKED, as several
# daemons do), so one batch's Python runs while another's statements run in PostgreSQL. Once a
# pass comes back short, the lane is one claimer again. Three kept both cores busier than two
# (bench/b_timers.py, 100,000 due: 0.287-0.291 of the bare claim against 0.25; four 0.274).
CATCH_UP_CLAIMERS = 3
OUTAGE_ALIVE = timedelta(seconds=60)  # a daemon's outage counts while its heartbeat is this fresh


class FanOut(asyncio.Event):
    """An event whose `set` also sets the urgent lane's event: one wake-up, both lanes woken;
    each lane clears only its own."""

    def __init__(self, also: asyncio.Event) -> None:
        super().__init__()
        self.also = also

    def set(self) -> None:
        super().set()
        self.also.set()


class Daemon:
    def __init__(
        self,
        loaded: Loaded,
        *,
        env: dict[str, str] | None = None,
        clock: Clock | None = None,
        worker_id: str | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.loaded = loaded
        self.reuse_port = reuse_port  # several daemons on one port (run --workers N)
        self.env = dict(os.environ if env is None else env)
        self.clock = clock or SystemClock()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.metrics = Metrics()
        self.stop_event = asyncio.Event()
        self.wake_urgent_scheduler = asyncio.Event()
        self.wake_urgent_dispatcher = asyncio.Event()
        self.wake_scheduler: asyncio.Event = FanOut(self.wake_urgent_scheduler)
        self.wake_dispatcher: asyncio.Event = FanOut(self.wake_urgent_dispatcher)
        self.tasks: list[asyncio.Task] = []
        self.port: int | None = None
        self._db_cm: Any = None
        self._runner: web.AppRunner | None = None
        self._notifiers: dict = {}
        self._mtimes: dict[Path, float] = {}
        self._outage_serials: dict[str, int] = {}  # the outbox key of each outage's notices
        # providers down as any live daemon's breaker sees them, and since when (the desk's
        # banner; refreshed from provider_outages with each heartbeat and at each change)
        self.outages: dict[str, datetime] = {}
        # demo tickets (tools/demo_data.py) at start-up: "silence" stops them firing, "purge"
        # deletes them (`run --demo`, `run --reset-demo`)
        self.demo_data = "silence"
        self.demo = False  # `run --demo`: the API accepts DEMO- tickets too
        self.last_reload: dict[str, Any] | None = None  # shown on the desk's 规则 page

    # --- start and stop ----------------------------------------------------------------------

    async def start(self) -> None:
        settings = self.loaded.settings
        if not self.reuse_port:  # with --workers the parent checked it once
            check_port_free(settings.http.host, settings.http.port)
        dsn = self.env.get(settings.database.url_env) or None
        self._db_cm = database(
            dsn, Path(settings.database.embedded_dir), max_size=settings.database.pool_size
        )
        self.pool: asyncpg.Pool = await self._db_cm.__aenter__()
        self.store = PgStore(self.pool)
        self.supervisor = Supervisor(
            self.store, runtime_from(self.loaded, caller_key(settings, self.env)), self.clock
        )
        self._notifiers = build_notifiers(settings.notifiers, self.env)
        self.dispatcher = Dispatcher(
            self.store, self._notifiers, settings.delivery, self.clock,
            worker_id=self.worker_id, workday=self._workday, on_outage=self._on_outage,
            on_limited=self._on_limited, takes=self._takes,
        )  # fmt: skip
        app = make_app(
            self.supervisor,
            tokens=named_api_tokens(settings, self.env),
            metrics=self.metrics,
            health=self.health,
            max_body_bytes=settings.http.max_body_bytes,
            max_batch=settings.http.max_batch,
            on_ingest=self.wake_scheduler.set,
            future_tolerance=timedelta(seconds=settings.ingest.future_tolerance_s),
            token_role=settings.http.token_role,
            demo=self.demo,
        )
        twilio = settings.notifiers.twilio
        if twilio is not None:
            setup_twilio_hooks(
                app, store=self.store, clock=self.clock, auth_token=self.env.get(twilio.auth_token_env, ""),
                public_url=settings.http.public_url, ack=self._ack, dispatcher=self.dispatcher, settings=settings.delivery,
                voice=twilio,
            )  # fmt: skip
        setup_provider_hooks(
            app, store=self.store, clock=self.clock, notifiers=settings.notifiers, env=self.env,
            ack=self._ack, dispatcher=self.dispatcher, settings=settings.delivery,
        )  # fmt: skip
        await self._demo_data()
        from supervisor.desk import setup_desk

        self.desk = setup_desk(
            app, self, env=self.env,
            key_file=Path(settings.privacy.caller_key_file).parent / "desk.key",
        )  # fmt: skip
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, settings.http.host, settings.http.port, reuse_port=self.reuse_port or None
        )
        try:
            await site.start()
        except OSError:  # taken between the check and now
            await self.stop()
            raise PortInUse(settings.http.host, settings.http.port) from None
        self.port = self._runner.addresses[0][1] if self._runner.addresses else settings.http.port
        self._remember_mtimes()
        for name, coro in (
            ("scheduler", self._scheduler_loop),
            ("dispatcher", self._dispatcher_loop),
            ("reports", self._reports_loop),
            ("watcher", self._watch_loop),
            ("heartbeat", self._heartbeat_loop),
        ):
            self.tasks.append(asyncio.create_task(self._guard(name, coro), name=name))
        # Everything loaded so far (modules, configuration, compiled rules) lives as long as the
        # daemon: out of the collector's way, so its full passes stay short under ingest.
        gc.freeze()
        # A 500-event batch allocates a few hundred thousand short-lived containers (events,
        # states, messages, ladders) that reference counting frees; at the default gen0
        # threshold (700) the collector ran hundreds of times per batch for little garbage.
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        for warning in self.loaded.warnings:
            log.warning(warning)
        if not named_api_tokens(settings, self.env):
            log.warning(
                f"no API token configured ({settings.http.tokens_env} is empty): /api/v1 answers "
                f"401 to every request; set {settings.http.tokens_env}=name:token "
                "(`run --demo` makes one for the demo)"
            )
        if self.loaded.calendar.uncovered_years(
            range(self.clock.now().year, self.clock.now().year + 2)
        ):
            self.metrics.calendar_gap.set(1)
        log.info(
            "daemon started",
            extra={
                "worker": self.worker_id,
                "port": self.port,
                "matcher": self.loaded.policy.matcher.name,
                "rules": len(self.loaded.policy.rules),
            },
        )

    async def stop(self) -> None:
        """Finish in-flight work, then close: HTTP first (no new events), then the loops, the
        notifiers, the pool and the embedded server."""
        log.info("daemon stopping", extra={"worker": self.worker_id})
        self.stop_event.set()
        if self._runner is not None:
            await self._runner.cleanup()
        self.wake_scheduler.set()
        self.wake_dispatcher.set()
        if self.tasks:
            done, pending = await asyncio.wait(self.tasks, timeout=15)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await close_all(self._notifiers)
        if self._db_cm is not None:
            await self._db_cm.__aexit__(None, None, None)
        log.info("daemon stopped", extra={"worker": self.worker_id})

    async def run_forever(
        self, on_started: Callable[[], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload("SIGHUP")))
        await self.start()
        try:
            if on_started is not None:
                await on_started()
            await self.stop_event.wait()
        finally:
            await self.stop()

    # --- helpers -----------------------------------------------------------------------------

    async def _demo_data(self) -> None:
        from supervisor.tools.demo_data import at_start

        await at_start(self.store, self.demo_data)

    async def _ack(
        self, ticket: str, rule: str | None, by: str, via: str, roles: frozenset[str]
    ) -> AckOutcome:
        """An acknowledgement by a contact (an SMS reply through Twilio, Aliyun or Tencent):
        only what core.acks lets them end."""
        return await reply_ack(self.supervisor)(ticket, rule, by, via, roles)

    def _workday(self, day: date) -> bool:
        """The running calendar (it may change on reload): retries and fallbacks wait through
        the office's non-working days."""
        return self.supervisor.runtime.workday(day)

    async def _on_outage(self, provider: str, down: bool, channels: frozenset[str]) -> None:
        """A provider went down or came back: the gauge, the shared record (the desk's banner on
        every daemon), and a notice to the supervisors and the leaders on every channel that
        still works (delivery/outage.py)."""
        from supervisor.config.fallback import told
        from supervisor.delivery.outage import outage_notices
        from supervisor.delivery.sending import provider_of

        self.metrics.provider_down.labels(provider).set(1 if down else 0)
        now = self.clock.now()
        if down:
            await self.pool.execute(q.OUTAGE_BEGAN, provider, self.worker_id, now)
        else:
            await self.pool.execute(q.OUTAGE_ENDED, provider)
        await self._refresh_outages()
        if down or provider not in self._outage_serials:
            self._outage_serials[provider] = int(now.timestamp())
        working = {
            c: provider_of(n) for c, n in self._notifiers.items()
            if provider_of(n) != "console" and (not down or provider_of(n) != provider)
        }  # fmt: skip
        notes = outage_notices(
            provider, down, channels, told(self.supervisor.runtime.directory),
            working, now, self._outage_serials[provider],
        )  # fmt: skip
        await self.store.enqueue(notes, None)
        self.wake_dispatcher.set()

    async def _refresh_outages(self) -> None:
        alive = self.clock.now() - OUTAGE_ALIVE
        rows = await self.pool.fetch(q.OUTAGES, alive)
        self.outages = {r["provider"]: r["since"] for r in rows}

    def _takes(self, person: str, channel: str) -> bool:
        """Does this contact take `channel`? Fallback calls only for people with voice."""
        people = self.supervisor.runtime.directory.model.people
        return person not in people or channel in people[person].channels

    async def _on_limited(self, person: str, reason: str) -> None:
        """The SMS provider limits a person: the supervisors are told, once a day per person."""
        from supervisor.delivery.limits import limit_notices

        people = self.supervisor.runtime.directory.model.people
        name = people[person].name if person in people else None
        notes = limit_notices(
            person, name, self.supervisor.runtime.directory.resolve("supervisor"), self.clock.now()
        )
        await self.store.enqueue(notes, self.loaded.settings.delivery, self._workday)
        self.wake_dispatcher.set()

    async def health(self) -> tuple[bool, dict[str, Any]]:
        from supervisor.server.health import health

        return await health(self)

    async def _guard(self, name: str, loop_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                await loop_fn()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.loop_errors.labels(name).inc()
                log.exception("loop iteration failed; going on", extra={"loop": name})
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10)

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        waiters = [asyncio.ensure_future(self.stop_event.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(
                waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waiters:
                w.cancel()
        if wake is not None:
            wake.clear()

    # --- loops -------------------------------------------------------------------------------

    async def _scheduler_loop(self) -> None:
        batch = self.loaded.settings.scheduler.batch
        await asyncio.gather(
            self._scheduler_lane("urgent", min(batch, URGENT_BATCH), self.wake_urgent_scheduler),
            self._scheduler_lane("ordinary", batch, self.wake_scheduler),
        )

    async def _scheduler_lane(self, lane: Lane, batch: int, wake: asyncio.Event) -> None:
        while not self.stop_event.is_set():
            delay = await self._guarded_pass(lane, batch, wake)
            if delay == 0.0 and lane == "ordinary" and CATCH_UP_CLAIMERS > 1:
                await asyncio.gather(
                    *(self._catch_up(lane, batch, wake) for _ in range(CATCH_UP_CLAIMERS))
                )
            elif delay > 0:
                await self._sleep(delay, wake)

    async def _catch_up(self, lane: Lane, batch: int, wake: asyncio.Event) -> None:
        """One claimer of a lane that is behind: passes while they come back full."""
        while not self.stop_event.is_set() and await self._guarded_pass(lane, batch, wake) == 0.0:
            pass

    async def _guarded_pass(self, lane: Lane, batch: int, wake: asyncio.Event) -> float:
        try:
            return await self._scheduler_pass(lane, batch, wake)
        except Exception:
            # a failed pass is logged and the lane goes on; handled here, not by _guard,
            # which would restart both lanes while the other one still runs
            self.metrics.loop_errors.labels("scheduler").inc()
            log.exception("loop iteration failed; going on", extra={"loop": f"scheduler-{lane}"})
            return 1.0

    async def _scheduler_pass(self, lane: Lane, batch: int, wake: asyncio.Event) -> float:
        """Fire what is due in this lane; returns how long to sleep (0: more may be due)."""
        wake.clear()
        out = await self.supervisor.fire_due(limit=batch, lane=lane)
        if out.fired or out.cancelled or out.superseded:
            for lag in out.lags_s:
                self.metrics.timer_lag.observe(lag)
            self.metrics.timers_fired.labels("fired").inc(out.fired)
            self.metrics.timers_fired.labels("cancelled").inc(out.cancelled)
            self.metrics.timers_fired.labels("superseded").inc(out.superseded)
            for n in out.notifications:
                self.metrics.notifications.labels(n.channel).inc()
            if out.notifications:
                self.wake_dispatcher.set()
            if out.fired + out.cancelled + out.superseded >= batch:
                return 0.0  # more may be due right now
        nxt = await self.store.next_due(lane)
        now = self.clock.now()
        max_sleep = self.loaded.settings.scheduler.max_sleep_s
        return max_sleep if nxt is None else min(max_sleep, (nxt - now).total_seconds())

    async def _dispatcher_loop(self) -> None:
        await self.dispatcher.run(
            self.stop_event, self.wake_dispatcher, on_stats=self.metrics.record_dispatch,
            urgent_wake=self.wake_urgent_dispatcher,
        )  # fmt: skip

    async def _reports_loop(self) -> None:
        while not self.stop_event.is_set():
            rt = self.supervisor.runtime
            now = self.clock.now()
            for report in rt.policy.reports:
                # the latest run time in the last 12 hours: a daemon down at 08:30 still sends
                # the morning digest when it comes back before evening, once
                runs = reports.occurrences(
                    report, now - timedelta(hours=12), now, rt.policy.calendar
                )
                if not runs:
                    continue
                at = runs[-1]
                notes = await self.supervisor.run_report(report, reports.period(at), now)
                if notes:
                    log.info("report sent", extra={"report": report.id, "messages": len(notes)})
                    self.wake_dispatcher.set()
            upcoming = [
                o for report in rt.policy.reports
                for o in reports.occurrences(report, now, now + timedelta(days=8), rt.policy.calendar)[:1]
            ]  # fmt: skip
            delay = (min(upcoming) - self.clock.now()).total_seconds() if upcoming else 3600
            await self._sleep(min(max(delay, 0.5), 3600))

    async def _heartbeat_loop(self) -> None:
        while not self.stop_event.is_set():
            await self.store.heartbeat(self.worker_id, self.clock.now())
            await self._refresh_outages()
            await self._sleep(10)

    # --- configuration reload ----------------------------------------------------------------

    def _config_files(self) -> list[Path]:
        cfg = self.loaded.config_dir
        rules_dir = (cfg / self.loaded.settings.rules_dir).resolve()
        return sorted([*cfg.glob("*.yaml"), *rules_dir.glob("*.yaml")])

    def _remember_mtimes(self) -> None:
        self._mtimes = {p: p.stat().st_mtime for p in self._config_files() if p.exists()}

    async def _watch_loop(self) -> None:
        while not self.stop_event.is_set():
            await self._sleep(2)
            current = {p: p.stat().st_mtime for p in self._config_files() if p.exists()}
            if current != self._mtimes:
                changed = {p.name for p in current.keys() | self._mtimes.keys()
                           if current.get(p) != self._mtimes.get(p)}  # fmt: skip
                self._mtimes = current
                if changed == {"users.yaml"}:
                    # the desk re-reads its accounts on the next request: nothing to re-plan
                    log.info("users.yaml changed: the desk's accounts apply now")
                    continue
                await self.reload("file change")

    async def reload(self, why: str) -> bool:
        """Load everything again; an invalid edit, or one that fails the rule tests
        (reload.require_tests, the default), is refused and the running rules stay. A valid
        one re-plans the pending timers of open tickets; nothing already sent is sent again
        (the fired timers and outbox rows keep their unique keys)."""
        gc.unfreeze()  # the configuration being replaced must be collectable
        try:
            loaded = load_all(self.loaded.config_dir, env=self.env)
        except ConfigInvalid as exc:
            self.last_reload = {"at": self.clock.now(), "ok": False, "why": why,
                                "errors": [str(e) for e in exc.errors]}  # fmt: skip
            self.metrics.reloads.labels("refused").inc()
            log.error(
                "configuration edit refused; the running rules stay",
                extra={"why": why, "errors": [str(e) for e in exc.errors]},
            )
            gc.freeze()
            return False
        if self.loaded.settings.reload.require_tests:
            from supervisor.tools.ruletest import failing, test_files

            failures = await failing(
                test_files(loaded.policy.files), runtime_from(loaded, b"rule-tests")
            )
            if failures:
                self.metrics.reloads.labels("refused").inc()
                log.error(
                    "rules edit refused: the rule tests fail; the running rules stay "
                    "(update rules/tests with the rule, then `test-rules`)",
                    extra={"why": why, "failing_tests": failures},
                )
                return False
        if loaded.settings != self.loaded.settings:
            log.warning(
                "settings changed: rules, contacts and templates reload now; restart for the rest",
                extra={"why": why},
            )
            loaded = replace(loaded, settings=self.loaded.settings)
        self.loaded = loaded
        self.supervisor.runtime = runtime_from(loaded, self.supervisor.runtime.caller_key)
        gc.collect()  # the old configuration, cycles included, goes before the rest is frozen
        gc.freeze()
        replanned = await self.supervisor.replan()
        self.wake_scheduler.set()
        self.metrics.reloads.labels("applied").inc()
        self.last_reload = {"at": self.clock.now(), "ok": True, "why": why, "errors": []}
        log.info(
            "configuration reloaded",
            extra={"why": why, "rules": len(loaded.policy.rules), "tickets_replanned": replanned},
        )
        return True
