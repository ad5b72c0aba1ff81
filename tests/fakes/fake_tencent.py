"""A fake of Tencent Cloud SMS's API 2021-01-11 (SendSms, PullSmsSendStatusByPhoneNumber) on loopback.

Point the official SDK at it with `HttpProfile(endpoint="127.0.0.1:PORT", protocol="http")`
(our settings: notifiers.tencent.endpoint / protocol). It checks every request's TC3-HMAC-SHA256
signature with the secret key, as Tencent Cloud does, and answers with the API's JSON shapes
({"Response": {..., "RequestId"}}, errors as {"Response": {"Error": {"Code", "Message"}}}).

    async with FakeTencent() as fake:
        fake.script("LimitExceeded.PhoneNumberOneHourLimit", "Ok")
        ...
        assert fake.messages[0]["TemplateId"] == "2000001"

`report(...)` and `reply(...)` build the callbacks Tencent makes to us (回执 and 上行短信).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections import deque
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

SECRET_ID = "AKID-test-secret-id"
SECRET_KEY = "test-secret-key"
APP_ID = "1400000001"

# Scripted SendSms answers: "Ok" accepts; a code starting with an API error class
# ("RequestLimitExceeded", "InternalError.Timeout", "FailedOperation.TemplateIncorrectOrUnapproved",
# "AuthFailure.SecretIdNotFound"...) is answered as a whole-request Error; "status:CODE" answers
# 200 with one SendStatus whose Code is CODE (per-number refusals such as
# "status:LimitExceeded.PhoneNumberOneHourLimit"); "http-NNN" answers that HTTP status;
# "500-after-accept" stores the message then answers 500; "hang" answers nothing until stop.


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def tc3_signature(secret_key: str, date: str, service: str, canonical_request: str, ts: str) -> str:
    scope = f"{date}/{service}/tc3_request"
    hashed = hashlib.sha256(canonical_request.encode()).hexdigest()
    to_sign = f"TC3-HMAC-SHA256\n{ts}\n{scope}\n{hashed}"
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTencent:
    def __init__(self, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.messages: list[dict[str, Any]] = []  # accepted SendSms parameters, plus SerialNo, at
        self.actions: list[str] = []
        self.endpoint: str | None = None
        self._answers: deque[str] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        # numbers (E.164) answered with a per-number limit status, whatever the script says:
        # `limit(number, code)`; `limited` counts those answers per number
        self.limits: dict[str, str] = {}
        self.limited: dict[str, int] = {}

    def script(self, *answers: str) -> None:
        self._answers.extend(answers)

    def limit(self, number: str, code: str = "LimitExceeded.PhoneNumberDailyLimit") -> None:
        """Answer every SendSms to `number` with a SendStatus of `code` (a per-number limit)."""
        self.limits[number] = code

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.endpoint = f"127.0.0.1:{self._runner.addresses[0][1]}"
        return self.endpoint

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTencent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the API ---------------------------------------------------------------------------

    def _answer(self, body: dict[str, Any], status: int = 200) -> web.Response:
        body = {**body, "RequestId": f"req-{next(self._ids)}"}
        # the SDK looks for errors only when the content type is exactly application/json
        return web.Response(
            status=status,
            body=json.dumps({"Response": body}),
            headers={"Content-Type": "application/json"},
        )

    def _error(self, code: str, message: str = "scripted") -> web.Response:
        return self._answer({"Error": {"Code": code, "Message": message}})

    def _signed(self, request: web.Request, body: bytes) -> bool:
        auth = request.headers.get("Authorization", "")
        scheme, _, rest = auth.partition(" ")
        parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
        cred = parts.get("Credential", "").split("/")
        if scheme != "TC3-HMAC-SHA256" or len(cred) != 4 or cred[0] != self.secret_id:
            return False
        canonical = (
            f"POST\n/\n\ncontent-type:{request.headers.get('Content-Type')}\n"
            f"host:{request.headers.get('Host')}\n\ncontent-type;host\n"
            f"{hashlib.sha256(body).hexdigest()}"
        )
        ts = request.headers.get("X-TC-Timestamp", "")
        expected = tc3_signature(self.secret_key, cred[1], cred[2], canonical, ts)
        return hmac.compare_digest(expected, parts.get("Signature", ""))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        action = request.headers.get("X-TC-Action", "")
        self.actions.append(action)
        if not self._signed(request, body):
            return self._error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )
        params = json.loads(body or b"{}")
        if action == "SendSms":
            return await self._send(params)
        if action == "PullSmsSendStatusByPhoneNumber":
            return self._pull(params)
        return self._error("InvalidAction", f"unknown action {action}")

    async def _send(self, p: dict[str, Any]) -> web.StreamResponse:
        phones = p.get("PhoneNumberSet") or []
        if len(phones) == 1 and phones[0] in self.limits:
            self.limited[phones[0]] = self.limited.get(phones[0], 0) + 1
            answer = "status:" + self.limits[phones[0]]
        else:
            answer = self._answers.popleft() if self._answers else "Ok"
        if answer == "hang":
            try:
                await asyncio.wait_for(self._stopping.wait(), 3600)
            except TimeoutError:
                pass
            return web.Response(status=500)
        if answer.startswith("http-"):
            return web.Response(status=int(answer.removeprefix("http-")), text="error")
        if answer not in ("Ok", "500-after-accept") and not answer.startswith("status:"):
            return self._error(answer)
        phones = p.get("PhoneNumberSet") or []
        if p.get("SmsSdkAppId") is None or not p.get("TemplateId") or len(phones) != 1:
            return self._error("MissingParameter", "SmsSdkAppId, TemplateId and one number")
        code = answer.removeprefix("status:") if answer.startswith("status:") else "Ok"
        serial = f"2433:{next(self._ids):010d}"
        status = {"SerialNo": serial if code == "Ok" else "", "PhoneNumber": phones[0], "Fee": 1,
                  "SessionContext": p.get("SessionContext", ""), "Code": code,
                  "Message": "send success" if code == "Ok" else "scripted", "IsoCode": "CN"}  # fmt: skip
        if code == "Ok":
            self.messages.append({
                "PhoneNumber": phones[0], "SmsSdkAppId": p["SmsSdkAppId"], "SignName": p.get("SignName"),
                "TemplateId": p["TemplateId"], "TemplateParamSet": p.get("TemplateParamSet") or [],
                "SessionContext": p.get("SessionContext", ""), "SerialNo": serial, "at": datetime.now(UTC),
            })  # fmt: skip
        if answer == "500-after-accept":
            return web.Response(status=500, text="error")
        return self._answer({"SendStatusSet": [status]})

    def _pull(self, p: dict[str, Any]) -> web.Response:
        begin, end = int(p.get("BeginTime", 0)), int(p.get("EndTime", 2**62))
        found = [
            m for m in self.messages
            if m["PhoneNumber"] == p.get("PhoneNumber") and begin <= m["at"].timestamp() <= end
        ]  # fmt: skip
        offset, limit = int(p.get("Offset", 0)), int(p.get("Limit", 100))
        rows = [
            {"UserReceiveTime": int(m["at"].timestamp()), "CountryCode": "86",
             "SubscriberNumber": m["PhoneNumber"].removeprefix("+86"), "PhoneNumber": m["PhoneNumber"],
             "SerialNo": m["SerialNo"], "ReportStatus": "SUCCESS", "Description": "用户短信送达成功",
             "SessionContext": m["SessionContext"]}
            for m in found[offset : offset + limit]
        ]  # fmt: skip
        return self._answer({"PullSmsSendStatusSet": rows})


def report(message: dict[str, Any], *, success: bool = True) -> dict[str, Any]:
    """One status callback item (回执) for an accepted message, as Tencent posts it (in an array)."""
    return {
        "user_receive_time": datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        "nationcode": "86", "mobile": message["PhoneNumber"].removeprefix("+86"),
        "report_status": "SUCCESS" if success else "FAIL", "errmsg": "DELIVRD" if success else "MK:0001",
        "description": "用户短信送达成功" if success else "用户短信接收失败", "sid": message["SerialNo"],
    }  # fmt: skip


def reply(phone: str, text: str, sign: str = "某某街道办事处") -> dict[str, Any]:
    """A reply callback (上行短信), as Tencent posts it (one JSON object)."""
    return {"extend": "", "mobile": phone.removeprefix("+86"), "nationcode": "86", "sign": sign,
            "text": text, "time": int(datetime.now(UTC).timestamp())}  # fmt: skip


if __name__ == "__main__":
    # python -m tests.fakes.fake_tencent --port N --log FILE: prints "listening 127.0.0.1:PORT"
    from tests.fakes.serve import main

    main(FakeTencent, "python -m tests.fakes.fake_tencent")
