"""The one decision on a due timer: fire, supersede or cancel."""

from __future__ import annotations

from datetime import timedelta

from supervisor.engine.planner import Ladder
from supervisor.engine.timers import lateness_s, past_grace, verdict
from tests.helpers import sh

AT = sh(2026, 11, 23, 9, 0)


def ladder(status: str = "active") -> Ladder:
    return Ladder("T1", "sign-off", 1, AT, None, status, None)


def test_a_step_of_a_stopped_or_missing_ladder_is_cancelled() -> None:
    assert verdict(None, False) == "cancelled"
    assert verdict(ladder("acked"), False) == "cancelled"
    assert verdict(ladder("stopped"), True) == "cancelled"


def test_any_ladder_not_active_decides_as_no_ladder() -> None:
    # fire_due reads only the active ladders (CLAIM_DUE's ladder columns): a ladder of any other status
    # must decide its timers exactly as a missing one does
    for status in ("acked", "stopped", "cancelled", "", "Active"):
        for superseded in (False, True):
            assert verdict(ladder(status), superseded) == verdict(None, superseded)


def test_an_overtaken_step_is_superseded_else_it_fires() -> None:
    assert verdict(ladder(), True) == "superseded"
    assert verdict(ladder(), False) == "fired"


def test_grace_before_a_late_step_may_be_superseded() -> None:
    grace = timedelta(minutes=5)
    assert not past_grace(AT + grace, AT, grace)
    assert past_grace(AT + grace + timedelta(seconds=1), AT, grace)
    assert lateness_s(AT + timedelta(seconds=90), AT) == 90.0


def test_a_claimed_row_makes_the_same_due_timer_as_its_init() -> None:
    from supervisor.storage.base import DueTimer
    from supervisor.storage.pg import _due_timer

    row = {"id": 7, "ticket": "T1", "rule": "sign-off", "cycle": 2, "step": 1, "rep": 0,
           "due_at": AT, "later_due": True}  # fmt: skip
    built = _due_timer(row, True)
    made = DueTimer(7, "T1", "sign-off", 2, 1, 0, AT, True)
    assert built == made and repr(built) == repr(made)
    assert list(vars(built).items()) == list(vars(made).items())
