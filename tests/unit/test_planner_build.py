"""The planner's fast builders make the same objects as the dataclasses' own __init__."""

from dataclasses import fields
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from supervisor.core.state import TicketState, initial_state
from supervisor.core.workcal import WorkCalendar
from supervisor.engine import deadlines as dl
from supervisor.engine.planner import Ladder, Plan, TimerSpec, _plan, _timer, ladder

MOMENTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)
TEXT = st.text(max_size=5)


def _same(a, b) -> None:
    assert type(a) is type(b)
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert list(a.__dict__) == [f.name for f in fields(type(a))] == list(b.__dict__)


@given(TEXT, TEXT, st.integers(), MOMENTS, st.none() | TEXT, TEXT, st.none() | TEXT)
def test_ladder(ticket, rule, cycle, at, trigger, status, reason):
    _same(ladder(ticket, rule, cycle, at, trigger, status, reason),
          Ladder(ticket, rule, cycle, at, trigger, status, reason))  # fmt: skip
    _same(ladder(ticket, rule, cycle, at), Ladder(ticket, rule, cycle, at))


@given(TEXT, TEXT, st.integers(), st.integers(), st.integers(), MOMENTS)
def test_timer(ticket, rule, cycle, step, rep, due):
    _same(_timer(ticket, rule, cycle, step, rep, due),
          TimerSpec(ticket, rule, cycle, step, rep, due))  # fmt: skip


@given(st.none() | MOMENTS, st.none() | MOMENTS, st.none() | MOMENTS, st.none() | MOMENTS)
def test_deadlines(dispatched, platform_sign, platform_reply, extension):
    state = TicketState(
        ticket="T1", dispatched_at=dispatched, platform_sign_by=platform_sign,
        platform_reply_by=platform_reply, extension_until=extension, commitment_due="2026-03-02",
    )  # fmt: skip
    got = dl.compute(state, {}, WorkCalendar(), {})
    _same(got, dl.Deadlines(**{f.name: getattr(got, f.name) for f in fields(dl.Deadlines)}))


@given(TEXT)
def test_initial_state(ticket):
    _same(initial_state(ticket), TicketState(ticket=ticket))


@given(TEXT, st.lists(MOMENTS, max_size=3), TEXT)
def test_plan(ticket, dues, fingerprint):
    state = TicketState(ticket=ticket)
    lads = tuple(Ladder(ticket, "r", i, at) for i, at in enumerate(dues))
    timers = tuple(TimerSpec(ticket, "r", i, 0, 0, at) for i, at in enumerate(dues))
    args = (state, dl.Deadlines(), lads, lads[:1], timers, fingerprint)
    _same(_plan(*args), Plan(*args))


def test_parsed_event_is_the_dataclass():
    from supervisor.core.events import Event, parse_event

    raw = {"id": "e1", "ticket": "T1", "type": "dispatched", "at": "2026-03-02T09:00:00+08:00",
           "unit": "城管执法中队"}  # fmt: skip
    got = parse_event(raw)
    want = Event(got.id, got.ticket, got.type, got.at, dict(got.data))
    _same(got, want)
    assert got.data == want.data
