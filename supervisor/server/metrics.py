"""Prometheus metrics, on a registry of our own (so tests can build several apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_accepted = Counter("hotline_events_accepted_total", "Events stored", registry=r)
        self.events_duplicate = Counter(
            "hotline_events_duplicate_total",
            "Events acknowledged as repeats of a stored id",
            registry=r,
        )
        self.events_rejected = Counter(
            "hotline_events_rejected_total", "Events rejected by validation", ["reason"], registry=r
        )
        self.request_latency = Histogram(
            "hotline_http_request_duration_seconds", "HTTP request latency", ["route", "method"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
        self.timers_fired = Counter(
            "hotline_timers_total", "Ladder steps handled by the scheduler", ["outcome"], registry=r
        )
        self.timer_lag = Histogram(
            "hotline_timer_lag_seconds", "Due time to firing", registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
        )  # fmt: skip
        self.notifications = Counter(
            "hotline_notifications_total", "Messages written to the outbox", ["channel"], registry=r
        )
        self.reloads = Counter(
            "hotline_reloads_total", "Configuration reloads", ["result"], registry=r
        )
        self.loop_errors = Counter(
            "hotline_loop_errors_total",
            "Failed iterations of a background loop",
            ["loop"],
            registry=r,
        )
        self.deliveries = Counter(
            "hotline_deliveries_total",
            "Dispatcher outcomes (a grouped message counts once)",
            ["outcome"],
            registry=r,
        )
        self.provider_down = Gauge(
            "hotline_provider_down",
            "1 while a provider's circuit breaker is open (its messages wait or fall back)",
            ["provider"],
            registry=r,
        )
        self.calendar_gap = Gauge(
            "hotline_calendar_gap_years", "Years ahead without official holiday data", registry=r
        )

    def record_dispatch(self, stats) -> None:
        for outcome in (
            "sent",
            "reconciled",
            "retried",
            "unknown",
            "failed",
            "fallbacks",
            "skipped",
            "held",
            "line_busy",  # calls waiting for an unconfirmed call to the same number
            "limited",  # messages a provider refused for this recipient (per-number limits)
        ):
            value = getattr(stats, outcome)
            if value:
                self.deliveries.labels(outcome).inc(value)
