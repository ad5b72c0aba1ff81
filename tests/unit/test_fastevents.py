"""The fast path for valid events returns what the pydantic path returns, and leaves every
problem (and so every error message) to it."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core import fastevents
from supervisor.core.events import BODIES, EventInvalid, parse_event
from tests.helpers import every_type

TEMPLATES = every_type() + [
    {"id": "d2", "ticket": "T2", "type": "dispatched", "at": "2026-11-23T09:05:00+08:00",
     "unit": "u", "sign_by": "2026-11-23T11:05:00Z", "reply_by": "2026-11-30T17:00+08:00"},
    {"id": "c2", "ticket": "T2", "type": "commitment_made", "at": "2026-11-24T14:00:00+08:00",
     "due": "2026-12-03T12:00:00+08:00"},
    {"id": "r2", "ticket": "T2", "type": "reopened", "at": "2026-11-24T14:00:00+08:00",
     "reply_by": "2026-12-03T12:00:00+08:00"},
    {"id": "x2", "ticket": "T2", "type": "extension_decided", "at": "2026-11-24T14:00:00+08:00",
     "approved": False},
    {"id": "v2", "ticket": "T2", "type": "visited", "at": "2026-11-24T14:00:00+08:00",
     "satisfaction": "satisfied", "resolved": None},
]  # fmt: skip

FIELDS = sorted(
    {k for m in BODIES.values() for k in m.model_fields} | {"id", "ticket", "type", "at", "extra"}
)
VALUES = st.one_of(
    st.sampled_from([
        None, True, False, 0, 1, 1.5, "", " ", "a", "x" * 40, "x" * 41, "x" * 200, "x" * 201, "x" * 2001,
        "phone", "complaint", "before", "after", "satisfied", "dissatisfied", "created", "signed", "nope",
        "2026-11-23T09:05:00+08:00", "2026-11-23T09:05:00", "2026-11-23", "2026-13-01", "2026-11-23T09:05Z",
        "a\x00b", "\ud800", "城管执法中队", [], ["a"], ["a", "a"], ["a", ""], ["a", 1], [None], {}, {"a": 1},
    ]),
    st.text(max_size=12),
)  # fmt: skip


@st.composite
def raws(draw):
    raw = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()) and key in raw:
            del raw[key]
        else:
            raw[key] = draw(VALUES)
    return raw


def _slow(raw):
    fastevents.ENABLED = False
    try:
        return parse_event(raw)
    finally:
        fastevents.ENABLED = True


def _outcome(fn, raw):
    try:
        e = fn(copy.deepcopy(raw))
    except EventInvalid as exc:
        return ("invalid", [(p.field, p.message) for p in exc.problems])
    return ("ok", (e.id, e.ticket, e.type, e.at, e.at.utcoffset(), list(e.data.items())))


@settings(max_examples=1500, deadline=None)
@given(raws())
def test_fast_and_pydantic_paths_agree(raw):
    assert _outcome(parse_event, raw) == _outcome(_slow, raw)
    body = {k: v for k, v in raw.items() if k not in ("id", "ticket", "type", "at")}
    fast = fastevents.fast_body(str(raw.get("type")), copy.deepcopy(body))
    if fast is not None:  # it only ever answers for valid bodies: pydantic accepts them too
        model = BODIES[raw["type"]]
        model.model_validate(body)


@pytest.mark.parametrize("raw", TEMPLATES, ids=lambda r: r["type"])
def test_every_valid_template_takes_the_fast_path(raw):
    body = {k: v for k, v in raw.items() if k not in ("id", "ticket", "type", "at")}
    fast = fastevents.fast_body(raw["type"], copy.deepcopy(body))
    assert fast is not None
    assert list(fast.items()) == list(_slow(raw).data.items())


def test_every_event_type_has_a_fast_path():
    assert set(fastevents._MODELS) == set(BODIES)
