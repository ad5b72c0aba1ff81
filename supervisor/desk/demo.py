"""`run --demo`: an account for the desk, kept in memory only (users.yaml is not touched)."""

from __future__ import annotations

import secrets

from supervisor.desk.app import Desk

DEMO_LOGIN = "demo"


def demo_account(desk: Desk) -> tuple[str, str]:
    """A supervisor account named demo with a new random password; returns (name, password)."""
    password = secrets.token_urlsafe(9)
    desk.add_ephemeral_user(DEMO_LOGIN, "supervisor", password)
    return DEMO_LOGIN, password
