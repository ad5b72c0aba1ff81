"""Hooks the HTTP edge offers whoever hosts it: typed AppKeys that both the server and the desk
may import (the desk does not import the server: .importlinter)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from supervisor.core.inputs import InputRefused

# Told of every request the edge refuses (a NUL or a lone surrogate in a field): the desk audits a
# refused sign-in (desk/refused.py).
REFUSED: web.AppKey[Callable[[web.Request, InputRefused], Awaitable[None]]] = web.AppKey(
    "edge_refused"
)
