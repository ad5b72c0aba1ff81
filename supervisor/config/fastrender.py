"""Rendering the simplest templates without Jinja's per-call machinery (issue 22, catch-up).

Most message texts and every SMS provider parameter are literal text and `{{ name.key | filter }}`
outputs, nothing else: no tags, no tests, no operators. Jinja renders those through a fresh
Context per call (about half of a render) and the sandbox's attribute lookup. `compile_simple`
turns such a template, once, into a list of parts that `render` joins directly; for any other
template it gives None and the caller keeps Jinja.

What `render` computes is what Jinja's generated code computes for these nodes (jinja2 3.1,
`CodeGenerator.visit_Output`): the literal text as written (the lexer's whitespace rules already
applied by `Environment.parse`), and for each output `str(finalize(filters(lookup)))`, the lookup
reading the context and then dict keys (the sandbox's `getattr` on a plain dict whose key is not a
dict attribute is `obj[key]`), the filters called with their constant arguments. Whenever it would
differ from Jinja, or could fail (a missing name or key, a value that is not a plain dict, a
filter raising), `render` gives None and the caller renders with Jinja, which then raises its own
error: errors and odd cases are Jinja's, unchanged. tests/unit/test_fastrender.py compares the
two on the shipped templates and on generated contexts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.utils import _PassArg

# a plain dict's attributes: `ticket.items` is the method in Jinja, never a key
_DICT_ATTRS = frozenset(dir(dict))
_Filter = tuple[Callable[..., Any], tuple[Any, ...]]
# literal text, or (name, keys, filters, slot): slot >= 0 when the filters are pure (memo key)
_Part = str | tuple[str, tuple[str, ...], tuple[_Filter, ...], int]
# names Jinja's generated code binds itself (`self` is the template reference, not the context's)
_SPECIAL = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})
# values kept per template (cleared when full: ticket ids never repeat, unit names and times do;
# small, since every template of the daemon has its own)
_MEMO_MAX = 2_048


class SimpleTemplate:
    """A template made of literal text and plain outputs, rendered without Jinja."""

    __slots__ = ("_parts", "_finalize", "_memo")

    def __init__(self, parts: list[_Part], finalize: Callable[[Any], Any] | None) -> None:
        self._parts = tuple(parts)
        self._finalize = finalize
        # finalize(s) per string s: finalize is pure (masking phone-like numbers), and unit names,
        # categories and times repeat from message to message
        self._memo: dict[Any, str] = {}

    def render(self, context: dict[str, Any]) -> str | None:
        """The text Jinja would render, or None: then render with Jinja."""
        out: list[str] = []
        finalize, memo = self._finalize, self._memo
        try:
            for part in self._parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                name, keys, filters, slot = part
                done = _text_of(context, name, keys, filters, slot, finalize, memo)
                if done is None:
                    return None
                out.append(done)
        except Exception:  # a filter refusing a value: Jinja says so, in its own words
            return None
        return "".join(out)


def _text_of(
    context: dict[str, Any],
    name: str,
    keys: tuple[str, ...],
    filters: tuple[_Filter, ...],
    slot: int,
    finalize: Callable[[Any], Any] | None,
    memo: dict[Any, str],
) -> str | None:
    """One output's text, as Jinja writes it (the value looked up, filtered, finalized), or
    None when the context lacks it (then Jinja renders). `slot` >= 0: its filters are pure, so
    the same value filtered before gives the same text (memoised under the slot); -1: not.
    A filter that refuses a value raises (the caller hands the render to Jinja)."""
    value = context.get(name, _MISSING)
    if value is _MISSING:
        return None
    for key in keys:
        if type(value) is not dict or key not in value:
            return None
        value = value[key]
    if filters:
        held = _held(slot, value) if slot >= 0 else None
        done = memo.get(held) if held is not None else None
        if done is None:
            for func, args in filters:
                value = func(value, *args)
            done = str(finalize(value)) if finalize is not None else str(value)
            if held is not None:
                _keep(memo, held, done)
        return done
    if type(value) is str:
        done = memo.get(value)
        if done is None:
            done = str(finalize(value)) if finalize is not None else value
            _keep(memo, value, done)
        return done
    return str(finalize(value) if finalize is not None else value)


def _held(slot: int, value: Any) -> Any:
    """The memo's key for `value` through `part`'s filters, or None when it has none: equal
    values of these types are the same value (a bool is not an int; two equal datetimes with
    the same tzinfo object and fold have every field the same)."""
    t = type(value)
    if t is str or t is int or t is bool:
        return (slot, t, value)
    if t is datetime:
        return (slot, t, value, value.tzinfo, value.fold)
    return None


def _pure(filters: tuple[_Filter, ...]) -> bool:
    return all(getattr(f, "__module__", "") in _PURE_MODULES for f, _ in filters)


# the modules whose filters are pure functions of their arguments (config/templates.py's)
_PURE_MODULES = frozenset({"supervisor.config.templates"})


def _keep(memo: dict[Any, str], key: Any, done: str) -> None:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = done


_MISSING = object()


def compile_simple(env: jinja2.Environment, source: str) -> SimpleTemplate | None:
    """`source` as a SimpleTemplate, or None when it uses anything but text and plain outputs
    (then it is rendered by Jinja only)."""
    if env.autoescape is not False or env.finalize is not None and _PassArg.from_obj(env.finalize):
        return None
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError:
        return None
    parts: list[_Part] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if type(child) is nodes.TemplateData:
                parts.append(child.data)
                continue
            part = _output(env, child, len(parts))
            if part is None:
                return None
            parts.append(part)
    return SimpleTemplate(parts, env.finalize)


def _output(env: jinja2.Environment, node: nodes.Node, slot: int) -> _Part | None:
    filters: list[_Filter] = []
    while type(node) is nodes.Filter:
        assert isinstance(node, nodes.Filter)
        if node.kwargs or node.dyn_args or node.dyn_kwargs or node.node is None:
            return None
        if not all(type(a) is nodes.Const for a in node.args):
            return None
        func = env.filters.get(node.name)
        if func is None or _PassArg.from_obj(func) is not None:
            return None
        filters.append((func, tuple(a.value for a in node.args)))  # type: ignore[attr-defined]
        node = node.node
    keys: list[str] = []
    while type(node) is nodes.Getattr:
        assert isinstance(node, nodes.Getattr)
        if node.attr in _DICT_ATTRS:
            return None
        keys.append(node.attr)
        node = node.node
    if type(node) is not nodes.Name or node.name in _SPECIAL:  # type: ignore[attr-defined]
        return None
    assert isinstance(node, nodes.Name)
    chain = tuple(reversed(filters))
    return (node.name, tuple(reversed(keys)), chain, slot if _pure(chain) else -1)


class JointRender:
    """Several SimpleTemplates rendered together (a message's text and its provider
    parameters read the same values): each distinct output (the same name, keys, filters and
    constant arguments) is looked up, filtered and finalized once, and each template's text is
    put together from its literal text and those values. `render` gives every template's text,
    exactly what each SimpleTemplate.render gives, or None when any of them would give None
    (then render each the usual way)."""

    __slots__ = ("_outputs", "_formats", "_finalize", "_memo")

    def __init__(self, templates: list[SimpleTemplate]) -> None:
        finalize = templates[0]._finalize
        if any(t._finalize is not finalize for t in templates):
            raise ValueError("templates with different finalize functions")
        self._finalize = finalize
        self._memo: dict[Any, str] = {}
        outputs: list[tuple[str, tuple[str, ...], tuple[_Filter, ...], bool]] = []
        seen: dict[Any, int] = {}
        formats = []
        for t in templates:
            # literal text as a format string ("{" doubled), each output as "{i}": str.format
            # puts a template together in one call
            pieces = []
            for part in t._parts:
                if isinstance(part, str):
                    pieces.append(part.replace("{", "{{").replace("}", "}}"))
                    continue
                name, keys, filters, slot = part
                # filters are the same function with the same constants (of the same types:
                # 1, 1.0 and True are equal, not the same argument)
                key = (name, keys, tuple((f, tuple((type(a), a) for a in args))
                                         for f, args in filters), slot >= 0)  # fmt: skip
                i = seen.get(key)
                if i is None:
                    i = seen[key] = len(outputs)
                    outputs.append((name, keys, filters, slot >= 0))
                pieces.append(f"{{{i}}}")
            formats.append("".join(pieces))
        self._outputs = tuple(outputs)
        self._formats = tuple(formats)

    def render(self, context: dict[str, Any]) -> list[str] | None:
        """Each template's text, in the order given, or None (see SimpleTemplate.render)."""
        done_values: list[str] = []
        finalize, memo = self._finalize, self._memo
        try:
            for slot, (name, keys, filters, pure) in enumerate(self._outputs):
                done = _text_of(context, name, keys, filters, slot if pure else -1, finalize, memo)
                if done is None:
                    return None
                done_values.append(done)
        except Exception:  # a filter refusing a value: Jinja says so, in its own words
            return None
        return [f.format(*done_values) for f in self._formats]
