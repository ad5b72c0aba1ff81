"""Sign-in limits (登录失败处理): per account and per address, counted in PostgreSQL.

An account: every attempt takes a slot *before* its password is checked (under the counter
row's lock), so forty parallel attempts cannot all pass the check first; a failure keeps its
slot, a success frees them all. With `lock_after` slots taken within `window_s` and the last
one failed, the account is locked for `lock_s`; while locked, even the right password is
refused (without checking it). An address: only failures count; past `address_limit` within
`window_s`, failing attempts from it are slowed and answered 429, while a correct password from
it still signs in, so one person's typos behind an office NAT never lock out the others.

`decide` is pure (explicit `now`); `Throttle` runs it under `SELECT … FOR UPDATE`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from supervisor.config.desk_security import DeskSecurity


@dataclass(frozen=True)
class Counter:
    window_start: datetime
    failures: int
    locked_until: datetime | None


def _fresh(c: Counter | None, now: datetime, window: timedelta) -> Counter:
    """The counter as it stands at `now`: a lock or window that has passed starts afresh."""
    if c is None or (c.locked_until is not None and c.locked_until <= now):
        return Counter(now, 0, None)
    if c.locked_until is None and c.window_start <= now - window:
        return Counter(now, 0, None)
    return c


def reserve(c: Counter | None, now: datetime, s: DeskSecurity) -> tuple[Counter, bool]:
    """Take a slot for one attempt on an account: (new counter, allowed)."""
    c = _fresh(c, now, timedelta(seconds=s.window_s))
    if c.locked_until is not None or c.failures >= s.lock_after:
        return c, False  # locked, or every slot is taken by attempts still being checked
    return replace(c, failures=c.failures + 1), True


def after_failure(c: Counter, now: datetime, s: DeskSecurity) -> tuple[Counter, bool]:
    """A reserved attempt failed: (new counter, locked now)."""
    if c.locked_until is None and c.failures >= s.lock_after:
        return replace(c, locked_until=now + timedelta(seconds=s.lock_s)), True
    return c, False


def address_failure(c: Counter | None, now: datetime, s: DeskSecurity) -> Counter:
    c = _fresh(c, now, timedelta(seconds=s.window_s))
    return replace(c, failures=c.failures + 1)


def address_slow(c: Counter | None, now: datetime, s: DeskSecurity) -> bool:
    c = _fresh(c, now, timedelta(seconds=s.window_s))
    return c.failures >= s.address_limit


_GET = "SELECT window_start, failures, locked_until FROM desk_signin_counters WHERE key = $1"
_PUT = """
INSERT INTO desk_signin_counters (key, window_start, failures, locked_until)
VALUES ($1, $2, $3, $4)
ON CONFLICT (key) DO UPDATE SET window_start = $2, failures = $3, locked_until = $4
"""


def _row(r: Any) -> Counter | None:
    return Counter(r["window_start"], r["failures"], r["locked_until"]) if r else None


class Throttle:
    def __init__(self, pool: asyncpg.Pool, settings: DeskSecurity) -> None:
        self.pool = pool
        self.s = settings

    async def _locked_row(self, conn: asyncpg.Connection, key: str, now: datetime) -> Any:
        # make the row exist, then lock it: concurrent attempts on one key queue here
        await conn.execute(
            "INSERT INTO desk_signin_counters (key, window_start) VALUES ($1, $2) "
            "ON CONFLICT (key) DO NOTHING",
            key, now,
        )  # fmt: skip
        return await conn.fetchrow(_GET + " FOR UPDATE", key)

    async def reserve(self, login: str, now: datetime) -> tuple[bool, datetime | None]:
        """(allowed, locked until)."""
        async with self.pool.acquire() as conn, conn.transaction():
            c, ok = reserve(_row(await self._locked_row(conn, f"u:{login}", now)), now, self.s)
            await conn.execute(_PUT, f"u:{login}", c.window_start, c.failures, c.locked_until)
        return ok, c.locked_until

    async def failed(self, login: str, address: str, now: datetime) -> tuple[bool, bool]:
        """(the account is locked now by this failure, the address is past its limit)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = _row(await self._locked_row(conn, f"u:{login}", now))
            c, locked = after_failure(row or Counter(now, 1, None), now, self.s)
            await conn.execute(_PUT, f"u:{login}", c.window_start, c.failures, c.locked_until)
            a = address_failure(
                _row(await self._locked_row(conn, f"a:{address}", now)), now, self.s
            )
            await conn.execute(_PUT, f"a:{address}", a.window_start, a.failures, None)
        return locked, a.failures > self.s.address_limit

    async def succeeded(self, login: str, now: datetime) -> None:
        await self.pool.execute(
            "UPDATE desk_signin_counters SET failures = 0, window_start = $2 "
            "WHERE key = $1 AND locked_until IS NULL",
            f"u:{login}", now,
        )  # fmt: skip

    async def address_slow(self, address: str, now: datetime) -> bool:
        return address_slow(_row(await self.pool.fetchrow(_GET, f"a:{address}")), now, self.s)

    async def unlock(self, login: str) -> bool:
        """Unlock an account (a supervisor on the desk, or `user unlock`): True if it was locked."""
        done = await self.pool.execute(
            "UPDATE desk_signin_counters SET failures = 0, locked_until = NULL "
            "WHERE key = $1 AND locked_until IS NOT NULL",
            f"u:{login}",
        )
        return done != "UPDATE 0"

    async def locked(self, now: datetime) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT substr(key, 3) AS login, failures, locked_until FROM desk_signin_counters "
            "WHERE key LIKE 'u:%' AND locked_until > $1 ORDER BY locked_until DESC",
            now,
        )
        return [dict(r) for r in rows]

    async def prune(self, now: datetime) -> None:
        """Counters whose window and lock have passed (a spray of made-up names leaves many)."""
        await self.pool.execute(
            "DELETE FROM desk_signin_counters WHERE window_start < $1 "
            "AND (locked_until IS NULL OR locked_until < $2)",
            now - timedelta(seconds=self.s.window_s), now,
        )  # fmt: skip
