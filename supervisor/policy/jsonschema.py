"""The JSON Schema of rule files, generated from the pydantic models (rules/rule-file.schema.json
is this output, committed so editors can complete and check rules). Conditions (`when`,
`stop_when`) are described from the message fields (facts.py), so an editor knows every field,
operator and value, e.g. `event: commitment_kept`."""

from __future__ import annotations

from typing import Any

from supervisor.policy.conditions import OPS
from supervisor.policy.facts import FIELDS, FieldSpec
from supervisor.policy.rulefile import DURATION_SCHEMA, RuleFileModel

_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "int": {"type": "integer"},
    "window": {"type": "integer"},
    "duration": DURATION_SCHEMA,
}


def _value(spec: FieldSpec) -> dict[str, Any]:
    if spec.type == "str" and spec.values:
        return {"enum": [v for v in spec.values if v]}
    return dict(_TYPES[spec.type])


def _field(spec: FieldSpec) -> dict[str, Any]:
    value = _value(spec)
    ops: dict[str, Any] = {}
    for op in OPS:
        ops[op] = {"type": "array", "items": value, "minItems": 1} if op.endswith("in") else value
    if spec.type == "window":
        ops["within"] = DURATION_SCHEMA
    operators = {"type": "object", "properties": ops, "additionalProperties": False}
    if spec.type == "window":
        return {**operators, "required": ["within"], "description": spec.doc}
    return {"anyOf": [value, operators], "description": spec.doc}


def condition_schema() -> dict[str, Any]:
    ref = {"$ref": "#/$defs/Condition"}
    props: dict[str, Any] = {name: _field(spec) for name, spec in FIELDS.items()}
    props["all"] = {"type": "array", "items": ref, "minItems": 1}
    props["any"] = {"type": "array", "items": ref, "minItems": 1}
    props["not"] = ref
    return {
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        "minProperties": 1,
        "description": "a condition: fields of the message (docs/rules.md), or all/any/not",
    }


def rule_file_schema() -> dict[str, Any]:
    schema = RuleFileModel.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hotline-supervisor rule file"
    defs = schema.setdefault("$defs", {})
    defs["Condition"] = condition_schema()
    for model in defs.values():
        for key in ("when", "stop_when"):
            if key in model.get("properties", {}):
                model["properties"][key] = {
                    "anyOf": [{"$ref": "#/$defs/Condition"}, {"type": "null"}],
                    "default": None,
                }
    return schema
