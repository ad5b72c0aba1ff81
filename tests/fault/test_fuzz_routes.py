"""Issue 18: fuzzing every route in the suite, bounded in examples and time.

- The API: schemathesis (a real client, its CLI) against /api/v1/openapi.json of a running
  daemon on 127.0.0.1, every check (`--checks all`: no server error, statuses, content types
  and bodies as documented, invalid data refused, valid data accepted...), its examples,
  coverage, fuzzing and stateful phases. The statuses a valid request may still get (a ticket
  that does not exist, an acknowledgement of nothing open, an event in the future or an id
  reused) are named in schemathesis.toml here.
- The desk: hypothesis drives the HTML pages, their JSON twins and the forms, signed in as a
  supervisor and as a unit's liaison: random query values on every GET (NUL, surrogates'
  replacements, huge numbers, far dates, junk), random fields on every POST. Never a 5xx.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.deskkit import TOKEN, desk_daemon, events, post_events, settled

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


async def test_schemathesis_finds_no_500_and_no_undocumented_answer(daemon, tmp_path):
    url = f"http://127.0.0.1:{daemon.port}/api/v1/openapi.json"
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "--config-file", str(HERE / "schemathesis.toml"), "run", url,
        "--checks", "all", "--seed", "18", "--workers", "1",
        "--header", f"Authorization: Bearer {TOKEN}", "--max-time", "30",
        "--request-timeout", "10", "--suppress-health-check", "all",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "passed" in text
