"""Desk sign-in helpers: the visitor's signed pre-sign-in cookie and CSRF tokens.

Signed-in sessions live in PostgreSQL (sessions.py; the `hs_desk` cookie is a random id). A
visitor who is not signed in yet gets a small signed cookie (`hs_pre`: {login None, csrf,
expiry}, HMAC-SHA256 under HOTLINE_DESK_KEY, else a random key kept in var/desk.key, mode 0600)
so that the sign-in form carries a CSRF token without a database row per visitor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY_ENV = "HOTLINE_DESK_KEY"
KEY_FILE = "var/desk.key"
COOKIE = "hs_desk"  # the session id (sessions.py)
PRE_COOKIE = "hs_pre"  # the signed pre-sign-in cookie
PRE_S = 3600
SESSION_S = PRE_S


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


def csrf_ok(session: Any, given: str | None) -> bool:
    """`session`: anything with a .csrf (a pre-sign-in Session or a sessions.Session)."""
    if not session or not given:
        return False
    enc = given.encode("utf-8", "surrogatepass")  # compare_digest refuses non-ASCII str
    return hmac.compare_digest(session.csrf.encode(), enc)


def wall() -> float:
    return time.time()
