"""The house style of the shipped texts (issue 12) and the helpers that make a call script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supervisor.config.templates import load_templates
from supervisor.config.templates import sample_context as sample

CONFIG = Path(__file__).resolve().parents[2] / "config" / "templates.yaml"
TEMPLATES = load_templates(CONFIG)
# messages that ask for an acknowledgement (escalations to heads, supervisors and leaders)
ACKED = (
    "sign_overdue", "sign_escalation", "return_late", "dispute", "reply_urgent", "reply_overdue",
    "reply_overdue_leader", "extension_late", "commitment_overdue", "dissatisfied",
    "dissatisfied_again", "handled_three_times", "group_complaint", "no_contact_before",
)  # fmt: skip


@pytest.mark.parametrize("name", TEMPLATES.names)
@pytest.mark.parametrize("role", ["liaison", "head", "supervisor", "leader", "grid"])
def test_every_text_opens_with_the_tag_and_has_no_doubled_punctuation(name, role):
    text = TEMPLATES.render(name, {**sample(), "role": role})
    assert text.startswith("【12345"), text
    assert not re.search(r"[。；，、：][。；，、：]", text), text


# asked only of a role whose reply can end the step (tests/unit/test_ack_texts.py): the head is
# not asked in a step shared with the supervisor, nor the supervisor in one shared with the leader
ASKED_ROLE = {"commitment_overdue": "supervisor", "dissatisfied": "supervisor",
              "group_complaint": "leader", "repeat_caller": "supervisor",
              "same_matter": "supervisor", "co_unit_unsigned": "liaison"}  # fmt: skip


@pytest.mark.parametrize("name", (*ACKED, "repeat_caller", "same_matter", "co_unit_unsigned"))
def test_texts_that_expect_an_acknowledgement_say_how(name):
    role = ASKED_ROLE.get(name, "head")
    assert TEMPLATES.render(name, {**sample(), "role": role}).endswith("回复1确认。")


def test_the_supervisor_is_asked_to_supervise_and_the_unit_to_handle():
    for name in ("reply_overdue", "commitment_overdue"):
        assert "请督办" in TEMPLATES.render(name, {**sample(), "role": "supervisor"})
        assert "请立即办理" in TEMPLATES.render(name, {**sample(), "role": "head"})


def test_commitment_escalation_says_the_promise_was_not_kept():
    text = TEMPLATES.render("commitment_overdue", sample())
    assert "未兑现" in text and "未回复" not in text


@pytest.mark.parametrize("name", TEMPLATES.names)
def test_every_call_script_has_no_brackets_and_reads_times_aloud(name):
    text = TEMPLATES.render(name, {**sample(), "role": "head"}, channel="voice")
    assert not re.search(r"[【】（）()\[\]]", text), text
    assert not re.search(r"\d:\d\d", text), text


# The call scripts' whole texts, the spoken forms and the key prompt: tests/unit/test_calls.py.
