"""`run --demo`: an account for the desk, kept in memory only (users.yaml is not touched)."""

from __future__ import annotations

import secrets

from supervisor.desk.app import Desk

DEMO_LOGIN = "demo"


def demo_account(desk: Desk, two_factor: bool = False) -> tuple[str, str]:
    """A supervisor account named demo with a new random password; returns (name, password).
    Two-factor sign-in is off in the demo unless asked (HOTLINE_DEMO_TWO_FACTOR=1)."""
    desk.demo_two_factor = two_factor
    password = secrets.token_urlsafe(9)
    desk.add_ephemeral_user(DEMO_LOGIN, "supervisor", password)
    return DEMO_LOGIN, password
