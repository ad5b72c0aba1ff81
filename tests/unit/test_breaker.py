"""The circuit breaker per provider: closed, open after a run of failures, one probe at a time."""

from __future__ import annotations

from datetime import timedelta

from supervisor.delivery.breaker import Breaker
from tests.helpers import sh

T = sh(2026, 11, 25, 10, 0)


def test_opens_after_the_threshold_and_probes_on_a_fixed_interval() -> None:
    b = Breaker("twilio", threshold=3, probe_s=10)
    assert b.allow(T)
    assert not b.failed(T) and not b.failed(T)  # two failures: still closed
    assert b.allow(T) and not b.down
    assert b.failed(T)  # the third opens it: an outage begins
    assert b.down and b.down_since == T and not b.allow(T + timedelta(seconds=9))
    assert b.next_try(T) == T + timedelta(seconds=10)
    probe_at = T + timedelta(seconds=10)
    assert b.allow(probe_at)  # half-open: one probe ...
    assert not b.allow(probe_at)  # ... at a time
    assert b.next_try(probe_at) == probe_at + timedelta(seconds=10)  # held rows wait, no spin
    assert not b.failed(probe_at)  # the probe failed: open again, the outage goes on
    assert b.retry_at == probe_at + timedelta(seconds=10)  # the same interval, not doubled
    at = probe_at
    for _ in range(30):  # five minutes down: still one probe every 10 s
        at = b.next_try(at)
        assert b.allow(at) and not b.failed(at)
        assert b.retry_at == at + timedelta(seconds=10)
    assert b.trips == 32 and b.state == "open" and b.down_since == T
    back = b.retry_at
    assert back is not None and b.allow(back) and b.succeeded(back)  # back: the outage ends
    assert b.state == "closed" and not b.down and b.allow(back) and b.trips == 0


def test_a_success_resets_the_run_of_failures() -> None:
    b = Breaker("twilio", threshold=2)
    b.failed(T)
    assert not b.succeeded(T)  # no outage was going on
    assert not b.failed(T) and b.state == "closed"
