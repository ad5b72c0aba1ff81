"""Desk sign-in: signed session cookies, CSRF tokens, and a limit on failed sign-ins.

The cookie holds {login, csrf, expiry}, signed with HMAC-SHA256 under a key from
HOTLINE_DESK_KEY, else a random key kept in var/desk.key (mode 0600, made on first use). Every
request re-reads the account from users.yaml, so removing a user ends their sessions. A visitor
who is not signed in has a session too (login None), so the sign-in form carries a CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

KEY_ENV = "HOTLINE_DESK_KEY"
KEY_FILE = "var/desk.key"
COOKIE = "hs_desk"
SESSION_S = 12 * 3600


def desk_key(env: Mapping[str, str] | None = None, path: Path | str = KEY_FILE) -> bytes:
    """The session key: the environment's, else the file's, else a new one written 0600."""
    env = os.environ if env is None else env
    value = env.get(KEY_ENV)
    if value:
        return value.encode()
    path = Path(path)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another daemon made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


@dataclass(frozen=True)
class Session:
    login: str | None
    csrf: str
    expires: int

    @staticmethod
    def new(login: str | None, now: float) -> Session:
        return Session(login, secrets.token_urlsafe(24), int(now) + SESSION_S)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(session: Session, key: bytes) -> str:
    body = _b64(json.dumps({"u": session.login, "c": session.csrf, "e": session.expires}).encode())
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def unsign(cookie: str | None, key: bytes, now: float) -> Session | None:
    """The session in a cookie, or None when it is missing, forged, malformed or expired."""
    if not cookie or "." not in cookie:
        return None
    body, mac = cookie.rsplit(".", 1)
    good = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, good):
        return None
    try:
        data = json.loads(_unb64(body))
        session = Session(data["u"], str(data["c"]), int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires < now or not session.csrf:
        return None
    return session


def csrf_ok(session: Session | None, given: str | None) -> bool:
    # bytes: compare_digest raises TypeError on str with non-ASCII characters (a 500)
    return bool(session and given) and hmac.compare_digest(
        session.csrf.encode(), (given or "").encode("utf-8", "surrogatepass")  # type: ignore[union-attr]
    )


class SignInLimiter:
    """Failed sign-ins: at most `limit` per account name and `address_limit` per address within
    `window_s`; past that, sign-ins for that name (or from there) are refused until the window
    passes. The address allows more, since an office behind one proxy shares an address.
    Pure apart from its memory: every call takes `now`."""

    def __init__(self, limit: int = 5, window_s: float = 900.0, address_limit: int = 20) -> None:
        self.limit = limit
        self.address_limit = address_limit
        self.window_s = window_s
        self._fails: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def blocked(self, login: str, remote: str, now: float) -> float:
        """Seconds until a sign-in may be tried again (0: allowed now)."""
        wait = 0.0
        for key, limit in ((f"u:{login}", self.limit), (f"r:{remote}", self.address_limit)):
            q = self._recent(key, now)
            if len(q) >= limit:
                wait = max(wait, q[0] + self.window_s - now)
        return wait

    def failed(self, login: str, remote: str, now: float) -> None:
        for key in (f"u:{login}", f"r:{remote}"):
            self._recent(key, now).append(now)
        if len(self._fails) > 10_000:  # bounded memory under a spray of names
            for key in [k for k, q in self._fails.items() if not q]:
                del self._fails[key]

    def succeeded(self, login: str) -> None:
        self._fails.pop(f"u:{login}", None)


def wall() -> float:
    return time.time()
