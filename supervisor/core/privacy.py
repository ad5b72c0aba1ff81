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


def redact(event: Event, key: bytes) -> Event:
    """Replace `caller` by `caller_hash` and `caller_masked` in a created event."""
    if event.type != "created" or "caller" not in event.data:
        return event
    data = dict(event.data)
    raw = data.pop("caller")
    data["caller_hash"] = caller_hash(raw, key)
    data["caller_masked"] = mask(raw)
    return replace(event, data=data)
