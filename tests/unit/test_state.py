import random

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.events import parse_event
from supervisor.core.privacy import redact
from supervisor.core.state import TicketState, fold
from tests.helpers import every_type


def _events():
    return [redact(parse_event(r), b"k") for r in every_type()]


def test_fold_follows_the_lifecycle():
    state = fold("T1", _events())
    assert state.status == "closed"
    assert state.unit == "城管执法中队" and state.dispatch_count == 1
    assert state.signed_units == ("城管执法中队",)
    assert state.returned_units == ("市场监管所",) and state.co_units == ()
    assert state.dissatisfied_count == 1 and state.reopened_count == 1
    assert state.commitment_due is None  # re-opened: the promise belonged to the replied handling
    assert state.contacted_after and not state.contacted_before  # re-opening resets the contacts
    assert state.caller_masked == "138****5678"


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_out_of_order_arrival_folds_to_the_same_state(rnd: random.Random):
    events = _events()
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert fold("T1", shuffled) == fold("T1", events)


def test_state_round_trips_through_json():
    state = fold("T1", _events())
    assert TicketState.from_json(state.to_json()) == state


def test_ties_keep_arrival_order():
    raws = every_type()[:2]
    raws[1]["at"] = raws[0]["at"]
    events = [parse_event(r) for r in raws]
    assert fold("T1", events).status == "dispatched"
