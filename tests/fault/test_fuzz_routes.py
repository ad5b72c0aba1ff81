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
from urllib.parse import quote, urlencode

import aiohttp
import pytest
import yarl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.deskkit import TOKEN, csrf_of, desk_daemon, events, post_events, settled, sign_in

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


async def _schemathesis(url: str, cwd: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "--config-file", str(HERE / "schemathesis.toml"), "run", url,
        "--checks", "all", "--seed", os.environ.get("FUZZ_SEED", "18"), "--workers", "1",
        "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "10",
        "--suppress-health-check", "all", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    return text


async def test_schemathesis_finds_no_500_and_no_undocumented_answer(daemon, tmp_path):
    """Bounded, each phase on its own: the coverage phase (every parameter's edge values, some
    2,300 requests, about 50 s in full) for 15 s, random fuzzing for 15 examples an operation,
    the stateful phase (acknowledging what was posted, through the document's links) for 10.
    Fuzzing is bounded by examples, not by a time budget shared with the coverage phase: under
    the parallel suite's load the coverage phase took most of a shared 18 s and left fuzzing too
    little to finish a pass."""
    url = f"http://127.0.0.1:{daemon.port}/api/v1/openapi.json"
    text = await _schemathesis(url, tmp_path, "--phases", "coverage", "--max-time", "15")
    text += await _schemathesis(url, tmp_path, "--phases", "fuzzing", "--max-examples", "15")
    text += await _schemathesis(url, tmp_path, "--phases", "stateful", "--max-examples", "10")
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in text, f"the {phase} phase did not run to a pass:\n{text[-5000:]}"


# --- the desk -----------------------------------------------------------------------------------

DESK_FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GETS = [
    "/", "/overview.json", "/tickets", "/tickets.json", "/units", "/units.json", "/messages",
    "/messages.json", "/rules", "/rules.json", "/calendar", "/calendar.json", "/tickets/A100",
    "/tickets/A100.json", "/tickets/C300", "/stats", "/stats.json", "/stats/export.csv",
    "/import", "/signin", "/api/v1/tickets",
    # the pages of issues 18-21: accounts, audit, review queue, registered demands, the grid view
    "/account", "/accounts", "/accounts.json", "/audit", "/audit.json", "/audit/export.csv",
    "/audit/export.xlsx", "/reviews", "/reviews.json", "/demands/new", "/grid", "/grid.json",
]  # fmt: skip
NAMES = ["status", "unit", "category", "urgent", "view", "from", "to", "q", "after", "limit",
         "before", "month", "msg", "next", "rule", "cycle", "csrf", "token", "login",
         "action", "actor", "notice", "year", "replace", "of", "decision", "note", "summary",
         "address", "grid", "caller", "kind", "channel", "code", "password", "new_password"]  # fmt: skip
# text a URL or a form can carry (a lone surrogate cannot be encoded as UTF-8 by the client)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
values = st.one_of(
    text,
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from([
        "", "\x00", "a\x00b", "9999-12-31", "0001-01-01", "9999-12", "0001-01", "2026-13",
        "2026-02-30", "2099-12", "2100-01-01", "9223372036854775808", "99999999999", "-1", "0",
        "1e309", "NaN", "%", "%00", "' OR 1=1 --", "<script>", "../../etc/passwd", "//evil.example",
        "/\\evil", "\t/x", "true", "false", "overdue", "signed", "城管执法中队", "工单", "１２３", "\x80", "é",
        "x" * 5000, "REVNTy0xfA", "LXzvvL9B",  # a made-up cursor, base64 of "-|\x00"
    ]),
)  # fmt: skip
queries = st.dictionaries(st.one_of(st.sampled_from(NAMES), text), values, max_size=5)


@pytest.fixture
async def desk(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    sessions = {}
    for login in ("zhang-min", "wang-qiang"):  # a supervisor, and a unit's liaison
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        assert await sign_in(http, base, login) == 302
        csrf = csrf_of(await (await http.get(f"{base}/tickets/A100")).text())
        sessions[login] = (http, csrf)
    yield base, sessions
    for http, _ in sessions.values():
        await http.close()


def _ok(status: int, what: str, body: str) -> None:
    assert status < 500, f"{status} for {what}: {body[:300]}"


@DESK_FUZZ
@given(
    login=st.sampled_from(["zhang-min", "wang-qiang"]),
    path=st.one_of(st.sampled_from(GETS), text.map(lambda t: "/tickets/" + quote(t, safe=""))),
    query=queries,
)
async def test_desk_pages_and_twins_never_5xx(desk, login, path, query):
    base, sessions = desk
    http, _ = sessions[login]
    headers = {"Authorization": f"Bearer {TOKEN}"} if path.startswith("/api/") else {}
    resp = await http.get(
        yarl.URL(base + path, encoded=True).update_query(query), headers=headers,
        allow_redirects=False,
    )  # fmt: skip
    _ok(resp.status, f"GET {path} {query!r} as {login}", await resp.text(errors="replace"))


@DESK_FUZZ
@given(
    login=st.sampled_from(["zhang-min", "wang-qiang"]),
    target=st.sampled_from(["/tickets/A100/ack", "/tickets/C300/ack", "/tickets/NOPE/ack",
                            "/import/confirm", "/import/preview", "/signin", "/calendar/preview",
                            "/calendar/import", "/reviews/decide", "/demands", "/accounts/unlock",
                            "/accounts/end-sessions", "/accounts/reset-2fa", "/account/password",
                            "/account/recovery", "/signin/code"]),  # fmt: skip
    form=queries,
    with_csrf=st.booleans(),
)
async def test_desk_forms_never_5xx(desk, login, target, form, with_csrf):
    base, sessions = desk
    http, csrf = sessions[login]
    data = {**form, **({"csrf": csrf} if with_csrf else {})}
    resp = await http.post(
        base + target, data=urlencode(data).encode(), allow_redirects=False,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    _ok(resp.status, f"POST {target} {data!r} as {login}", await resp.text(errors="replace"))
