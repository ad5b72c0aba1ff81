"""What a call says (shared/DOMAIN.md, *Phone calls*; issue 19): every template's whole spoken
text, the stand-in note after the greeting, the counting call of several items, and the TwiML
that asks for one key."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from notifiers.twilio_voice import GOODBYE, PROMPT, twiml_for
from supervisor.config.contacts import load_directory
from supervisor.config.templates import load_templates
from supervisor.config.templates import sample_context as sample
from supervisor.core.spoken import GREETING, compose_call, digits, speakable, tail
from tests.helpers import CONFIG, runtime
from tests.unit.test_notify import _fire, _state

TEMPLATES = load_templates(CONFIG / "templates.yaml")
ROLES = ("liaison", "head", "supervisor", "leader", "grid")


def heard(text: str) -> list[str]:
    """What a listener could not follow: digit runs of more than four, brackets, list marks,
    ellipses, the SMS tag, and "回复" (a call asks for a key, not a reply)."""
    problems = [f"digits {m}" for m in re.findall(r"\d{5,}", text)]
    problems += [f"mark {c}" for c in re.findall(r"[【】（）()\[\]〔〕「」『』〖〗…★※•①②③]", text)]
    problems += ["ellipsis"] * ("..." in text) + ["回复1"] * ("回复1" in text)
    problems += [f"list mark {m}" for m in re.findall(r"(?:^|[：；。，])\d+[.、]", text)]
    return problems


@pytest.mark.parametrize("name", TEMPLATES.names)
@pytest.mark.parametrize("role", ROLES)
def test_every_call_script_can_be_followed_by_ear(name: str, role: str) -> None:
    text = TEMPLATES.render(name, {**sample(), "role": role}, channel="voice")
    assert text.startswith(GREETING), text
    assert text.count("您好，这里是") == 1, text
    assert not heard(text), (heard(text), text)
    assert "2026112500123" not in text and "12345" not in text
    if "尾号" in text:  # a ticket is named by its last four characters
        assert "尾号零幺二三" in text


def test_the_called_templates_say_exactly_this() -> None:
    head = {**sample(), "role": "head"}
    assert TEMPLATES.render("sign_overdue", head, channel="voice") == (
        "您好，这里是幺二三四五热线督办。城管执法中队尾号零幺二三的市容环境工单签收时限已过，"
        "仍未签收，请督促立即签收办理。详情请查看短信。"
    )
    assert TEMPLATES.render("reply_overdue", head, channel="voice") == (
        "您好，这里是幺二三四五热线督办。城管执法中队尾号零幺二三的市容环境工单答复时限已过，"
        "仍未答复，请立即办理。详情请查看短信。"
    )
    supervisor = {**sample(), "role": "supervisor"}
    assert TEMPLATES.render("reply_overdue", supervisor, channel="voice").endswith(
        "仍未答复，请督办。详情请查看短信。"
    )
    # a template without a script of its own: its SMS made speakable
    assert TEMPLATES.render("sign_escalation", head, channel="voice") == (
        "您好，这里是幺二三四五热线督办。城管执法中队尾号零幺二三的工单，市容环境，"
        "签收已超时1小时，催办未果，请督办。"
    )


def test_spoken_forms() -> None:
    assert digits("A2016") == "A二零幺六"
    assert tail("DEMO-A2026112500123") == "零幺二三"
    assert tail("R1") == "R幺"
    assert speakable("【12345催办】工单T1（市容环境）请于11月25日 14:30前签收…回复1确认。") == (
        "您好，这里是幺二三四五热线督办。工单T1，市容环境，请于11月25日14点30分前签收。"
    )
    assert speakable("另有2026112400087、2026111800342。", "X") == (
        "您好，这里是幺二三四五热线督办。另有尾号零零八七、尾号零三四二。"
    )


def test_the_stand_in_note_comes_after_the_greeting(tmp_path) -> None:
    text = (CONFIG / "contacts.yaml").read_text(encoding="utf-8")
    changed = text.replace("head: [zhao-gang]", "head: []", 1)
    assert changed != text
    path = tmp_path / "contacts.yaml"
    path.write_text(changed, encoding="utf-8")
    rt = replace(runtime(), directory=load_directory(path))
    notes = _fire(rt, _state(), "sign-off", 1)  # the head's SMS and call; nobody is head
    call = next(n for n in notes if n.channel == "voice")
    assert call.to == "zhang-min"  # the supervisor stands in
    assert call.text.startswith(GREETING + "城管执法中队未配置负责人，由您代为处理。城管执法中队尾号")
    assert not heard(call.text)
    sms = next(n for n in notes if n.channel == "sms")
    assert sms.text.startswith("【12345")  # the SMS keeps its tag first, then the note


def test_an_sms_that_may_fall_back_to_a_call_carries_the_calls_script() -> None:
    [sms] = _fire(runtime(), _state(), "sign-off", 0)  # the liaison, who takes sms and voice
    assert sms.channel == "sms" and sms.params is not None
    assert sms.params["voice"].startswith(GREETING) and not heard(sms.params["voice"])
    assert sms.params["call"]["tail"] == "T幺" and sms.params["call"]["item"] == "即将到签收时限"


def _row(ticket: str, item: str, text: str = "x", notes: list[str] | None = None) -> dict:
    call = {"tail": tail(ticket), "item": item, "unit": "城管执法中队", "notes": notes or []}
    return {"ticket": ticket, "text": text, "channel": "voice", "params": {"call": call}}


def test_several_items_make_one_counting_call() -> None:
    rows = [_row("2026112500123", "签收超时"), _row("2026112400087", "签收超时")]
    assert compose_call(rows) == (
        "您好，这里是幺二三四五热线督办。您有2件工单签收超时，尾号零幺二三、零零八七。"
        "详情请查看短信。"
    )
    rows.append(_row("2026111800342", "回复超期", notes=["老旧小区改造办未配置负责人，由您代为处理。"]))
    assert compose_call(rows) == (
        "您好，这里是幺二三四五热线督办。老旧小区改造办未配置负责人，由您代为处理。"
        "您有3件工单需要处理：2件签收超时，尾号零幺二三、零零八七；1件回复超期，尾号零三四二。"
        "详情请查看短信。"
    )
    assert not heard(compose_call(rows))
    assert compose_call(rows[:1]) == "x"  # one item is said as written


def test_the_call_asks_for_one_key_and_ends_politely() -> None:
    action = "https://hotline.example/twilio/gather?key=outbox%3A7"
    twiml = twiml_for("您好。", "cmn-CN", voice="Polly.Zhiyu", action=action)
    gathers = re.findall(r"<Gather [^>]*>", twiml)
    assert len(gathers) == 2  # read twice
    for g in gathers:
        assert 'numDigits="1"' in g and 'method="POST"' in g and f'action="{action.replace("&", "&amp;")}"' in g
    assert twiml.count(PROMPT) == 2 and "按1确认收到" in PROMPT and "按2重听" in PROMPT
    assert twiml.endswith(f'<Say language="cmn-CN" voice="Polly.Zhiyu">{GOODBYE}</Say></Response>')
    # without a public URL for the key, no key is asked for
    bare = twiml_for("您好。", "zh-CN")
    assert "<Gather" not in bare and PROMPT not in bare and bare.count("您好。") == 2


def test_a_call_without_a_script_of_its_own_is_made_speakable() -> None:
    from supervisor.delivery.sending import compose

    row = {"ticket": "-", "channel": "voice", "params": None,
           "text": "【12345督办】短信平台今日限制向王强发送短信（同一号码发送过多），紧急事项请电话联系。"}  # fmt: skip
    assert compose([row]) == (
        "您好，这里是幺二三四五热线督办。短信平台今日限制向王强发送短信，同一号码发送过多，紧急事项请电话联系。"
    )
    scripted = {**row, "text": "您好，这里是幺二三四五热线督办。工单尾号零幺二三签收超时。"}
    assert compose([scripted]) == scripted["text"]
