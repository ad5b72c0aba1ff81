"""The desk's sessions, kept in PostgreSQL so the server can end them (结束会话).

The cookie holds a random id (256 bits); the table keeps its SHA-256. A session is ended by
sign-out, by the idle timeout, by its absolute lifetime, by a change of the account (removed,
role/unit/password changed: the `fingerprint` no longer matches), by a password change on the
desk (every other session of the account) and by a supervisor's "end all sessions". Session
times are wall-clock (security does not follow the daemon's virtual clock in tests).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from supervisor.config.desk_security import DeskSecurity

TOUCH_EVERY = timedelta(seconds=15)  # seen_at is written at most this often per session


def wall() -> datetime:
    return datetime.now(UTC)


def id_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Session:
    id_hash: str
    login: str
    stage: str  # ok | code | change
    csrf: str
    fingerprint: str
    created_at: datetime
    seen_at: datetime
    expires_at: datetime
    flash: str | None
    pending: dict[str, Any]


def alive(s: Session, now: datetime, idle: timedelta) -> bool:
    return s.expires_at > now and s.seen_at > now - idle


class SessionStore:
    def __init__(self, pool: asyncpg.Pool, settings: DeskSecurity) -> None:
        self.pool = pool
        self.s = settings

    @property
    def idle(self) -> timedelta:
        return timedelta(seconds=self.s.idle_timeout_s)

    async def create(
        self,
        login: str,
        fingerprint: str,
        remote: str,
        stage: str = "ok",
        now: datetime | None = None,
        pending: dict[str, Any] | None = None,
    ) -> tuple[str, Session]:
        """A new session (a new id at every sign-in): (cookie value, session)."""
        now = now or wall()
        sid = secrets.token_urlsafe(32)
        s = Session(id_hash(sid), login, stage, secrets.token_urlsafe(24), fingerprint, now, now,
                    now + timedelta(seconds=self.s.absolute_lifetime_s), None, pending or {})  # fmt: skip
        await self.pool.execute(
            """INSERT INTO desk_sessions (id_hash, login, stage, csrf, fingerprint, created_at,
               seen_at, expires_at, remote, pending) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)""",
            s.id_hash, login, stage, s.csrf, fingerprint, now, s.expires_at, remote, s.pending,
        )  # fmt: skip
        return sid, s

    async def get(
        self, sid: str | None, now: datetime | None = None, touch: bool = True
    ) -> tuple[Session | None, Session | None]:
        """(the live session of a cookie, its seen_at renewed unless not `touch`; the session
        that just ended by the idle timeout or its lifetime, deleted on the way, for the audit).
        The overview's automatic refresh does not touch: an open page is not activity."""
        if not sid or len(sid) > 128:
            return None, None
        now = now or wall()
        r = await self.pool.fetchrow(
            "SELECT * FROM desk_sessions WHERE id_hash = $1",
            id_hash(sid),
        )
        if r is None:
            return None, None
        s = Session(r["id_hash"], r["login"], r["stage"], r["csrf"], r["fingerprint"],
                    r["created_at"], r["seen_at"], r["expires_at"], r["flash"],
                    _json(r["pending"]))  # fmt: skip
        if not alive(s, now, self.idle):
            await self.pool.execute("DELETE FROM desk_sessions WHERE id_hash = $1", s.id_hash)
            return None, s
        if touch and now - s.seen_at > min(TOUCH_EVERY, self.idle / 4):
            await self.pool.execute(
                "UPDATE desk_sessions SET seen_at = $2 WHERE id_hash = $1", s.id_hash, now
            )
        return s, None

    async def end(self, s: Session) -> None:
        await self.pool.execute("DELETE FROM desk_sessions WHERE id_hash = $1", s.id_hash)

    async def end_login(self, login: str, keep: Session | None = None) -> int:
        """End every session of an account (but `keep`): the number ended."""
        done = await self.pool.execute(
            "DELETE FROM desk_sessions WHERE login = $1 AND id_hash <> $2",
            login, keep.id_hash if keep else "",
        )  # fmt: skip
        return int(done.split()[-1])

    async def end_all(self, keep: Session | None = None) -> int:
        done = await self.pool.execute(
            "DELETE FROM desk_sessions WHERE id_hash <> $1", keep.id_hash if keep else ""
        )
        return int(done.split()[-1])

    async def update(self, s: Session, **fields: Any) -> None:
        allowed = {"stage", "fingerprint", "flash", "pending"}
        assert set(fields) <= allowed, fields
        sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(fields))
        await self.pool.execute(
            f"UPDATE desk_sessions SET {sets} WHERE id_hash = $1", s.id_hash, *fields.values()
        )

    async def take_flash(self, s: Session) -> str | None:
        if s.flash is None:
            return None
        await self.pool.execute(
            "UPDATE desk_sessions SET flash = NULL WHERE id_hash = $1", s.id_hash
        )
        return s.flash

    async def active(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or wall()
        rows = await self.pool.fetch(
            "SELECT login, count(*) AS n, max(seen_at) AS seen FROM desk_sessions "
            "WHERE expires_at > $1 AND seen_at > $2 GROUP BY login ORDER BY login",
            now, now - self.idle,
        )  # fmt: skip
        return [dict(r) for r in rows]

    async def prune(self, now: datetime | None = None) -> None:
        now = now or wall()
        await self.pool.execute(
            "DELETE FROM desk_sessions WHERE expires_at <= $1 OR seen_at <= $2",
            now,
            now - self.idle,
        )


def _json(value: Any) -> dict[str, Any]:
    import json

    if isinstance(value, str):
        return dict(json.loads(value))
    return dict(value or {})
