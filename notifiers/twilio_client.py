"""One Twilio REST client per process, shared by the SMS and voice notifiers, and the mapping of
its errors to send outcomes.

Facts about twilio 9.13 / aiohttp 3.14 this module works around (checked in the SDK source):
- AsyncTwilioHttpClient(max_retries=N) wraps the session in aiohttp_retry, which re-sends a POST
  after a 5xx: a possible duplicate SMS. We leave max_retries=None (no retry client); the
  dispatcher retries, knowing the outbox state.
- AsyncTwilioHttpClient stores `timeout` but never uses it: it passes the per-call timeout
  (None from the REST layer) to aiohttp, which means "no timeout at all". We pass it ourselves.
- It passes `auth=BasicAuth(...)` to aiohttp, which aiohttp 3.14 deprecates with a warning on
  every request; we send the Authorization header instead.
- It creates its aiohttp.ClientSession in __init__, which needs a running loop, so the client is
  built lazily on first use.
- Client() reads TWILIO_EDGE / TWILIO_REGION from the environment and would rewrite the host of
  every URL, including a base_url pointing at a local fake; we clear both so that only our
  configuration decides where requests go.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from notifiers.base import SendResult

# Retry-After of the last response seen in this task. TwilioRestException carries no headers, so
# the HTTP client leaves it here; a context variable keeps concurrent sends (separate tasks) apart.
_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)


class _HttpClient(AsyncTwilioHttpClient):
    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the SDK's signature)
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        _retry_after.set(None)
        response = await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )
        _retry_after.set(_parse_retry_after(response.headers))
        return response


def _parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the other form RFC 9110 allows: an HTTP date
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class TwilioClient:
    """Credentials and connection settings; builds the SDK client on first use."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._client: Client | None = None
        self._http: _HttpClient | None = None

    def rest(self) -> Client:
        if self._client is None:
            self._http = _HttpClient(timeout=self._timeout_s)  # max_retries=None: no SDK retries
            client = Client(self._account_sid, self._auth_token, http_client=self._http)
            client.edge = None
            client.region = None
            if self._base_url is not None:
                client.api.base_url = self._base_url.rstrip("/")
            self._client = client
        return self._client

    async def close(self) -> None:
        # Shared by two notifiers, each closing it at shutdown: the second close is a no-op.
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()


_PHONE_LIKE = re.compile(r"\+?\d[\d\s()-]{4,}\d")


def _redact(text: str) -> str:
    # Twilio error messages quote the number ("The 'To' number +86... is not valid").
    return _PHONE_LIKE.sub("<number>", text)[:200]


def outcome_for(exc: BaseException) -> SendResult:
    """Map an exception from a create call to an outcome (see SendResult for the meanings)."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = exc.status
        code = getattr(exc, "code", None)
        message = _redact(str(getattr(exc, "msg", "") or getattr(exc, "title", "")))
        error = f"twilio HTTP {status} code {code}: {message}"
        if status == 429 or code == 20429:
            # The one error Twilio documents as "not processed": safe to resend.
            return SendResult("retry", error=error, retry_after_s=_retry_after.get())
        if 400 <= status < 500:
            return SendResult("failed", error=error)
        return SendResult("unknown", error=error)  # 5xx: it may have been accepted
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        # No connection was made, so no request was sent.
        return SendResult("retry", error=f"twilio {type(exc).__name__}")
    if isinstance(exc, TimeoutError | aiohttp.ClientError):
        # The request may have reached Twilio before the answer was lost.
        return SendResult("unknown", error=f"twilio {type(exc).__name__}")
    if isinstance(exc, TwilioException):
        return SendResult("unknown", error=f"twilio {type(exc).__name__}")
    raise exc


# What a create call may raise; anything else is a bug and propagates.
SEND_ERRORS = (TwilioException, aiohttp.ClientError, TimeoutError)
