"""What becomes of a due timer (fire, supersede or cancel): decided here once, for every store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from supervisor.engine.planner import Ladder

Verdict = Literal["fired", "superseded", "cancelled"]


def past_grace(now: datetime, due_at: datetime, grace: timedelta) -> bool:
    """A step this late may be superseded by a later step of its ladder that is due too (after an
    outage only the latest overdue step of a ladder is sent)."""
    return now - due_at > grace


def verdict(ladder: Ladder | None, superseded: bool) -> Verdict:
    """A step of a ladder that no longer runs (acknowledged, stopped, gone) is cancelled; a step
    overtaken by a later due step is superseded; any other due step fires.

    `superseded`: past_grace(...) and a later step of the same ladder (ticket, rule, cycle) is
    pending and due too."""
    if ladder is None or ladder.status != "active":
        return "cancelled"
    if superseded:
        return "superseded"
    return "fired"


def lateness_s(now: datetime, due_at: datetime) -> float:
    return (now - due_at).total_seconds()
