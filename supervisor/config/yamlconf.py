"""Strict YAML for every config and rule file: errors name the file, the line and the key.

PyYAML forgets where things were once it has built Python objects, and silently keeps the last
of two equal keys. So a file is loaded in two passes over the same node tree: the first records
the line of every mapping key and sequence item under its path (a tuple of keys and indexes,
the same path pydantic reports in an error's `loc`) and rejects duplicate keys; the second
builds the data with yaml.SafeLoader's constructors, so nothing but plain data is ever created.

Conventions (shared by contacts, templates and rule files):

* the line recorded for a path is the line of its key (or of the list item), which is where a
  person editing the file looks, also when the value is a block on the following lines;
* a path with no recorded line (a missing key, a key from a `<<` merge) takes the nearest
  recorded line above it;
* an empty file is loaded as None and validated as an empty mapping;
* the key of an error is the dotted path, list indexes included: "rules.0.steps.1.template".
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from supervisor.errors import HotlineError

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[Any, ...]


@dataclass(frozen=True)
class ConfigError:
    file: str
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.key:
            return f"{where}: {self.key}: {self.message}"
        return f"{where}: {self.message}"


class ConfigInvalid(HotlineError):
    """One or more config errors; all of them, so a person fixes a file in one go."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def dotted(path: Path_) -> str | None:
    return ".".join(str(p) for p in path) or None


@dataclass(frozen=True)
class Located:
    """Loaded YAML data with the line of every key and list item, by path."""

    data: Any
    lines: Mapping[Path_, int] = field(default_factory=dict)
    file: str = "<string>"

    def line_of(self, path: Path_) -> int | None:
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def error(self, path: Path_, message: str) -> ConfigError:
        """A semantic error (one pydantic cannot see) about the value at `path`."""
        return ConfigError(self.file, self.line_of(path), dotted(tuple(path)), message)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader, subclassed so that nothing here changes the shared yaml.SafeLoader."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _record(
    loader: _LineLoader,
    node: yaml.Node,
    path: Path_,
    lines: dict[Path_, int],
    errors: list[ConfigError],
    file: str,
    active: frozenset[int] = frozenset(),
) -> None:
    if id(node) in active:  # a recursive alias (&a [*a]); SafeLoader will build it, we stop here
        return
    active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if (
                key_node.tag == _MERGE_TAG
            ):  # `<<: *defaults`: its keys may legitimately be overridden
                continue
            line = key_node.start_mark.line + 1
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                errors.append(
                    ConfigError(
                        file,
                        line,
                        dotted(path),
                        "a key must be a plain value, not a list or mapping",
                    )
                )
                continue
            if key in first:
                errors.append(
                    ConfigError(
                        file,
                        line,
                        dotted((*path, key)),
                        f"duplicate key (first at line {first[key]}); YAML would silently keep only this one",
                    )
                )
                continue
            first[key] = line
            lines[(*path, key)] = line
            _record(loader, value_node, (*path, key), lines, errors, file, active)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _record(loader, item, (*path, i), lines, errors, file, active)


def _yaml_error(file: str, exc: yaml.YAMLError) -> ConfigError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        words = "; ".join(w for w in (exc.problem, exc.context) if w)
        return ConfigError(
            file, mark.line + 1 if mark else None, None, f"YAML syntax error: {words}"
        )
    return ConfigError(file, None, None, f"YAML error: {exc}")


_FULLWIDTH_KEY = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*：")


def fullwidth_colon_hints(file: str, text: str) -> list[ConfigError]:
    """A key typed with a Chinese input method's full-width colon (`anchor：`), named."""
    return [
        ConfigError(
            file, number, m[1],
            "written with a full-width colon '：' (U+FF1A, from a Chinese input method); "
            f"YAML needs an ASCII colon and a space: '{m[1]}: '",
        )  # fmt: skip
        for number, line in enumerate(text.splitlines(), 1)
        if (m := _FULLWIDTH_KEY.match(line)) and not line.lstrip().startswith("#")
    ]


def load_yaml(path: Path | str, text: str | None = None) -> Located:
    """Safe-load one YAML document, keeping lines. `text` stands in for the file's content."""
    file = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigInvalid(
                [ConfigError(file, None, None, f"cannot read the file: {exc.strerror or exc}")]
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigInvalid(
                [ConfigError(file, None, None, f"not UTF-8 text: {exc.reason}")]
            ) from None
    hints = fullwidth_colon_hints(file, text)
    if hints:  # `anchor：sign_by` parses as text, so the real error would be far from the cause
        raise ConfigInvalid(hints)
    try:
        # the reader checks the characters on construction: a control character raises here
        loader = _LineLoader(text)
    except yaml.YAMLError as exc:
        raise ConfigInvalid([_yaml_error(file, exc)]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, {}, file)
        lines: dict[Path_, int] = {(): node.start_mark.line + 1}
        errors: list[ConfigError] = []
        _record(loader, node, (), lines, errors, file)
        if errors:
            raise ConfigInvalid(errors)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigInvalid([_yaml_error(file, exc)]) from None
    finally:
        loader.dispose()
    return Located(data, lines, file)


# --- pydantic errors, in words ---------------------------------------------------------------


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """The part of pydantic's `loc` that is a path in the data.

    `loc` also holds type tags ("function-after[...]", union members, "[key]"); those are skipped.
    A last element that is absent from a mapping is kept: it names a missing key.
    """
    path: list[Any] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        elif i == len(loc) - 1 and isinstance(part, str) and isinstance(cur, Mapping | None):
            pass
        else:
            continue
        path.append(part)
    return tuple(path)


def _candidates(tp: Any) -> list[Any]:
    """The concrete types behind Annotated[...] and unions."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _candidates(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [c for arg in typing.get_args(tp) if arg is not type(None) for c in _candidates(arg)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _step(tp: Any, part: Any) -> Any:
    for cand in _candidates(tp):
        origin = typing.get_origin(cand)
        args = typing.get_args(cand)
        if _is_model(cand) and isinstance(part, str):
            for name, info in cand.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        elif origin in (dict, Mapping) and len(args) == 2:
            return args[1]
        elif origin in (list, tuple, set, frozenset, Sequence) and args and isinstance(part, int):
            return args[0]
    return None


def _model_at(model: type[BaseModel], path: Path_) -> type[BaseModel] | None:
    tp: Any = model
    for part in path:
        tp = _step(tp, part)
        if tp is None:
            return None
    return next((c for c in _candidates(tp) if _is_model(c)), None)


def allowed_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


_TYPE_WORDS = {
    "dict_type": "should be a mapping (key: value)",
    "model_type": "should be a mapping (key: value)",
    "model_attributes_type": "should be a mapping (key: value)",
    "list_type": "should be a list",
    "tuple_type": "should be a list",
    "string_type": "should be text",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "float_type": "should be a number",
    "float_parsing": "should be a number",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
}


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _message(model: type[BaseModel], err: Any, path: Path_) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        sub = _model_at(model, path[:-1])
        if sub is None:
            return "unknown key"
        allowed = allowed_keys(sub)
        guess = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        return f"unknown key (not one of: {', '.join(allowed)}){hint}"
    if kind == "missing":
        return "missing required key"
    msg = _TYPE_WORDS.get(kind) or str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if kind in _TYPE_WORDS or kind in ("literal_error", "enum", "string_pattern_mismatch"):
        msg = f"{msg} (got {_shown(err.get('input'))})"
    return msg


def validate(model: type[M], located: Located, *, context: dict[str, Any] | None = None) -> M:
    """Validate loaded YAML against a pydantic model; every error is reported, with its line."""
    data = {} if located.data is None else located.data
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            path = _data_path(data, tuple(err["loc"]))
            errors.append(located.error(path, _message(model, err, path)))
        errors.sort(key=lambda e: e.line or 0)
        raise ConfigInvalid(errors) from None


def load_model(model: type[M], path: Path | str, *, context: dict[str, Any] | None = None) -> M:
    return validate(model, load_yaml(path), context=context)
