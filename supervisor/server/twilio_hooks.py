"""Twilio's webhooks: delivery status callbacks, and SMS replies that acknowledge an escalation.

Every request must carry a valid X-Twilio-Signature (HMAC of the URL Twilio called and the form
with our auth token); anything else gets 403 and changes nothing. Behind a proxy the URL we see
is not the one Twilio signed, so `public_url` (scheme and host as Twilio calls them) replaces our
own scheme and host; the path and the raw query string are kept exactly as received, because
re-encoding them (e.g. %3A in `key=outbox%3A12`) would change what was signed.

Twilio retries a webhook it got no answer to, so both handlers are idempotent: a status update
writes the same values again, a fallback is keyed by the outbox UNIQUE constraint, and a second
"收到" finds the ladder already acknowledged.

The sender's number is personal data: it is used to find the message replied to, never logged and
never echoed back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from supervisor.core.clock import Clock
from supervisor.delivery.outbox import Dispatcher
from supervisor.delivery.policy import DeliverySettings
from supervisor.storage.base import NOT_DELIVERED, Store

log = logging.getLogger(__name__)

AckFn = Callable[[str, str | None, str, str], Awaitable[int]]  # (ticket, rule, by, via) -> ladders

_PUNCTUATION = " \t\r\n。.！!，,~～"

HELP = "如已收到督办提醒，请回复“收到”确认。"
NOTHING_TO_ACK = "没有需要确认的督办提醒。"


def setup_twilio_hooks(
    app: web.Application,
    *,
    store: Store,
    clock: Clock,
    auth_token: str,
    public_url: str | None,
    ack: AckFn,
    dispatcher: Dispatcher | None,
    settings: DeliverySettings,
) -> None:
    """Add POST /twilio/status and POST /twilio/inbound to `app`."""
    validator = RequestValidator(auth_token)
    ack_words = {w.strip(_PUNCTUATION).casefold() for w in settings.ack_words}

    async def verified_form(request: web.Request) -> dict[str, str] | None:
        form = await request.post()
        base = public_url.rstrip("/") if public_url else f"{request.scheme}://{request.host}"
        signature = request.headers.get("X-Twilio-Signature", "")
        # The multidict itself is validated: a repeated field is signed with all its values.
        if not signature or not validator.validate(base + request.raw_path, form, signature):
            log.warning("twilio webhook with a bad signature", extra={"path": request.path})
            return None
        return {k: v for k, v in form.items() if isinstance(v, str)}

    async def status(request: web.Request) -> web.Response:
        form = await verified_form(request)
        if form is None:
            return web.Response(status=403, text="invalid signature")
        state = (form.get("MessageStatus") or form.get("CallStatus") or "").lower()
        sid = form.get("MessageSid") or form.get("CallSid")
        key = _outbox_id(request.query.get("key"))
        row_id = await store.record_status(key, sid, state, clock.now())
        if row_id is None:
            log.warning("status callback for no known message", extra={"status": state})
            return web.Response(status=204)
        if state in NOT_DELIVERED:
            code = form.get("ErrorCode")
            reason = f"twilio {state}" + (f" (error {code})" if code else "")
            if dispatcher is not None:
                await dispatcher.delivery_failed(row_id, reason)
            else:  # no dispatcher in this process: record it; nobody can fall back here
                await store.mark_failed(row_id, reason)
        log.info("delivery status", extra={"outbox": row_id, "status": state})
        return web.Response(status=204)

    async def inbound(request: web.Request) -> web.Response:
        form = await verified_form(request)
        if form is None:
            return web.Response(status=403, text="invalid signature")
        body = (form.get("Body") or "").strip(_PUNCTUATION).casefold()
        if body not in ack_words:
            return _twiml(HELP)
        reply = await store.latest_sent_to(form.get("From") or "")
        if reply is None:
            return _twiml(NOTHING_TO_ACK)
        acked = await ack(reply.ticket, reply.rule, reply.recipient, "sms")
        log.info(
            "acknowledged by SMS",
            extra={
                "ticket": reply.ticket,
                "rule": reply.rule,
                "recipient": reply.recipient,
                "ladders": acked,
            },
        )
        if not acked:
            return _twiml(NOTHING_TO_ACK)
        return _twiml(f"已确认，工单{reply.ticket}的督办已停止。")

    app.router.add_post("/twilio/status", status)
    app.router.add_post("/twilio/inbound", inbound)


def _outbox_id(key: str | None) -> int | None:
    """`outbox:<id>`, the key the SMS and voice notifiers put in the callback URL."""
    if not key or not key.startswith("outbox:"):
        return None
    digits = key.removeprefix("outbox:")
    return int(digits) if digits.isdigit() else None


def _twiml(text: str) -> web.Response:
    reply = MessagingResponse()
    reply.message(text)
    return web.Response(text=str(reply), content_type="text/xml")
