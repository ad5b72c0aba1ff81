"""The JSON Schema of rule files, generated from the pydantic models (rules/rule-file.schema.json
is this output, committed so editors can complete and check rules)."""

from __future__ import annotations

from typing import Any

from supervisor.policy.rulebook import RuleFileModel


def rule_file_schema() -> dict[str, Any]:
    schema = RuleFileModel.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hotline-supervisor rule file"
    return schema
