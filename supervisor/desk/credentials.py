"""What the desk changes about an account, in PostgreSQL (desk_accounts): a password changed on
the desk, TOTP, recovery codes. users.yaml stays the administrator's: a password set on the desk
holds while users.yaml still has the hash it replaced (`base_hash`); when the administrator sets
a new one there (`user passwd`), theirs wins."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Account:
    login: str
    password_hash: str  # the effective hash
    must_change: bool
    password_changed: datetime | None
    totp_secret: str | None
    recovery_left: int

    def expired(self, now: datetime, max_age_days: int) -> bool:
        if max_age_days <= 0 or self.password_changed is None:
            return False
        return self.password_changed < now - timedelta(days=max_age_days)


def recovery_hash(code: str) -> str:
    # recovery codes are 50 random bits each: a plain SHA-256 is enough (no dictionary to try)
    raw = code.replace("-", "").strip().lower().encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()


def new_recovery_codes(n: int = 10) -> list[str]:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(2))
        for _ in range(n)
    ]


class Credentials:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def account(
        self, login: str, yaml_hash: str, yaml_must_change: bool, now: datetime, track_age: bool
    ) -> Account:
        r = await self.pool.fetchrow("SELECT * FROM desk_accounts WHERE login = $1", login)
        desk_pw = bool(r and r["password_hash"] and r["base_hash"] == yaml_hash)
        changed = r["password_changed"] if r and r["base_hash"] == yaml_hash else None
        if track_age and changed is None:  # the clock of 定期更换 starts when first seen
            await self.pool.execute(
                """INSERT INTO desk_accounts (login, base_hash, password_changed) VALUES ($1, $2, $3)
                   ON CONFLICT (login) DO UPDATE SET base_hash = $2, password_changed = $3,
                   password_hash = NULL""",
                login, yaml_hash, now,
            )  # fmt: skip
            changed = now
        return Account(
            login,
            r["password_hash"] if desk_pw and r else yaml_hash,
            yaml_must_change and not desk_pw,
            changed,
            r["totp_secret"] if r else None,
            len(r["recovery"]) if r else 0,
        )

    async def set_password(self, login: str, new_hash: str, base_hash: str, now: datetime) -> None:
        await self.pool.execute(
            """INSERT INTO desk_accounts (login, password_hash, base_hash, password_changed)
               VALUES ($1, $2, $3, $4) ON CONFLICT (login) DO UPDATE
               SET password_hash = $2, base_hash = $3, password_changed = $4""",
            login, new_hash, base_hash, now,
        )  # fmt: skip

    async def enrol_totp(self, login: str, secret: str, now: datetime, codes: list[str]) -> None:
        await self.pool.execute(
            """INSERT INTO desk_accounts (login, totp_secret, totp_enrolled_at, recovery)
               VALUES ($1, $2, $3, $4) ON CONFLICT (login) DO UPDATE
               SET totp_secret = $2, totp_enrolled_at = $3, recovery = $4, totp_last = NULL""",
            login, secret, now, [recovery_hash(c) for c in codes],
        )  # fmt: skip

    async def set_recovery(self, login: str, codes: list[str]) -> None:
        await self.pool.execute(
            """INSERT INTO desk_accounts (login, recovery) VALUES ($1, $2)
               ON CONFLICT (login) DO UPDATE SET recovery = $2""",
            login, [recovery_hash(c) for c in codes],
        )  # fmt: skip

    async def use_totp_step(self, login: str, step: int) -> bool:
        """Mark a TOTP time step used; False if it (or a later one) was used already."""
        done = await self.pool.execute(
            "UPDATE desk_accounts SET totp_last = $2 WHERE login = $1 "
            "AND (totp_last IS NULL OR totp_last < $2)",
            login, step,
        )  # fmt: skip
        return done == "UPDATE 1"

    async def use_recovery(self, login: str, code: str) -> bool:
        h = recovery_hash(code)
        done = await self.pool.execute(
            "UPDATE desk_accounts SET recovery = array_remove(recovery, $2) "
            "WHERE login = $1 AND $2 = ANY(recovery)",
            login, h,
        )  # fmt: skip
        return done == "UPDATE 1"

    async def reset_two_factor(self, login: str) -> None:
        await self.pool.execute(
            "UPDATE desk_accounts SET totp_secret = NULL, totp_enrolled_at = NULL, "
            "totp_last = NULL, recovery = '{}' WHERE login = $1",
            login,
        )

    async def all(self) -> dict[str, dict[str, Any]]:
        rows = await self.pool.fetch("SELECT login, totp_enrolled_at, recovery FROM desk_accounts")
        return {r["login"]: dict(r) for r in rows}
