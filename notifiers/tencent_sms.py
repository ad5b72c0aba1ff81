"""SMS through Tencent Cloud SMS (腾讯云短信, API 2021-01-11) with its official SDK.

Tencent sends only registered templates: a message is the SmsSdkAppId, the sign name, the
template id and the positional parameters ({1}, {2}, ...) rendered when the step fired
(Outgoing.params["tencent"], see supervisor/config/sms_templates.py). Our outbox key rides along
as SessionContext, which PullSmsSendStatusByPhoneNumber returns, so a reconciliation matches the
message by key, not by guess.

Facts about tencentcloud-sdk-python (common 3.1) this module relies on:
- The SmsClient is synchronous (requests). Its async twin needs httpx, which we do not install;
  so one client per process runs its calls in a one-thread executor (requests' Session is then
  never shared between threads, and the event loop never blocks).
- With no retryer in the profile a request is made once.
- API errors come in a 200 answer ({"Response": {"Error": ...}}) and raise
  TencentCloudSDKException with the API's code; a non-200 answer raises it with code
  "ServerNetworkError"; any requests error raises it with code "ClientNetworkError", the
  original requests exception being its __context__ (how a refused connection, nothing sent, is
  told from a lost answer).
- A SendSms answer has one SendStatus per number, with its own Code ("Ok" when accepted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import errorcodes as ec
from tencentcloud.sms.v20210111 import models
from tencentcloud.sms.v20210111.sms_client import SmsClient
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from notifiers.aliyun_sms import redact
from notifiers.base import Outgoing, SendResult
from supervisor.config.notifier_settings import TencentSmsSettings

T = TypeVar("T")

# Not sent, and later can work: the API's request rate (the account's, as Twilio's 429). A
# common error of every Tencent Cloud API, so not in the SMS SDK's errorcodes.py.
REQUEST_LIMIT = "RequestLimitExceeded"
# Per-number limits (30 seconds, 1 hour, 1 day, the same content in a day) and the per-number
# frequency policy: this recipient waits that long; Tencent works, so its breaker is not touched.
# (LimitExceeded.PhoneNumberCountLimit is not one: it means more than 200 numbers in one request.)
LIMIT_WAIT_S = {
    ec.LIMITEXCEEDED_PHONENUMBERTHIRTYSECONDLIMIT: 30.0,
    ec.LIMITEXCEEDED_DELIVERYFREQUENCYLIMIT: 30.0,
    ec.LIMITEXCEEDED_PHONENUMBERONEHOURLIMIT: 3600.0,
    ec.LIMITEXCEEDED_PHONENUMBERDAILYLIMIT: 86400.0,
    ec.LIMITEXCEEDED_PHONENUMBERSAMECONTENTDAILYLIMIT: 86400.0,
}
# Sent or not, nobody can say: Tencent's own internal errors (the SMS API's, and the common
# `InternalError`), and a non-200 answer.
INTERNAL = "InternalError"
UNKNOWN_CODES = frozenset(
    {ec.INTERNALERROR_JSONPARSEFAIL, ec.INTERNALERROR_OTHERERROR, ec.INTERNALERROR_PARSEBACKENDRESPONSEFAIL,
     ec.INTERNALERROR_RESTAPIINTERFACENOTEXIST, ec.INTERNALERROR_SENDANDRECVFAIL,
     ec.INTERNALERROR_SIGVERIFICATIONFAIL, ec.INTERNALERROR_TIMEOUT, ec.INTERNALERROR_UNKNOWNERROR,
     INTERNAL, "ServerNetworkError"}
)  # fmt: skip
# Tencent's clock check failed: the request was refused before anything was sent, and a resend
# made with the same clock fails the same way.
NOT_SENT_INTERNAL = frozenset(
    {ec.INTERNALERROR_REQUESTTIMEEXCEPTION, ec.INTERNALERROR_SIGFIELDMISSING}
)
# Every other code (AuthFailure.*, UnauthorizedOperation.*, InvalidParameterValue.*,
# FailedOperation.* such as a missing template or an empty package, MissingParameter, the
# application's own daily limits...) is permanent for this message.

CLOCK_SLACK = timedelta(seconds=60)


def outcome_for_code(code: str | None, message: str | None) -> SendResult:
    code = code or ""
    error = f"tencent {code}: {redact(message or '')}"
    if code in LIMIT_WAIT_S:
        return SendResult("limited", error=error, retry_after_s=LIMIT_WAIT_S[code])
    if code == REQUEST_LIMIT or code.startswith(REQUEST_LIMIT + "."):
        return SendResult("retry", error=error)
    if code in NOT_SENT_INTERNAL:
        return SendResult("failed", error=error)
    if code in UNKNOWN_CODES or code.startswith(INTERNAL + "."):
        return SendResult("unknown", error=error)
    return SendResult("failed", error=error)


def outcome_for(exc: TencentCloudSDKException) -> SendResult:
    code = exc.get_code()
    if code == "ClientNetworkError":
        cause = exc.__context__
        if _not_connected(cause):
            return SendResult("retry", error=f"tencent {type(cause).__name__}")
        return SendResult("unknown", error=f"tencent {type(cause).__name__ if cause else code}")
    if code == "ServerNetworkError":
        return SendResult("unknown", error="tencent ServerNetworkError (answer not 200)")
    return outcome_for_code(code, exc.get_message())


def _not_connected(exc: BaseException | None) -> bool:
    """True when requests never got a connection, so nothing was sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        inner = exc.args[0]
        reason = inner.reason if isinstance(inner, MaxRetryError) else inner
        return isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return False


class TencentSmsNotifier:
    name = "tencent_sms"
    channels = frozenset({"sms"})
    templated = True  # the dispatcher sends each message alone (no free-text groups)

    def __init__(self, secret_id: str, secret_key: str, settings: TencentSmsSettings) -> None:
        self._settings = settings
        profile = ClientProfile(
            httpProfile=HttpProfile(
                protocol=settings.protocol,
                endpoint=settings.endpoint,
                reqTimeout=max(1, round(settings.timeout_s)),
            )
        )
        self._client = SmsClient(
            credential.Credential(secret_id, secret_key), settings.region, profile
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tencent-sms")
        self.required_settings: tuple[str, ...] = (settings.secret_id_env, settings.secret_key_env)

    async def _call(self, fn: Callable[[Any], T], request: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, request)

    async def send(self, msg: Outgoing) -> SendResult:
        p = _mapping(msg.params)
        if p is None:
            template = (msg.params or {}).get("template") or "a grouped or free-text message"
            return SendResult("failed", error=f"tencent: no registered template for {template}")
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [msg.to]
        request.SmsSdkAppId = self._settings.sdk_app_id
        request.SignName = p["sign_name"]
        request.TemplateId = p["code"]
        request.TemplateParamSet = [str(v) for v in p["params"]]
        request.SessionContext = msg.key
        try:
            response = await self._call(self._client.SendSms, request)
        except TencentCloudSDKException as exc:
            return outcome_for(exc)
        statuses = response.SendStatusSet or []
        if len(statuses) != 1:
            return SendResult(
                "unknown", error=f"tencent answered {len(statuses)} statuses for 1 number"
            )
        status = statuses[0]
        if status.Code == "Ok":
            return SendResult("sent", provider_id=status.SerialNo)
        return outcome_for_code(status.Code, status.Message)

    async def find_sent(
        self, msg: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        """The SerialNo of a message to this number whose SessionContext is our key.

        PullSmsSendStatusByPhoneNumber lists the receipts (回执) of a number between two times:
        a message accepted but not yet reported by the carrier is not listed, so a reconcile
        soon after an ambiguous send can miss it (docs/RELIABILITY.md). SessionContext is echoed
        only when Tencent has enabled it for the account."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        begin = int((since - CLOCK_SLACK).astimezone(UTC).timestamp())
        end = int((datetime.now(UTC) + CLOCK_SLACK).timestamp())
        offset = 0
        while True:
            request = models.PullSmsSendStatusByPhoneNumberRequest()
            request.BeginTime = begin
            request.EndTime = end
            request.Offset = offset
            request.Limit = 100
            request.PhoneNumber = msg.to
            request.SmsSdkAppId = self._settings.sdk_app_id
            response = await self._call(self._client.PullSmsSendStatusByPhoneNumber, request)
            rows = response.PullSmsSendStatusSet or []
            for r in rows:
                if r.SessionContext == msg.key and r.SerialNo and r.SerialNo not in exclude:
                    return str(r.SerialNo)
            if len(rows) < 100 or offset >= 10_000:
                return None
            offset += 100

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _mapping(params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not params:
        return None
    p = params.get("tencent")
    return p if isinstance(p, Mapping) else None
