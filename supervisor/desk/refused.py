"""A sign-in refused at the edge (a NUL or a lone surrogate in the form) is still a failed
sign-in for the audit: recorded with the name as given, its bad characters written out."""

from __future__ import annotations

from aiohttp import web

from supervisor.core.inputs import InputRefused, escaped


async def audit_refused_signin(request: web.Request, exc: InputRefused) -> None:
    from supervisor.desk.app import DESK, audit

    if request.path != "/signin" or request.method != "POST":
        return
    desk = request.app[DESK]
    try:
        login = (await request.post()).get("login")
    except (UnicodeDecodeError, ValueError):  # not even a form: no name to record
        login = ""
    await audit(
        desk.host.pool, at=desk.now(), actor=escaped(login if isinstance(login, str) else ""),
        action="sign_in_failed", remote=request.remote or "-",
        detail={"refused": exc.english},
    )  # fmt: skip
