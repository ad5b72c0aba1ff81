"""Provider parameters made legal (issue 19): the per-provider rules for template variables (no
URL, no refused symbol, a length per variable by account type, a number of variables), applied
when a message's parameters are rendered, refused by `check` when a mapping can break them, and
held over everything `simulate --deliveries` sends for the rule tests and the scenarios."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from supervisor.application import validate_batch
from supervisor.config.sms_templates import (
    DEFAULT_FORBIDDEN,
    ParamRules,
    clean_param,
    load_sms_templates,
)
from supervisor.config.templates import load_templates, sample_context
from supervisor.core.events import _parse_timestamp
from supervisor.tools.simulate import plan_deliveries, simulate
from tests.helpers import CONFIG, loaded, runtime

ROOT = Path(__file__).resolve().parents[2]
NAMES = set(load_templates(CONFIG / "templates.yaml").names)
RULES = ParamRules(12, 6, frozenset(DEFAULT_FORBIDDEN))


def test_a_value_is_cleaned_before_it_becomes_a_parameter() -> None:
    # the address: a symbol, a short link, brackets
    assert clean_param("和平路5号★见 http://t.cn/A6x 【图】", RULES) == "和平路5号见图"
    assert clean_param("幸福路 １２号　502室", RULES) == "幸福路12号502室"  # full-width, spaces
    assert clean_param("详见www.example.com/x?a=1 ※", RULES) == "详见"
    assert clean_param("城管执法中队、市场监管所、物业管理办公室", RULES) == "城管执法中队等"
    assert len(clean_param("一" * 40, ParamRules(None, 6, frozenset()))) == 40  # no limit
    for value in ("和平路5号★见 http://t.cn/A6x 【图】", "①→¥100 m² 『注』", "a" * 30):
        assert not RULES.problems(clean_param(value, RULES))


def _mapping(tmp_path, text: str):
    path = tmp_path / "sms_templates.yaml"
    path.write_text(text, encoding="utf-8")
    return load_sms_templates(path)


def test_check_refuses_a_mapping_that_can_break_the_rules(tmp_path) -> None:
    mapping = _mapping(tmp_path, """
tencent:
  sign_name: 某某街道办事处
  account: personal
  templates:
    sign_reminder:
      code: "1"
      params: ["{{ ticket.unit_name }}", "{{ '请督办，并请网格员上门了解、源头化解' if role == 'grid' else '请督办' }}"]
    sign_overdue:
      code: "2"
      params: ["{{ ticket.id }}", "{{ ticket.id }}", "{{ ticket.id }}", "{{ ticket.id }}", "{{ ticket.id }}", "{{ ticket.id }}", "{{ ticket.id }}"]
    reply_urgent:
      code: "3"
      params: ["详见★{{ ticket.id }}", "{{ ticket.category or '见 http://t.cn/x' }}"]
""")
    errors = [str(e) for e in mapping.check(NAMES)]
    assert any("sign_reminder" in e and "18 characters, more than 12" in e for e in errors), errors
    assert any("sign_overdue" in e and "7 variables; tencent allows at most 6" in e for e in errors)
    assert any("reply_urgent" in e and "refuses: ★" in e for e in errors), errors
    assert any("reply_urgent" in e and "a URL" in e for e in errors), errors
    assert all("sms_templates.yaml:" in e for e in errors)  # file:line


def test_a_personal_tencent_account_gets_twelve_characters_a_variable(tmp_path) -> None:
    mapping = _mapping(tmp_path, """
tencent:
  sign_name: 某某街道办事处
  account: personal
  templates:
    sign_reminder:
      code: "1"
      params: ["{{ ticket.summary }}", "{{ ticket.address }}", "{{ ticket.unit_name }}"]
""")
    context = sample_context()
    context["ticket"] = {**context["ticket"], "address": "和平路5号★见 http://t.cn/A6x 【图】"}
    params = mapping.params("sign_reminder", context)
    assert params is not None
    assert params["tencent"]["params"] == ["幸福小区东门夜间占道经…", "和平路5号见图", "城管执法中队"]


def test_the_shipped_mappings_pass_check() -> None:
    assert load_sms_templates(CONFIG / "sms_templates.yaml").check(NAMES) == []


def _rule_test_events() -> list[tuple[str, list, object]]:
    out = []
    for path in sorted((ROOT / "rules" / "tests").glob("*.yaml")):
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            ticket = test.get("ticket", "T1")
            raws = [{"ticket": ticket, "id": f"{ev.get('ticket', ticket)}-e{i}", **ev}
                    for i, ev in enumerate(test["events"])]  # fmt: skip
            until = _parse_timestamp(test["until"]) if test.get("until") else None
            out.append((f"{path.name}: {test['name']}", validate_batch(raws, b"t"), until))
    for path in sorted((ROOT / "rules" / "scenarios").glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        raws = [json.loads(x) for x in lines if x.strip() and not x.startswith("#")]
        events = validate_batch(raws, b"t")
        out.append((path.name, events, max(e.at for e in events) + timedelta(days=7)))
    return out


def test_no_sms_parameter_of_the_rule_tests_and_scenarios_breaks_the_provider_rules() -> None:
    """Every SMS `simulate --deliveries` plans for the rule tests and the scenarios, with the
    provider parameters it would carry (each message alone, as a template provider sends it):
    none breaks the configured rules of either provider."""
    rt = runtime()
    settings = loaded().settings.delivery.model_copy(update={"group_window_s": 0})
    mapping = rt.templates.sms
    checked, problems = 0, []
    for name, events, until in _rule_test_events():
        notes = asyncio.run(simulate(events, rt, until))
        for d in plan_deliveries(notes, settings, rt.templates):
            if d["channel"] != "sms":
                continue
            for provider, values in (d.get("params") or {}).items():
                rules = mapping.rules[provider]
                listed = list(values.values()) if isinstance(values, dict) else list(values)
                if len(listed) > rules.max_params:
                    problems.append(f"{name}: {provider} {len(listed)} variables")
                for v in listed:
                    checked += 1
                    problems += [f"{name}: {provider} {v!r}: {p}" for p in rules.problems(v)]
    assert checked > 500, checked  # the run really covered the messages
    assert not problems, problems[:10]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_an_address_with_a_link_and_symbols_is_sent_clean(provider: str) -> None:
    mapping = load_sms_templates(CONFIG / "sms_templates.yaml")
    context = sample_context()
    context["ticket"] = {**context["ticket"], "address": "和平路5号★见 http://t.cn/A6x 【图】"}
    params = mapping.params("same_matter", context)
    assert params is not None
    values = params[provider]["params"]
    listed = list(values.values()) if isinstance(values, dict) else values
    assert "和平路5号见图" in listed
    assert not [p for v in listed for p in mapping.rules[provider].problems(v)]
