"""WeCom and DingTalk robot notifiers against a local aiohttp server, and DingTalk's signature
checked against an HMAC computed here from its definition (RFC 2104), not with hmac.new."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote_plus

import pytest
from aiohttp import web

from notifiers.base import Outgoing
from notifiers.webhook import DingTalkNotifier, WeComNotifier, dingtalk_sign

SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"


def hmac_sha256_by_definition(key: bytes, message: bytes) -> bytes:
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).digest()


def expected_sign(secret: str, timestamp_ms: int) -> str:
    mac = hmac_sha256_by_definition(secret.encode(), f"{timestamp_ms}\n{secret}".encode())
    return base64.b64encode(mac).decode()


def msg(text: str = "工单 12345-001 已超时", urgent: bool = False) -> Outgoing:
    return Outgoing(key="outbox:9", channel="wecom", to="", text=text, urgent=urgent)


@dataclass
class Robot:
    """A local stand-in for the robot endpoint: records posts and answers from a script."""

    url: str = ""
    posts: list[dict] = field(default_factory=list)
    answers: deque = field(default_factory=deque)  # (status, json or text body) or "hang"
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(
            {
                "path": request.path,
                "raw_query": request.query_string,
                "query": dict(request.query),
                "json": await request.json(),
            }
        )
        answer = self.answers.popleft() if self.answers else (200, {"errcode": 0, "errmsg": "ok"})
        if answer == "hang":
            await self.release.wait()
            answer = (504, {})
        status, body = answer
        if isinstance(body, str):
            return web.Response(text=body, status=status, content_type="text/plain")
        return web.json_response(body, status=status)


@pytest.fixture
async def robot() -> AsyncIterator[Robot]:
    rb = Robot()
    app = web.Application()
    app.router.add_post("/robot/send", rb.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rb.url = f"http://127.0.0.1:{runner.addresses[0][1]}/robot/send?access_token=abc"
    yield rb
    rb.release.set()
    await runner.cleanup()


@pytest.fixture
async def wecom(robot: Robot) -> AsyncIterator[WeComNotifier]:
    n = WeComNotifier(robot.url, timeout_s=1)
    yield n
    await n.close()


def unused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/robot/send?key=k"


# -- DingTalk signature -------------------------------------------------------------------------


def test_dingtalk_sign_matches_the_definition() -> None:
    for ts in (1700000000000, 1700000000001, 1735689600123):
        assert dingtalk_sign(SECRET, ts) == expected_sign(SECRET, ts)


async def test_dingtalk_signed_post_carries_timestamp_and_encoded_sign(robot: Robot) -> None:
    # A timestamp whose signature has a "+" or "/": those must arrive url-encoded.
    ts = next(t for t in range(1700000000000, 1700000001000) if "+" in expected_sign(SECRET, t))
    n = DingTalkNotifier(robot.url, secret=SECRET, clock_ms=lambda: ts)
    try:
        result = await n.send(msg())
    finally:
        await n.close()

    assert result.outcome == "sent"
    [post] = robot.posts
    assert post["query"]["access_token"] == "abc"
    assert post["query"]["timestamp"] == str(ts)
    assert parse_qs(post["raw_query"])["sign"] == [expected_sign(SECRET, ts)]
    assert f"sign={quote_plus(expected_sign(SECRET, ts))}" in post["raw_query"]
    assert post["json"] == {
        "msgtype": "text",
        "text": {"content": "工单 12345-001 已超时"},
        "at": {"isAtAll": False},
    }


async def test_dingtalk_unsigned_posts_to_the_url_as_given(robot: Robot) -> None:
    n = DingTalkNotifier(robot.url)
    try:
        assert (await n.send(msg(urgent=True))).outcome == "sent"
    finally:
        await n.close()
    [post] = robot.posts
    assert post["raw_query"] == "access_token=abc"
    assert post["json"]["at"] == {"isAtAll": True}


@pytest.mark.parametrize(
    ("errcode", "outcome"), [(0, "sent"), (130101, "retry"), (310000, "failed")]
)
async def test_dingtalk_errcodes(robot: Robot, errcode: int, outcome: str) -> None:
    robot.answers.append((200, {"errcode": errcode, "errmsg": "x"}))
    n = DingTalkNotifier(robot.url, secret=SECRET)
    try:
        result = await n.send(msg())
    finally:
        await n.close()
    assert result.outcome == outcome
    assert await n.find_sent(msg(), datetime.now(UTC)) is None


# -- WeCom --------------------------------------------------------------------------------------


async def test_wecom_posts_text(robot: Robot, wecom: WeComNotifier) -> None:
    result = await wecom.send(msg())
    assert (result.outcome, result.provider_id, result.error) == ("sent", None, None)
    [post] = robot.posts
    assert post["json"] == {"msgtype": "text", "text": {"content": "工单 12345-001 已超时"}}


async def test_wecom_urgent_mentions_everyone(robot: Robot, wecom: WeComNotifier) -> None:
    await wecom.send(msg(urgent=True))
    assert robot.posts[0]["json"]["text"]["mentioned_list"] == ["@all"]


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ((200, {"errcode": 45009, "errmsg": "api freq out of limit"}), "retry"),
        ((200, {"errcode": 93000, "errmsg": "invalid webhook url"}), "failed"),
        ((429, {}), "retry"),
        ((404, {}), "failed"),
        ((500, {}), "unknown"),
        ((502, {}), "unknown"),
        ((200, {"ok": True}), "unknown"),
    ],
)
async def test_wecom_answers(
    robot: Robot, wecom: WeComNotifier, answer: tuple, outcome: str
) -> None:
    robot.answers.append(answer)
    result = await wecom.send(msg())
    assert result.outcome == outcome
    assert "access_token" not in (result.error or "")


async def test_wecom_error_mentions_the_code(robot: Robot, wecom: WeComNotifier) -> None:
    robot.answers.append((200, {"errcode": 93000, "errmsg": "invalid webhook url"}))
    assert (await wecom.send(msg())).error == "wecom errcode 93000: invalid webhook url"


async def test_wecom_timeout_is_unknown(robot: Robot, wecom: WeComNotifier) -> None:
    robot.answers.append("hang")
    result = await wecom.send(msg())
    assert result.outcome == "unknown"
    assert len(robot.posts) == 1


async def test_connection_refused_is_retry() -> None:
    for notifier in (WeComNotifier(unused_url()), DingTalkNotifier(unused_url(), secret=SECRET)):
        try:
            result = await notifier.send(msg())
        finally:
            await notifier.close()
        assert result.outcome == "retry"
        assert "key=" not in result.error


async def test_close_without_use_and_twice() -> None:
    n = WeComNotifier(unused_url())
    await n.close()
    await n.close()


async def test_answer_parsed_whatever_its_content_type(robot: Robot, wecom: WeComNotifier) -> None:
    # Robot answers are JSON but not always labelled application/json.
    robot.answers.append((200, '{"errcode":45009,"errmsg":"api freq out of limit"}'))
    assert (await wecom.send(msg())).outcome == "retry"
    robot.answers.append((200, "<html>bad gateway</html>"))
    assert (await wecom.send(msg())).outcome == "unknown"
