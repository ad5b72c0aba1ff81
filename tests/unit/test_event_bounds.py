"""The contract's bounds: nesting depth, the timestamp range, the ticket id alphabet."""

from __future__ import annotations

import pytest

from supervisor.core.events import EventInvalid, parse_event


def _problem(raw: dict) -> str:
    with pytest.raises(EventInvalid) as info:
        parse_event(raw)
    return str(info.value)


def _nested(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [700, 900])
def test_deep_nesting_in_a_field_is_refused_naming_it(levels: int):
    raw = {"id": "x", "ticket": "T", "type": "created", "at": "2026-11-25T10:00:00+08:00",
           "summary": _nested(levels)}  # fmt: skip
    assert "summary" in _problem(raw) and "nested more than" in _problem(raw)


@pytest.mark.parametrize(
    "field,value",
    [
        ("at", "9999-12-31T20:00:00+00:00"),
        ("at", "0001-01-01T00:00:00+23:59"),
        ("at", "1999-12-31T23:59:59+08:00"),
    ],
)
def test_timestamps_outside_the_range_are_refused(field: str, value: str):
    raw = {"id": "x", "ticket": "T", "type": "closed", "at": value}
    assert _problem(raw).startswith("at: ") and "outside the accepted range" in _problem(raw)


@pytest.mark.parametrize(
    "etype,field,value",
    [
        ("extension_requested", "until", "9999-12-31T17:00:00+08:00"),
        ("extension_decided", "until", "2100-01-01T00:00:00+08:00"),
        ("dispatched", "reply_by", "9999-01-01T00:00:00+08:00"),
        ("dispatched", "sign_by", "0001-01-01T00:00:00+00:00"),
        ("commitment_made", "due", "9999-12-31"),
        ("reopened", "reply_by", "3000-01-01T00:00:00+08:00"),
    ],
)
def test_deadline_fields_beyond_the_horizon_are_refused(etype: str, field: str, value: str):
    raw = {"id": "x", "ticket": "T", "type": etype, "at": "2026-11-25T10:00:00+08:00",
           "unit": "U", field: value}  # fmt: skip
    if etype == "extension_decided":
        raw.pop("unit")
        raw["approved"] = True
    if etype == "reopened":
        raw.pop("unit")
    message = _problem(raw)
    assert message.startswith(f"{field}: ") and "outside the accepted range" in message


def test_an_offset_beyond_14_hours_is_refused():
    raw = {"id": "x", "ticket": "T", "type": "closed", "at": "2026-11-25T10:00:00+23:59"}
    assert "beyond ±14:00" in _problem(raw)


def test_the_range_edges_are_accepted():
    assert parse_event({"id": "x", "ticket": "T", "type": "closed", "at": "2000-01-01T00:00:00+08:00"})
    ev = parse_event({"id": "x", "ticket": "T", "type": "dispatched", "unit": "U",
                      "at": "2026-11-25T10:00:00+08:00", "reply_by": "2099-12-31T17:00:00+08:00"})  # fmt: skip
    assert ev.data["reply_by"].startswith("2099")


@pytest.mark.parametrize(
    "ticket", ["A{1}", "A#1", "T/1", "T 1", "T\t1", "T\n", "T\x07", "-T", "_T", "x" * 65, "{ticket}"]
)
def test_ticket_ids_outside_the_alphabet_are_refused(ticket: str):
    message = _problem({"id": "x", "ticket": ticket, "type": "closed", "at": "2026-11-25T10:00:00+08:00"})
    assert message.startswith("ticket: ") and "letters, digits and - _ . :," in message


@pytest.mark.parametrize("ticket", ["A2026112500123", "GD-2026.11:7_2", "工单2026", "x" * 64])
def test_ticket_ids_in_the_alphabet_are_accepted(ticket: str):
    assert parse_event({"id": "x", "ticket": ticket, "type": "closed", "at": "2026-11-25T10:00:00+08:00"}).ticket == ticket


def test_commitment_kept_is_in_the_contract():
    ev = parse_event({"id": "x", "ticket": "T", "type": "commitment_kept", "at": "2026-11-25T10:00:00+08:00",
                      "unit": "城管执法中队", "result": "已清理"})  # fmt: skip
    assert ev.data == {"unit": "城管执法中队", "result": "已清理"}
    assert "is not a field of a commitment_kept event" in _problem(
        {"id": "x", "ticket": "T", "type": "commitment_kept", "at": "2026-11-25T10:00:00+08:00", "due": "x"}
    )


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        ("明天", "due: '明天' is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp"),
        ("2026-13-01", "due: '2026-13-01' is not a date (YYYY-MM-DD)"),
        ("2026-12-12T17:00:00", "due: '2026-12-12T17:00:00' has no UTC offset"),
        (20261212, "due: must be a date (YYYY-MM-DD) or an RFC 3339 timestamp string"),
    ],
)
def test_a_commitments_due_that_is_no_date_says_both_forms(due: object, expected: str):
    raw = {"id": "x", "ticket": "T", "type": "commitment_made", "at": "2026-12-08T09:10:00+08:00",
           "due": due}  # fmt: skip
    assert _problem(raw).startswith(expected)
    ok = parse_event({**raw, "due": "2026-12-12"})
    assert str(ok.data["due"]) == "2026-12-12"
