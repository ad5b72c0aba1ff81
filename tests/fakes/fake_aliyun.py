"""A fake of Aliyun SMS's RPC API (dysmsapi 2017-05-25: SendSms, QuerySendDetails) on loopback.

Point the official SDK at it with `Config(endpoint="127.0.0.1:PORT", protocol="http")` (our
settings: notifiers.aliyun.endpoint / protocol). It checks every request's RPC signature
(ACS3-HMAC-SHA256 with the access key secret) as Aliyun does, and answers with Aliyun's JSON shapes.

    async with FakeAliyun() as fake:
        fake.script("isv.BUSINESS_LIMIT_CONTROL", "OK")   # the next two SendSms
        ...
        assert fake.messages[0]["TemplateCode"] == "SMS_480000001"

It also builds the pushes Aliyun makes to us: `report(...)` (SmsReport, 回执) and
`reply(...)` (SmsUp, 上行短信), as JSON arrays.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from collections import deque
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from alibabacloud_tea_openapi.utils import Utils

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEY_ID = "LTAI-test-key-id"
KEY_SECRET = "test-key-secret"

# Scripted SendSms answers: "OK" accepts; any other Aliyun code ("isv.BUSINESS_LIMIT_CONTROL",
# "isv.MOBILE_NUMBER_ILLEGAL", "isp.SYSTEM_ERROR"...) is answered in a 200 body without storing;
# "http-NNN" answers HTTP NNN with an error body; "500-after-accept" stores the message, then
# answers 500 (the ambiguous case); "throttle" answers 400 Throttling.User with
# x-acs-retry-after; "hang" answers nothing until the fake stops.


class FakeAliyun:
    def __init__(self, key_id: str = KEY_ID, key_secret: str = KEY_SECRET) -> None:
        self.key_id = key_id
        self.key_secret = key_secret
        self.messages: list[dict[str, Any]] = []  # accepted SendSms parameters, plus BizId, at
        self.requests: list[dict[str, str]] = []  # every request's query, signature checked
        self.endpoint: str | None = None  # "127.0.0.1:PORT"
        self._answers: deque[str] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        # numbers (as sent, national form) answered with a per-number limit code, whatever the
        # script says: `limit(number, code)`; `limited` counts those answers per number
        self.limits: dict[str, str] = {}
        self.limited: dict[str, int] = {}

    def script(self, *answers: str) -> None:
        self._answers.extend(answers)

    def limit(self, number: str, code: str = "isv.BUSINESS_LIMIT_CONTROL") -> None:
        """Answer every SendSms to `number` with `code` (Aliyun's per-number frequency control)."""
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

    async def __aenter__(self) -> FakeAliyun:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the API ---------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str, **headers: str) -> web.Response:
        body = {"RequestId": f"req-{next(self._ids)}", "Code": code, "Message": message}
        return web.json_response(body, status=status, headers=headers or None)

    def _signed(self, request: web.Request, body: bytes) -> str | None:
        """None when the ACS3-HMAC-SHA256 signature (the SDK's default) holds, else the error."""
        scheme, _, fields = request.headers.get("Authorization", "").partition(" ")
        parts = dict(f.split("=", 1) for f in fields.split(",") if "=" in f)
        if scheme != "ACS3-HMAC-SHA256" or parts.get("Credential") != self.key_id:
            return "InvalidAccessKeyId.NotFound"
        if hashlib.sha256(body).hexdigest() != request.headers.get("x-acs-content-sha256"):
            return "SignatureDoesNotMatch"
        names = parts.get("SignedHeaders", "").split(";")
        signed = SimpleNamespace(
            pathname=request.path, method=request.method, query=dict(request.query),
            headers={n: request.headers.get(n) for n in names},
        )  # fmt: skip
        expected = Utils.get_authorization(
            signed, scheme, hashlib.sha256(body).hexdigest(), self.key_id, self.key_secret
        )
        if expected != request.headers["Authorization"]:
            return "SignatureDoesNotMatch"
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        query = dict(request.query)
        self.requests.append(query)
        problem = self._signed(request, body)
        if problem is not None:
            return self._error(400 if problem == "SignatureDoesNotMatch" else 404, problem, problem)
        action = request.headers.get("x-acs-action")
        if action == "SendSms":
            return await self._send(query)
        if action == "QuerySendDetails":
            return self._query(query)
        return self._error(400, "InvalidAction.NotFound", f"unknown action {action}")

    async def _send(self, q: dict[str, str]) -> web.StreamResponse:
        number = q.get("PhoneNumbers", "")
        if number in self.limits:
            self.limited[number] = self.limited.get(number, 0) + 1
            return self._error(200, self.limits[number], "触发小时级流控Permits:5")
        answer = self._answers.popleft() if self._answers else "OK"
        if answer == "hang":
            try:
                await asyncio.wait_for(self._stopping.wait(), 3600)
            except TimeoutError:
                pass
            return self._error(500, "isp.SYSTEM_ERROR", "stopped")
        if answer == "throttle":
            return self._error(400, "Throttling.User", "Request was denied due to user flow control.",
                               **{"x-acs-retry-after": "2000"})  # fmt: skip
        if answer.startswith("http-"):
            status = int(answer.removeprefix("http-"))
            return self._error(
                status, "InternalError" if status >= 500 else "InvalidParameter", "error"
            )
        if answer not in ("OK", "500-after-accept"):
            limit = answer == "isv.BUSINESS_LIMIT_CONTROL"
            return self._error(200, answer, "触发小时级流控Permits:5" if limit else "scripted")
        for field in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not q.get(field):
                return self._error(400, "MissingParameter", f"{field} is mandatory")
        biz_id = f"{next(self._ids):06d}^0"
        self.messages.append({
            "PhoneNumbers": q["PhoneNumbers"], "SignName": q["SignName"], "TemplateCode": q["TemplateCode"],
            "TemplateParam": json.loads(q.get("TemplateParam") or "{}"), "OutId": q.get("OutId"),
            "BizId": biz_id, "at": datetime.now(SHANGHAI),
        })  # fmt: skip
        if answer == "500-after-accept":
            return self._error(500, "isp.SYSTEM_ERROR", "system error")
        return web.json_response(
            {"RequestId": f"req-{next(self._ids)}", "Code": "OK", "Message": "OK", "BizId": biz_id}
        )

    def _query(self, q: dict[str, str]) -> web.Response:
        day = q.get("SendDate", "")
        size, page = int(q.get("PageSize", "10")), int(q.get("CurrentPage", "1"))
        found = [
            m for m in self.messages
            if m["PhoneNumbers"] == q.get("PhoneNumber") and m["at"].strftime("%Y%m%d") == day
        ]  # fmt: skip
        rows = found[(page - 1) * size : page * size]
        dtos = [
            {"PhoneNum": m["PhoneNumbers"], "SendStatus": 3, "ErrCode": "DELIVERED",
             "TemplateCode": m["TemplateCode"], "Content": json.dumps(m["TemplateParam"], ensure_ascii=False),
             "SendDate": m["at"].strftime("%Y-%m-%d %H:%M:%S"), "ReceiveDate": "", "OutId": m["OutId"]}
            for m in rows
        ]  # fmt: skip
        return web.json_response({
            "RequestId": f"req-{next(self._ids)}", "Code": "OK", "Message": "OK",
            "TotalCount": str(len(found)), "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos},
        })  # fmt: skip


def report(message: dict[str, Any], *, success: bool = True, err_code: str = "DELIVERED") -> dict:
    """One SmsReport item for an accepted message, as Aliyun pushes it (in a JSON array)."""
    return {
        "phone_number": message["PhoneNumbers"], "send_time": message["at"].strftime("%Y-%m-%d %H:%M:%S"),
        "report_time": datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"), "success": success,
        "err_code": err_code, "err_msg": "用户接收成功" if success else "用户接收失败", "sms_size": "1",
        "biz_id": message["BizId"], "out_id": message["OutId"],
    }  # fmt: skip


def reply(phone: str, content: str, sign_name: str = "某某街道办事处") -> dict:
    """One SmsUp item (a reply to our number), as Aliyun pushes it (in a JSON array)."""
    return {
        "phone_number": phone, "send_time": datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
        "content": content, "sign_name": sign_name, "dest_code": "1234", "sequence_id": 1,
    }  # fmt: skip


if __name__ == "__main__":
    # python -m tests.fakes.fake_aliyun --port N --log FILE: prints "listening 127.0.0.1:PORT"
    from tests.fakes.serve import main

    main(FakeAliyun, "python -m tests.fakes.fake_aliyun")
