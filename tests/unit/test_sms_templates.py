"""config/sms_templates.yaml: the mapping of our templates to the registered templates of
Aliyun and Tencent, its parameters, and `check` refusing a rule whose template has no mapping for
a configured provider (file:line:key)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from supervisor.config.settings import load_all
from supervisor.config.sms_templates import load_sms_templates
from supervisor.config.templates import PhoneNumberInText, sample_context
from supervisor.config.yamlconf import ConfigInvalid
from tests.helpers import CONFIG, ROOT, loaded

ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "id",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
    "TENCENTCLOUD_SECRET_ID": "id",
    "TENCENTCLOUD_SECRET_KEY": "key",
}


def config_with(tmp_path: Path, notifiers: str) -> Path:
    """A copy of the shipped config and rules with `notifiers` (YAML) in settings.yaml."""
    cfg = tmp_path / "config"
    shutil.copytree(CONFIG, cfg)
    shutil.copytree(ROOT / "rules", tmp_path / "rules", ignore=shutil.ignore_patterns("tests"))
    settings = (cfg / "settings.yaml").read_text(encoding="utf-8")
    settings = settings.replace("notifiers:\n  console: {}\n", f"notifiers:\n{notifiers}")
    (cfg / "settings.yaml").write_text(settings, encoding="utf-8")
    return cfg


def drop_mapping(cfg: Path, provider: str, template: str) -> None:
    """Remove one template's entry (and its comment line) from the provider's section."""
    path = cfg / "sms_templates.yaml"
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition(f"\n{provider}:\n")
    pattern = rf"    # [^\n]*\n    {template}:\n(?:      [^\n]*\n)+"
    rest, n = re.subn(pattern, "", rest, count=1)
    assert n == 1
    path.write_text(head + sep + rest, encoding="utf-8")


def test_the_shipped_mapping_covers_every_template_for_both_providers() -> None:
    mapping = load_sms_templates(CONFIG / "sms_templates.yaml")
    names = loaded().templates.names
    for provider in ("aliyun", "tencent"):
        assert [n for n in names if not mapping.has(provider, n)] == []
    assert mapping.check(frozenset(names)) == []


def test_parameters_are_rendered_from_the_same_context_as_the_text() -> None:
    templates = loaded().templates
    out = templates.sms_params("dispute", sample_context())

    assert out == {
        "template": "dispute",
        "aliyun": {
            "code": "SMS_480000005",
            "sign_name": "某某街道办事处",
            "params": {
                "ticket": "2026112500123",
                "category": "市容环境",
                "count": "3",
                "returned": "市场监管所、物业管理办公室",
            },
        },
        "tencent": {
            "code": "2000005",
            "sign_name": "某某街道办事处",
            "params": ["2026112500123", "市容环境", "3", "市场监管所、物业管理办公室"],
        },
    }


def test_values_are_cut_to_the_provider_limit_and_never_carry_a_phone_number() -> None:
    text = """
aliyun:
  sign_name: 某某街道办事处
  max_param_chars: 10
  templates:
    sign_reminder:
      code: SMS_1
      params: {summary: "{{ ticket.summary }}"}
    dispute:
      code: SMS_2
      params: {who: "电话13912345678", quoted: "{{ ticket.summary }}"}
"""
    mapping = load_sms_templates("sms_templates.yaml", text)
    out = mapping.params("sign_reminder", sample_context())
    assert out is not None and out["aliyun"]["params"] == {"summary": "幸福小区东门夜间占…"}
    with pytest.raises(PhoneNumberInText):  # written into the mapping itself
        mapping.params("dispute", {"ticket": {"summary": ""}})
    assert mapping.params("digest", sample_context()) is None  # not mapped


def test_errors_name_the_file_line_and_key() -> None:
    text = """
tencent:
  sign_name: 某某街道办事处
  templates:
    sign_reminder:
      code: "1001"
      params: ["{{ ticket.id }"]
"""
    with pytest.raises(ConfigInvalid) as info:
        load_sms_templates("sms_templates.yaml", text)
    assert str(info.value).startswith(
        "sms_templates.yaml:7: tencent.templates.sign_reminder.params.0:"
    )

    wrong = load_sms_templates(
        "sms_templates.yaml",
        'aliyun:\n  sign_name: 某某街道\n  templates:\n    no_such: {code: SMS_1, params: {a: "{{ nope }}"}}\n',
    )
    [error] = wrong.check(frozenset({"sign_reminder"}))
    assert (
        str(error)
        == "sms_templates.yaml:4: aliyun.templates.no_such: no template 'no_such' in templates.yaml"
    )

    with pytest.raises(ConfigInvalid, match="code"):
        load_sms_templates(
            "x.yaml", "aliyun:\n  sign_name: 某某街道\n  templates:\n    a: {code: '123'}\n"
        )


def test_check_refuses_a_rule_whose_template_has_no_mapping(tmp_path: Path) -> None:
    cfg = config_with(tmp_path, "  aliyun: {}\n")
    assert load_all(cfg, env=ENV).templates.sms is not None  # complete: loads
    drop_mapping(cfg, "aliyun", "dispute")

    with pytest.raises(ConfigInvalid) as info:
        load_all(cfg, env=ENV)

    [error] = info.value.errors
    rules = (tmp_path / "rules" / "sign-off.yaml").read_text(encoding="utf-8").splitlines()
    assert error.file.endswith("sign-off.yaml")
    assert rules[error.line - 1].strip() == "template: dispute"
    assert re.fullmatch(r"rules\.\d+\.steps\.0\.template", error.key or "")
    assert error.message == (
        "template 'dispute' has no aliyun mapping in sms_templates.yaml "
        "(notifiers.aliyun sends only registered templates)"
    )


def test_an_unmapped_template_is_fine_for_a_provider_not_configured(tmp_path: Path) -> None:
    cfg = config_with(tmp_path, "  tencent: {sdk_app_id: '1400000001'}\n")
    drop_mapping(cfg, "aliyun", "dispute")  # aliyun is not configured: nothing to refuse
    assert load_all(cfg, env=ENV).settings.notifiers.template_sms() == ("tencent",)

    drop_mapping(cfg, "tencent", "digest")  # a report's template
    with pytest.raises(ConfigInvalid, match="template 'digest' has no tencent mapping"):
        load_all(cfg, env=ENV)


def test_a_configured_provider_needs_the_file(tmp_path: Path) -> None:
    cfg = config_with(tmp_path, "  aliyun: {}\n")
    (cfg / "sms_templates.yaml").unlink()

    with pytest.raises(ConfigInvalid) as info:
        load_all(cfg, env=ENV)

    assert "sms_templates.yaml: notifiers.aliyun is configured" in str(info.value)


def test_a_number_in_the_data_is_masked_like_in_the_text() -> None:
    text = """
tencent:
  sign_name: 某某街道办事处
  templates:
    sign_reminder: {code: "1001", params: ["{{ ticket.summary }}"]}
"""
    mapping = load_sms_templates("sms_templates.yaml", text)
    out = mapping.params("sign_reminder", {"ticket": {"summary": "回电13912345678"}})
    assert out is not None and out["tencent"]["params"] == ["回电139****5678"]


def test_rendering_all_parameters_at_once_gives_what_rendering_each_gives() -> None:
    """params() renders a template's distinct parameter sources as one Jinja template (one
    context per message); every value is what rendering the parameter alone gives, also when a
    value holds the separator (then each is rendered alone)."""
    mapping = load_sms_templates(CONFIG / "sms_templates.yaml")
    contexts = [sample_context()]
    odd = sample_context()
    odd["ticket"] = {**odd["ticket"], "category": "市容\ue000环境"}
    contexts.append(odd)
    for context in contexts:
        for name in loaded().templates.names:
            joint = mapping.params(name, context)
            saved = mapping._joint
            mapping._joint = {}  # one by one
            try:
                alone = mapping.params(name, context)
            finally:
                mapping._joint = saved
            assert joint == alone, name
    assert mapping._joint  # the shipped mapping is rendered jointly
    kept = mapping.params("dispute", odd)
    assert kept is not None and kept["tencent"]["params"][1] == "市容\ue000环境"  # not split
