"""Rendering without Jinja (config/fastrender.py) gives exactly Jinja's text, or hands back to
Jinja: compared on every shipped template, voice script and SMS provider mapping, over generated
contexts (odd values, phone-like numbers, missing keys, other types)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.config.fastrender import compile_simple
from supervisor.config.sms_templates import _SEP, load_sms_templates
from supervisor.config.templates import _environment, load_templates, sample_context
from supervisor.vocabulary import ZONE

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = load_templates(ROOT / "config" / "templates.yaml")
SMS = load_sms_templates(ROOT / "config" / "sms_templates.yaml")
TEMPLATES.sms = SMS


def _jinja_only(templates: Any) -> Any:
    """The same compiled templates with the fast path off (the reference)."""
    ref = copy.copy(templates)
    ref._simple = {}
    if getattr(templates, "sms", None) is not None:
        sms = copy.copy(templates.sms)
        sms._simple = {}
        sms._finished = {}
        sms._plans = {}  # each provider's parameters through the general path
        ref.sms = sms
    return ref


REFERENCE = _jinja_only(TEMPLATES)

# the sources the fast path takes: texts, voice scripts, the joint provider parameters
SOURCES: list[tuple[str, str]] = []
for _name, _item in TEMPLATES._items.items():
    SOURCES.append((f"{_name}.text", _item.source))
    if _item.voice_source:
        SOURCES.append((f"{_name}.voice", _item.voice_source))
for _name, (_t, _distinct) in SMS._joint.items():
    SOURCES.append((f"sms.{_name}", _SEP.join(_distinct)))

ENV = _environment()
FAST = {label: compile_simple(ENV, src) for label, src in SOURCES}
JINJA = {label: ENV.from_string(src) for label, src in SOURCES}

_ALPHABET = (
    "0123456789１２３ 　-+()（）、，,;；:：.·/…★【】『』市容环境城管执法中队幸福路号室"
    "abcXYZhttpwww\t\n"
)
texts = st.text(alphabet=_ALPHABET, max_size=40) | st.sampled_from(
    ["", "未分类", "13812345678", "+86 138-1234-5678", "电话13912345678", "www.x.cn", "  "]
)
zones = st.sampled_from([ZONE, UTC, timezone(timedelta(hours=-5)), None])
times = st.builds(
    lambda base, minutes, tz: (base + timedelta(minutes=minutes)).replace(tzinfo=tz),
    st.just(datetime(2026, 11, 25, 9, 0)),
    st.integers(-100_000, 100_000),
    zones,
)
values = st.one_of(
    texts, times, st.none(), st.integers(-5, 20), st.booleans(), st.lists(texts, max_size=3)
)


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    ctx = sample_context()
    ticket = dict(ctx["ticket"])
    for key in list(ticket):
        if draw(st.integers(0, 4)) == 0:
            ticket[key] = draw(values)
        elif draw(st.integers(0, 30)) == 0:
            del ticket[key]  # a missing key: Jinja's error, not ours
    for key in ("unit_name", "id", "category", "summary", "address"):
        if key in ticket and draw(st.booleans()):
            ticket[key] = draw(texts)
    ctx["ticket"] = ticket
    ctx["deadline"] = draw(times | st.none()) if draw(st.integers(0, 5)) else draw(values)
    for key in ("overdue_by", "recipient_name", "target_unit_name", "rule_description"):
        if draw(st.integers(0, 3)) == 0:
            ctx[key] = draw(values)
    if draw(st.integers(0, 20)) == 0:
        del ctx["ticket"]
    if draw(st.integers(0, 20)) == 0:
        ctx["ticket"] = draw(values)  # not a dict: Jinja's attribute lookup, not ours
    return ctx


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # the same error, in the same words
        return type(exc).__name__, str(exc)


def test_the_shipped_simple_templates_take_the_fast_path() -> None:
    simple = [label for label, fast in FAST.items() if fast is not None]
    # the sign-off and reply ladders' texts and mappings are plain outputs (a regression here
    # costs time, not correctness)
    for label in ("sign_reminder.text", "sign_overdue.voice", "sms.sign_reminder",
                  "sms.sign_escalation", "reply_reminder.text", "sms.reply_reminder"):  # fmt: skip
        assert label in simple, label
    assert "dispute.text" not in simple  # {% if %}: Jinja's
    ctx = sample_context()
    for label in simple:
        fast = FAST[label]
        assert fast is not None
        assert fast.render(ctx) == JINJA[label].render(ctx), label


@pytest.mark.parametrize("label", [label for label, _ in SOURCES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=contexts())
def test_fast_render_is_jinjas_text_or_hands_back(label: str, ctx: dict[str, Any]) -> None:
    fast = FAST[label]
    if fast is None:
        return
    got = fast.render(ctx)
    want = _outcome(lambda: JINJA[label].render(ctx))
    if got is None:
        return  # Jinja renders it (and raises its own error)
    assert ("ok", got) == want
    assert fast.render(ctx) == got  # the memo gives the same again


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=contexts(), channel=st.sampled_from(["sms", "voice", "wechat"]))
def test_templates_render_and_sms_params_are_unchanged(ctx: dict[str, Any], channel: str) -> None:
    for name in TEMPLATES.names:
        fast, ref = TEMPLATES, REFERENCE
        assert _outcome(fast.render, name, ctx, channel=channel) == _outcome(
            ref.render, name, ctx, channel=channel
        ), name
        assert _outcome(fast.sms_params, name, ctx) == _outcome(ref.sms_params, name, ctx), name


@pytest.mark.parametrize(
    "source",
    [
        "{{ ticket.items }}",  # a dict method in Jinja, never the key
        "{{ self }}",
        "{% if x %}a{% endif %}",
        "{{ x ~ y }}",
        "{{ x | join(', ') }}",
        "{{ x | short(length=3) }}",
        "{{ x[0] }}",
        "{{ 'literal' }}",
        "{{ x.y | default('z') }}x",  # default is plain: taken (and compared below)
    ],
)
def test_what_the_fast_path_refuses(source: str) -> None:
    fast = compile_simple(ENV, source)
    if source.startswith("{{ x.y | default"):
        assert fast is not None
        for ctx in ({"x": {"y": "1"}}, {"x": {}}, {"x": 3}):
            got = fast.render(ctx)
            assert got is None or got == ENV.from_string(source).render(ctx)
        assert fast.render({"x": {"y": "13812345678"}}) == "138****5678x"
    else:
        assert fast is None


def test_masking_and_lookups_are_jinjas() -> None:
    source = "A{{ t.a }}B{{ t.b | short(4) }}C{{ n }}\n"
    fast = compile_simple(ENV, source)
    assert fast is not None
    cases: list[dict[str, Any]] = [
        {"t": {"a": "电话13812345678", "b": "幸福路88号"}, "n": 3},
        {"t": {"a": None, "b": 12345}, "n": [1, "x"]},
        {"t": {"a": True, "b": ""}, "n": datetime(2026, 1, 1, tzinfo=UTC)},
    ]
    for ctx in cases:
        assert fast.render(ctx) == ENV.from_string(source).render(ctx)
    # a missing name or key, a value that is not a dict: Jinja's turn (StrictUndefined raises)
    for ctx in ({"t": {"a": "x"}, "n": 1}, {"n": 1}, {"t": "ab", "n": 1}):
        assert fast.render(ctx) is None
        with pytest.raises(jinja2.UndefinedError):
            ENV.from_string(source).render(ctx)


def _clean_param_reference(value: str, rules: Any) -> str:
    """clean_param as it was, every step taken (the ASCII-alphanumeric shortcut's reference)."""
    from supervisor.config import sms_templates as m

    value = value.translate(m._FULLWIDTH)
    value = m.URL_LIKE.sub("", value)
    value = "".join(c for c in value if c not in rules.forbidden)
    value = " ".join(value.split())
    value = m._SPACE_BY_CJK.sub("", value).strip(" ，,、;；:：")
    limit = rules.max_chars
    if limit is None or len(value) <= limit:
        return value
    if limit < 2:
        return value[:limit]
    cut = value[: limit - 1]
    at = max(cut.rfind(sep) for sep in "、，,；;")
    if at >= limit // 2:
        return cut[:at] + "等"
    return cut.rstrip(" ，,、;；:：") + "…"


@settings(max_examples=400, deadline=None)
@given(
    value=st.text(alphabet="abcXYZ019wwcn.:/ 　１、★", max_size=30)
    | st.from_regex(r"\A[A-Za-z0-9]{0,30}\Z"),
    limit=st.none() | st.integers(1, 40),
    forbidden=st.sets(st.sampled_from("★【】a0Z"), max_size=3),
)
def test_clean_param_shortcut_is_the_full_cleaning(value: str, limit: Any, forbidden: Any) -> None:
    from supervisor.config.sms_templates import ParamRules, clean_param

    rules = ParamRules(limit, 6, frozenset(forbidden))
    assert clean_param(value, rules) == _clean_param_reference(value, rules)


def test_the_filtered_value_memo_tells_equal_values_apart() -> None:
    """1 and True, and one instant in two zones, are equal keys to a dict: not to the memo."""
    source = "{{ x | short(3) }}|{{ d | hm }}|{{ d | date }}"
    fast = compile_simple(ENV, source)
    assert fast is not None
    instant = datetime(2026, 11, 25, 17, 30, tzinfo=UTC)
    cases: list[dict[str, Any]] = [
        {"x": True, "d": instant},
        {"x": 1, "d": instant.astimezone(ZONE)},
        {"x": 1.0, "d": instant.replace(tzinfo=None)},
        {"x": "1", "d": instant.astimezone(timezone(timedelta(hours=-12)))},
        {"x": True, "d": instant},
    ]
    for ctx in cases * 2:
        assert fast.render(ctx) == ENV.from_string(source).render(ctx), ctx


def test_the_memo_stays_bounded_and_right_when_it_clears() -> None:
    from supervisor.config import fastrender

    source = "{{ t.id }}{{ t.unit_name }}{{ d | hm }}"
    fast = compile_simple(ENV, source)
    assert fast is not None
    jinja = ENV.from_string(source)
    base = datetime(2026, 11, 25, 9, 0, tzinfo=ZONE)
    for i in range(3 * fastrender._MEMO_MAX):
        ctx = {"t": {"id": f"T{i:06d}", "unit_name": f"单位{i % 7}"}, "d": base + timedelta(minutes=i % 50)}
        got = fast.render(ctx)
        if i % 97 == 0 or i % fastrender._MEMO_MAX in (0, 1):
            assert got == jinja.render(ctx)
        assert len(fast._memo) <= fastrender._MEMO_MAX


# --- the text and the provider parameters in one pass (Templates.render_sms) -------------------


def _text_and_params(templates: Any, name: str, ctx: dict[str, Any]) -> tuple[str, Any]:
    """What firing did before render_sms: the SMS text, then its provider parameters."""
    return templates.render(name, ctx, channel="sms"), templates.sms_params(name, ctx)


def test_the_shipped_sign_and_reply_templates_take_the_one_pass() -> None:
    ctx = sample_context()
    for name in TEMPLATES.names:
        assert TEMPLATES.render_sms(name, ctx) == _text_and_params(REFERENCE, name, ctx), name
    for name in ("sign_reminder", "sign_escalation", "reply_reminder", "reply_urgent"):
        assert TEMPLATES._joints[name] is not None, name
    assert TEMPLATES._joints["dispute"] is None  # {% if %}: two renders, as before


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=contexts())
def test_one_pass_is_the_text_and_the_parameters(ctx: dict[str, Any]) -> None:
    """The same text, parameters and errors (the text's first) as rendering each alone, on
    generated contexts: odd values, phone-like numbers, missing keys, other types."""
    for name in TEMPLATES.names:
        want = _outcome(_text_and_params, REFERENCE, name, ctx)
        assert _outcome(TEMPLATES.render_sms, name, ctx) == want, name
        assert _outcome(_text_and_params, TEMPLATES, name, ctx) == want, name


@settings(max_examples=300, deadline=None)
@given(
    tid=st.from_regex(r"\A[A-Za-z0-9]{1,40}\Z")
    | st.sampled_from(["13812345678", "8613812345678", "A13812345678", "1381234567", "\ue000"])
    | texts,
    limit=st.none() | st.integers(1, 40),
    forbidden=st.sets(st.sampled_from("★【】a0Z1"), max_size=3),
)
def test_planned_parameters_are_the_general_ones(tid: str, limit: Any, forbidden: Any) -> None:
    """The planned parameters (letters-and-digits values taken as they are) against each value
    rendered and cleaned alone, under any provider limits and refused symbols."""
    from supervisor.config.sms_templates import SmsTemplates, SmsTemplatesFile

    model = SmsTemplatesFile.model_validate({
        "aliyun": {"sign_name": "热线", "max_param_chars": limit or 35,
                   "forbidden_chars": "".join(forbidden),
                   "templates": {"t": {"code": "SMS_1", "params": {
                       "a": "{{ ticket.id }}", "b": "x{{ ticket.id }}", "c": "{{ ticket.unit_name }}"}}}},
        "tencent": {"sign_name": "热线", "max_param_chars": limit, "account": "enterprise",
                    "forbidden_chars": "".join(forbidden),
                    "templates": {"t": {"code": "1", "params": ["{{ ticket.id }}", "{{ deadline | hm }}"]}}},
    })  # fmt: skip
    sms = SmsTemplates(model)
    ref = copy.copy(sms)
    ref._simple, ref._finished, ref._plans = {}, {}, {}
    ctx = sample_context()
    ctx["ticket"] = {**ctx["ticket"], "id": tid}
    assert sms._plans and sms.joint_simple("t") is not None
    assert _outcome(sms.params, "t", ctx) == _outcome(ref.params, "t", ctx)
    rendered = sms.joint_simple("t").render(ctx)  # type: ignore[union-attr]
    assert rendered is not None
    assert _outcome(sms.params_of_joint, "t", rendered, ctx) == _outcome(ref.params, "t", ctx)


def test_a_joint_render_keeps_each_output_its_own() -> None:
    """Outputs are shared only when name, keys, filters and the constants' types are the same:
    short(1) and short(True) are two outputs (1 == True, yet they are not the same argument);
    the literal braces of a text stay as they are."""
    from supervisor.config.fastrender import JointRender

    sources = [
        "a{{ x | short(1) }}{ {{ x }} }",
        "{{ x | short(True) }}|{{ x | short(1) }}{{ y.z }}",
    ]
    fast = [compile_simple(ENV, s) for s in sources]
    assert all(f is not None for f in fast)
    joint = JointRender(fast)  # type: ignore[arg-type]
    assert len(joint._outputs) == 4
    for ctx in ({"x": "abcdef", "y": {"z": 1}}, {"x": "13812345678", "y": {"z": "{0}"}},
                {"x": 5, "y": {"z": None}}):  # fmt: skip
        want = [ENV.from_string(s).render(ctx) for s in sources]
        assert joint.render(ctx) == want == [f.render(ctx) for f in fast]  # type: ignore[union-attr]
    for ctx in ({"x": "a"}, {"x": "a", "y": 3}, {"y": {"z": 1}}):  # any part missing: None
        assert joint.render(ctx) is None


_PHONE_ALPHABET = "0123456789１٣ \t\u3000-+86()（）号电话"
phoneish = st.lists(
    st.text(alphabet=_PHONE_ALPHABET, max_size=8)
    | st.sampled_from(
        ["13812345678", "+86 138-1234-5678", "8613912345678", "1381234567", "11月25日14:30"]
    ),
    max_size=6,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=phoneish)
def test_phone_like_is_the_regex_search(text: str) -> None:
    """phone_like (and the masking finalize) look for the match's core first: the same answer."""
    from supervisor.config import templates as m

    assert m.phone_like(text) == (m.PHONE_LIKE.search(text) is not None)
    assert m._mask_numbers(text) == m.PHONE_LIKE.sub(lambda x: m._mask(x.group()), text)


def test_masking_gives_a_plain_str_for_a_str_subclass() -> None:
    """The masking finalize's shortcut is for plain strings: a str subclass (an Enum mixing in
    str prints as "Kind.X") still comes back as re.sub gives it, a plain str."""
    import enum

    from supervisor.config import templates as m

    class Kind(str, enum.Enum):  # noqa: UP042 (the point: not a StrEnum)
        X = "complaint"

    for value in (Kind.X, Kind.X.value):
        got = m._mask_numbers(value)
        assert type(got) is str and got == "complaint"
        assert ENV.from_string("{{ v }}").render(v=value) == str(m.PHONE_LIKE.sub("", value))
