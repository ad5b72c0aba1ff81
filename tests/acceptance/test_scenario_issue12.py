"""Issue 12's scenario through `simulate` in a subprocess: a ticket handled three times, a group
complaint and a matter reported by three neighbours under two categories produce exactly the
messages the default policy asks for, and nothing else."""

from __future__ import annotations

import json

from tests.acceptance.test_cli import run
from tests.helpers import ROOT

SCENARIO = ROOT / "rules" / "scenarios" / "issue12.jsonl"

EXPECTED = [  # (at, ticket, rule, role, to): worked out in the scenario's comments below
    # R1's first callback is dissatisfied: unit head and supervisor (审核研判)
    ("2026-11-17T15:00:00+08:00", "R1", "dissatisfied", "head", "chen-lei"),
    ("2026-11-17T15:00:00+08:00", "R1", "dissatisfied", "supervisor", "zhang-min"),
    # the 3rd ticket about 和平里小区 within 30 days (H1, H2, H3; three callers, two categories)
    ("2026-11-18T09:00:00+08:00", "H3", "same-matter", "supervisor", "zhang-min"),
    ("2026-11-18T09:00:00+08:00", "H3", "same-matter", "grid", "xu-ting"),
    # the 3rd neighbour about 幸福路12号 (two categories, the address written three ways)
    ("2026-11-18T10:00:00+08:00", "N3", "same-matter", "supervisor", "zhang-min"),
    ("2026-11-18T10:00:00+08:00", "N3", "same-matter", "grid", "liu-yang"),
    # R1's second dissatisfaction: the leader, proposing 有请当事人会办
    ("2026-11-19T15:00:00+08:00", "R1", "dissatisfied-again", "leader", "li-hua"),
    # the 5th different caller about 和平里小区 within 7 days: once, supervisor and leader
    ("2026-11-20T09:00:00+08:00", "H5", "group-complaint", "supervisor", "zhang-min"),
    ("2026-11-20T09:00:00+08:00", "H5", "group-complaint", "leader", "li-hua"),
    # R1 re-opened a second time (its third handling): the leader, with the history
    ("2026-11-20T10:00:00+08:00", "R1", "handled-three-times", "leader", "li-hua"),
    # Monday 11-23 09:00, the first working day of the week: the look-back lists R1
    ("2026-11-23T09:00:00+08:00", "-", "look-back", "supervisor", "zhang-min"),
]


def test_the_issue12_scenario_produces_exactly_the_messages_domain_md_asks_for():
    proc = run("simulate", str(SCENARIO), "--until", "2026-11-24T00:00:00+08:00")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(n["at"], n["ticket"], n["rule"], n["role"], n["to"]) for n in out] == EXPECTED
    texts = {(n["ticket"], n["rule"], n["role"]): n["text"] for n in out}
    assert texts[("H5", "group-complaint", "leader")] == (
        "【12345督办】群体诉求：7天内5位市民反映同一事项（和平里小区3号楼602室），"
        "工单H1、H2、H3、H4、H5，建议有请当事人会办，请领导督办。回复1确认。"
    )
    assert texts[("N3", "same-matter", "grid")] == (
        "【12345提示】30天内3件工单反映同一事项（幸福路12号502室），工单N1、N2、N3，"
        "请上门了解、源头化解。"
    )
    assert texts[("R1", "handled-three-times", "leader")] == (
        "【12345督办】物业管理办公室：工单R1（物业管理）第3次办理：11月16日派物业管理办公室，"
        "11月17日回复，11月17日回访不满意，11月18日第1次重办，11月19日回复，11月19日回访不满意，"
        "11月20日第2次重办。建议有请当事人会办，请领导督办。回复1确认。"
    )
    assert texts[("-", "look-back", "supervisor")] == (
        "【12345回头看】张敏您好，上周不满意及重办工单1件：R1（物业管理办公室）重办中，回访不满意。请跟进督办。"
    )
    # callers' numbers never reach a message
    scenario = SCENARIO.read_text(encoding="utf-8")
    for number in {n for n in scenario.split('"') if n.startswith("139")}:
        assert number not in proc.stdout and number[-4:] not in proc.stdout


def test_simulate_warns_on_stderr_about_a_year_without_holiday_data(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "e1", "ticket": "T1", "type": "created", "at": "2026-12-31T16:00:00+08:00"}\n'
        '{"id": "e2", "ticket": "T1", "type": "dispatched", "at": "2026-12-31T16:00:00+08:00",'
        ' "unit": "城管执法中队"}\n',
        encoding="utf-8",
    )
    proc = run("simulate", str(events), "--until", "2027-01-05T00:00:00+08:00")
    assert proc.returncode == 0, proc.stderr
    assert "the simulation used 2027, which has no official holiday data" in proc.stderr
    # 元旦 2027 is a statutory holiday: no digest on Friday 01-01, the sign-off ladder and the
    # digest run on Monday 01-04
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(n["at"][:16], n["rule"], n["role"]) for n in out][:2] == [
        ("2027-01-04T08:30", "digest", "liaison"),
        ("2027-01-04T09:00", "sign-off", "liaison"),
    ]
