"""A fake of the Twilio REST API (Messages and Calls) for tests and the demo.

It listens on 127.0.0.1 on a free port; point the SDK at it with `client.api.base_url` (our
settings: notifiers.twilio.base_url). Answers have Twilio's shapes, close enough for the real
twilio SDK to parse them: instance JSON, list pages, and the legacy error JSON
{"code", "message", "more_info", "status"} that the SDK turns into TwilioRestException.

    async with FakeTwilio() as fake:
        fake.script("429", "201")   # the next two POSTs
        ... settings.base_url = fake.base_url ...
        assert fake.messages[0]["body"] == "..."
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

from aiohttp import web
from twilio.request_validator import RequestValidator

API = "/2010-04-01"

# Scripted answers for POSTs. "201" accepts; "500-after-accept" accepts and then answers 500
# (the ambiguous case); "hang" answers nothing until the fake stops; any other status code
# answers that error without storing anything.
_ERROR_CODES = {400: 21211, 401: 20003, 403: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
_ERROR_MESSAGES = {
    400: "The 'To' number is not a valid phone number.",
    401: "Authenticate",
    403: "Forbidden",
    404: "The requested resource was not found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    form: dict[str, str]  # POST body fields (one value per field)
    query: dict[str, str]
    headers: dict[str, str]


def sign(url: str, params: dict[str, str], token: str) -> str:
    """X-Twilio-Signature for a webhook POST to `url` with form `params`, as Twilio computes it."""
    return RequestValidator(token).compute_signature(url, params)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _rfc2822(d: datetime | None) -> str | None:
    return None if d is None else format_datetime(d.astimezone(UTC), usegmt=True)


def _parse_filter_date(value: str) -> datetime:
    # The SDK sends "YYYY-MM-DDTHH:MM:SSZ"; Twilio also accepts a bare date "YYYY-MM-DD".
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class FakeTwilio:
    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",
        *,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.now = now
        self.requests: list[Recorded] = []
        self.messages: list[dict] = []  # sid, to, from, body, date_created (UTC datetime), ...
        self.calls: list[dict] = []  # sid, to, from, twiml, date_created, ...
        self.base_url: str | None = None
        self.retry_after: str | None = None  # when set, sent as Retry-After with 429 answers
        self._answers: deque[str] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        # Status callbacks, as Twilio sends them: off unless a test turns them on. A call reports
        # "initiated" (when created with that event asked for), a message "sent".
        self.send_callbacks = False
        self.callbacks_sent: list[tuple[str, dict[str, str]]] = []
        self._callback_tasks: set[asyncio.Task] = set()
        self._port = 0

    # -- control ---------------------------------------------------------------------------

    def script(self, *answers: str) -> None:
        """Queue answers for the next POSTs; when the queue is empty, POSTs are accepted."""
        for a in answers:
            if a not in ("201", "500-after-accept", "hang") and not (a.isdigit() and len(a) == 3):
                raise ValueError(f"unknown scripted answer {a!r}")
        self._answers.extend(answers)

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    async def start(self) -> str:
        app = web.Application()
        base = f"{API}/Accounts/{{account}}"
        app.router.add_post(f"{base}/Messages.json", self._create_message)
        app.router.add_get(f"{base}/Messages.json", self._list_messages)
        app.router.add_post(f"{base}/Calls.json", self._create_call)
        app.router.add_get(f"{base}/Calls.json", self._list_calls)
        # A short shutdown timeout: a "hang" handler must not hold stop() for aiohttp's 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def go_away(self) -> None:
        """An outage: the port is closed, connections are refused, until come_back()."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def come_back(self) -> None:
        """The end of an outage: listening again on the same port."""
        await self.start()

    def _callback(self, url: str | None, form: dict[str, str]) -> None:
        if not self.send_callbacks or not url:
            return
        task = asyncio.get_running_loop().create_task(self._post_callback(url, form))
        self._callback_tasks.add(task)
        task.add_done_callback(self._callback_tasks.discard)

    async def _post_callback(self, url: str, form: dict[str, str]) -> None:
        import aiohttp

        headers = {"X-Twilio-Signature": sign(url, form, self.auth_token)}
        from yarl import URL

        # encoded=True: sent as signed, byte for byte (re-quoting would change the signature)
        async with aiohttp.ClientSession() as session, session.post(
            URL(url, encoded=True), data=form, headers=headers
        ) as response:
            await response.read()
        self.callbacks_sent.append((url, form))

    async def flush_callbacks(self) -> None:
        """Wait until every status callback sent so far has been answered."""
        while self._callback_tasks:
            await asyncio.gather(*list(self._callback_tasks), return_exceptions=True)

    async def stop(self) -> None:
        self._stopping.set()  # releases "hang" handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTwilio:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- helpers ---------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> Recorded:
        form = await request.post() if request.method == "POST" else {}
        rec = Recorded(
            method=request.method,
            path=request.path,
            form={k: str(v) for k, v in form.items()},
            query=dict(request.query),
            headers=dict(request.headers),
        )
        self.requests.append(rec)
        return rec

    def _error(self, status: int, message: str | None = None, code: int | None = None):
        code = code if code is not None else _ERROR_CODES.get(status, status)
        return web.json_response(
            {
                "code": code,
                "message": message or _ERROR_MESSAGES.get(status, "Error"),
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
            headers={"Retry-After": self.retry_after}
            if status == 429 and self.retry_after
            else None,
        )

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        try:
            scheme, _, value = header.partition(" ")
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self._error(401)
        if scheme != "Basic" or user != self.account_sid or password != self.auth_token:
            return self._error(401)
        if request.match_info["account"] != self.account_sid:
            return self._error(404)
        return None

    async def _scripted(self) -> str:
        answer = self._answers.popleft() if self._answers else "201"
        if answer == "hang":
            try:
                await asyncio.wait_for(self._stopping.wait(), 3600)
            except TimeoutError:
                pass
        return answer

    def _uri(self, kind: str, sid: str | None = None, **query: object) -> str:
        uri = f"{API}/Accounts/{self.account_sid}/{kind}"
        uri += f"/{sid}.json" if sid else ".json"
        return uri + (f"?{urlencode(query)}" if query else "")

    # -- messages ---------------------------------------------------------------------------

    def _message_json(self, m: dict) -> dict:
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": m["body"],
            "date_created": _rfc2822(m["date_created"]),
            "date_sent": _rfc2822(m["date_sent"]),
            "date_updated": _rfc2822(m["date_created"]),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": m["from"],
            "messaging_service_sid": m["messaging_service_sid"],
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": m["sid"],
            "status": m["status"],
            "subresource_uris": {
                "media": self._uri("Messages", m["sid"]).replace(".json", "/Media.json")
            },
            "to": m["to"],
            "uri": self._uri("Messages", m["sid"]),
        }

    async def _create_message(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        answer = await self._scripted()
        if answer == "hang":
            return self._error(503)  # only reached once the fake stops; the client gave up
        if answer not in ("201", "500-after-accept"):
            return self._error(int(answer))
        f = rec.form
        if not f.get("To", "").startswith("+"):
            return self._error(400, f"The 'To' number {f.get('To')} is not a valid phone number.")
        if not f.get("From") and not f.get("MessagingServiceSid"):
            return self._error(400, "A 'From' phone number is required.", 21603)
        if not f.get("Body"):
            return self._error(400, "Message body is required.", 21602)
        message = {
            "sid": "SM" + secrets.token_hex(16),
            "to": f["To"],
            "from": f.get("From"),
            "messaging_service_sid": f.get("MessagingServiceSid"),
            "body": f["Body"],
            "status": "queued" if f.get("From") else "accepted",
            "date_created": self.now(),
            "date_sent": None,  # as on Twilio: set when handed to the carrier, not on acceptance
            "status_callback": f.get("StatusCallback"),
            "validity_period": f.get("ValidityPeriod"),
        }
        self.messages.append(message)
        self._callback(message["status_callback"], {
            "AccountSid": self.account_sid, "MessageSid": message["sid"], "MessageStatus": "sent",
            "To": message["to"],
        })  # fmt: skip
        if answer == "500-after-accept":
            return self._error(500)
        return web.json_response(self._message_json(message), status=201)

    async def _list_messages(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        q = request.query
        found = [
            m
            for m in reversed(self.messages)  # newest first, as Twilio lists them
            if _matches(m, q, "To", "to")
            and _matches(m, q, "From", "from")
            and _date_matches(m["date_sent"], q, "DateSent")
        ]
        return self._page(request, "messages", "Messages", [self._message_json(m) for m in found])

    # -- calls ------------------------------------------------------------------------------

    def _call_json(self, c: dict) -> dict:
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "answered_by": None,
            "date_created": _rfc2822(c["date_created"]),
            "date_updated": _rfc2822(c["date_created"]),
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "from": c["from"],
            "from_formatted": c["from"],
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "sid": c["sid"],
            "start_time": None,  # as on Twilio: set when the call starts, not when queued
            "status": c["status"],
            "to": c["to"],
            "to_formatted": c["to"],
            "uri": self._uri("Calls", c["sid"]),
        }

    async def _create_call(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        answer = await self._scripted()
        if answer == "hang":
            return self._error(503)
        if answer not in ("201", "500-after-accept"):
            return self._error(int(answer))
        f = rec.form
        if not f.get("To", "").startswith("+"):
            return self._error(
                400,
                f"The phone number you are attempting to call, {f.get('To')}, is not valid.",
                21211,
            )
        if not f.get("From"):
            return self._error(400, "A 'From' phone number is required.", 21213)
        if not (f.get("Twiml") or f.get("Url") or f.get("ApplicationSid")):
            return self._error(400, "Url, Twiml or ApplicationSid is required.", 21205)
        call = {
            "sid": "CA" + secrets.token_hex(16),
            "to": f["To"],
            "from": f["From"],
            "twiml": f.get("Twiml"),
            "status": "queued",
            "date_created": self.now(),
            "status_callback": f.get("StatusCallback"),
        }
        self.calls.append(call)
        events = {str(v) for v in (await request.post()).getall("StatusCallbackEvent", [])}
        if "initiated" in events:
            self._callback(call["status_callback"], {
                "AccountSid": self.account_sid, "CallSid": call["sid"], "CallStatus": "initiated",
                "To": call["to"],
            })  # fmt: skip
        if answer == "500-after-accept":
            return self._error(500)
        return web.json_response(self._call_json(call), status=201)

    async def _list_calls(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        q = request.query
        found = [
            c
            for c in reversed(self.calls)
            if _matches(c, q, "To", "to")
            and _matches(c, q, "From", "from")
            and _matches(c, q, "Status", "status")
            # start_time is never set in the fake (no call ever starts), like a queued call
            and _date_matches(None, q, "StartTime")
        ]
        return self._page(request, "calls", "Calls", [self._call_json(c) for c in found])

    # -- list pages -------------------------------------------------------------------------

    def _page(self, request: web.Request, key: str, kind: str, records: list[dict]) -> web.Response:
        """One page in Twilio's 2010 format. The SDK takes the records from the one key that is
        not a paging key (twilio/base/page.py) and follows next_page_uri (relative to the
        domain's base_url) until it is null or the limit is reached."""
        q = request.query
        size = int(q.get("PageSize", "50"))
        page = int(q.get("Page", "0"))
        chunk = records[page * size : (page + 1) * size]
        filters = {k: v for k, v in q.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(n: int) -> str:
            return self._uri(kind, **filters, PageSize=size, Page=n)

        has_next = (page + 1) * size < len(records)
        return web.json_response(
            {
                key: chunk,
                "end": page * size + max(len(chunk) - 1, 0),
                "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) if has_next else None,
                "page": page,
                "page_size": size,
                "previous_page_uri": uri(page - 1) if page > 0 else None,
                "start": page * size,
                "uri": uri(page),
            }
        )


def _matches(record: dict, query: Mapping[str, str], param: str, field: str) -> bool:
    return param not in query or record.get(field) == query[param]


def _date_matches(value: datetime | None, query: Mapping[str, str], param: str) -> bool:
    """Twilio's date filters: X (same day), X< (on or before), X> (on or after). A record with
    no date (a message not yet sent, a call not yet started) matches no date filter."""
    conditions = [(op, query[param + op]) for op in ("", "<", ">") if param + op in query]
    if not conditions:
        return True
    if value is None:
        return False
    for op, raw in conditions:
        bound = _parse_filter_date(raw)
        if op == "" and value.date() != bound.date():
            return False
        if op == "<" and value > bound:
            return False
        if op == ">" and value < bound:
            return False
    return True


# -- a separate process -----------------------------------------------------------------------


class _LoggedList(list):
    """A list that also writes each appended record as one JSON line (flushed at once, before the
    fake answers), so another process can see what the fake accepted even if we are killed."""

    def __init__(self, kind: str, stream) -> None:
        super().__init__()
        self._kind = kind
        self._stream = stream

    def append(self, record: dict) -> None:  # type: ignore[override]
        super().append(record)
        import json

        line = {
            "kind": self._kind,
            **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in record.items()},
        }
        self._stream.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._stream.flush()


async def _serve(port: int, log_path: str, account_sid: str, auth_token: str) -> None:
    import signal
    import sys

    with open(log_path, "a", encoding="utf-8") as stream:  # noqa: ASYNC230 (once, at start-up)
        fake = FakeTwilio(account_sid, auth_token)
        fake.messages = _LoggedList("message", stream)
        fake.calls = _LoggedList("call", stream)
        # keep the request log bounded: a long run would otherwise keep every request
        fake.requests = _Bounded()
        app_started = await _start_on(fake, port)
        print(f"listening {app_started}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await fake.stop()
        print("stopped", file=sys.stderr, flush=True)


class _Bounded(list):
    def append(self, item) -> None:  # type: ignore[override]
        if len(self) > 1000:
            del self[:500]
        super().append(item)


async def _start_on(fake: FakeTwilio, port: int) -> str:
    """FakeTwilio.start on a given port (0: any free port)."""
    app = web.Application()
    base = f"{API}/Accounts/{{account}}"
    app.router.add_post(f"{base}/Messages.json", fake._create_message)
    app.router.add_get(f"{base}/Messages.json", fake._list_messages)
    app.router.add_post(f"{base}/Calls.json", fake._create_call)
    app.router.add_get(f"{base}/Calls.json", fake._list_calls)
    fake._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await fake._runner.setup()
    await web.TCPSite(fake._runner, "127.0.0.1", port).start()
    fake.base_url = f"http://127.0.0.1:{fake._runner.addresses[0][1]}"
    return fake.base_url


def main(argv: list[str] | None = None) -> None:
    """python -m tests.fakes.fake_twilio --port N --log FILE

    Runs the fake until SIGTERM/SIGINT and writes every accepted message and call to FILE as a
    JSON line ({"kind": "message"|"call", "sid", "to", "from", "body"|"twiml", ...}). Prints
    "listening http://127.0.0.1:PORT" on stdout once it accepts connections."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.fakes.fake_twilio")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    parser.add_argument(
        "--log", required=True, help="JSON-lines file of accepted messages and calls"
    )
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--auth-token", default="test-token")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.log, args.account_sid, args.auth_token))


if __name__ == "__main__":
    main()
