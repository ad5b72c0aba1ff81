"""config/sms_templates.yaml: our templates mapped to the registered templates of Aliyun and Tencent Cloud SMS.

Domestic providers send only templates registered (and reviewed) in their console, with a
registered signature (签名); a message is a template code plus parameter values, never free text.
So for each provider this file gives the sign name and, for each of our templates
(config/templates.yaml), the provider's template code and how to fill its parameters: each value
is a Jinja expression rendered with the same context and sandbox as our text (filters hm, date,
short, zh...). Aliyun names its parameters (`${ticket}`): `params` is a mapping. Tencent numbers
them (`{1}`, `{2}`): `params` is a list, in order.

The parameters are rendered when a step fires, next to the text, and stored with the outbox row
(`Notification.params`), so a retry sends exactly what the first attempt sent. A value is cut to
`max_param_chars` (providers cap each variable) and checked for phone numbers like the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from jinja2 import nodes
from pydantic import BaseModel, ConfigDict, Field

from supervisor.config.fastrender import SimpleTemplate, compile_simple
from supervisor.config.templates import (
    PhoneNumberInText,
    RenderError,
    _environment,
    phone_like,
    sample_context,
)
from supervisor.config.yamlconf import ConfigError, ConfigInvalid, Located, load_yaml, validate

PROVIDERS = ("aliyun", "tencent")
FILE_NAME = "sms_templates.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AliyunTemplate(_Model):
    code: Annotated[str, Field(pattern=r"^SMS_\d+$")]  # as shown in the Aliyun console
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], str] = {}


class TencentTemplate(_Model):
    code: Annotated[str, Field(pattern=r"^\d+$")]  # the TemplateId, digits
    params: list[str] = []  # {1}, {2}, ... in order


# Symbols the providers refuse in a variable (Aliyun's and Tencent's template rules: 『』「」〖〗
# m² • ① ★ ※ → 【】 ¥ and their kin). A value loses them before it is sent; a mapping whose fixed
# text holds one is refused by `check`.
DEFAULT_FORBIDDEN = "★☆※【】『』「」〖〗•→←↑↓⇒①②③④⑤⑥⑦⑧⑨⑩¥￥㎡²³√×■□◆◇▲△●○◎♀♂§№♪♫"
DEFAULT_MAX_PARAMS = 6  # our limit on variables per template (reviewers refuse variable soup)


class AliyunMapping(_Model):
    sign_name: Annotated[str, Field(min_length=2, max_length=20)]
    # Aliyun: a variable of a notification template holds at most 35 characters
    max_param_chars: Annotated[int, Field(ge=1, le=500)] = 35
    max_params: Annotated[int, Field(ge=1, le=50)] = DEFAULT_MAX_PARAMS
    forbidden_chars: str = DEFAULT_FORBIDDEN
    templates: dict[str, AliyunTemplate] = {}

    def max_chars(self) -> int | None:
        return self.max_param_chars


class TencentMapping(_Model):
    sign_name: Annotated[str, Field(min_length=2, max_length=20)]
    # Tencent: a 个人 (personal) account allows 12 characters per variable; an enterprise (and
    # government) account has no per-variable limit. `max_param_chars` cuts further.
    account: Literal["enterprise", "personal"] = "enterprise"
    max_param_chars: Annotated[int, Field(ge=1, le=500)] | None = None
    max_params: Annotated[int, Field(ge=1, le=50)] = DEFAULT_MAX_PARAMS
    forbidden_chars: str = DEFAULT_FORBIDDEN
    templates: dict[str, TencentTemplate] = {}

    def max_chars(self) -> int | None:
        cap = PERSONAL_MAX_CHARS if self.account == "personal" else None
        if cap is None or self.max_param_chars is None:
            return cap or self.max_param_chars
        return min(cap, self.max_param_chars)


PERSONAL_MAX_CHARS = 12


@dataclass(frozen=True)
class ParamRules:
    """What a provider accepts in one variable, and how many variables a template may have."""

    max_chars: int | None
    max_params: int
    forbidden: frozenset[str]

    def problems(self, value: str) -> list[str]:
        """What breaks these rules in a value as it would be sent (empty when it is legal)."""
        out = []
        if self.max_chars is not None and len(value) > self.max_chars:
            out.append(f"{len(value)} characters, more than {self.max_chars}")
        bad = sorted({c for c in value if c in self.forbidden})
        if bad:
            out.append(f"symbols the provider refuses: {''.join(bad)}")
        if URL_LIKE.search(value):
            out.append("a URL")
        return out


URL_LIKE = re.compile(
    r"(?:(?:https?|ftp)://|www\.)[A-Za-z0-9\-._~:/?#@!$&'*+,;=%]*"
    r"|\b(?:[A-Za-z0-9-]+\.)+(?:cn|com|net|org|gov|edu|io|cc|me|info|top|xyz|ly)\b"
    r"(?:/[A-Za-z0-9\-._~:/?#@!$&'*+,;=%]*)?",
    re.IGNORECASE,
)
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F) if chr(c - 0xFEE0).isalnum()}
_FULLWIDTH[0x3000] = 0x20  # the ideographic space
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_SPACE_BY_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")


def clean_param(value: str, rules: ParamRules) -> str:
    """A value made legal for the provider: full-width digits and letters as ASCII, no URL, no
    refused symbol, spaces collapsed (none next to Chinese: "幸福路 12号" -> "幸福路12号"), cut
    to the length limit: a list between its items with "等", anything else with "…"."""
    if not (value.isascii() and value.isalnum() and rules.forbidden.isdisjoint(value)):
        # (ASCII letters and digits only, e.g. a ticket id: none of these steps changes them)
        value = value.translate(_FULLWIDTH)
        value = URL_LIKE.sub("", value)
        value = "".join(c for c in value if c not in rules.forbidden)
        value = " ".join(value.split())
        value = _SPACE_BY_CJK.sub("", value).strip(" ，,、;；:：")
    limit = rules.max_chars
    if limit is None or len(value) <= limit:
        return value
    if limit < 2:
        return value[:limit]
    cut = value[: limit - 1]
    # a list cut between its items, and said so ("城管执法中队等"), rather than in one
    at = max(cut.rfind(sep) for sep in "、，,；;")
    if at >= limit // 2:
        return cut[:at] + "等"
    return cut.rstrip(" ，,、;；:：") + "…"


class SmsTemplatesFile(_Model):
    aliyun: AliyunMapping | None = None
    tencent: TencentMapping | None = None


@dataclass(frozen=True)
class _Compiled:
    code: str
    sign_name: str
    rules: ParamRules
    names: tuple[str, ...] | None  # Aliyun's parameter names; None: positional (Tencent)
    values: tuple[jinja2.Template, ...]
    sources: tuple[str, ...] = ()


# Joins a template's distinct parameter sources into one Jinja template, rendered once per message
# (a Jinja context per parameter was most of a fired step's cost). Not whitespace, so neither
# `{{- -}}` nor the collapsing of spaces touches it; a private-use character no text holds.
_SEP = "\ue000"
# provider, code, sign name, parameter names (None: positional), rules, places in the joint parts
_Plan = tuple[str, str, str, tuple[str, ...] | None, ParamRules, tuple[int, ...]]
_FINISHED_MAX = 20_000  # values kept by SmsTemplates._finish_kept (cleared when full)


class SmsTemplates:
    """The mappings, compiled. `params(name, context)` is what a fired step stores."""

    def __init__(self, model: SmsTemplatesFile, located: Located | None = None) -> None:
        self._located = located or Located(None, {}, FILE_NAME)
        self._env = _environment()
        self._items: dict[str, dict[str, _Compiled]] = {}
        self.rules: dict[str, ParamRules] = {}  # per provider
        self.errors: list[ConfigError] = []
        for provider in PROVIDERS:
            mapping = getattr(model, provider)
            if mapping is None:
                continue
            compiled: dict[str, _Compiled] = {}
            self.rules[provider] = ParamRules(
                mapping.max_chars(), mapping.max_params, frozenset(mapping.forbidden_chars)
            )
            for name, tm in mapping.templates.items():
                if isinstance(tm.params, dict):
                    names: tuple[str, ...] | None = tuple(tm.params)
                    sources = list(tm.params.values())
                else:
                    names, sources = None, list(tm.params)
                values = []
                for i, source in enumerate(sources):
                    key = names[i] if names is not None else i
                    try:
                        values.append(self._env.from_string(source))
                    except jinja2.TemplateSyntaxError as exc:
                        self.errors.append(
                            self._error(
                                (provider, "templates", name, "params", key), exc.message or ""
                            )
                        )
                compiled[name] = _Compiled(
                    tm.code, mapping.sign_name, self.rules[provider], names, tuple(values),
                    tuple(sources),
                )  # fmt: skip
            self._items[provider] = compiled
        self._joint: dict[str, tuple[jinja2.Template, tuple[str, ...]]] = {}
        self._simple: dict[str, SimpleTemplate] = {}  # the joint templates Jinja need not render
        # (provider, value) -> the value as sent: _finish is pure, and most values repeat (unit
        # names, categories, times); a value holding a phone number is never kept
        self._finished: dict[tuple[str, str], str] = {}
        by_name: dict[str, dict[str, None]] = {}
        for items in self._items.values():
            for name, item in items.items():
                by_name.setdefault(name, {}).update(dict.fromkeys(item.sources))
        for name, distinct in by_name.items():
            if any(_SEP in src for src in distinct):
                continue
            try:
                self._joint[name] = (self._env.from_string(_SEP.join(distinct)), tuple(distinct))
            except jinja2.TemplateSyntaxError:
                continue  # reported per parameter above; rendered one by one
            simple = compile_simple(self._env, _SEP.join(distinct))
            if simple is not None:
                self._simple[name] = simple
        # per template with a joint render whose every provider's parameters all compiled: per
        # provider, what `params` puts in its entry, the parameters as places in the joint parts
        self._plans: dict[str, list[_Plan]] = {}
        for name, (_, joint_sources) in self._joint.items():
            place = {src: i for i, src in enumerate(joint_sources)}
            mapped = [(provider, items[name]) for provider, items in self._items.items()
                      if name in items]  # fmt: skip
            if all(len(m.values) == len(m.sources) for _, m in mapped):
                self._plans[name] = [
                    (provider, m.code, m.sign_name, m.names, m.rules,
                     tuple(place[src] for src in m.sources))
                    for provider, m in mapped
                ]  # fmt: skip

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._items)

    def has(self, provider: str, template: str) -> bool:
        return template in self._items.get(provider, {})

    def _error(self, path: tuple[Any, ...], message: str) -> ConfigError:
        return self._located.error(path, message)

    def sources(self, template: str) -> list[str]:
        """The Jinja sources of `template`'s parameters, every provider's (Templates.uses)."""
        return [src for items in self._items.values() if template in items
                for src in items[template].sources]  # fmt: skip

    def params(self, template: str, context: dict[str, Any]) -> dict[str, Any] | None:
        """{"template": name, provider: {"code", "sign_name", "params"}} for every provider that
        maps `template`; None when none does. Raises RenderError / PhoneNumberInText."""
        plan = self._plans.get(template)
        parts = self._joint_parts(template, context) if plan is not None else None
        if plan is not None and parts is not None:  # the common case
            return self._planned(template, plan, parts)
        out: dict[str, Any] = {}
        joint = self._render_joint(template, context)
        for provider, items in self._items.items():
            item = items.get(template)
            if item is None:
                continue
            if joint is not None and len(item.values) == len(item.sources):
                values = [
                    self._finish_kept(template, provider, joint[src], item.rules)
                    for src in item.sources
                ]
            else:
                values = [
                    self._render(template, provider, t, item.rules, context) for t in item.values
                ]
            rendered: dict[str, str] | list[str] = (
                dict(zip(item.names, values, strict=True)) if item.names is not None else values
            )
            out[provider] = {"code": item.code, "sign_name": item.sign_name, "params": rendered}
        return {"template": template, **out} if out else None

    def joint_simple(self, template: str) -> SimpleTemplate | None:
        """The joint render of `template`'s parameters without Jinja, when `params` takes its
        common path (`params_of_joint` then gives what `params` gives); None otherwise."""
        return self._simple.get(template) if template in self._plans else None

    def params_of_joint(
        self, template: str, rendered: str, context: dict[str, Any]
    ) -> dict[str, Any] | None:
        """`params(template, context)`, given what `joint_simple(template)` renders for
        `context` (Templates.render_sms renders it with the text, in one pass)."""
        parts = rendered.split(_SEP)
        if len(parts) != len(self._joint[template][1]):
            return self.params(template, context)  # a value holding _SEP: one by one
        return self._planned(template, self._plans[template], parts)

    def _planned(self, template: str, plan: list[_Plan], parts: list[str]) -> dict[str, Any]:
        """The parameters from the joint render's parts, `_finish_kept` inlined."""
        done: dict[str, Any] = {"template": template}
        finished = self._finished
        for provider, code, sign_name, names, rules, places in plan:
            values = []
            for i in places:
                part = parts[i]
                value = finished.get((provider, part))
                if value is None:
                    limit = rules.max_chars
                    if (  # letters and digits only (a ticket id): `_finish` keeps it as it is
                        part.isascii() and part.isalnum()
                        and (limit is None or len(part) <= limit)
                        and rules.forbidden.isdisjoint(part)
                        and not phone_like(part)
                    ):  # fmt: skip
                        value = part  # not kept: such values (ticket ids) seldom repeat
                    else:
                        value = self._finish_kept(template, provider, part, rules)
                values.append(value)
            named = dict(zip(names, values, strict=True)) if names is not None else values
            done[provider] = {"code": code, "sign_name": sign_name, "params": named}
        return done

    def _render_joint(self, template: str, context: dict[str, Any]) -> dict[str, str] | None:
        """Every distinct parameter source of `template` rendered at once, or None (then each is
        rendered alone, which also names the failing one in an error)."""
        parts = self._joint_parts(template, context)
        return None if parts is None else dict(zip(self._joint[template][1], parts, strict=True))

    def _joint_parts(self, template: str, context: dict[str, Any]) -> list[str] | None:
        """`_render_joint`'s values, in the order of the template's distinct sources."""
        joint = self._joint.get(template)
        if joint is None:
            return None
        t, sources = joint
        simple = self._simple.get(template)
        rendered = simple.render(context) if simple is not None else None
        try:
            parts = (t.render(context) if rendered is None else rendered).split(_SEP)
        except (jinja2.TemplateError, TypeError, ValueError):
            return None
        return parts if len(parts) == len(sources) else None

    @classmethod
    def _render(
        cls,
        template: str,
        provider: str,
        t: jinja2.Template,
        rules: ParamRules,
        context: dict[str, Any],
    ) -> str:
        try:
            value = t.render(context)
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            raise RenderError(f"sms_templates {provider}.{template}: {exc}") from exc
        return cls._finish(template, provider, value, rules)

    def _finish_kept(self, template: str, provider: str, value: str, rules: ParamRules) -> str:
        """`_finish`, remembered per (provider, value) (the rules are the provider's)."""
        key = (provider, value)
        done = self._finished.get(key)
        if done is None:
            done = self._finish(template, provider, value, rules)
            if len(self._finished) >= _FINISHED_MAX:
                self._finished.clear()
            self._finished[key] = done
        return done

    @staticmethod
    def _finish(template: str, provider: str, value: str, rules: ParamRules) -> str:
        if phone_like(" ".join(value.split())):
            raise PhoneNumberInText(
                f"sms_templates {provider}.{template}: a phone number; not sent"
            )
        return clean_param(value, rules)

    def check(self, templates: set[str] | frozenset[str]) -> list[ConfigError]:
        """Unknown template names, and every mapping rendered against the sample context."""
        errors = list(self.errors)
        sample = sample_context()
        for provider, items in self._items.items():
            for name in items:
                path = (provider, "templates", name)
                if name not in templates:
                    errors.append(self._error(path, f"no template '{name}' in templates.yaml"))
                    continue
                try:
                    self.params(name, sample)
                except (RenderError, PhoneNumberInText) as exc:
                    errors.append(self._error((*path, "params"), str(exc.__cause__ or exc)))
                errors += self._rule_errors(provider, name, path)
        return errors

    def _rule_errors(self, provider: str, name: str, path: tuple[Any, ...]) -> list[ConfigError]:
        """A mapping that can break the provider's rules whatever the data: more variables than
        allowed, or a fixed text (a literal in a parameter) longer than a variable may be or
        holding a symbol or URL the provider refuses."""
        item = self._items[provider][name]
        rules = item.rules
        errors = []
        if len(item.sources) > rules.max_params:
            errors.append(self._error((*path, "params"), (
                f"{len(item.sources)} variables; {provider} allows at most {rules.max_params} "
                f"(sms_templates.yaml {provider}.max_params)"
            )))  # fmt: skip
        for i, source in enumerate(item.sources):
            key = item.names[i] if item.names is not None else i
            for text in _fixed_texts(self._env, source):
                for problem in rules.problems(text):
                    errors.append(self._error((*path, "params", key), (
                        f"the fixed text '{text}' breaks {provider}'s rules for a variable: {problem}"
                    )))  # fmt: skip
        return errors

    def missing_error(self, provider: str, template: str) -> str:
        return (
            f"template '{template}' has no {provider} mapping in {FILE_NAME} "
            f"(notifiers.{provider} sends only registered templates)"
        )


def _fixed_texts(env: jinja2.Environment, source: str) -> list[str]:
    """The literal texts a parameter can output whole: text outside tags, and string constants
    that are output as they are (`'请督办' if ... else '请立即办理'`)."""
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError:
        return []
    out = [n.data for n in tree.find_all(nodes.TemplateData) if n.data.strip()]
    for output in tree.find_all(nodes.Output):
        for expr in output.nodes:
            for const in _output_consts(expr):
                out.append(const)
    return out


def _output_consts(expr: nodes.Node) -> list[str]:
    """String constants an expression can evaluate to as they are (through if/else, `or`, `~`)."""
    if isinstance(expr, nodes.Const) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, nodes.CondExpr):
        return _output_consts(expr.expr1) + (_output_consts(expr.expr2) if expr.expr2 else [])
    if isinstance(expr, nodes.Or):
        return _output_consts(expr.left) + _output_consts(expr.right)
    if isinstance(expr, nodes.Concat):
        return [c for n in expr.nodes for c in _output_consts(n)]
    return []


def load_sms_templates(path: Path | str, text: str | None = None) -> SmsTemplates:
    """Load config/sms_templates.yaml; ConfigInvalid for YAML, schema or Jinja syntax errors."""
    located = load_yaml(path, text)
    mapping = SmsTemplates(validate(SmsTemplatesFile, located), located)
    if mapping.errors:
        raise ConfigInvalid(mapping.errors)
    return mapping
