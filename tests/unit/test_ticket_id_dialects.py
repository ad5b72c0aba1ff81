"""Issue 18: the OpenAPI document's ticket-id pattern, read as JSON Schema reads it (ECMA-262:
`\\w` is ASCII only there), accepts exactly the ids the server accepts, Chinese (`工单1`) and
full-width (`１２３`) ones included. jsonschema_rs (Rust, ECMA-262 semantics: the validator
schemathesis uses) checks the spec's schema; the server's check is core.events.TICKET_ID. (The
Python `jsonschema` package reads patterns with Python's `re`, where `$` also matches before a
final newline, so it is no judge of ECMA-262.)"""

from __future__ import annotations

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.events import TICKET_ID, parse_event
from supervisor.server.openapi import openapi_document

SCHEMA = openapi_document()["components"]["schemas"]["TicketId"]
ECMA = jsonschema_rs.validator_for(SCHEMA)


def server_accepts(ticket: str) -> bool:
    return TICKET_ID.fullmatch(ticket) is not None


def spec_accepts(ticket: str) -> bool:
    return ECMA.is_valid(ticket)


@pytest.mark.parametrize(
    "ticket",
    ["工单1", "１２３", "Ａ２０２６", "A2026112500123", "12345-2026.11:7", "Ünïcødé", "Жалоба7",
     "市民热线_2", "٣٤٥", "ⅻ", "²", "x" * 64],
)  # fmt: skip
def test_ids_the_server_accepts_the_spec_accepts(ticket):
    assert server_accepts(ticket) and spec_accepts(ticket)


@pytest.mark.parametrize(
    "ticket",
    ["", "_x", "-x", ".x", "a b", "a/b", "a{1}", "工单　1", "x" * 65, "a\x00", "𠀀1", "1𠀀",
     "a\u200b", "a，b", "工单！", "0\n"],
)  # fmt: skip
def test_ids_the_server_refuses_the_spec_refuses(ticket):
    assert not server_accepts(ticket) and not spec_accepts(ticket)


ALPHABET = st.one_of(
    st.characters(codec="utf-8"),  # anything, astral and controls included
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK
    st.characters(min_codepoint=0xFF00, max_codepoint=0xFFEF),  # full-width forms
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),  # ASCII
    st.sampled_from("-_.:/ {}#?"),
)


@settings(max_examples=600, deadline=None)
@given(st.text(ALPHABET, min_size=0, max_size=70))
def test_the_server_and_the_spec_agree(ticket):
    assert server_accepts(ticket) == spec_accepts(ticket)


@settings(max_examples=200, deadline=None)
@given(st.text(ALPHABET, min_size=1, max_size=66))
def test_the_event_contract_agrees_too(ticket):
    """The whole event: what the API's validation accepts as `ticket`."""
    raw = {"id": "x-1", "ticket": ticket, "type": "created", "at": "2026-11-25T09:00:00+08:00"}
    try:
        parse_event(raw)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == spec_accepts(ticket)
