"""Message templates (config/templates.yaml): short Chinese texts rendered for SMS and voice.

Templates are office-edited text, so they run in Jinja's immutable sandbox (no attribute tricks,
no mutation of the context), with StrictUndefined (a misspelt variable is an error, not a blank)
and no autoescaping (the output is plain text, not HTML).

The context a caller passes is documented by `sample_context()`; `check` renders every template
against it and reports unknown variables, syntax errors, texts longer than their SMS budget and
anything that looks like a mainland mobile number.

A caller's phone number must never reach a message (PIPL). Two guards: every `{{ value }}` is
passed through `finalize`, which masks phone-like numbers in the data (a summary that quotes a
number still goes out, masked); and the whole rendered text is checked again, so a number written
into the template itself, or assembled from pieces, makes `render` raise instead of sending.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field

from supervisor.config.fastrender import JointRender, SimpleTemplate, compile_simple
from supervisor.config.yamlconf import ConfigError, ConfigInvalid, Located, load_yaml, validate
from supervisor.core import spoken
from supervisor.core.privacy import mask
from supervisor.errors import HotlineError, InputError
from supervisor.vocabulary import ZONE

# A mainland mobile number, also written with +86, spaces or dashes; not inside a longer digit run
# (ticket numbers are long digit strings).
PHONE_LIKE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)")
# what every PHONE_LIKE match holds; found some ten times faster (it starts with a literal, which
# the regex engine looks for first), so a text without it is known to hold no number at once
_PHONE_CORE = re.compile(r"1[3-9]\d(?:[\s-]?\d){8}")


def phone_like(text: str) -> bool:
    """Does `text` hold what looks like a mobile number (PHONE_LIKE.search)?"""
    return _PHONE_CORE.search(text) is not None and PHONE_LIKE.search(text) is not None


class PhoneNumberInText(InputError):
    """A rendered message contains what looks like a mobile number."""


class RenderError(HotlineError):
    """A template could not be rendered: unknown name, undefined variable, sandbox violation."""


# --- SMS segments ----------------------------------------------------------------------------

# GSM 03.38 default alphabet and its extension table (extension characters take two septets).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


def segments(text: str) -> int:
    """SMS parts needed: GSM-7 160 single / 153 concatenated; else UCS-2 70 / 67 (UTF-16 units)."""
    if not text:
        return 0
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units, single, part = len(text) + sum(c in _GSM_EXTENDED for c in text), 160, 153
    else:
        units, single, part = len(text.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / part)


# --- filters ---------------------------------------------------------------------------------


def _local(value: datetime) -> datetime:
    if not isinstance(value, datetime):  # e.g. None: a rule fired without the time it names
        raise ValueError(f"expected a date and time, got {value!r}")
    # naive datetimes are taken as already in Shanghai time
    return value.astimezone(ZONE) if value.tzinfo else value


def hm(value: datetime) -> str:
    """ "11月25日14:30" (Chinese puts no space between a date and a time)."""
    v = _local(value)
    return f"{v.month}月{v.day}日{v:%H:%M}"


def day(value: date) -> str:
    """ "11月25日" (a date, or a datetime in Shanghai time)."""
    v = value if isinstance(value, date) and not isinstance(value, datetime) else _local(value)
    return f"{v.month}月{v.day}日"


def dt(value: datetime) -> str:
    """ "2026-11-25 14:30"."""
    return f"{_local(value):%Y-%m-%d %H:%M}"


def short(value: Any, length: int = 20) -> str:
    """Cut free text (summaries, addresses) to `length` characters: SMS space is scarce."""
    text = str(value)
    return text if len(text) <= length else text[: length - 1] + "…"


UNKNOWN_CATEGORY = "未分类"  # what ticket.category says when the platform sent none


def paren(value: Any) -> str:
    """A category in brackets ("（市容环境）"), or nothing when it is unknown: a text reads better
    without a category than with "（未分类）"."""
    text = str(value or "").strip()
    return "" if not text or text == UNKNOWN_CATEGORY else f"（{text}）"


def known(value: Any) -> str:
    """A category as it is, or nothing when it is unknown (a call says "工单", not "未分类工单")."""
    text = str(value or "").strip()
    return "" if text == UNKNOWN_CATEGORY else text


_LABELS = {
    "complaint": "投诉", "help": "求助", "consultation": "咨询", "suggestion": "建议", "praise": "表扬",
    "new": "待派单", "dispatched": "待签收", "signed": "办理中", "returned": "已退单", "replied": "已回复",
    "visited": "已回访", "reopened": "重办中", "closed": "已结案",
    "satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意",
}  # fmt: skip


def zh(value: Any) -> str:
    """Chinese words for the code names of kinds, statuses and satisfaction."""
    return _LABELS.get(str(value), str(value))


def say_id(value: Any) -> str:
    """A number read digit by digit as a person reads it, 1 as 幺: "A2016" -> "A二零幺六"."""
    return spoken.digits(value)


def say_tail(value: Any) -> str:
    """A ticket as it is named on the phone: its last four characters read one by one."""
    return spoken.tail(value)


def say_hm(value: datetime) -> str:
    """ "11月25日14点30分" ("14点整" on the hour): a time as it is said."""
    v = _local(value)
    minutes = "整" if v.minute == 0 else f"{v.minute}分"
    return f"{v.month}月{v.day}日{v.hour}点{minutes}"


speakable = spoken.speakable  # the whole text made fit to be read aloud (core/spoken.py)


def _mask_numbers(value: Any) -> Any:
    if isinstance(value, str):
        if type(value) is str and _PHONE_CORE.search(value) is None:
            return value  # no number to mask (see phone_like); sub would give an equal str
        return PHONE_LIKE.sub(lambda m: _mask(m.group()), value)
    return value


def _mask(number: str) -> str:
    return mask(number)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_mask_numbers,
    )
    env.filters.update(
        hm=hm,
        date=day,
        dt=dt,
        short=short,
        zh=zh,
        paren=paren,
        known=known,
        say_id=say_id,
        say_tail=say_tail,
        say_hm=say_hm,
    )
    return env


_NO_JOINT: Any = object()  # Templates._joints: not worked out yet


# --- the file --------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemplateModel(_Model):
    text: Annotated[str, Field(min_length=1)]
    # what a phone call reads aloud; without it a call reads `text` made speakable; either way
    # core/spoken.py makes it fit for the ear (greeting first, 幺二三四五, the ticket's tail)
    voice: Annotated[str, Field(min_length=1)] | None = None
    # what is late, in a few words, for a call that counts several items ("签收超时")
    call_item: Annotated[str, Field(min_length=1, max_length=12)] | None = None
    max_segments: Annotated[int, Field(ge=1, le=10)] | None = None
    description: str | None = None


class DefaultsModel(_Model):
    max_segments: Annotated[int, Field(ge=1, le=10)] = 2


class TemplatesFile(_Model):
    defaults: DefaultsModel = DefaultsModel()
    templates: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], TemplateModel]


@dataclass(frozen=True)
class _Compiled:
    name: str
    source: str
    limit: int
    template: jinja2.Template | None  # None when the text has a syntax error
    voice: jinja2.Template | None = None
    voice_source: str | None = None
    call_item: str | None = None


class Templates:
    """Compiled templates. Construct with `load_templates`, or directly from a TemplatesFile."""

    def __init__(self, model: TemplatesFile, located: Located | None = None) -> None:
        self._located = located or Located(None, {}, "<templates>")
        self._env = _environment()
        self._items: dict[str, _Compiled] = {}
        # the templates that are text and plain outputs only, rendered without Jinja (fastrender)
        self._simple: dict[jinja2.Template, SimpleTemplate] = {}
        self.syntax_errors: list[ConfigError] = []
        # (template, name) -> may the template (text, call script, provider parameters) read the
        # context's `name`? See `uses`; filled on first ask, for the `sms` attached then
        self._uses: dict[tuple[str, str], bool] = {}
        self._uses_sms: Any = None
        self._ticket_keys: dict[str, frozenset[str] | None] = {}  # see `ticket_keys`
        # name -> the text's and provider parameters' joint render (see `render_sms`), made on
        # first use for the `sms` attached then
        self._joints: dict[str, JointRender | None] = {}
        self._joints_sms: Any = None
        for name, tm in model.templates.items():
            limit = tm.max_segments or model.defaults.max_segments
            try:
                compiled: jinja2.Template | None = self._env.from_string(tm.text)
            except jinja2.TemplateSyntaxError as exc:
                compiled = None
                where = f" (line {exc.lineno} of the text)" if "\n" in tm.text.strip() else ""
                self.syntax_errors.append(
                    self._error(name, f"template syntax error: {exc.message}{where}")
                )
            voice: jinja2.Template | None = None
            if tm.voice is not None:
                try:
                    voice = self._env.from_string(tm.voice)
                except jinja2.TemplateSyntaxError as exc:
                    self.syntax_errors.append(
                        self._located.error(
                            ("templates", name, "voice"), f"template syntax error: {exc.message}"
                        )
                    )
            self._items[name] = _Compiled(
                name, tm.text, limit, compiled, voice, tm.voice, tm.call_item
            )
            for t, source in ((compiled, tm.text), (voice, tm.voice)):
                simple = None if t is None or source is None else compile_simple(self._env, source)
                if t is not None and simple is not None:
                    self._simple[t] = simple

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    # config/sms_templates.yaml (sms_templates.SmsTemplates), attached by load_all when present:
    # the parameters of the registered templates of template-only SMS providers.
    sms: Any = None

    def sms_params(self, name: str, context: dict[str, Any]) -> dict[str, Any] | None:
        """The provider parameters stored with a message (see sms_templates.py), or None."""
        return None if self.sms is None else self.sms.params(name, context)

    def render_sms(self, name: str, context: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """`(render(name, context, "sms"), sms_params(name, context))`, the same values and
        errors, in one pass when both are plain outputs (fastrender.JointRender: the text and
        the parameters read the same values, each looked up and filtered once)."""
        if self._joints_sms is not self.sms:
            self._joints.clear()
            self._joints_sms = self.sms
        joint = self._joints.get(name, _NO_JOINT)
        if joint is _NO_JOINT:
            joint = self._joints[name] = self._joint_for(name)
        rendered = joint.render(context) if joint is not None else None
        if rendered is None:
            return self.render(name, context, channel="sms"), self.sms_params(name, context)
        text = rendered[0].strip()  # as `render` finishes a text
        if phone_like(text):
            raise PhoneNumberInText(
                f"template '{name}' produced text containing a phone number; not sent"
            )
        return text, self.sms.params_of_joint(name, rendered[1], context)

    def _joint_for(self, name: str) -> JointRender | None:
        """The text's and the provider parameters' joint render, when both are plain outputs
        (`render` and `sms_params` take their fast paths) and the finalize is the same."""
        item = self._items.get(name)
        text = self._simple.get(item.template) if item is not None and item.template else None
        joint_simple = getattr(self.sms, "joint_simple", None)
        params = joint_simple(name) if text is not None and joint_simple is not None else None
        if text is None or params is None:
            return None
        try:
            return JointRender([text, params])
        except ValueError:
            return None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:  # names, so a Templates can be passed to load_policy
        return iter(self._items)

    def uses(self, name: str, variable: str) -> bool:
        """May rendering template `name` read the context's `variable`, in its text, its call
        script or any provider's parameters (sms_templates)? False only when none of them names
        it (Jinja's own list of the names a template reads from its context); True when unsure
        (an unknown template, a syntax error). Lets a caller skip a costly context value
        nothing will read (firing.py: the overdue words)."""
        self._fresh_uses()
        key = (name, variable)
        found = self._uses.get(key)
        if found is None:
            found = self._uses[key] = self._reads(name, variable)
        return found

    def _fresh_uses(self) -> None:
        """What `uses` and `ticket_keys` remember holds for the SMS templates it was worked out
        with: another set (a reload) forgets it."""
        if self._uses_sms is not self.sms:
            self._uses.clear()
            self._ticket_keys.clear()
            self._uses_sms = self.sms

    def _sources(self, name: str) -> list[str] | None:
        """The Jinja sources of template `name`: its text, its call script and every provider's
        parameters; None when they cannot be known (an unknown template, SMS templates that
        are not an SmsTemplates): then it may read anything."""
        item = self._items.get(name)
        if item is None:
            return None
        sources = [item.source, item.voice_source]
        if self.sms is not None:
            sms_sources = getattr(self.sms, "sources", None)
            if sms_sources is None:
                return None
            sources += sms_sources(name)
        return [x for x in sources if x is not None]

    def _reads(self, name: str, variable: str) -> bool:
        sources = self._sources(name)
        if sources is None:
            return True
        for source in sources:
            try:
                if variable in meta.find_undeclared_variables(self._env.parse(source)):
                    return True
            except jinja2.TemplateSyntaxError:
                return True
        return False

    def ticket_keys(self, name: str) -> frozenset[str] | None:
        """The keys of the context's `ticket` that template `name` (text, call script, every
        provider's parameters) reads, when it reads `ticket` only as `ticket.key` or
        `ticket["key"]`; None when it may read more (the whole dict, a key computed at render
        time, a `ticket` of its own, a syntax error, an unknown template). Lets firing.py build
        only those keys of the ticket's context."""
        self._fresh_uses()
        if name not in self._ticket_keys:
            self._ticket_keys[name] = self._keys_read(name, "ticket")
        return self._ticket_keys[name]

    def _keys_read(self, name: str, variable: str) -> frozenset[str] | None:
        sources = self._sources(name)
        if sources is None:
            return None
        keys: set[str] = set()
        for source in sources:
            try:
                tree = self._env.parse(source)
            except jinja2.TemplateSyntaxError:
                return None
            names = [n for n in tree.find_all(jinja2.nodes.Name) if n.name == variable]
            if any(n.ctx != "load" for n in names):
                return None  # assigned in the template: not only the context's
            read = 0
            for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
                inner = getattr(node, "node", None)
                if not (isinstance(inner, jinja2.nodes.Name) and inner.name == variable):
                    continue
                if isinstance(node, jinja2.nodes.Getattr):
                    keys.add(node.attr)
                    read += 1
                    continue
                arg = getattr(node, "arg", None)
                if not (isinstance(arg, jinja2.nodes.Const) and isinstance(arg.value, str)):
                    return None
                keys.add(arg.value)
                read += 1
            if read != len(names):
                return None  # `ticket` itself is used: all of it
        return frozenset(keys)

    def has_voice(self, name: str) -> bool:
        """Does the template have a call script of its own (`voice`)?"""
        item = self._items.get(name)
        return item is not None and item.voice is not None

    def call_item(self, name: str) -> str:
        """What is late, for a call that counts several items (a template's `call_item`)."""
        item = self._items.get(name)
        return item.call_item if item is not None and item.call_item else "需要处理"

    def max_segments(self, name: str) -> int:
        return self._items[name].limit

    def _error(self, name: str, message: str) -> ConfigError:
        return self._located.error(("templates", name, "text"), message)

    def render(self, name: str, context: dict[str, Any], channel: str = "sms") -> str:
        """The message text (for `channel`: a call reads the template's `voice` script, or the
        text made speakable); RenderError if it cannot be made, PhoneNumberInText if unsafe."""
        item = self._items.get(name)
        if item is None:
            raise RenderError(f"unknown template '{name}'")
        if item.template is None:
            raise RenderError(f"template '{name}' has a syntax error")
        template = item.voice if channel == "voice" and item.voice is not None else item.template
        try:
            simple = self._simple.get(template)
            rendered = simple.render(context) if simple is not None else None
            text = (template.render(context) if rendered is None else rendered).strip()
            if channel == "voice":
                ticket = context.get("ticket")
                tid = str(ticket.get("id") or "") if isinstance(ticket, dict) else ""
                text = speakable(text, tid or None)
        except (jinja2.UndefinedError, jinja2.TemplateError, TypeError, ValueError) as exc:
            # SecurityError is an UndefinedError in the sandbox; TypeError/ValueError from filters
            raise RenderError(f"template '{name}': {exc}") from exc
        if phone_like(text):
            raise PhoneNumberInText(
                f"template '{name}' produced text containing a phone number; not sent"
            )
        return text

    def check(self, sample: dict[str, Any] | None = None) -> list[ConfigError]:
        """Render every template against a representative context and report what is wrong."""
        context = sample_context() if sample is None else sample
        errors = list(self.syntax_errors)
        for name, item in self._items.items():
            if item.template is None:
                continue
            unknown = sorted(
                meta.find_undeclared_variables(self._env.parse(item.source)) - set(context)
            )
            if unknown:  # found statically, so also in branches the sample does not take
                errors.append(
                    self._error(
                        name,
                        f"unknown variable {', '.join(unknown)} (the context has: {', '.join(sorted(context))})",
                    )
                )
                continue
            try:
                text = self.render(name, context)
            except PhoneNumberInText:
                errors.append(self._error(name, "template could expose a phone number"))
                continue
            except RenderError as exc:
                errors.append(
                    self._error(name, f"cannot render the sample: {exc.__cause__ or exc}")
                )
                continue
            if item.voice_source is not None:
                try:  # what is read aloud goes through speakable(): no brackets survive
                    self.render(name, context, channel="voice")
                except (RenderError, PhoneNumberInText) as exc:
                    errors.append(
                        self._located.error(("templates", name, "voice"), f"cannot render: {exc}")
                    )
            n = segments(text)
            if n > item.limit:
                errors.append(
                    self._error(
                        name,
                        f"{len(text)} characters make {n} SMS segments for the sample context; the limit is {item.limit}",
                    )
                )
        return errors


def load_templates(path: Path | str, text: str | None = None) -> Templates:
    """Load config/templates.yaml; ConfigInvalid for YAML, schema or template syntax errors."""
    located = load_yaml(path, text)
    templates = Templates(validate(TemplatesFile, located), located)
    if templates.syntax_errors:
        raise ConfigInvalid(templates.syntax_errors)
    return templates


def sample_context() -> dict[str, Any]:
    """A representative context: the contract between the callers and the templates.

    Every message: `ticket` (the ticket's facts, see notify.ticket_context), `deadline` (the
    rule's anchor time), `overdue_by` (time past it, in words; "" before), `rule`,
    `rule_description`, `step`, `recipient_name`, `target_unit` and `target_unit_name` (the unit
    the message is about: the co-handling unit for co-unit reminders).
    Reports add `tickets` (ticket dicts plus `deadline`, `overdue_by` and
    `text`, the one-line reminder for that ticket), `count` and, for the digest, `counts`
    (awaiting_sign, due_today, overdue). A template that may also be used without them must
    test `is defined`, as repeat_caller does. Times are aware datetimes.
    """
    deadline = datetime(2026, 11, 25, 14, 30, tzinfo=ZONE)

    def ticket(tid: str, **over: Any) -> dict[str, Any]:
        base = {
            "id": tid, "category": "市容环境", "kind": "complaint", "urgent": False,
            "unit": "城管执法中队", "unit_name": "城管执法中队", "status": "dispatched",
            "summary": "幸福小区东门夜间占道经营烧烤，油烟和噪音扰民，多次反映未解决",
            "address": "幸福路88号幸福小区东门", "grid": "G01",
            "dispatch_count": 3, "returned_units": ["市场监管所", "物业管理办公室"],
            "commitment_due": datetime(2026, 12, 4, 17, 30, tzinfo=ZONE),
            "satisfaction": "dissatisfied", "dissatisfied_count": 2,
            "sign_by": datetime(2026, 11, 25, 11, 0, tzinfo=ZONE), "reply_by": deadline,
            "reopened_count": 2, "extension_until": datetime(2026, 11, 30, 17, 30, tzinfo=ZONE),
            "extension_reason": "需协调供电部门停电施工",
            "history": ["11月3日派城管执法中队", "11月9日回复", "11月10日回访不满意",
                        "11月11日第1次重办", "11月16日回复", "11月17日回访不满意"],
            "review_findings": ["联系诉求人：请写明何时、以何种方式联系了诉求人",
                                "推诿用语：不得以不归我单位管推脱，请说明原因并提出建议"],
            "review_names": ["联系诉求人", "推诿用语"], "review_note": "请补充现场核实情况",
            "review_kind": "答复",
        }  # fmt: skip
        return base | over

    tickets = [
        ticket("2026112500123") | {"deadline": deadline, "overdue_by": "", "text": "请于11月25日14:30前签收"},
        ticket("2026112400087", status="signed") | {"deadline": deadline, "overdue_by": "", "text": "今日14:30到期"},
        ticket("2026111800342", status="reopened", category="物业管理", unit="物业管理办公室", unit_name="物业管理办公室")
        | {"deadline": datetime(2026, 11, 24, 17, 30, tzinfo=ZONE), "overdue_by": "3小时", "text": "已超期3小时"},
    ]  # fmt: skip
    return {
        "ticket": ticket("2026112500123"),
        "deadline": deadline,
        "overdue_by": "1小时",
        "rule": "sign-off",
        "rule_description": "签收时限：到期前提醒联络员，到期催办负责人，逾期报热线专员",
        "step": 0,
        "recipient_name": "王强",
        "role": "head",
        "target_unit": "市场监管所",
        "target_unit_name": "市场监管所",
        "tickets": tickets,
        "count": len(tickets),
        "callers": 5,  # group complaints: distinct callers about the matter
        "counts": {"awaiting_sign": 1, "sign_overdue": 0, "due_today": 1, "overdue": 1},
        # the monthly statistics report (supervisor/stats/scheduled.py): rates as text
        "stats": {
            "month": "2026年11月",
            "received": 1234,
            "closed": 1180,
            "sign_off": "98.1%（1210/1234）",
            "on_time": "95.3%（1130/1186）",
            "satisfaction": "90.2%（830/920）",
            "resolution": "85.0%（782/920）",
        },  # fmt: skip
    }
