"""答复审核's pure core (core/review.py) and the review: section's checks at `check` time."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest

from supervisor.config.yamlconf import ConfigInvalid
from supervisor.core.clock import SHANGHAI
from supervisor.core.privacy import caller_hash
from supervisor.core.review import Finding, Subject, highlight, reply_text, review
from supervisor.engine.policy import load_policy
from supervisor.policy.rulebook import rule_files
from supervisor.vocabulary.review import Check, ReviewConfig
from tests.helpers import ROOT, loaded

AT = datetime(2026, 11, 25, 15, tzinfo=SHANGHAI)
DISPATCHED = datetime(2026, 11, 23, 9, tzinfo=SHANGHAI)


def subject(text: str, **kw) -> Subject:
    return Subject(
        event=kw.pop("event", "replied"), text=text, at=AT, dispatched_at=DISPATCHED, **kw
    )


def test_the_text_an_event_offers():
    assert reply_text({"unit": "U", "result": "已清理"}) is None  # a feed without replies' text
    assert reply_text({"text": ""}) == ""  # blank: reviewed as blank
    assert reply_text({"text": "已处理", "handler": "王强", "contact": "13800138011"}) == (
        "已处理\n承办人：王强\n联系电话：13800138011"
    )
    assert reply_text({"reason": "非本单位职责"}) == "非本单位职责"


def test_forbidden_words_unless_a_reason_is_given():
    cfg = ReviewConfig((Check("push", "forbid", "推诿用语", "说明依据", words=("不归我单位管",),
                              unless=("依据", "应由")),))  # fmt: skip
    (f,) = review(subject("此事不归我单位管。"), cfg)
    assert f.check == "push" and f.spans == ((2, 8),)
    assert review(subject("依据职责清单，此事不归我单位管，应由物业办理。"), cfg) == ()


def test_the_callers_full_number_is_found_by_its_keyed_hash():
    key = b"k"
    cfg = ReviewConfig((Check("num", "caller_number", "泄露来电号码", "勿写号码"),))
    s = subject("已电话联系13912345678告知", caller_hash=caller_hash("139 1234 5678", key),
                hash_number=lambda n: caller_hash(n, key))  # fmt: skip
    assert [f.check for f in review(s, cfg)] == ["num"]
    other = subject("承办人电话13800138011", caller_hash=caller_hash("13912345678", key),
                    hash_number=lambda n: caller_hash(n, key))  # fmt: skip
    assert review(other, cfg) == ()


def test_dates_before_dispatch_or_after_the_reply_but_not_promises():
    cfg = ReviewConfig((Check("dates", "dates", "日期有误", "核对", unless=("承诺",)),))
    assert review(subject("11月24日到现场"), cfg) == ()
    assert review(subject("11月20日到现场"), cfg)[0].spans == ((0, 6),)
    assert review(subject("11月28日电话告知"), cfg) != ()
    assert review(subject("店主承诺于12月10日前整改"), cfg) == ()


def test_phone_numbers_and_deadlines():
    cfg = ReviewConfig((
        Check("phone", "phone_format", "电话号码有误", "核对", events=("replied",)),
        Check("late", "before_deadline", "延期申请超时", "时限前申请", events=("extension_requested",)),
    ))  # fmt: skip
    assert review(subject("联系电话：0571-87654321"), cfg) == ()
    assert [f.check for f in review(subject("联系电话：1380013801"), cfg)] == ["phone"]
    late = subject(
        "因故申请延期",
        event="extension_requested",
        reply_by=datetime(2026, 11, 24, tzinfo=SHANGHAI),
    )
    assert [f.check for f in review(late, cfg)] == ["late"]


def test_an_extension_date_is_its_until_field_later_than_the_deadline():
    cfg = ReviewConfig((
        Check("date", "extension_date", "延期日期", "须晚于现办理时限", events=("extension_requested",)),
    ))  # fmt: skip
    deadline = datetime(2026, 11, 30, 9, 10, tzinfo=SHANGHAI)

    def ask(until: datetime | None, text: str = "需协调多个部门") -> list[str]:
        s = subject(text, event="extension_requested", reply_by=deadline, until=until)
        return [f.check for f in review(s, cfg)]

    # the date is the event's field: a reason that does not repeat it passes
    assert ask(datetime(2026, 12, 8, 17, 30, tzinfo=SHANGHAI)) == []
    assert ask(deadline) == ["date"]  # extends nothing
    assert ask(datetime(2026, 11, 27, tzinfo=SHANGHAI)) == ["date"]  # earlier than the deadline
    assert ask(datetime(2026, 11, 25, 14, tzinfo=SHANGHAI)) == ["date"]  # before the request
    assert ask(None) == ["date"]
    # a date written in the reason does not stand in for the field
    assert ask(deadline, "需协调，申请延期至12月8日") == ["date"]
    # not for replies
    replied = subject("已处理", until=deadline)
    assert review(replied, cfg) == ()


def test_near_identical_replies_of_other_tickets():
    text = "经核实，已到现场查看并责令整改，现已整改完毕，已电话告知诉求人，诉求人表示满意。"
    cfg = ReviewConfig(
        (Check("same", "near_identical", "答复雷同", "针对本诉求答复", similarity=95),)
    )
    assert review(subject(text, others=[text]), cfg)[0].check == "same"
    assert (
        review(
            subject(text, others=["另一件工单：路灯已修复，已电话告知诉求人，诉求人表示满意。"]),
            cfg,
        )
        == ()
    )


def test_highlight_cuts_the_text_where_findings_point():
    pieces = highlight("此事不归我单位管。", [Finding("p", "推诿用语", "", ((2, 8),))])
    assert pieces == [("此事", False), ("不归我单位管", True), ("。", False)]


def rules_copy(tmp_path, text: str):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "review.yaml").write_text(text, encoding="utf-8")
    return rules


def test_check_names_file_and_line_of_a_bad_review_check(tmp_path):
    rules = rules_copy(
        tmp_path,
        """review:
  checks:
    - id: contact
      kind: require
      name: 联系时间方式
      message: 请写明联系时间
      patterns: ['(电话']
    - id: push
      kind: forbid
      name: 推诿用语
      message: 说明依据
""",
    )
    lo = loaded()
    with pytest.raises(ConfigInvalid) as info:
        load_policy(rule_files(rules), lo.calendar, templates=lo.templates)
    text = str(info.value)
    assert "review.yaml:7" in text and "not a regular expression" in text
    assert "review.yaml:8" in text and "needs words or patterns" in text


def test_an_unknown_kind_is_refused_with_its_line(tmp_path):
    rules = rules_copy(
        tmp_path, "review:\n  checks:\n    - {id: x, kind: spelling, name: 错字, message: 改}\n"
    )
    lo = loaded()
    with pytest.raises(ConfigInvalid) as info:
        load_policy(rule_files(rules), lo.calendar, templates=lo.templates)
    assert "review.yaml:3" in str(info.value) and "kind" in str(info.value)


def test_a_reply_sent_back_is_no_reply_until_passed():
    from supervisor.core.events import parse_event
    from supervisor.core.state import fold
    from tests.helpers import ev, sh

    raws = [
        ev("T", 1, "created", sh(2026, 11, 23, 9)),
        ev("T", 2, "dispatched", sh(2026, 11, 23, 9, 10), unit="城管执法中队"),
        ev("T", 3, "signed", sh(2026, 11, 23, 9, 40), unit="城管执法中队"),
        ev("T", 4, "replied", sh(2026, 11, 25, 15), unit="城管执法中队", text="已处理。"),
        {**ev("T", 5, "reviewed", sh(2026, 11, 25, 15), of="T-4", kind="replied", outcome="returned",
              checks=["too-short"], findings=["内容过简：请写明过程"]), "id": "T-4~review"},
    ]  # fmt: skip
    events = [parse_event(r) for r in raws]
    sent_back = fold("T", events)
    assert sent_back.status == "signed" and sent_back.replied_at is None
    assert sent_back.review_findings == ("内容过简：请写明过程",)
    accepted = fold("T", [*events, parse_event(ev("T", 6, "review_decided", sh(2026, 11, 25, 16),
                                                  of="T-4", decision="accept", note="已电话核实"))])  # fmt: skip
    assert accepted.status == "replied" and accepted.replied_at == sh(2026, 11, 25, 15)
    assert accepted.review_outcome == "passed" and accepted.review_note == "已电话核实"


def test_the_recent_replies_offered_for_comparison_decide_as_all_of_them_would():
    """Reviewer.others leaves out what cannot reach the threshold (lengths too far apart, texts
    the check does not compare, events it skips): the near-identical finding is the same as
    against every remembered reply of other tickets."""
    import random

    from supervisor.reviewing import Reviewer

    rnd = random.Random(7)
    base = "经现场核实，该路段路灯线路老化已更换，已电话告知诉求人，诉求人表示满意。"
    cfg = ReviewConfig((
        Check("same", "near_identical", "答复雷同", "针对本诉求答复", similarity=90,
              events=("replied",)),
        Check("same2", "near_identical", "答复雷同", "针对本诉求答复", similarity=70,
              events=("returned",)),
    ))  # fmt: skip
    reviewer = Reviewer()

    def text() -> str:
        cut = rnd.randint(0, len(base))
        return base[:cut] + "".join(rnd.choice("已处理完毕。") for _ in range(rnd.randint(0, 12)))

    for i in range(400):
        t, ticket, event = text(), f"T{rnd.randint(0, 60)}", rnd.choice(["replied", "returned"])
        every = [x for tk, x, _ in reviewer.recent.get("U", ()) if tk != ticket]
        offered = reviewer.others("U", ticket, t, cfg, event)
        assert set(offered) <= set(every)
        want = review(subject(t, event=event, others=every), cfg)
        assert review(subject(t, event=event, others=offered), cfg) == want, (i, t)
        reviewer.remember("U", ticket, t.strip())
