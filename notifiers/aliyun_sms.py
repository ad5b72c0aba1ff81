"""SMS through Aliyun SMS (阿里云短信服务, dysmsapi 2017-05-25) with its official async SDK.

Aliyun sends only registered templates: a message is the sign name, the template code and the
template parameters (JSON) rendered when the step fired (Outgoing.params["aliyun"], see
supervisor/config/sms_templates.py). Our outbox key rides along as OutId, which Aliyun returns in
its receipts (SmsReport) and in QuerySendDetails: a receipt or a reconciliation finds the outbox
row even when the SendSms answer was lost.

Facts about the SDK (alibabacloud-dysmsapi20170525 4.6, tea-openapi 0.4, darabonba 1.0) this
module relies on, checked in its source:
- With no retry options (our Config sets none) a request is made once: no SDK resend.
- A 4xx answer raises ClientException (ThrottlingException when x-acs-retry-after is set), a 5xx
  ServerException, both with the API's error `code`. Any other failure (connection refused, read
  timeout, an unreadable body) comes out as UnretryableException wrapping a RetryError that keeps
  only the message; the original aiohttp error is its __context__, which is how a refused
  connection (nothing sent: retry) is told from a lost answer (ambiguous: unknown).
- The SDK opens a new aiohttp session per request; we build the Client once per process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ClientException,
    ServerException,
    ThrottlingException,
)

from notifiers.base import Outgoing, SendResult
from supervisor.config.notifier_settings import AliyunSmsSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Answers that mean "not sent, and sending later can work": API flow control (the account's).
RETRY_CODES = frozenset({"Throttling", "Throttling.User", "Throttling.Api"})
# Per-number (and template) frequency control: this person has had enough for now (by default 1
# a minute, 5 an hour, 10 a day to one number; notifications about 50 a day). Aliyun works: the
# recipient waits, the provider's breaker is not touched. The message names the window.
LIMIT_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL"})
LIMIT_WINDOWS_S = (("分钟", 60.0), ("小时", 3600.0), ("天", 86400.0), ("日", 86400.0))
DEFAULT_LIMIT_WAIT_S = 60.0
# Answers after which the message may or may not have gone out.
UNKNOWN_CODES = frozenset(
    {"isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "InternalError", "ServiceUnavailable"}
)
# Every other code (isv.MOBILE_NUMBER_ILLEGAL, isv.SMS_TEMPLATE_ILLEGAL, isv.SMS_SIGNATURE_ILLEGAL,
# isv.TEMPLATE_MISSING_PARAMETERS, isv.AMOUNT_NOT_ENOUGH, isv.OUT_OF_SERVICE, isv.PARAM_LENGTH_LIMIT,
# SignatureDoesNotMatch, InvalidAccessKeyId.NotFound, ...) is permanent for this message.

MAX_PAGES = 20  # QuerySendDetails pages of 50 looked at when reconciling one message
CLOCK_SLACK = timedelta(seconds=60)


_NUMBER_LIKE = re.compile(r"\+?\d[\d\s-]{6,}\d")


def redact(text: str) -> str:
    """A provider's message, cut and without anything that could be a phone number."""
    return _NUMBER_LIKE.sub("<number>", text)[:120]


def outcome_for_code(code: str | None, message: str | None) -> SendResult:
    """The outcome of an error code Aliyun answered with (in a 200 body or an error answer)."""
    error = f"aliyun {code}: {redact(message or '')}"
    if code in LIMIT_CODES:
        return SendResult("limited", error=error, retry_after_s=limit_wait_s(message))
    if code in RETRY_CODES:
        return SendResult("retry", error=error)
    if code in UNKNOWN_CODES:
        return SendResult("unknown", error=error)
    return SendResult("failed", error=error)


def limit_wait_s(message: str | None) -> float:
    """How long a per-number limit lasts, from Aliyun's message ("触发小时级流控Permits:5")."""
    for word, seconds in LIMIT_WINDOWS_S:
        if word in (message or ""):
            return seconds
    return DEFAULT_LIMIT_WAIT_S


def outcome_for(exc: BaseException) -> SendResult:
    """Map an exception from send_sms_async to an outcome (see SendResult)."""
    if isinstance(exc, ThrottlingException):
        after = exc.retry_after / 1000 if isinstance(exc.retry_after, int | float) else None
        return SendResult("retry", error=f"aliyun throttled: {exc.code}", retry_after_s=after)
    if isinstance(exc, ClientException) and exc.status_code is not None:
        return outcome_for_code(exc.code, _message(exc))
    if isinstance(exc, ClientException):
        return SendResult("failed", error=f"aliyun {exc.code}")  # raised before any request
    if isinstance(exc, ServerException):
        result = outcome_for_code(exc.code, _message(exc))
        # a 5xx is answered after the request arrived: never "failed" on its code alone
        return result if result.outcome == "retry" else SendResult("unknown", error=result.error)
    cause = _network_cause(exc)
    if isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return SendResult("retry", error=f"aliyun {type(cause).__name__}")  # nothing was sent
    return SendResult("unknown", error=f"aliyun {type(cause or exc).__name__}")


def _message(exc: AlibabaCloudException) -> str:
    # "code: 400, <Message> request id: ..." : the API's message, which never holds the number
    return str(getattr(exc, "message", "") or "")


def _network_cause(exc: BaseException) -> BaseException | None:
    """The aiohttp or timeout error inside an UnretryableException, if any."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc, getattr(exc, "inner_exception", None)]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, aiohttp.ClientError | TimeoutError):
            return e
        stack += [e.__context__, e.__cause__, getattr(e, "inner_exception", None)]
    return None


def national(to: str) -> str:
    """Aliyun wants mainland numbers without +86; others keep their country code, no plus."""
    return to[3:] if to.startswith("+86") else to.lstrip("+")


class AliyunSmsNotifier:
    name = "aliyun_sms"
    channels = frozenset({"sms"})
    templated = True  # the dispatcher sends each message alone (no free-text groups)

    def __init__(
        self, access_key_id: str, access_key_secret: str, settings: AliyunSmsSettings
    ) -> None:
        self._settings = settings
        timeout_ms = int(settings.timeout_s * 1000)
        self._client = Client(
            utils_models.Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                endpoint=settings.endpoint,
                protocol=settings.protocol,
                read_timeout=timeout_ms,
                connect_timeout=timeout_ms,
            )
        )
        self.required_settings: tuple[str, ...] = (
            settings.access_key_id_env,
            settings.access_key_secret_env,
        )

    async def send(self, msg: Outgoing) -> SendResult:
        p = _mapping(msg.params)
        if p is None:
            template = (msg.params or {}).get("template") or "a grouped or free-text message"
            return SendResult("failed", error=f"aliyun: no registered template for {template}")
        request = models.SendSmsRequest(
            phone_numbers=national(msg.to),
            sign_name=p["sign_name"],
            template_code=p["code"],
            template_param=json.dumps(p["params"], ensure_ascii=False, separators=(",", ":")),
            out_id=msg.key,
        )
        try:
            response = await self._client.send_sms_async(request)
        except Exception as exc:  # the SDK raises many kinds; outcome_for sorts them
            return outcome_for(exc)
        body = response.body
        if body is None:
            return SendResult("unknown", error="aliyun answer without a body")
        if body.code == "OK":
            return SendResult("sent", provider_id=body.biz_id)
        return outcome_for_code(body.code, body.message)

    async def find_sent(
        self, msg: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        """The id of a message to this number whose OutId is our key, sent since `since`.

        QuerySendDetails lists by number and day (Beijing time), so the days from `since` to now
        are asked, each page by page. Aliyun's record holds no BizId: the id returned is
        "out:<key>", and a later receipt (which carries the OutId too) finds the row by key."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        first = (since - CLOCK_SLACK).astimezone(SHANGHAI).date()
        last = max(first, datetime.now(SHANGHAI).date())
        day = first
        while day <= last:
            for page in range(1, MAX_PAGES + 1):
                request = models.QuerySendDetailsRequest(
                    phone_number=national(msg.to),
                    send_date=day.strftime("%Y%m%d"),
                    page_size=50,
                    current_page=page,
                )
                response = await self._client.query_send_details_async(request)
                body = response.body
                if body is None or body.code != "OK":
                    # a None must mean "not there": an answer we cannot read is an error
                    raise RuntimeError(f"aliyun QuerySendDetails: {body.code if body else 'empty'}")
                details = (
                    body.sms_send_detail_dtos.sms_send_detail_dto
                    if body.sms_send_detail_dtos
                    else []
                )
                for d in details or []:
                    found = f"out:{msg.key}"
                    if d.out_id == msg.key and found not in exclude:
                        return found
                if len(details or []) < 50:
                    break
            day += timedelta(days=1)
        return None

    async def close(self) -> None:
        return None  # the SDK holds no connection between requests


def _mapping(params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not params:
        return None
    p = params.get("aliyun")
    return p if isinstance(p, Mapping) else None
