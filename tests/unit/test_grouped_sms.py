"""Grouped SMS (delivery/policy.compose_group, sending.group_rows): the exact texts of the cases
issue 19 names: the unit named once, each item's action kept whole, no report inside a group,
and one ticket once per message (a supervisor standing in for a missing head, then asked in
their own role)."""

from __future__ import annotations

from datetime import datetime

from supervisor.config.delivery import DeliverySettings, compose_group, split_groups
from supervisor.delivery.sending import group_rows
from supervisor.vocabulary import ZONE


def row(i: int, ticket: str, text: str, rule: str = "sign-off", **over: object) -> dict:
    return {
        "id": i, "ticket": ticket, "rule": rule, "cycle": 1, "step": 0, "rep": 0,
        "role": "head", "recipient": "zhao-gang", "name": "赵刚", "address": "+8613800138012",
        "channel": "sms", "text": text, "urgent": False, "attempts": 0, "claimed_at": None,
        "last_error": None, "in_flight": False,
        "created_at": datetime(2026, 11, 24, 10, tzinfo=ZONE), "params": None,
    } | over  # fmt: skip


def test_one_unit_is_named_once_and_every_action_is_kept() -> None:
    rows = [
        row(1, "T1", "【12345催办】城管执法中队：工单T1（市容环境）签收时限11月24日10:00已到，"
                     "仍未签收，请督促立即签收办理。回复1确认。"),
        row(2, "T2", "【12345催办】城管执法中队：工单T2（占道经营）答复时限11月24日12:00即将到期，"
                     "至今尚未答复，请督促办理。回复1确认。", rule="reply-deadline"),
    ]  # fmt: skip
    assert compose_group(rows) == (
        "【12345催办】城管执法中队2件工单：1.工单T1（市容环境）签收时限11月24日10:00已到，仍未签收，"
        "请督促立即签收办理；2.工单T2（占道经营）答复时限11月24日12:00即将到期，至今尚未答复，"
        "请督促办理。回复1确认。"
    )


def test_several_units_are_named_per_item_and_nothing_is_cut() -> None:
    history = "，".join(f"11月{d}日回访不满意" for d in range(10, 20))
    rows = [
        row(1, "R1", f"【12345督办】物业管理办公室：工单R1（物业管理）第3次办理：{history}。"
                     "建议有请当事人会办，请领导督办。回复1确认。", rule="handled-three-times"),
        row(2, "T2", "【12345督办】市场监管所：工单T2（市场管理）回访不满意，请审核研判并督办重办。"
                     "回复1确认。", rule="dissatisfied"),
    ]  # fmt: skip
    text = compose_group(rows)
    assert text == (
        f"【12345督办】您有2条提醒：1.物业管理办公室工单R1（物业管理）第3次办理：{history}。"
        "建议有请当事人会办，请领导督办；2.市场监管所工单T2（市场管理）回访不满意，请审核研判并督办重办。"
        "回复1确认。"
    )
    assert "…" not in text


def test_the_same_ticket_reaches_a_standing_in_supervisor_once() -> None:
    # the head of 老旧小区改造办 is missing: the supervisor stood in at the sign-off deadline, and
    # the next step asks the supervisor in their own role; both were held to 07:30 together
    stand_in = row(
        1, "T1", "【12345催办】（老旧小区改造办未配置负责人，转您处理）老旧小区改造办：工单T1（住房保障）"
                 "签收时限11月23日17:00已到，仍未签收，请督促立即签收办理。回复1确认。",
        role="head", recipient="zhang-min", step=1,
    )  # fmt: skip
    own = row(
        2, "T1", "【12345督办】老旧小区改造办：工单T1（住房保障）签收已超时1个工作小时，催办未果，"
                 "请督办。回复1确认。",
        role="supervisor", recipient="zhang-min", step=2,
    )  # fmt: skip
    other = row(
        3, "T2", "【12345督办】老旧小区改造办：工单T2（住房保障）回访不满意，请审核研判并督办重办。"
                 "回复1确认。", rule="dissatisfied", role="supervisor", recipient="zhang-min",
    )  # fmt: skip
    assert compose_group([stand_in, own]) == (
        "【12345督办】（老旧小区改造办未配置负责人，转您处理）老旧小区改造办：工单T1（住房保障）"
        "签收已超时1个工作小时，催办未果，请督办。回复1确认。"
    )
    text = compose_group([stand_in, own, other])
    assert text == (
        "【12345督办】（老旧小区改造办未配置负责人，转您处理）老旧小区改造办2件工单："
        "1.工单T1（住房保障）签收已超时1个工作小时，催办未果，请督办；"
        "2.工单T2（住房保障）回访不满意，请审核研判并督办重办。回复1确认。"
    )
    assert text.count("T1") == 1


def test_a_weekly_report_is_never_an_item_of_a_group() -> None:
    look_back = row(
        1, "-", "【12345回头看】张敏您好，上周没有回访不满意或重办的工单。",
        rule="look-back", role="supervisor", recipient="zhang-min",
    )  # fmt: skip
    digest = row(
        2,
        "unit:老旧小区改造办",
        "【12345早提醒】张敏您好：老旧小区改造办待签收1件。",
        rule="digest",
    )
    reminder = row(
        3,
        "T1",
        "【12345督办】城管执法中队：工单T1（市容环境）回访不满意，请审核研判并督办重办。回复1确认。",
    )
    reminder2 = row(
        4,
        "T2",
        "【12345督办】城管执法中队：工单T2（市容环境）回访不满意，请审核研判并督办重办。回复1确认。",
    )
    messages = group_rows([look_back, digest, reminder, reminder2], DeliverySettings())
    assert sorted([r["id"] for r in m] for m in messages) == [[1], [2], [3, 4]]


def test_a_group_that_would_exceed_the_budget_is_split_whole_items_first() -> None:
    rows = [
        row(i, f"T{i}", f"【12345催办】城管执法中队：工单T{i}（市容环境）签收时限11月24日10:00已到，"
                        "仍未签收，请督促立即签收办理。回复1确认。")
        for i in range(1, 6)
    ]  # fmt: skip
    parts = split_groups(rows, max_segments=2)
    assert sum(len(p) for p in parts) == 5 and len(parts) > 1
    for part in parts:
        assert "…" not in compose_group(part)


def test_items_of_several_units_are_gathered_by_unit_and_each_unit_named_once() -> None:
    def escalation(i: int, ticket: str, unit: str) -> dict:
        return row(i, ticket, f"【12345督办】{unit}：工单{ticket}签收已超时1个工作小时，催办未果，请督办。回复1确认。",
                   role="supervisor", recipient="zhang-min")  # fmt: skip

    rows = [escalation(1, "B1", "城管执法中队"), escalation(2, "L1", "老旧小区改造办"),
            escalation(3, "B2", "城管执法中队")]  # fmt: skip
    assert compose_group(rows) == (
        "【12345督办】您有3条提醒：1.城管执法中队工单B1签收已超时1个工作小时，催办未果，请督办；"
        "2.工单B2签收已超时1个工作小时，催办未果，请督办；"
        "3.老旧小区改造办工单L1签收已超时1个工作小时，催办未果，请督办。回复1确认。"
    )
