"""`ingest` refuses events ahead of the clock by more than the tolerance (history is fine);
nothing is stored, and the refusal happens before any database is opened."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from supervisor.cli import main


def test_ingest_refuses_a_future_event(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    monkeypatch.setenv("HOTLINE_CALLER_KEY", "k")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never reached
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    path = tmp_path / "events.jsonl"
    rows = [{"id": "h1", "ticket": "H1", "type": "created", "at": "2021-03-01T09:00:00+08:00"},
            {"id": "f1", "ticket": "F1", "type": "created", "at": ahead}]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert main(["--config", "config", "ingest", str(path)]) == 1
    err = capsys.readouterr().err
    assert "event f1: at:" in err and "in the future" in err and "nothing was stored" in err
