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

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from supervisor.config.templates import (
    PHONE_LIKE,
    PhoneNumberInText,
    RenderError,
    _environment,
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


class AliyunMapping(_Model):
    sign_name: Annotated[str, Field(min_length=2, max_length=20)]
    max_param_chars: Annotated[int, Field(ge=1, le=500)] = 35
    templates: dict[str, AliyunTemplate] = {}


class TencentMapping(_Model):
    sign_name: Annotated[str, Field(min_length=2, max_length=20)]
    max_param_chars: Annotated[int, Field(ge=1, le=500)] = 35
    templates: dict[str, TencentTemplate] = {}


class SmsTemplatesFile(_Model):
    aliyun: AliyunMapping | None = None
    tencent: TencentMapping | None = None


@dataclass(frozen=True)
class _Compiled:
    code: str
    sign_name: str
    limit: int
    names: tuple[str, ...] | None  # Aliyun's parameter names; None: positional (Tencent)
    values: tuple[jinja2.Template, ...]
    sources: tuple[str, ...] = ()


# Joins a template's distinct parameter sources into one Jinja template, rendered once per message
# (a Jinja context per parameter was most of a fired step's cost). Not whitespace, so neither
# `{{- -}}` nor the collapsing of spaces touches it; a private-use character no text holds.
_SEP = "\ue000"


class SmsTemplates:
    """The mappings, compiled. `params(name, context)` is what a fired step stores."""

    def __init__(self, model: SmsTemplatesFile, located: Located | None = None) -> None:
        self._located = located or Located(None, {}, FILE_NAME)
        self._env = _environment()
        self._items: dict[str, dict[str, _Compiled]] = {}
        self.errors: list[ConfigError] = []
        for provider in PROVIDERS:
            mapping = getattr(model, provider)
            if mapping is None:
                continue
            compiled: dict[str, _Compiled] = {}
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
                    tm.code, mapping.sign_name, mapping.max_param_chars, names, tuple(values),
                    tuple(sources),
                )  # fmt: skip
            self._items[provider] = compiled
        self._joint: dict[str, tuple[jinja2.Template, tuple[str, ...]]] = {}
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

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._items)

    def has(self, provider: str, template: str) -> bool:
        return template in self._items.get(provider, {})

    def _error(self, path: tuple[Any, ...], message: str) -> ConfigError:
        return self._located.error(path, message)

    def params(self, template: str, context: dict[str, Any]) -> dict[str, Any] | None:
        """{"template": name, provider: {"code", "sign_name", "params"}} for every provider that
        maps `template`; None when none does. Raises RenderError / PhoneNumberInText."""
        out: dict[str, Any] = {}
        joint = self._render_joint(template, context)
        for provider, items in self._items.items():
            item = items.get(template)
            if item is None:
                continue
            if joint is not None and len(item.values) == len(item.sources):
                values = [
                    self._finish(template, provider, joint[src], item.limit) for src in item.sources
                ]
            else:
                values = [
                    self._render(template, provider, t, item.limit, context) for t in item.values
                ]
            rendered: dict[str, str] | list[str] = (
                dict(zip(item.names, values, strict=True)) if item.names is not None else values
            )
            out[provider] = {"code": item.code, "sign_name": item.sign_name, "params": rendered}
        return {"template": template, **out} if out else None

    def _render_joint(self, template: str, context: dict[str, Any]) -> dict[str, str] | None:
        """Every distinct parameter source of `template` rendered at once, or None (then each is
        rendered alone, which also names the failing one in an error)."""
        joint = self._joint.get(template)
        if joint is None:
            return None
        t, sources = joint
        try:
            parts = t.render(context).split(_SEP)
        except (jinja2.TemplateError, TypeError, ValueError):
            return None
        if len(parts) != len(sources):
            return None
        return dict(zip(sources, parts, strict=True))

    @classmethod
    def _render(
        cls, template: str, provider: str, t: jinja2.Template, limit: int, context: dict[str, Any]
    ) -> str:
        try:
            value = t.render(context)
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            raise RenderError(f"sms_templates {provider}.{template}: {exc}") from exc
        return cls._finish(template, provider, value, limit)

    @staticmethod
    def _finish(template: str, provider: str, value: str, limit: int) -> str:
        value = " ".join(value.split())
        if PHONE_LIKE.search(value):
            raise PhoneNumberInText(
                f"sms_templates {provider}.{template}: a phone number; not sent"
            )
        return value if len(value) <= limit else value[: limit - 1] + "…"

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
        return errors

    def missing_error(self, provider: str, template: str) -> str:
        return (
            f"template '{template}' has no {provider} mapping in {FILE_NAME} "
            f"(notifiers.{provider} sends only registered templates)"
        )


def load_sms_templates(path: Path | str, text: str | None = None) -> SmsTemplates:
    """Load config/sms_templates.yaml; ConfigInvalid for YAML, schema or Jinja syntax errors."""
    located = load_yaml(path, text)
    mapping = SmsTemplates(validate(SmsTemplatesFile, located), located)
    if mapping.errors:
        raise ConfigInvalid(mapping.errors)
    return mapping
