from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from supervisor.config.templates import (
    PhoneNumberInText,
    RenderError,
    Templates,
    TemplatesFile,
    dt,
    hm,
    load_templates,
    sample_context,
    segments,
)
from supervisor.config.yamlconf import ConfigInvalid

CONFIG = Path(__file__).resolve().parents[2] / "config" / "templates.yaml"

REQUIRED = (
    "sign_reminder", "sign_overdue", "sign_escalation", "return_late", "dispute", "co_unit_unsigned",
    "reply_reminder", "reply_urgent", "reply_overdue", "reply_overdue_leader", "extension_late",
    "commitment_reminder", "commitment_overdue", "dissatisfied", "dissatisfied_again",
    "repeat_caller", "look_back", "no_contact_before", "callback_missing", "digest",
)  # fmt: skip


def make(text: str, **extra) -> Templates:
    return Templates(TemplatesFile.model_validate({"templates": {"t": {"text": text, **extra}}}))


def test_every_shipped_template_renders_within_its_limit():
    templates = load_templates(CONFIG)
    assert set(REQUIRED) <= set(templates.names)
    assert templates.check(sample_context()) == []
    for name in templates.names:
        text = templates.render(name, sample_context())
        assert 0 < segments(text) <= templates.max_segments(name), name
        assert "  " not in text and "\n" not in text, name


def test_sign_reminder_text():
    text = load_templates(CONFIG).render("sign_reminder", sample_context())
    # issue 12: the unit, the ticket, the category and what is asked
    assert (
        text
        == "【12345催办】城管执法中队：工单2026112500123（市容环境）请于11月25日14:30前签收办理。"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("{" * 80, 1),  # extension characters take two septets
        ("{" * 81, 2),
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("a" * 69 + "中", 1),  # one Chinese character makes the whole text UCS-2
        ("a" * 100 + "中", 2),
    ],
)
def test_segments(text, expected):
    assert segments(text) == expected


def test_time_filters_use_shanghai_time():
    utc = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    assert hm(utc) == "11月25日14:30"
    assert dt(utc) == "2026-11-25 14:30"
    t = make("{{ d | date }}/{{ x | date }}")
    assert (
        t.render("t", {"d": date(2026, 12, 4), "x": utc + timedelta(hours=10)})
        == "12月4日/11月26日"
    )


def test_sandbox_blocks_attribute_tricks():
    t = make("{{ ''.__class__.__mro__ }}")
    with pytest.raises(RenderError, match="unsafe"):
        t.render("t", {})
    assert "unsafe" in t.check(sample_context())[0].message


def test_context_is_immutable():
    t = make("{{ tickets.append(1) }}")
    with pytest.raises(RenderError):
        t.render("t", {"tickets": []})


def test_undefined_variables_are_reported_by_check():
    t = make("{{ ticket.id }} {% if urgent_flag %}{{ tiket.id }}{% endif %}")
    [err] = t.check(sample_context())
    assert err.key == "templates.t.text"
    assert err.message.startswith("unknown variable tiket, urgent_flag")
    with pytest.raises(RenderError):
        t.render("t", {"ticket": {"id": "1"}, "urgent_flag": True})


def test_undefined_attribute_is_reported_by_check():
    [err] = make("{{ ticket.idd }}").check(sample_context())
    assert "idd" in err.message


def test_syntax_error_has_file_and_line_of_the_template(tmp_path):
    path = tmp_path / "templates.yaml"
    path.write_text(
        "templates:\n  ok:\n    text: 好\n  bad:\n    text: '{{ ticket.id '\n", encoding="utf-8"
    )
    with pytest.raises(ConfigInvalid) as exc:
        load_templates(path)
    [err] = exc.value.errors
    assert (err.file, err.line, err.key) == (str(path), 5, "templates.bad.text")
    assert err.message.startswith("template syntax error")


def test_too_long_for_its_budget():
    [err] = make("{{ '中' * 71 }}", max_segments=1).check(sample_context())
    assert "2 SMS segments" in err.message and "limit is 1" in err.message
    assert make("{{ '中' * 71 }}").check(sample_context()) == []  # the default budget is 2


def test_phone_number_in_template_text_is_refused():
    t = make("请联系13800138001")
    [err] = t.check(sample_context())
    assert err.message == "template could expose a phone number"
    with pytest.raises(PhoneNumberInText):
        t.render("t", {})


def test_phone_number_assembled_from_pieces_is_refused():
    with pytest.raises(PhoneNumberInText):
        make("{{ a }}{{ b }}").render("t", {"a": "138001", "b": "38001"})


def test_phone_number_in_data_is_masked():
    ctx = sample_context()
    ctx["ticket"] = ctx["ticket"] | {"summary": "来电人电话 138-0013-8001，要求回电"}
    text = make("{{ ticket.summary }}").render("t", ctx)
    assert text == "来电人电话 138****8001，要求回电"


def test_long_digit_runs_are_not_phone_numbers():
    assert make("工单{{ id }}").render("t", {"id": "20261138001380019"}) == "工单20261138001380019"


def test_unknown_template():
    with pytest.raises(RenderError, match="unknown template"):
        make("x").render("nope", {})


def test_repeat_caller_renders_without_the_linked_tickets():
    ctx = sample_context()
    del ctx["tickets"], ctx["count"]
    text = load_templates(CONFIG).render("repeat_caller", ctx)
    assert "多次" in text and ctx["ticket"]["id"] in text


def test_a_missing_time_is_a_render_error():
    with pytest.raises(RenderError, match="expected a date and time"):
        make("{{ t | hm }}").render("t", {"t": None})


def test_labels_and_short():
    t = make("{{ k | zh }} {{ s | short(5) }}")
    assert t.render("t", {"k": "complaint", "s": "一二三四五六七"}) == "投诉 一二三四…"


def test_every_shipped_template_is_used_by_a_shipped_rule_or_report():
    from tests.helpers import loaded

    lo = loaded()
    used = {step.template for rule in lo.policy.rules for step in rule.steps}
    used |= {report.template for report in lo.policy.reports}
    assert used == set(lo.templates.names)
