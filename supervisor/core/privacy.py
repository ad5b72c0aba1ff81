"""Callers' numbers are personal data (PIPL): they are replaced, at the boundary, by a keyed hash
(to match repeat callers) and a masked form (for those entitled to see it). The raw number is
never stored, logged or put in a message."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import replace

from supervisor.core.events import Event

_DIGITS = re.compile(r"\D+")

# A phone number in free text (log lines, library messages), recognised as a number: it may not
# start or end inside a longer run of letters and digits, so a provider's hex id
# (SMfa33e0a38a3d4a58b17012347746dc66) is not a phone number because 17012347746 sits in it.
# A percent-escape before it (To%3D138...) is a boundary too, and `+` or `%2B` starts one.
# Forms: +8613800138001, %2B86..., 008613800138001, 8613800138001, 13800138001,
# +86 138 0013 8001, 138-0013-8001, and other E.164 numbers (+ and 8-15 digits).
_START = r"(?:\+|%2B|(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))"
_END = r"(?![0-9A-Za-z])"
_PHONE_IN_TEXT = re.compile(
    rf"{_START}(?:(?:00)?86[ -]?)?(1[3-9]\d[ -]?\d{{4}}[ -]?\d{{4}}){_END}"
    rf"|(?:\+|%2B)(\d{{8,15}}){_END}",
    re.I,
)


def normalise_number(raw: str) -> str:
    digits = _DIGITS.sub("", raw)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif raw.lstrip().startswith("+86") or (digits.startswith("86") and len(digits) == 13):
        digits = digits[2:]  # +86 anything, or 86 before an 11-digit mobile number
    return digits


def caller_hash(raw: str, key: bytes) -> str:
    return hmac.new(key, normalise_number(raw).encode(), hashlib.sha256).hexdigest()


def mask(raw: str) -> str:
    digits = normalise_number(raw)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "****"


def mask_phones(text: str) -> str:
    """Every phone number in `text` masked to its first 3 and last 4 digits (`138****8001`)."""

    def repl(m: re.Match[str]) -> str:
        digits = _DIGITS.sub("", m.group(1) or m.group(2))
        return f"{digits[:3]}****{digits[-4:]}"

    return _PHONE_IN_TEXT.sub(repl, text)


def redact(event: Event, key: bytes) -> Event:
    """Replace `caller` by `caller_hash` and `caller_masked` in a created event."""
    if event.type != "created" or "caller" not in event.data:
        return event
    data = dict(event.data)
    raw = data.pop("caller")
    data["caller_hash"] = caller_hash(raw, key)
    data["caller_masked"] = mask(raw)
    return replace(event, data=data)
