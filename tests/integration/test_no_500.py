"""Issue 18: every request that answered 500 (found by schemathesis or by hand) answers a 4xx
with a message naming the field: NUL characters and lone surrogates in paths, query strings,
forms and JSON bodies (desk, JSON twins, API, provider webhooks), dates outside the accepted
years, integers past their column's type. A real daemon with the desk on real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from supervisor.acking import AckOutcome
from supervisor.config.delivery import DeliverySettings
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.core.clock import VirtualClock
from supervisor.server.edge import edge_middleware
from supervisor.server.provider_hooks import setup_provider_hooks
from supervisor.storage.pg import PgStore
from tests.deskkit import TOKEN, csrf_of, desk_daemon, events, post_events, settled, sign_in
from tests.helpers import sh

API = {"Authorization": f"Bearer {TOKEN}"}


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


async def _message(resp: aiohttp.ClientResponse) -> str:
    text = await resp.text()
    if resp.content_type == "application/json":
        return json.loads(text)["error"]
    return text


def _assert_4xx(status: int, message: str, field: str | None) -> None:
    assert 400 <= status < 500, f"{status}: {message[:300]}"
    assert message.strip(), "a 4xx without a message"
    if field is not None:
        assert field in message, f"the message does not name {field!r}: {message[:300]}"


DESK_GETS = [
    # NUL and lone surrogates (a surrogate cannot travel in a URL: %ED%A0%80 is not UTF-8)
    ("/tickets.json?q=%00", "q"),
    ("/tickets.json?unit=%00", "unit"),
    ("/tickets.json?category=%00", "category"),
    ("/tickets?q=%00", "q"),
    ("/messages.json?unit=%00", "unit"),
    ("/tickets/%00", "ticket"),
    ("/tickets/A%00.json", "ticket"),
    ("/tickets.json?%00=1", "query"),
    # dates and numbers out of range
    ("/calendar?month=9999-12", "month"),
    ("/calendar.json?month=0001-01", "month"),
    ("/calendar?month=2026-13", "month"),
    ("/stats?month=0001-01", "month"),
    ("/stats?from=0001-01-01&to=9999-12-31", "from"),
    ("/stats.json?from=2026-01-01&to=9999-12-31", "to"),
    ("/stats/export.xlsx?month=9999-12", "month"),
    ("/tickets?from=0001-01-01", "from"),
    ("/tickets?to=9999-12-31", "to"),
    ("/tickets.json?to=9999-12-31", "to"),
    ("/messages?before=9223372036854775808", "before"),
    ("/messages.json?before=-1", "before"),
]


async def test_desk_gets_answer_4xx_naming_the_field(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        assert await sign_in(http, base, "zhang-min") == 302
        for path, field in DESK_GETS:
            resp = await http.get(base + path, allow_redirects=False)
            _assert_4xx(resp.status, await _message(resp), field)
            assert resp.status == 400, path


API_GETS = [
    ("/api/v1/tickets/A%00", "ticket"),
    ("/api/v1/tickets?q=%00", "q"),
    ("/api/v1/tickets?unit=%00", "unit"),
    ("/api/v1/tickets?from=0001-01-01", "from"),
    ("/api/v1/tickets?to=9999-12-31", "to"),
]


async def test_api_gets_answer_400_naming_the_field(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with aiohttp.ClientSession() as http:
        for path, field in API_GETS:
            resp = await http.get(base + path, headers=API)
            assert resp.status == 400, path
            _assert_4xx(resp.status, await _message(resp), field)


@pytest.mark.parametrize(
    "body",
    [b'{"rule": "a\\u0000"}', b'{"rule": "\\ud800"}', b'{"rule\\u0000": "x"}'],
)
async def test_api_ack_with_bad_text_is_a_400(daemon, body):
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"http://127.0.0.1:{daemon.port}/api/v1/tickets/A100/ack",
            data=body,
            headers={**API, "Content-Type": "application/json"},
        )
        assert resp.status == 400
        _assert_4xx(resp.status, await _message(resp), "rule")


async def test_desk_ack_forms_answer_4xx(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        assert await sign_in(http, base, "zhang-min") == 302
        csrf = csrf_of(await (await http.get(f"{base}/tickets/A100")).text())
        cases = [
            ("/tickets/A100/ack", {"rule": "a\x00", "cycle": "0"}, "rule"),
            ("/tickets/A100/ack", {"rule": "sign-off", "cycle": "99999999999"}, "cycle"),
            ("/tickets/A100/ack", {"rule": "sign-off", "cycle": "-1"}, "cycle"),
            ("/tickets/%00/ack", {"rule": "sign-off", "cycle": "0"}, "ticket"),
        ]
        for path, form, field in cases:
            resp = await http.post(base + path, data={**form, "csrf": csrf}, allow_redirects=False)
            assert resp.status == 400, (path, form)
            _assert_4xx(resp.status, await _message(resp), field)
        # a CSRF token with a non-ASCII character (hmac.compare_digest raised TypeError on it)
        for token in ("\x80", "é", "工单"):
            resp = await http.post(
                f"{base}/tickets/A100/ack", data={"rule": "sign-off", "cycle": "1", "csrf": token},
                allow_redirects=False,
            )  # fmt: skip
            assert resp.status == 403
            resp = await http.post(
                f"{base}/tickets/A100/ack", data={"rule": "sign-off", "cycle": "1"},
                headers={"X-CSRF-Token": "\x80"}, allow_redirects=False,
            )  # fmt: skip
            assert resp.status == 403
        # nothing of it was acknowledged or audited
        assert await daemon.pool.fetchval("SELECT count(*) FROM desk_audit WHERE action='ack'") == 0


async def test_a_nul_in_the_sign_in_name_is_a_400_and_audited(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        page = await (await http.get(f"{base}/signin")).text()
        resp = await http.post(
            f"{base}/signin",
            data={"login": "a\x00b", "password": "x", "csrf": csrf_of(page), "next": "/"},
            allow_redirects=False,
        )
        assert resp.status == 400
        _assert_4xx(resp.status, await _message(resp), "login")
    row = await daemon.pool.fetchrow(
        "SELECT actor, action, detail FROM desk_audit WHERE action = 'sign_in_failed'"
    )
    assert row is not None and row["actor"] == "a\\u0000b"
    assert "login" in row["detail"]["refused"]


# --- the providers' webhooks ------------------------------------------------------------------

ENV = {"TENCENT_HOOK_TOKEN": "tc-secret-token", "ALIYUN_HOOK_TOKEN": "al-secret-token"}


@pytest.fixture
async def hooks(pool: asyncpg.Pool) -> AsyncIterator[dict[str, TestClient]]:
    """Each provider's webhooks (one provider sends the SMS: one app each)."""
    store = PgStore(pool)
    clock = VirtualClock(sh(2026, 11, 25, 10, 0))

    async def ack(
        ticket: str, rule: str | None, by: str, via: str, roles: frozenset[str]
    ) -> AckOutcome:
        return AckOutcome("ok", acknowledged=await store.ack(ticket, rule, by, via, clock.now()))

    clients = {}
    for provider, cfg in (
        ("tencent", {"sdk_app_id": "1400000001", "callback_token_env": "TENCENT_HOOK_TOKEN"}),
        ("aliyun", {"callback_token_env": "ALIYUN_HOOK_TOKEN"}),
    ):
        app = web.Application(middlewares=[edge_middleware])
        setup_provider_hooks(
            app, store=store, clock=clock, notifiers=NotifierSettings.model_validate({provider: cfg}),
            env=ENV, ack=ack, dispatcher=None, settings=DeliverySettings(),
        )  # fmt: skip
        clients[provider] = TestClient(TestServer(app, host="127.0.0.1"))
        await clients[provider].start_server()
    yield clients
    for c in clients.values():
        await c.close()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/providers/tencent/tc-secret-token/reply",
         b'{"mobile": "1380013800\\ud800", "text": "1"}', "mobile"),
        ("/providers/tencent/tc-secret-token/reply", b'{"mobile": "13800138000", "text": "1\\u0000"}', "text"),
        ("/providers/tencent/tc-secret-token/report",
         b'[{"sid": "a\\u0000", "report_status": "SUCCESS"}]', "sid"),
        ("/providers/tencent/tc-secret-token/report",
         b'[{"sid": "\\ud800", "report_status": "FAIL"}]', "sid"),
        ("/providers/aliyun/al-secret-token/report", b'[{"biz_id": "\\udfff", "success": true}]', "biz_id"),
        ("/providers/aliyun/al-secret-token/reply", b'[{"phone_number": "1\\u0000", "content": "1"}]', "phone_number"),
        ("/providers/tencent/tc%00/reply", b'{"mobile": "1", "text": "1"}', "token"),
    ],
)  # fmt: skip
async def test_provider_pushes_with_bad_text_are_a_400(hooks, path, body, field):
    client = hooks[path.split("/")[2]]
    resp = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    _assert_4xx(resp.status, await _message(resp), field)
    assert resp.status == 400


def _multipart(parts: list[tuple[str, bytes, bytes | None]]) -> tuple[bytes, str]:
    """A multipart body written by hand: names, raw values, raw file names (any bytes)."""
    boundary = "fuzzboundary18"
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"'.encode()
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        out += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n"
        out += value + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n", f"multipart/form-data; boundary={boundary}"


async def test_the_import_upload_with_bad_bytes_is_no_500(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        assert await sign_in(http, base, "zhang-min") == 302
        csrf = csrf_of(await (await http.get(f"{base}/import")).text())
        body, ctype = _multipart([("csrf", b"\xff\xfe\x00", None), ("file", b"x", b"a.csv")])
        resp = await http.post(f"{base}/import/preview", data=body, headers={"Content-Type": ctype})
        assert resp.status == 403
        body, ctype = _multipart(
            [("csrf", csrf.encode(), None), ("file", b"a,b\r\n", b"a\x00b.csv")]
        )
        resp = await http.post(f"{base}/import/preview", data=body, headers={"Content-Type": ctype})
        assert resp.status == 400, await resp.text()
        body, ctype = _multipart([("csrf", csrf.encode(), None), ("file", b"a,b\r\n", "a\ud800b.csv".encode("utf-8", "surrogatepass"))])
        resp = await http.post(f"{base}/import/preview", data=body, headers={"Content-Type": ctype})
        assert resp.status < 500, await resp.text()
