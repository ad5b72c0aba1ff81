"""The one place time is read. Tests and `simulate` pass a VirtualClock; the daemon a SystemClock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol

from supervisor.vocabulary import ZONE

SHANGHAI = ZONE  # Beijing time (supervisor.vocabulary)


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime."""
        ...

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        """Sleep until `when`, or until `wake` is set, whichever comes first."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        delay = max(0.0, (when - self.now()).total_seconds())
        if wake is None:
            await asyncio.sleep(delay)
            return
        try:
            await asyncio.wait_for(wake.wait(), timeout=delay)
        except TimeoutError:
            pass


class VirtualClock:
    """A clock that moves only when told to; sleeping on it returns at once after moving it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when > self._now:
            self._now = when

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        self.set(when)
        await asyncio.sleep(0)
