"""deadlines.compute's memo answers exactly what the computation itself answers: the same values,
the same zones, the same sources, for the shipped deadline rules and states that differ only in
what the key must tell apart (an instant in another zone, True against 1, a kind, a count)."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.state import TicketState
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.engine.policy import load_policy
from tests.helpers import ROOT, loaded

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), ZoneInfo("Asia/Shanghai")])
INSTANTS = st.sampled_from(
    [datetime(2026, 3, 2, 9, 5, tzinfo=UTC), datetime(2026, 9, 30, 16, 59, tzinfo=UTC),
     datetime(2026, 10, 9, 1, 0, tzinfo=UTC), datetime(2026, 2, 14, 23, 30, tzinfo=UTC)]
)  # fmt: skip
MOMENTS = st.builds(lambda at, tz: at.astimezone(tz), INSTANTS, ZONES)
STATES = st.builds(
    TicketState,
    ticket=st.just("T1"),
    kind=st.sampled_from([None, "complaint", "help", "consultation"]),
    urgent=st.sampled_from([False, True, 0, 1]),
    reopened_count=st.sampled_from([0, 1, 2, True]),
    dispatched_at=st.none() | MOMENTS,
    reopened_at=st.none() | MOMENTS,
    platform_sign_by=st.none() | MOMENTS,
    platform_reply_by=st.none() | MOMENTS,
    extension_until=st.none() | MOMENTS,
    commitment_due=st.sampled_from([None, "2026-10-01", "2026-03-02T15:00:00+08:00"]),
)

_policy = None


def _shipped():
    global _policy
    if _policy is None:
        base = loaded()
        files = sorted((ROOT / "rules").glob("*.yaml"))
        _policy = load_policy(files, base.calendar, templates=base.templates, matcher="python")
    return _policy


def _exactly(a: dl.Deadlines, b: dl.Deadlines) -> None:
    assert a == b and repr(a) == repr(b)
    for name in ("sign_by", "reply_by", "commitment_due"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            assert x.isoformat() == y.isoformat() and x.tzinfo == y.tzinfo


DATETIMES = ("dispatched_at", "reopened_at", "platform_sign_by", "platform_reply_by",
             "extension_until")  # fmt: skip


def _in_zone(state: TicketState, tz) -> TicketState:
    """The same state, its datetimes the same instants in another zone."""
    moved = {n: getattr(state, n).astimezone(tz) for n in DATETIMES if getattr(state, n)}
    return TicketState(**{**state.__dict__, **moved})


@settings(max_examples=300, deadline=None)
@given(st.lists(STATES, min_size=1, max_size=12), ZONES)
def test_the_memo_answers_what_the_computation_does(states, tz):
    policy = _shipped()
    dl._deadline_memos.clear()
    # each state again with its instants in another zone; then all again, from the memo
    for state in [*states, *(_in_zone(s, tz) for s in states)] * 2:
        msg = state_fields(state)
        got = dl.compute(state, policy.deadlines, policy.calendar, msg)
        _exactly(got, dl._compute(state, policy.deadlines, policy.calendar, msg))


def test_a_message_without_the_read_fields_is_computed_not_keyed():
    policy = _shipped()
    dl._deadline_memos.clear()
    state = TicketState(ticket="T1", platform_reply_by=datetime(2026, 3, 2, 9, tzinfo=UTC))
    got = dl.compute(state, policy.deadlines, policy.calendar, {})
    _exactly(got, dl._compute(state, policy.deadlines, policy.calendar, {}))
    assert not dl._deadline_memo(policy.deadlines, policy.calendar).answers


def test_the_memo_is_bounded(monkeypatch):
    policy = _shipped()
    dl._deadline_memos.clear()
    monkeypatch.setattr(dl, "DEADLINE_MEMO_SIZE", 50)
    for i in range(120):
        state = TicketState(ticket="T1", dispatched_at=datetime(2026, 3, 2, 9, i % 60, tzinfo=UTC)
                            + timedelta(hours=i // 60))  # fmt: skip
        dl.compute(state, policy.deadlines, policy.calendar, state_fields(state))
    assert 0 < len(dl._deadline_memo(policy.deadlines, policy.calendar).answers) <= 50
