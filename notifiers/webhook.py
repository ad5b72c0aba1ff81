"""Group-chat robots: WeCom (企业微信) and DingTalk (钉钉) custom robots.

Both take a JSON POST to a secret URL and answer HTTP 200 with {"errcode": 0, "errmsg": "ok"}
on success and a non-zero errcode otherwise. The URL contains the robot's key, so it never
appears in an error message or a log line.

`format: markdown` (settings) lays a message out as Markdown (markdown.py): a heading and lists,
so that a digest or a monthly summary reads well in the group."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote_plus

import aiohttp
from yarl import URL

from notifiers.base import Outgoing, SendResult
from notifiers.markdown import to_markdown


class _RobotNotifier:
    name: str
    channels: frozenset[str]
    rate_limit_codes: frozenset[int]

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout_s: float = 10.0,
        required_settings: tuple[str, ...] = (),
        format: str = "text",  # noqa: A002 (the settings key)
    ) -> None:
        self._url = webhook_url
        self.format = format
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.required_settings = required_settings

    def payload(self, msg: Outgoing) -> dict[str, object]:
        raise NotImplementedError

    def url(self) -> str | URL:
        return self._url

    def _session_now(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession needs a running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def send(self, msg: Outgoing) -> SendResult:
        try:
            async with self._session_now().post(self.url(), json=self.payload(msg)) as resp:
                if resp.status == 429:
                    return SendResult("retry", error=f"{self.name} HTTP 429")
                if resp.status >= 500:
                    return SendResult("unknown", error=f"{self.name} HTTP {resp.status}")
                if resp.status != 200:
                    return SendResult("failed", error=f"{self.name} HTTP {resp.status}")
                answer = await resp.json(content_type=None)
        except aiohttp.InvalidURL:
            return SendResult("failed", error=f"{self.name} invalid webhook URL")  # config error
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            return SendResult("retry", error=f"{self.name} {type(exc).__name__}")  # nothing sent
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            # Sent, but the answer was lost or unreadable.
            return SendResult("unknown", error=f"{self.name} {type(exc).__name__}")
        return self._outcome(answer)

    def _outcome(self, answer: object) -> SendResult:
        if not isinstance(answer, dict) or not isinstance(answer.get("errcode"), int):
            return SendResult("unknown", error=f"{self.name} answer without errcode")
        code = answer["errcode"]
        if code == 0:
            return SendResult("sent")  # the robots return no message id
        error = f"{self.name} errcode {code}: {str(answer.get('errmsg', ''))[:120]}"
        if code in self.rate_limit_codes:
            return SendResult("retry", error=error)
        return SendResult("failed", error=error)

    async def find_sent(
        self, msg: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        return None  # the robots cannot be asked what they have posted

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class WeComNotifier(_RobotNotifier):
    name = "wecom"
    channels = frozenset({"wecom"})
    rate_limit_codes = frozenset({45009})  # "api freq out of limit" (20 messages/minute)

    def payload(self, msg: Outgoing) -> dict[str, object]:
        if self.format == "markdown" and not msg.urgent:
            # WeCom's markdown messages cannot @all: an urgent one stays text, so that it pings
            return {"msgtype": "markdown", "markdown": {"content": to_markdown(msg.text)[1]}}
        text: dict[str, object] = {"content": msg.text}
        if msg.urgent:
            text["mentioned_list"] = ["@all"]  # an urgent message pings the whole group
        return {"msgtype": "text", "text": text}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64(HMAC-SHA256(key=secret, f"{timestamp}\\n{secret}"))."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def dingtalk_signed_url(webhook_url: str, secret: str, timestamp_ms: int) -> URL:
    sign = quote_plus(dingtalk_sign(secret, timestamp_ms))
    sep = "&" if "?" in webhook_url else "?"
    # encoded=True: the sign is already url-encoded as DingTalk documents; re-encoding or
    # decoding its "+" and "/" would break it.
    return URL(f"{webhook_url}{sep}timestamp={timestamp_ms}&sign={sign}", encoded=True)


class DingTalkNotifier(_RobotNotifier):
    name = "dingtalk"
    channels = frozenset({"dingtalk"})
    rate_limit_codes = frozenset({130101})  # "send too fast" (20 messages/minute)

    def __init__(
        self,
        webhook_url: str,
        *,
        secret: str | None = None,
        timeout_s: float = 10.0,
        required_settings: tuple[str, ...] = (),
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        format: str = "text",  # noqa: A002 (the settings key)
    ) -> None:
        super().__init__(
            webhook_url, timeout_s=timeout_s, required_settings=required_settings, format=format
        )
        self._secret = secret
        self._clock_ms = clock_ms

    def url(self) -> str | URL:
        if self._secret is None:
            return self._url
        # Signed anew for each post: DingTalk rejects a timestamp more than an hour old.
        return dingtalk_signed_url(self._url, self._secret, self._clock_ms())

    def payload(self, msg: Outgoing) -> dict[str, object]:
        at = {"isAtAll": msg.urgent}  # an urgent message pings the whole group
        if self.format == "markdown":
            title, body = to_markdown(msg.text)
            return {"msgtype": "markdown", "markdown": {"title": title, "text": body}, "at": at}
        return {"msgtype": "text", "text": {"content": msg.text}, "at": at}
