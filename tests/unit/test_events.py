from datetime import timedelta

import pytest

from supervisor.core.events import EVENT_TYPES, EventInvalid, parse_event
from supervisor.core.privacy import caller_hash, mask, redact
from tests.helpers import every_type


def test_every_contract_type_is_accepted():
    events = [parse_event(raw) for raw in every_type()]
    assert {e.type for e in events} == set(EVENT_TYPES)


def _problem(raw) -> str:
    with pytest.raises(EventInvalid) as info:
        parse_event(raw)
    return str(info.value)


def test_unknown_type_names_the_field():
    assert "type: unknown type 'escalated'" in _problem(
        {"id": "x", "ticket": "T", "type": "escalated", "at": "2026-11-25T10:00:00+08:00"}
    )


def test_missing_required_field_is_named():
    msg = _problem(
        {"id": "x", "ticket": "T", "type": "dispatched", "at": "2026-11-25T10:00:00+08:00"}
    )
    assert msg.startswith("unit: is required for a dispatched event")


def test_timestamp_without_offset_is_rejected():
    msg = _problem({"id": "x", "ticket": "T", "type": "closed", "at": "2026-11-25T10:00:00"})
    assert msg.startswith("at:") and "no UTC offset" in msg


def test_nested_timestamp_without_offset_is_rejected():
    msg = _problem(
        {
            "id": "x",
            "ticket": "T",
            "type": "dispatched",
            "at": "2026-11-25T10:00:00Z",
            "unit": "U",
            "sign_by": "2026-11-25 12:00",
        }
    )
    assert msg.startswith("sign_by:")


def test_unknown_field_is_rejected_with_its_name():
    msg = _problem(
        {
            "id": "x",
            "ticket": "T",
            "type": "signed",
            "at": "2026-11-25T10:00:00+08:00",
            "unit": "U",
            "untis": 1,
        }
    )
    assert msg.startswith("untis: is not a field of a signed event")


def test_wrong_types_are_rejected():
    assert _problem(
        {
            "id": "x",
            "ticket": "T",
            "type": "created",
            "at": "2026-11-25T10:00:00+08:00",
            "urgent": "yes",
        }
    ).startswith("urgent:")
    assert _problem(
        {"id": 5, "ticket": "T", "type": "closed", "at": "2026-11-25T10:00:00+08:00"}
    ).startswith("id:")
    assert _problem({"id": "x", "ticket": "T", "type": "closed", "at": 1764036000}).startswith(
        "at:"
    )
    assert _problem(["not", "an", "object"]).startswith("(event)")


def test_commitment_due_takes_a_date_or_a_timestamp():
    base = {"id": "x", "ticket": "T", "type": "commitment_made", "at": "2026-11-25T10:00:00+08:00"}
    assert parse_event({**base, "due": "2026-12-01"}).data["due"] == "2026-12-01"
    assert (
        parse_event({**base, "due": "2026-12-01T17:00:00+08:00"}).data["due"]
        == "2026-12-01T17:00:00+08:00"
    )
    assert _problem({**base, "due": "next week"}).startswith("due:")


def test_caller_number_is_replaced_by_hash_and_mask():
    raw = every_type()[0]
    event = redact(parse_event(raw), b"k")
    assert "caller" not in event.data
    assert event.data["caller_masked"] == "138****5678"
    assert event.data["caller_hash"] == caller_hash(
        "+86 138-1234-5678", b"k"
    )  # same number, other spelling
    assert "13812345678" not in str(event.to_json())
    assert mask("123") == "****"


def test_offsets_are_kept_and_compared_as_instants():
    a = parse_event({"id": "a", "ticket": "T", "type": "closed", "at": "2026-11-25T10:00:00+08:00"})
    b = parse_event({"id": "b", "ticket": "T", "type": "closed", "at": "2026-11-25T02:00:00Z"})
    assert a.at == b.at and a.at - b.at == timedelta(0)
