"""docs/api.md and the OpenAPI document against the code: every event type, its fields and which
are required, and each example validating."""

from __future__ import annotations

import json
import re

import pytest

from supervisor.core.events import (
    BODIES,
    ENVELOPE,
    EVENT_TYPES,
    TICKET_ID,
    parse_event,
    ticket_id_pattern,
)
from supervisor.server.openapi import AckRequest, openapi_document
from tests.helpers import ROOT

DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def _section(etype: str) -> str:
    start = DOC.index(f"### `{etype}`\n")
    end = DOC.find("\n### ", start + 1)
    end2 = DOC.find("\n## ", start + 1)
    ends = [e for e in (end, end2) if e != -1]
    return DOC[start : min(ends) if ends else len(DOC)]


def _table(section: str) -> dict[str, bool]:
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| (yes|no) \|", section, re.M)
    return {name: req == "yes" for name, req in rows}


def test_every_type_is_documented_and_nothing_else():
    documented = re.findall(r"^### `(\w+)`$", DOC.split("## Event types", 1)[1], re.M)
    assert sorted(documented) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_the_docs_list_each_types_fields_and_what_is_required(etype: str):
    model = BODIES[etype]
    expected = {name: field.is_required() for name, field in model.model_fields.items()}
    assert _table(_section(etype)) == expected


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_each_example_is_a_valid_event_of_its_type(etype: str):
    block = re.search(r"```json\n(.*?)\n```", _section(etype), re.S)
    assert block, f"no example for {etype}"
    event = parse_event(json.loads(block.group(1)))
    assert event.type == etype


def test_the_envelope_is_documented():
    envelope = DOC.split("### The envelope", 1)[1].split("\n## ", 1)[0]
    assert _table(envelope) == dict.fromkeys(ENVELOPE, True)


# --- OpenAPI -------------------------------------------------------------------------------------


def test_openapi_is_3_1_and_serves_every_path():
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        "/api/v1/events", "/api/v1/tickets", "/api/v1/tickets/{ticket}",
        "/api/v1/tickets/{ticket}/ack",
        "/api/v1/openapi.json", "/healthz", "/metrics",
    }  # fmt: skip
    json.dumps(doc)  # serialisable


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_openapi_event_schemas_match_the_models(etype: str):
    schema = openapi_document()["components"]["schemas"][f"event_{etype}"]
    model = BODIES[etype]
    assert set(schema["properties"]) == set(ENVELOPE) | set(model.model_fields)
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    assert set(schema["required"]) == set(ENVELOPE) | required
    assert schema["additionalProperties"] is False
    assert schema["properties"]["type"] == {"const": etype}
    assert schema["properties"]["ticket"]["$ref"] == "#/components/schemas/TicketId"
    ticket_id = openapi_document()["components"]["schemas"]["TicketId"]
    assert ticket_id["pattern"] == ticket_id_pattern() and TICKET_ID.fullmatch("工单1")


def test_openapi_event_union_and_ack_body():
    schemas = openapi_document()["components"]["schemas"]
    assert set(schemas["Event"]["discriminator"]["mapping"]) == set(EVENT_TYPES)
    assert schemas["AckRequest"] == AckRequest.model_json_schema()
    codes = set(openapi_document()["paths"]["/api/v1/tickets/{ticket}/ack"]["post"]["responses"])
    assert {"200", "403", "404", "422"} <= codes
    assert "409" in openapi_document()["paths"]["/api/v1/events"]["post"]["responses"]


def test_the_ticket_list_is_documented_with_the_filters_the_desk_reads():
    from multidict import MultiDict

    from supervisor.desk.format import STATUS_LABELS
    from supervisor.desk.pages import BadQuery, parse_filter
    from supervisor.server.openapi import LIST_PARAMS, LIST_VIEWS, STATUSES
    from supervisor.storage.views import VIEWS

    section = DOC.split("## The ticket list", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", section, re.M)
    assert {n for pair in documented for n in pair if n} == set(LIST_PARAMS)
    get = openapi_document()["paths"]["/api/v1/tickets"]["get"]
    assert [p["name"] for p in get["parameters"]] == list(LIST_PARAMS)
    assert set(get["responses"]) == {"200", "400", "401"}
    assert STATUSES == tuple(STATUS_LABELS) and LIST_VIEWS == VIEWS
    good = {"status": "signed", "unit": "城管执法中队", "category": "市容环境", "urgent": "true",
            "view": "overdue", "from": "2026-11-01", "to": "2026-11-30", "q": "A1", "limit": "20"}  # fmt: skip
    f = parse_filter(MultiDict(good), None)
    assert (f.status, f.view, f.urgent, f.limit) == ("signed", "overdue", True, 20)
    for name, bad in (("status", "open"), ("view", "late"), ("urgent", "1"), ("to", "30/11")):
        with pytest.raises(BadQuery, match=f"^{name}:"):
            parse_filter(MultiDict({name: bad}), None)
