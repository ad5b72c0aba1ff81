"""The delivery policy: quiet hours, grouping, backoff, and the text of a grouped SMS."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pydantic
import pytest

from supervisor.config.delivery import (
    DeliverySettings,
    QuietHours,
    backoff_s,
    compose_group,
    not_before,
    quiet_release,
    release_at,
    split_groups,
)
from supervisor.config.templates import segments

SH = ZoneInfo("Asia/Shanghai")
S = DeliverySettings()


def sh(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SH)


# -- settings -----------------------------------------------------------------------------------


def test_defaults() -> None:
    assert S.quiet_hours == QuietHours(start=time(22), end=time(7, 30), timezone="Asia/Shanghai")
    assert S.group_window_s == 60
    assert S.rate_for("sms") == 1.0 and S.rate_for("voice") == 1.0 and S.rate_for("wecom") == 5
    assert S.fallback == {"sms": "voice"}
    # retries follow a time horizon (hours), not a count (issue 9)
    assert S.max_attempts is None and S.reconcile_after_s == 60
    assert S.horizon_for("sms") == timedelta(hours=4) == S.horizon_for("voice")
    assert "收到" in S.ack_words


@pytest.mark.parametrize(
    "values",
    [
        {"group_windw_s": 10},  # a typo is an error, not an ignored key
        {"fallback": {"sms": "pager"}},
        {"fallback": {"sms": "sms"}},
        {"rate_per_s": {"sms": 0}},
        {"rate_per_s": {"fax": 1}},
        {"quiet_hours": {"start": "22:00", "end": "22:00"}},
        {"quiet_hours": {"timezone": "Mars/Olympus"}},
    ],
)
def test_invalid_settings_are_rejected(values: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        DeliverySettings.model_validate(values)


def test_quiet_hours_can_be_switched_off() -> None:
    s = DeliverySettings.model_validate({"quiet_hours": None, "group_window_s": 0})
    assert not_before(sh(25, 23), False, s) == sh(25, 23)


# -- quiet hours and grouping -------------------------------------------------------------------


def test_non_urgent_at_night_waits_until_0730_without_the_group_window() -> None:
    assert not_before(sh(25, 23), False, S) == sh(26, 7, 30)
    assert not_before(sh(26, 2, 15), False, S) == sh(26, 7, 30)


def test_urgent_goes_at_once_day_or_night() -> None:
    assert not_before(sh(25, 23), True, S) == sh(25, 23)
    assert not_before(sh(25, 10), True, S) == sh(25, 10)


def test_daytime_non_urgent_waits_the_group_window() -> None:
    assert not_before(sh(25, 10), False, S) == sh(25, 10, 1)


def test_a_window_ending_in_quiet_hours_waits_for_the_morning() -> None:
    assert not_before(sh(25, 21, 59, 30), False, S) == sh(26, 7, 30)
    # ...and one produced in the last seconds of the night goes with the morning batch
    assert not_before(sh(26, 7, 29, 30), False, S) == sh(26, 7, 30)


def test_quiet_release_boundaries() -> None:
    q = S.quiet_hours
    assert quiet_release(sh(25, 21, 59, 59), q) == sh(25, 21, 59, 59)
    assert quiet_release(sh(25, 22), q) == sh(26, 7, 30)
    assert quiet_release(sh(26, 7, 30), q) == sh(26, 7, 30)
    # an aware time in another zone is compared in the quiet hours' zone
    utc_2300_sh = sh(25, 23).astimezone(ZoneInfo("UTC"))
    assert quiet_release(utc_2300_sh, q) == sh(26, 7, 30)


def test_quiet_hours_within_one_day() -> None:
    lunch = QuietHours(start=time(12), end=time(13, 30))
    assert quiet_release(sh(25, 12, 10), lunch) == sh(25, 13, 30)
    assert quiet_release(sh(25, 13, 30), lunch) == sh(25, 13, 30)
    assert quiet_release(sh(25, 23), lunch) == sh(25, 23)


def test_retries_honour_quiet_hours_but_not_the_window() -> None:
    assert release_at(sh(25, 23), False, S) == sh(26, 7, 30)
    assert release_at(sh(25, 10), False, S) == sh(25, 10)
    assert release_at(sh(25, 23), True, S) == sh(25, 23)


# -- backoff ------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (8, 256), (9, 300), (30, 300)]:
        draws = [backoff_s(attempt, S, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8  # it does spread over the whole range


# -- grouped text -------------------------------------------------------------------------------


def row(i: int, text: str | None = None) -> dict:
    ticket = f"2026112500{i:02d}"
    return {
        "id": i,
        "ticket": ticket,
        "text": text or f"【12345催办】工单{ticket}（市容）请于11月25日 14:30前签收。",
    }


def test_one_row_goes_as_written() -> None:
    r = row(1)
    assert compose_group([r]) == r["text"]


def test_a_group_has_a_header_and_each_ticket() -> None:
    text = compose_group([row(1), row(2), row(3)])
    assert text.startswith("【12345催办】您有3条提醒：1.工单")
    for i in (1, 2, 3):
        assert f"2026112500{i:02d}" in text
    assert text.count("【") == 1  # the tag is not repeated per item


def test_a_group_has_no_doubled_punctuation_and_one_acknowledgement_hint() -> None:
    a = "【12345督办】城管执法中队：工单A1（市容环境）答复时限11月25日14:30已到，仍未答复，请督办。回复1确认。"
    b = "【12345督办】市场监管所：工单A2（市场管理）回访不满意，请审核研判并督办重办。回复1确认。"
    text = compose_group([row(1, a) | {"ticket": "A1"}, row(2, b) | {"ticket": "A2"}])
    assert text == (
        "【12345督办】您有2条提醒：1.城管执法中队工单A1（市容环境）答复时限11月25日14:30已到，"
        "仍未答复，请督办；2.市场监管所工单A2（市场管理）回访不满意，请审核研判并督办重办。回复1确认。"
    )
    plain = compose_group([row(1), row(2)])
    assert "。；" not in plain and "。。" not in plain and plain.endswith("签收。")


def test_non_working_days_are_quiet_until_0730_of_the_next_working_day() -> None:
    import chinese_calendar

    def workday(d):
        return chinese_calendar.is_workday(d)

    saturday_noon = sh(28, 12)  # 2026-11-28 is a Saturday
    assert not_before(saturday_noon, False, S, workday) == sh(30, 7, 30)  # Monday
    assert not_before(saturday_noon, True, S, workday) == saturday_noon  # urgent: at once
    friday_night = sh(27, 23)
    assert not_before(friday_night, False, S, workday) == sh(30, 7, 30)
    assert not_before(friday_night, False, S) == sh(28, 7, 30)  # without the calendar
    # National Day 2026: 10-01..10-07 off; a message on 10-02 waits until 10-08 07:30
    holiday = datetime(2026, 10, 2, 10, tzinfo=SH)
    assert release_at(holiday, False, S, workday) == datetime(2026, 10, 8, 7, 30, tzinfo=SH)
    # a 调休 Saturday (2026-10-10) is a working day: the daytime window only
    tiaoxiu = datetime(2026, 10, 10, 10, tzinfo=SH)
    assert not_before(tiaoxiu, False, S, workday) == tiaoxiu + timedelta(seconds=60)
    assert quiet_release(sh(30, 10), S.quiet_hours, workday) == sh(30, 10)


def test_mixed_tags_use_the_supervision_header_and_long_items_are_never_cut() -> None:
    long = "【12345督办】" + "很长的说明" * 30
    text = compose_group([row(1), row(2, long)])
    assert text.startswith("【12345督办】您有2条提醒：")
    assert "工单2026112500" + "02" in text  # a text without its ticket gets it added
    assert "…" not in text and "很长的说明" * 30 in text  # the item's action stays whole


def test_render_replaces_the_plain_layout() -> None:
    seen: list[list[dict]] = []

    def render(rows: list[dict]) -> str:
        seen.append(rows)
        return f"共{len(rows)}条"

    assert compose_group([row(1), row(2)], render) == "共2条"
    assert [r["id"] for r in seen[0]] == [1, 2]


def test_split_keeps_each_group_within_the_segment_budget() -> None:
    rows = [row(i) for i in range(1, 13)]
    groups = split_groups(rows, max_segments=2)
    assert len(groups) > 1
    assert [r["id"] for g in groups for r in g] == list(range(1, 13))  # order kept, none lost
    for g in groups:
        assert segments(compose_group(g)) <= 2


def test_a_row_too_long_for_the_budget_goes_alone() -> None:
    huge = row(2, "【12345督办】" + "字" * 200)
    groups = split_groups([row(1), huge, row(3)], max_segments=1)
    assert [[r["id"] for r in g] for g in groups] == [[1], [2], [3]]


def test_settings_window_unit() -> None:
    s = DeliverySettings(group_window_s=300)
    assert not_before(sh(25, 10), False, s) - sh(25, 10) == timedelta(minutes=5)


def test_rows_of_solo_channels_go_alone_and_the_others_are_grouped() -> None:
    from typing import cast

    from supervisor.delivery.sending import group_rows
    from supervisor.storage.base import OutboxRow

    def out(i: int, channel: str, urgent: bool = False) -> OutboxRow:
        return cast(
            OutboxRow,
            row(i) | {"channel": channel, "urgent": urgent, "address": "+8613800000000",
                      "recipient": "p1"},
        )  # fmt: skip

    rows = [out(1, "sms"), out(2, "sms"), out(3, "voice"), out(4, "voice"), out(5, "voice", True)]
    ids = [[r["id"] for r in m] for m in group_rows(rows, S)]
    assert sorted(ids) == [[1, 2], [3, 4], [5]]
    # a template-only SMS provider (aliyun_sms, tencent_sms): its rows never share a message
    ids = [[r["id"] for r in m] for m in group_rows(rows, S, frozenset({"sms"}))]
    assert sorted(ids) == [[1], [2], [3, 4], [5]]
