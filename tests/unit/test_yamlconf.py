from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from supervisor.config.yamlconf import (
    ConfigError,
    ConfigInvalid,
    Located,
    load_model,
    load_yaml,
    validate,
)


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_M):
    template: str
    channel: Literal["sms", "voice"] = "sms"


class Rule(_M):
    id: str
    steps: list[Step]


class File(_M):
    rules: list[Rule] = []


def test_lines_of_keys_and_items():
    located = load_yaml("r.yaml", "rules:\n  - id: a\n    steps:\n      - template: t\n")
    assert located.data == {"rules": [{"id": "a", "steps": [{"template": "t"}]}]}
    assert located.lines[("rules",)] == 1
    assert located.lines[("rules", 0)] == 2
    assert located.lines[("rules", 0, "steps", 0, "template")] == 4
    # a path with no line of its own takes the nearest one above
    assert located.line_of(("rules", 0, "steps", 0, "missing")) == 4


def test_duplicate_key_is_an_error_with_both_lines():
    with pytest.raises(ConfigInvalid) as exc:
        load_yaml("c.yaml", "a: 1\nb:\n  x: 1\n  x: 2\n")
    [err] = exc.value.errors
    assert err == ConfigError("c.yaml", 4, "b.x", err.message)
    assert "duplicate key" in err.message and "line 3" in err.message


def test_syntax_error_has_the_line():
    with pytest.raises(ConfigInvalid) as exc:
        load_yaml("c.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    [err] = exc.value.errors
    assert err.file == "c.yaml" and err.line is not None and err.line >= 2
    assert str(err).startswith(f"c.yaml:{err.line}: YAML syntax error")


def test_unsafe_tags_are_refused():
    with pytest.raises(ConfigInvalid, match="c.yaml:1: YAML syntax error"):
        load_yaml("c.yaml", "a: !!python/object/apply:os.system [ls]\n")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigInvalid, match="cannot read the file"):
        load_yaml(tmp_path / "nope.yaml")


def test_unknown_key_lists_the_allowed_ones_at_its_line():
    text = "rules:\n  - id: a\n    steps:\n      - template: t\n        chanel: sms\n"
    with pytest.raises(ConfigInvalid) as exc:
        validate(File, load_yaml("r.yaml", text))
    [err] = exc.value.errors
    assert (err.line, err.key) == (5, "rules.0.steps.0.chanel")
    assert (
        "not one of: template, channel" in err.message and "did you mean 'channel'" in err.message
    )


def test_all_errors_are_collected_in_words():
    text = (
        "rules:\n  - steps:\n      - template: t\n        channel: fax\n  - id: b\n    steps: 3\n"
    )
    with pytest.raises(ConfigInvalid) as exc:
        validate(File, load_yaml("r.yaml", text))
    got = {(e.line, e.key): e.message for e in exc.value.errors}
    assert got[(2, "rules.0.id")] == "missing required key"
    assert "got 'fax'" in got[(4, "rules.0.steps.0.channel")]
    assert got[(6, "rules.1.steps")] == "should be a list (got 3)"
    assert str(exc.value).count("\n") == 2


def test_error_shape_without_line_or_key():
    assert str(ConfigError("f.yaml", 3, None, "bad")) == "f.yaml:3: bad"
    assert str(ConfigError("f.yaml", None, "a.b", "bad")) == "f.yaml: a.b: bad"
    assert str(ConfigError("f.yaml", 3, "a.b", "bad")) == "f.yaml:3: a.b: bad"


def test_semantic_error_at_a_path():
    located = load_yaml("r.yaml", "rules:\n  - id: a\n    steps: []\n")
    assert located.error(("rules", 0, "steps"), "empty") == ConfigError(
        "r.yaml", 3, "rules.0.steps", "empty"
    )


def test_empty_file_is_an_empty_mapping(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    assert load_model(File, path) == File()
    assert load_yaml(path).data is None


def test_merge_keys_still_work():
    located = load_yaml("m.yaml", "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert located.data["other"] == {"x": 1, "y": 3}
    assert located.line_of(("other", "x")) == 2


def test_located_default_lines():
    assert Located({"a": 1}).line_of(("a",)) is None
