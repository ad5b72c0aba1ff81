"""The circuit breaker per provider: closed, open after a run of failures, one probe at a time."""

from __future__ import annotations

from datetime import timedelta

from supervisor.delivery.breaker import Breaker
from tests.helpers import sh

T = sh(2026, 11, 25, 10, 0)


def test_opens_after_the_threshold_and_lets_one_probe_through_after_the_cool_down() -> None:
    b = Breaker("twilio", threshold=3, cool_s=5, cool_cap_s=20)
    assert b.allow(T)
    assert not b.failed(T) and not b.failed(T)  # two failures: still closed
    assert b.allow(T) and not b.down
    assert b.failed(T)  # the third opens it: an outage begins
    assert b.down and b.down_since == T and not b.allow(T + timedelta(seconds=4))
    assert b.next_try(T) == T + timedelta(seconds=5)
    probe_at = T + timedelta(seconds=5)
    assert b.allow(probe_at)  # half-open: one probe ...
    assert not b.allow(probe_at)  # ... at a time
    assert b.next_try(probe_at) == probe_at + timedelta(seconds=5)  # held rows wait, no spin
    assert not b.failed(probe_at)  # the probe failed: open again, the outage goes on
    assert b.retry_at == probe_at + timedelta(seconds=10)  # cool-down doubled
    for _ in range(5):
        b.allow(b.next_try(T))
        b.failed(b.retry_at or T)
    assert b.retry_at is not None and b.state == "open"
    assert b.allow(b.retry_at) and b.succeeded(b.retry_at)  # back: the outage ends
    assert b.state == "closed" and not b.down and b.allow(b.retry_at)


def test_a_success_resets_the_run_of_failures() -> None:
    b = Breaker("twilio", threshold=2)
    b.failed(T)
    assert not b.succeeded(T)  # no outage was going on
    assert not b.failed(T) and b.state == "closed"
