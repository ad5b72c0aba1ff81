"""Property-based fuzzing of the two ways input gets in.

- The event API (make_app on a real PgStore, through aiohttp's TestClient): valid events mutated,
  wrong types, missing and unknown fields, huge strings, nested junk, non-JSON bodies. Never a
  500 (only 200 or 4xx), and never a partial write: after a rejected request every table is
  exactly as before; after an accepted one every acknowledged event is stored.
- The rule loader (engine.policy.load_policy over rulebook and yamlconf): the shipped rule
  files mutated as data and as text. Bad input raises ConfigInvalid and nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.application import Supervisor
from supervisor.config.yamlconf import ConfigInvalid
from supervisor.core.clock import SystemClock
from supervisor.engine.policy import load_policy
from supervisor.server.api import make_app
from supervisor.server.metrics import Metrics
from supervisor.storage.pg import PgStore
from tests.helpers import ROOT, every_type, loaded, runtime

TOKEN = "fuzz-token"
TABLES = ("events", "tickets", "ladders", "timers", "outbox", "acks")
FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- junk --------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False), st.text(max_size=30),
    st.sampled_from(["", "2026-11-25", "2026-11-25T10:00:00", "2026-11-25T10:00:00+08:00", "9999-12-31T23:59:59+14:00",
                     "0001-01-01T00:00:00+00:00", "\x00", "工单", "created", "dispatched", "'; DROP TABLE events; --",
                     # issue 9: out of range, extreme offsets, far future (beyond the tolerance)
                     "9999-12-31T20:00:00+00:00", "0001-01-01T00:00:00+23:59", "2100-01-01T00:00:00+08:00",
                     "2099-12-31T23:59:59-14:00", "2026-11-25T10:00:00+23:59", "2027-06-01T09:00:00+08:00",
                     "1999-12-31", "9999-12-31",
                     # ticket ids the router cannot reach
                     "A{1}", "{ticket}", "a/b", "x y", "T\u0007", "-T"]),
    st.just("x" * 5000), st.just("长" * 3000),
)  # fmt: skip
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
BASE = every_type("FZ")
FIELDS = sorted({k for e in BASE for k in e})


@st.composite
def mutated_event(draw) -> object:
    event = copy.deepcopy(draw(st.sampled_from(BASE)))
    event["id"] = f"FZ-{draw(st.integers(0, 10**6))}"
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["set", "delete", "add", "retype", "nest", "deep", "reuse"]))
        key = draw(st.sampled_from(sorted(event) or ["id"]))
        if op == "set":
            event[key] = draw(junk)
        elif op == "delete":
            event.pop(key, None)
        elif op == "add":
            event[draw(st.sampled_from([*FIELDS, "extra", ""]))] = draw(junk)
        elif op == "retype" and key in event:
            event[key] = [event[key]] if draw(st.booleans()) else {"v": event[key]}
        elif op == "nest":
            return {"events": [event]} if draw(st.booleans()) else [[event]]
        elif op == "deep":  # issue 9: 700-900 levels inside a field raised RecursionError
            value: object = draw(scalars)
            for _ in range(draw(st.sampled_from([17, 100, 700, 900]))):
                value = [value] if draw(st.booleans()) else {"v": value}
            event[key] = value
        elif op == "reuse":  # one id for several different events: 409 or duplicate, never 500
            event["id"] = "FZ-reused"
    return event


bodies = st.one_of(
    mutated_event().map(lambda e: json.dumps(e, ensure_ascii=False).encode()),
    st.lists(mutated_event(), min_size=1, max_size=5).map(
        lambda es: json.dumps(es, ensure_ascii=False).encode()
    ),
    junk.map(lambda j: json.dumps(j).encode()),
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b"[]", b"{}", b"null", b"[null]", b"\xff\xfe", b'{"id": "x"', b"[" * 500 + b"]" * 500]
    ),
)


async def _snapshot(pool) -> dict[str, str]:
    async with pool.acquire() as conn:
        return {
            t: await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"
            )
            for t in TABLES
        }


@pytest.fixture
async def api(pool):
    sup = Supervisor(PgStore(pool), runtime(), SystemClock())

    async def health():
        return True, {}

    app = make_app(
        sup,
        tokens=[TOKEN],
        metrics=Metrics(),
        health=health,
        max_body_bytes=64 * 1024,
        max_batch=50,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@FUZZ
@given(body=bodies)
async def test_fuzzed_events_never_500_and_never_half_stored(api, pool, body):
    before = await _snapshot(pool)
    resp = await api.post(
        "/api/v1/events",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    text = await resp.text()
    assert resp.status in (200, 400, 409, 413, 422), f"{resp.status}: {text[:500]}"
    if resp.status != 200:
        assert await _snapshot(pool) == before, "a rejected request changed the database"
        return
    out = json.loads(text)
    ids = [r["id"] for r in out["results"]]
    async with pool.acquire() as conn:
        stored = {
            r["id"]
            for r in await conn.fetch("SELECT id FROM events WHERE id = ANY($1::text[])", ids)
        }
    assert set(ids) == stored


ack_bodies = st.one_of(
    junk.map(lambda j: json.dumps(j).encode()),
    st.builds(lambda rule: json.dumps({"rule": rule}).encode(), scalars),
    st.integers(1, 990).map(lambda n: b'{"rule": ' + b"[" * n + b"]" * n + b"}"),
    st.integers(1, 990).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=100),
)


@FUZZ
@given(body=ack_bodies, ticket=st.sampled_from(["FZA", "NOPE", "FZA%7B1%7D", "FZA%2Fx"]))
async def test_fuzzed_acks_never_500(api, pool, body, ticket):
    """Issue 9: an ack body nested 990 levels raised RecursionError in post_ack."""
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    await api.post("/api/v1/events", json=every_type("FZA")[:2], headers=auth)
    resp = await api.post(f"/api/v1/tickets/{ticket}/ack", data=body, headers=auth)
    text = await resp.text()
    # 409: an acknowledgement repeated (issue 18)
    assert resp.status in (200, 400, 403, 404, 409, 413, 422), f"{resp.status}: {text[:300]}"


async def test_deeply_nested_json_is_a_400_not_a_500(api, pool):
    """Regression test, was a bug (supervisor/api.py post_events): json.loads raises RecursionError (not a
    JSONDecodeError) on a body nested a few thousand levels deep, which post_events does not
    catch, so aiohttp answers 500 "Server got itself in trouble" and logs a traceback. Any client
    can send it; it should be a 400 like other non-JSON bodies. Nothing is stored. FAILS until
    fixed."""
    before = await _snapshot(pool)
    resp = await api.post(
        "/api/v1/events",
        data=b"[" * 5000 + b"]" * 5000,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert await _snapshot(pool) == before
    assert resp.status == 400, f"{resp.status}: {(await resp.text())[:200]}"


async def test_a_batch_with_one_bad_event_stores_nothing(api, pool):
    before = await _snapshot(pool)
    batch = every_type("FZB")
    batch[5] = {**batch[5], "until": "tomorrow"}
    resp = await api.post(
        "/api/v1/events", json=batch, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert resp.status == 422 and "nothing was stored" in (await resp.json())["error"]
    assert await _snapshot(pool) == before


# --- the rule loader -----------------------------------------------------------------------------

RULE_FILES = sorted(p for p in (ROOT / "rules").glob("*.yaml"))
SHIPPED = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in RULE_FILES}


def _paths(node, here=()):
    yield here
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*here, i))


@st.composite
def mutated_rule_file(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(SHIPPED)))
    data = copy.deepcopy(SHIPPED[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["set", "delete", "dup", "wrap", "rename"]))
        last = path[-1]
        if op == "set":
            parent[last] = draw(
                st.one_of(
                    junk,
                    st.sampled_from(
                        [
                            "-30m",
                            "1 working day",
                            "0",
                            "-1 working minutes",
                            "999999 working days",
                            "1 fortnight",
                            "status",
                            "{{ ticket.id",
                            "sign_by",
                            "event",
                        ]
                    ),
                )
            )
        elif op == "delete":
            del parent[last]
        elif op == "dup" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif op == "wrap":
            parent[last] = [parent[last]] if draw(st.booleans()) else {"x": parent[last]}
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = parent.pop(last)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if draw(st.booleans()):  # and the text itself: cut, junk in, a line dropped or doubled
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        op = draw(st.sampled_from(["cut", "insert", "drop", "double", "tabs"]))
        if op == "cut":
            text = text[: draw(st.integers(0, len(text)))]
        elif op == "insert":
            pos = draw(st.integers(0, len(text)))
            text = (
                text[:pos]
                + draw(
                    st.sampled_from(
                        [
                            ":",
                            "- ",
                            "{",
                            "]",
                            "\t",
                            "&a ",
                            "*a",
                            "!!python/object:os.system ",
                            "<<: *x\n",
                            "%YAML 9\n",
                            "? ",
                        ]
                    )
                )
                + text[pos:]
            )
        elif op == "drop" and lines:
            del lines[i]
            text = "".join(lines)
        elif op == "double" and lines:
            lines.insert(i, lines[i])
            text = "".join(lines)
        elif op == "tabs":
            text = text.replace("  ", "\t", 1)
    return name, text


@settings(max_examples=300, deadline=None)
@given(case=mutated_rule_file())
def test_mutated_rule_files_raise_only_config_invalid(tmp_path_factory, case):
    name, text = case
    folder = tmp_path_factory.mktemp("rules")
    (folder / name).write_text(text, encoding="utf-8")
    base = loaded()
    others = [p for p in RULE_FILES if p.name != name]
    try:
        load_policy(
            [*others, folder / name], base.calendar, templates=base.templates, matcher="python"
        )
    except ConfigInvalid as exc:
        assert exc.errors and all(str(e) for e in exc.errors)


def test_the_shipped_rule_files_load(tmp_path: Path):
    base = loaded()
    policy = load_policy(RULE_FILES, base.calendar, templates=base.templates, matcher="python")
    assert policy.rules


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\ufffe"])
def test_a_control_character_in_a_rule_file_is_a_config_error(tmp_path, char):
    """Regression test, was a bug (supervisor/yamlconf.py load_yaml): `_LineLoader(text)` is built before the `try`
    that turns yaml.YAMLError into ConfigInvalid, and PyYAML's Reader checks for non-printable
    characters in its constructor. So a rule/config file with a control character (a stray NUL,
    an ESC pasted from a terminal) raises yaml.reader.ReaderError: `hotline-supervisor check` and
    `run` end with a traceback instead of "file: line: message", and a live reload (SIGHUP or
    the file watcher) fails outside the `except ConfigInvalid` that keeps the running rules and
    counts hotline_reloads_total{result="refused"}. FAILS until fixed."""
    path = tmp_path / "sign-off.yaml"
    path.write_text(
        (ROOT / "rules" / "sign-off.yaml").read_text(encoding="utf-8") + f"# {char}\n",
        encoding="utf-8",
    )
    base = loaded()
    with pytest.raises(ConfigInvalid):
        load_policy([path], base.calendar, templates=base.templates, matcher="python")


@pytest.mark.parametrize(
    "field,value",
    [
        ("summary", "占道\x00经营"),
        ("id", "FZN-\x00"),
        ("category", "市容\x00"),
        ("summary", "\ud800"),
        ("caller", "1381234\x005678"),
    ],
)
async def test_a_nul_character_or_a_lone_surrogate_is_refused_naming_the_field(
    api, pool, field, value
):
    """Regression test, was a bug (supervisor/events.py validation): PostgreSQL text and jsonb cannot hold U+0000, and
    the contract's validation lets it through in `id`, `ticket`, `category`, `summary`... (any
    string field), so the INSERT fails in asyncpg (UntranslatableCharacterError) and the API
    answers 500 instead of 422. The transaction rolls back: nothing is stored (checked). The
    `summary`, `id` and `category` cases FAIL until fixed; `caller` (hashed) and a lone
    surrogate already pass."""
    before = await _snapshot(pool)
    event = {**every_type("FZN")[0], field: value}
    body = json.dumps(event, ensure_ascii=True).encode()
    resp = await api.post(
        "/api/v1/events",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    text = await resp.text()
    if resp.status != 200:
        assert await _snapshot(pool) == before, "a rejected request changed the database"
    assert resp.status in (200, 400, 422), f"{resp.status}: {text[:300]}"
