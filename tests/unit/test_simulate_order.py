"""`simulate` replays events sorted by `at` (stable) and says so; --as-arrived keeps file order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supervisor.application import validate_batch
from supervisor.cli import main
from supervisor.tools.simulate import in_time_order, simulate
from tests.helpers import ev, runtime, sh

# grouped by ticket, as exports often are: T2's events come after T1's later ones
GROUPED = [
    ev("T1", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
    ev("T1", 2, "dispatched", sh(2026, 11, 23, 9, 0), unit="城管执法中队"),
    ev("T1", 3, "signed", sh(2026, 11, 23, 15, 0), unit="城管执法中队"),
    ev("T2", 1, "created", sh(2026, 11, 23, 9, 0), kind="complaint"),
    ev("T2", 2, "dispatched", sh(2026, 11, 23, 9, 0), unit="市场监管所"),
]


def _events():
    return validate_batch(GROUPED, b"k")


def test_in_time_order_is_stable_and_counts_the_moved():
    ordered, moved = in_time_order(_events())
    assert [e.id for e in ordered] == ["T1-1", "T1-2", "T2-1", "T2-2", "T1-3"]
    assert moved == 3


async def test_a_file_grouped_by_ticket_is_not_taken_for_late_arrivals():
    until = sh(2026, 11, 24, 12, 0)
    sorted_run = await simulate(_events(), runtime(), until)
    arrived = await simulate(_events(), runtime(), until, as_arrived=True)
    t2 = [(n.at, n.rule, n.step) for n in sorted_run if n.ticket == "T2" and n.rule == "sign-off"]
    # in time order T2's liaison is reminded 30 working minutes before its 11:00 deadline
    assert t2[0] == (sh(2026, 11, 23, 10, 30), "sign-off", 0)
    late = [(n.at, n.step) for n in arrived if n.ticket == "T2" and n.rule == "sign-off"]
    assert late[0][0] == sh(2026, 11, 23, 15, 0)  # as arrived: only after T1's 15:00 event


def test_the_cli_says_which_order_it_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in GROUPED), encoding="utf-8")
    until = "2026-11-24T12:00:00+08:00"
    assert main(["--config", "config", "simulate", str(path), "--until", until]) == 0
    err = capsys.readouterr().err
    assert "sorted by `at`" in err and "3 of 5 were not in that order" in err
    assert main(["--config", "config", "simulate", str(path), "--until", until, "--as-arrived"]) == 0
    assert "file order (--as-arrived)" in capsys.readouterr().err


async def test_deliveries_say_why_a_message_waited():
    from supervisor.tools.simulate import plan_deliveries
    from tests.helpers import loaded

    lo = loaded()
    raws = [
        ev("B1", 1, "created", sh(2026, 11, 24, 9, 0), kind="complaint"),
        ev("B1", 2, "dispatched", sh(2026, 11, 24, 9, 0), unit="城管执法中队"),
        ev("B1", 3, "signed", sh(2026, 11, 24, 9, 10), unit="城管执法中队"),
        ev("B1", 4, "replied", sh(2026, 11, 24, 23, 0), unit="城管执法中队"),  # no contact before
    ]
    notes = await simulate(validate_batch(raws, b"k"), runtime(), sh(2026, 11, 25, 9, 10))
    out = plan_deliveries(notes, lo.settings.delivery, None)
    night = [d for d in out if d["rules"] == ["no-contact-before"]]
    assert night and night[0]["held_by"] == "quiet_hours"
    assert night[0]["at"] == "2026-11-25T07:30:00+08:00"
