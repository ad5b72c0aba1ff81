"""TicketState's stored form: every state of a fold round-trips; old, partial rows still load."""

from dataclasses import fields

import pytest

from supervisor.core.events import parse_event
from supervisor.core.privacy import redact
from supervisor.core.state import TicketState, apply
from tests.helpers import every_type


def _states():
    state = TicketState(ticket="T1")
    out = [state]
    for raw in every_type():
        state = apply(state, redact(parse_event(raw), b"k"))
        out.append(state)
    return out


def test_every_state_of_a_fold_round_trips():
    for state in _states():
        data = state.to_json()
        assert set(data) == {f.name for f in fields(TicketState)}
        back = TicketState.from_json(data)
        assert back == state and hash(back) == hash(state)
        assert back.to_json() == data


def test_timestamps_are_stored_in_one_zone_and_tuples_as_lists():
    state = _states()[3]
    data = state.to_json()
    assert data["created_at"].endswith("+08:00")
    assert isinstance(data["signed_units"], list) and isinstance(data["co_units"], list)
    assert isinstance(TicketState.from_json(data).signed_units, tuple)


def test_a_partial_row_takes_the_defaults_and_ignores_unknown_keys():
    s = TicketState.from_json({"ticket": "T9", "status": "signed", "dispatch_count": 2, "gone": 1})
    assert s == TicketState(ticket="T9", status="signed", dispatch_count=2)


def test_a_row_without_its_ticket_is_refused():
    with pytest.raises(TypeError):
        TicketState.from_json({"status": "new"})


@pytest.mark.parametrize(
    "stamp",
    ["2026-11-23T09:00:00+08:00", "2026-11-23T01:00:00+00:00", "2026-11-23T09:00:00.123456+08:00",
     "1988-06-01T12:00:00+08:00", "1988-06-01T12:00:00+09:00", "2026-11-22T20:00:00-05:00",
     "1991-09-15T00:30:00+08:00"],
)  # fmt: skip
def test_timestamps_read_as_asia_shanghai_whatever_their_offset(stamp):
    from datetime import datetime

    from supervisor.core.clock import SHANGHAI

    at = datetime.fromisoformat(stamp)
    data = TicketState(ticket="T1", created_at=at).to_json()
    assert data["created_at"] == at.astimezone(SHANGHAI).isoformat()


def test_the_fields_copy_is_in_field_order_however_a_state_was_made():
    from dataclasses import replace

    from supervisor.core.state import _FIELD_NAMES, _fields_of, initial_state

    made = [*_states(), initial_state("T2"), TicketState.from_json({"ticket": "T3"})]
    made += [TicketState.from_json(s.to_json()) for s in _states()]
    made.append(replace(made[-1], status="closed"))
    for state in made:
        want = {name: getattr(state, name) for name in _FIELD_NAMES}
        got = _fields_of(state)
        assert list(got) == list(want) and got == want
        assert got is not state.__dict__
    odd = TicketState(ticket="T4")
    object.__setattr__(odd, "extra", 1)  # not a field: left out, the order kept
    assert list(_fields_of(odd)) == list(_FIELD_NAMES)
