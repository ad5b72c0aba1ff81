"""The committed JSON Schema of rule files accepts every shipped rule file and knows the
condition language (fields, operators, values), so an editor can complete and check rules."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from supervisor.policy.jsonschema import rule_file_schema

RULES = Path(__file__).resolve().parents[2] / "rules"
SCHEMA = json.loads((RULES / "rule-file.schema.json").read_text(encoding="utf-8"))


def test_the_committed_schema_is_the_generated_one():
    assert SCHEMA == json.loads(json.dumps(rule_file_schema(), ensure_ascii=False))


@pytest.mark.parametrize("path", sorted(RULES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_rule_file_is_valid(path):
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), SCHEMA)


def _rule(when):
    return {"rules": [{"id": "r", "description": "d", "anchor": "event", "when": when,
                       "steps": [{"at": 0, "notify": ["supervisor"], "template": "t"}]}]}  # fmt: skip


def test_the_condition_language_is_in_the_schema():
    jsonschema.validate(_rule({"event": "commitment_kept"}), SCHEMA)
    jsonschema.validate(
        _rule({"event": "created", "matter_callers": {"within": "7d", "eq": 5}}), SCHEMA
    )
    jsonschema.validate(_rule({"not": {"urgent": True, "status": "dispatched"}}), SCHEMA)
    for bad in (
        {"event": "commitment_broken"},  # not an event type
        {"stauts": "signed"},  # a misspelt field
        {"same_matter": {"gte": 3}},  # a window needs `within`
        {"dispatch_count": {"atleast": 3}},  # not an operator
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(_rule(bad), SCHEMA)
