"""The command line in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

CLI = [sys.executable, str(ROOT / "main.py")]


def run(*args: str, cwd: Path = ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    return cfg


def test_check_passes_on_the_shipped_config_and_warns_about_2027():
    proc = run("check")
    assert proc.returncode == 0, proc.stderr
    assert "ok: 17 rules" in proc.stdout
    assert "no official holiday data for 2027" in proc.stdout


def test_check_names_file_and_line_of_a_misspelt_key(config_copy: Path):
    settings = config_copy / "settings.yaml"
    lines = settings.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("port:"))
    settings.write_text(
        "\n".join(line.replace("port:", "prot:") for line in lines) + "\n", encoding="utf-8"
    )
    proc = run("--config", str(config_copy), "check")
    assert proc.returncode == 1
    assert f"{settings}:{number}: http.prot: unknown key" in proc.stderr
    assert "did you mean 'port'" in proc.stderr


def test_check_names_file_and_line_of_a_rule_mistake(config_copy: Path):
    rules = config_copy.parent / "rules" / "reply.yaml"
    text = rules.read_text(encoding="utf-8")
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "template: reply_urgent" in line)
    rules.write_text(
        text.replace("template: reply_urgent", "template: reply_urgnet", 1), encoding="utf-8"
    )
    proc = run("--config", str(config_copy), "check")
    assert proc.returncode == 1
    assert (
        f"{rules}:{number}: rules.0.steps.1.template: unknown template 'reply_urgnet'"
        in proc.stderr
    )


def test_check_reports_a_rule_that_can_never_fire(config_copy: Path):
    rules = config_copy.parent / "rules" / "callback.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(
        text.replace(
            "when: {status: replied}", "when: {status: replied, all: [{status: closed}]}", 1
        ),
        encoding="utf-8",
    )
    proc = run("--config", str(config_copy), "check")
    assert proc.returncode == 1
    assert "can never hold, so the rule can never fire" in proc.stderr


def test_simulate_prints_one_json_object_per_notification(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(json.dumps(e, ensure_ascii=False) for e in [
            {"id": "1", "ticket": "T1", "type": "created", "at": "2026-09-30T16:30:00+08:00", "kind": "complaint", "category": "市容环境", "caller": "13812345678"},
            {"id": "2", "ticket": "T1", "type": "dispatched", "at": "2026-09-30T16:30:00+08:00", "unit": "城管执法中队"},
        ]) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    proc = run("simulate", str(events), "--until", "2026-10-08T12:00:00+08:00")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    sign = [x for x in lines if x["rule"] == "sign-off"]
    assert [(x["at"], x["step"], x["role"], x["channel"]) for x in sign] == [
        ("2026-10-08T09:30:00+08:00", 0, "liaison", "sms"),
        ("2026-10-08T10:00:00+08:00", 1, "head", "sms"),
        ("2026-10-08T10:00:00+08:00", 1, "head", "voice"),
        ("2026-10-08T11:00:00+08:00", 2, "supervisor", "sms"),
    ]
    for x in lines:
        assert {"at", "ticket", "rule", "step", "role", "to", "channel", "text"} <= set(x)
    assert [x["at"] for x in lines] == sorted(x["at"] for x in lines)
    assert "13812345678" not in proc.stdout and "1381234" not in proc.stdout


def test_simulate_names_the_line_of_a_bad_event(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "1", "ticket": "T1", "type": "created", "at": "2026-09-30T16:30:00+08:00"}\n\n{"id": "2", "ticket": "T1", "type": "dispatched", "at": "2026-09-30T16:30:00+08:00"}\n',
        encoding="utf-8",
    )
    proc = run("simulate", str(events))
    assert proc.returncode == 1
    assert f"{events}:3: unit: is required for a dispatched event" in proc.stderr


def test_test_rules_runs_the_shipped_rule_tests():
    proc = run("test-rules", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout


def test_test_rules_fails_on_a_wrong_expectation(tmp_path: Path):
    t = tmp_path / "wrong.yaml"
    t.write_text(
        """tests:
  - name: signed in time, but we wrongly expect a reminder
    events:
      - {at: "2026-11-23T10:00:00+08:00", type: created, kind: complaint}
      - {at: "2026-11-23T10:00:00+08:00", type: dispatched, unit: 城管执法中队}
      - {at: "2026-11-23T10:20:00+08:00", type: signed, unit: 城管执法中队}
    rules: [sign-off]
    expect:
      - {at: "2026-11-23T11:30:00+08:00", rule: sign-off, step: 0, role: liaison}
""",
        encoding="utf-8",
    )
    proc = run("test-rules", str(t))
    assert proc.returncode == 1
    assert (
        "FAIL" in proc.stdout
        and "expected, not produced" in proc.stdout
        and "0 passed, 1 failed" in proc.stdout
    )


def test_schema_matches_the_committed_file():
    proc = run("schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == json.loads(
        (ROOT / "rules" / "rule-file.schema.json").read_text(encoding="utf-8")
    )


def test_ingest_feeds_a_file_through_the_same_path(tmp_path: Path, pg_url: str):
    import os

    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "1", "ticket": "T1", "type": "created", "at": "2026-11-23T10:00:00+08:00", "caller": "13812345678"}\n'
        '{"id": "2", "ticket": "T1", "type": "dispatched", "at": "2026-11-23T10:00:00+08:00", "unit": "城管执法中队"}\n',
        encoding="utf-8",
    )
    env = {**os.environ, "DATABASE_URL": pg_url, "HOTLINE_CALLER_KEY": "k"}
    for expected in ("2 events stored, 0 duplicates", "0 events stored, 2 duplicates"):
        proc = subprocess.run(
            [*CLI, "ingest", str(events)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        assert expected in proc.stdout


def test_simulate_deliveries_applies_quiet_hours_and_grouping(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    rows = [
        {
            "id": "1",
            "ticket": "U1",
            "type": "created",
            "at": "2026-11-24T23:10:00+08:00",
            "kind": "help",
            "urgent": True,
        },
        {
            "id": "2",
            "ticket": "U1",
            "type": "dispatched",
            "at": "2026-11-24T23:10:00+08:00",
            "unit": "城管执法中队",
        },
        {
            "id": "3",
            "ticket": "B1",
            "type": "created",
            "at": "2026-11-24T16:00:00+08:00",
            "kind": "complaint",
        },
        {
            "id": "4",
            "ticket": "B1",
            "type": "dispatched",
            "at": "2026-11-24T16:00:00+08:00",
            "unit": "城管执法中队",
        },
        {
            "id": "5",
            "ticket": "B2",
            "type": "created",
            "at": "2026-11-24T16:00:00+08:00",
            "kind": "complaint",
        },
        {
            "id": "6",
            "ticket": "B2",
            "type": "dispatched",
            "at": "2026-11-24T16:00:00+08:00",
            "unit": "城管执法中队",
        },
    ]
    events.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    proc = run("simulate", str(events), "--until", "2026-11-25T09:10:00+08:00", "--deliveries")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    urgent = [d for d in out if d["tickets"] == ["U1"]]
    # the urgent ticket's messages go at night, at once
    assert (
        urgent
        and all(not d["held"] for d in urgent)
        and urgent[0]["at"] == "2026-11-24T23:10:00+08:00"
    )
    # B1 and B2's sign-off reminders (09:00 next morning) go to the liaison as one SMS, 1 min later
    grouped = [d for d in out if set(d["tickets"]) == {"B1", "B2"}]
    assert (
        grouped
        and grouped[0]["at"] == "2026-11-25T09:01:00+08:00"
        and "2件工单：" in grouped[0]["text"]
        and grouped[0]["held_by"] == "grouping"
    )
    assert all(d["held_by"] is None for d in urgent)
    # 16:00's non-urgent messages due overnight wait for the end of quiet hours, and say so
    night = [d for d in out if d["held_by"] == "quiet_hours"]
    assert all(d["at"].endswith("07:30:00+08:00") for d in night)
    # nothing non-urgent goes between 22:00 and 07:30
    for d in out:
        if not d["urgent"]:
            assert not ("T22:" <= d["at"][10:14] or d["at"][11:16] < "07:30"), d


def test_simulate_deliveries_name_each_ticket_once(tmp_path: Path):
    """A unit missing from the directory: at the reply deadline the supervisor stands in for the
    head and is also the step's own recipient, so one SMS goes; it names its ticket once."""
    events = tmp_path / "events.jsonl"
    rows = [
        {"id": "1", "ticket": "M1", "type": "created", "at": "2026-12-30T09:10:00+08:00",
         "kind": "complaint", "category": "物业管理"},
        {"id": "2", "ticket": "M1", "type": "dispatched", "at": "2026-12-30T10:00:00+08:00",
         "unit": "没有登记的单位"},
        {"id": "3", "ticket": "M1", "type": "signed", "at": "2026-12-30T10:30:00+08:00",
         "unit": "没有登记的单位"},
    ]  # fmt: skip
    events.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    proc = run("simulate", str(events), "--until", "2027-01-08T12:00:00+08:00", "--deliveries")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    due = [d for d in out if d["at"].startswith("2027-01-07T10:0") and d["channel"] == "sms"]
    assert len(due) == 1 and due[0]["to"] == "zhang-min", due
    assert due[0]["tickets"] == ["M1"]
    assert due[0]["text"].count("工单M1") == 1
    assert all(len(d["tickets"]) == len(set(d["tickets"])) for d in out)
