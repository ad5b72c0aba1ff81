"""The desk's words (desk/format.py): urgent deadlines in natural time, the acknowledger by name
and role, schedules in words, rules by name."""

from __future__ import annotations

from datetime import timedelta

from supervisor.desk import format as fmt
from supervisor.policy.rulebook import display_name
from tests.helpers import loaded, sh


def test_an_urgent_deadline_on_a_sunday_is_counted_in_natural_minutes() -> None:
    cal = loaded().policy.calendar
    now = sh(2026, 12, 6, 10, 0)  # a Sunday: no working minute at all
    past = fmt.deadline_state("sign_by", now - timedelta(minutes=16), now, cal, natural=True)
    ahead = fmt.deadline_state("sign_by", now + timedelta(minutes=28), now, cal, natural=True)
    assert (past.text, past.overdue, past.to_json()["minutes_left"]) == ("已超期16分钟", True, -16)
    assert (ahead.text, ahead.overdue) == ("剩余28分钟", False)
    assert ahead.to_json()["working_minutes_left"] == 0  # the API's field keeps its meaning
    assert ahead.to_json()["natural"] is True
    # the same deadline in working time says what a non-urgent ticket's would
    working = fmt.deadline_state("sign_by", now - timedelta(minutes=16), now, cal)
    assert working.text == "已超期不足1个工作分钟"


def test_natural_amounts() -> None:
    assert fmt.natural_amount(16) == "16分钟"
    assert fmt.natural_amount(-65) == "1小时5分钟"
    assert fmt.natural_amount(60 * 24 * 2 + 180 + 7) == "2天3小时"
    assert fmt.natural_amount(1440) == "1天"
    assert fmt.natural_amount(0) == "不足1分钟"


def test_the_acknowledger_is_named_with_a_role_in_chinese() -> None:
    directory = loaded().directory
    assert fmt.acker("zhang-min (supervisor)", directory) == "张敏（街道热线专员）"
    assert fmt.acker("zhao-gang", directory) == "赵刚"  # an SMS reply records the contact id
    assert fmt.acker("demo (supervisor)", directory) == "demo（街道热线专员）"  # an account name
    assert fmt.acker(None, directory) == ""


def test_schedules_and_names_in_words() -> None:
    assert fmt.schedule_text("first_working_day_of_week", "09:00") == "每周第一个工作日09:00"
    assert fmt.schedule_text("working_days", "08:30") == "每个工作日08:30"
    assert display_name("签收时限", "whatever", "sign-off") == "签收时限"
    assert display_name(None, "回访不满意：短信告知单位负责人", "dissatisfied") == "回访不满意"
    assert display_name(None, "no colon here", "my-rule") == "my-rule"
    policy = loaded().policy
    assert all(r.name and r.name != r.id for r in (*policy.rules, *policy.reports))
