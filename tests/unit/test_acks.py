"""core.acks: who may end what (liaison < head < supervisor < leader; grid on its own), and the
SMS reply words ("1", "1 A2026...")."""

from __future__ import annotations

import pytest

from supervisor.acking import AckOutcome
from supervisor.core.acks import ack_scope, covers, roles_held
from supervisor.server.twilio_hooks import parse_reply, reply_text

SIGN_OFF = {"sign-off": [("liaison",), ("head",), ("supervisor",)]}


@pytest.mark.parametrize(
    "acker,target,ok",
    [
        ("liaison", "liaison", True), ("liaison", "head", False), ("liaison", "supervisor", False),
        ("head", "liaison", True), ("head", "head", True), ("head", "supervisor", False),
        ("supervisor", "head", True), ("supervisor", "leader", False), ("leader", "leader", True),
        ("grid", "grid", True), ("grid", "liaison", False), ("leader", "grid", False),
    ],
)  # fmt: skip
def test_covers_by_rank(acker: str, target: str, ok: bool):
    assert covers([acker], target) is ok


def test_a_liaison_ends_only_the_liaisons_step():
    scope = ack_scope({"liaison"}, SIGN_OFF)
    assert scope.steps["sign-off"] == {0} and scope.whole == frozenset()
    assert scope.refused(SIGN_OFF) == ["head", "supervisor"]


def test_a_head_ends_the_liaisons_and_the_heads_steps():
    scope = ack_scope({"head"}, SIGN_OFF)
    assert scope.steps["sign-off"] == {0, 1} and not scope.whole


def test_the_supervisor_ends_the_whole_sign_off_ladder_but_not_a_leaders_step():
    scope = ack_scope({"supervisor"}, {**SIGN_OFF, "overdue": [("head", "supervisor"), ("leader",)]})
    assert scope.whole == {"sign-off"} and scope.steps["overdue"] == {0}


def test_a_step_for_several_roles_ends_only_when_all_are_covered():
    assert ack_scope({"head"}, {"r": [("head", "supervisor")]}).empty


def test_roles_held_are_for_this_tickets_units_only():
    kw = dict(unit_roles={"A": {"liaison": ["p"], "head": []}, "B": {"head": ["p"]}},
              street={"supervisor": ["s"], "leader": []}, grids={"G": ["p"]})  # fmt: skip
    assert roles_held("p", units=["A"], grid=None, **kw) == {"liaison"}
    assert roles_held("p", units=["A", "B"], grid="G", **kw) == {"liaison", "head", "grid"}
    assert roles_held("s", units=[], grid=None, **kw) == {"supervisor"}


WORDS = {"1", "收到", "ok"}


@pytest.mark.parametrize(
    "body,expected",
    [
        ("1", ("1", None)), (" 收到。", ("收到", None)), ("1 A2026112500123", ("1", "A2026112500123")),
        ("收到，A2026112500123", ("收到", "A2026112500123")), ("1 RA", ("1", "RA")),
        ("收到 好的", ("收到", "好的")), ("ok thanks", ("ok", "thanks")), ("1 R/A", (None, None)),
        ("什么事", (None, None)), ("1 A2026 B2026", (None, None)),
    ],
)  # fmt: skip
def test_reply_words(body: str, expected):
    assert parse_reply(body, WORDS) == expected


def test_reply_texts():
    assert reply_text("T", AckOutcome("ok", 1, ended=["r"])) == "已确认，工单T的督办已停止。"
    assert "更高一级" in reply_text("T", AckOutcome("ok", 1, still_open=["r"]))
    refused = reply_text("T", AckOutcome("not_allowed", refused_roles=["head", "supervisor"]))
    assert "单位负责人、街道热线专员" in refused
