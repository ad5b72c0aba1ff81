"""fire_due's decode of a stored state (pg._fired_state) gives what the jsonb codec and
TicketState.from_json gave."""

from __future__ import annotations

import json
from dataclasses import fields

import orjson

from supervisor.core.state import TicketState, initial_state
from supervisor.storage.jsoncodec import loads, state_text
from supervisor.storage.pg import _fired_state
from tests.helpers import sh


def _same(text: str) -> None:
    want = TicketState.from_json(loads(text))
    got = _fired_state(text)
    assert got == want and repr(got) == repr(want)
    for f in fields(TicketState):
        assert type(getattr(got, f.name)) is type(getattr(want, f.name)), f.name


def test_a_stored_state_decodes_as_before() -> None:
    plain = initial_state("T00012345")
    _same(state_text(plain))
    full = TicketState(
        ticket="T00012345", status="dispatched", created_at=sh(2026, 11, 2, 9, 0),
        category="噪音", unit="U1", co_units=("U2", "U3"), signed_units=("U2",),
        returned_units=(), dispatched_at=sh(2026, 11, 2, 10, 30), history=("派单", "签收"),
        review_findings=("名称：补充",), dispatch_count=2, urgent=True,
    )  # fmt: skip
    _same(state_text(full))


def test_odd_stored_states_go_the_usual_way() -> None:
    data = orjson.loads(state_text(initial_state("T1")))
    for change in (
        {"dispatch_count": 1.5},  # a float
        {"dispatch_count": 123456789012345678901234567890},  # past 64 bits: json reads an int
        {"history": ["a", 2.5]},  # a float in a list
        {"history": [["nested"]]},
        {"summary": {"a": 1.0}},  # a dict
        {"summary": ["not", "a", "tuple field"]},
        {"newer_field": "x"},  # a key of no field
    ):
        _same(json.dumps({**data, **change}, ensure_ascii=False))
    smaller = {k: v for k, v in data.items() if k != "history"}  # an older version's state
    _same(orjson.dumps(smaller).decode())
