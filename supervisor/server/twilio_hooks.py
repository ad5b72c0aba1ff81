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

from supervisor.acking import AckOutcome
from supervisor.config.delivery import DeliverySettings
from supervisor.core.clock import Clock
from supervisor.core.events import TICKET_ID
from supervisor.delivery.outbox import Dispatcher
from supervisor.storage.base import NOT_DELIVERED, Store

log = logging.getLogger(__name__)

# (ticket, rule, by, via, roles of the messages replied to) -> what was acknowledged
AckFn = Callable[[str, str | None, str, str, frozenset[str]], Awaitable[AckOutcome]]

_PUNCTUATION = " \t\r\n。.！!，,~～"

ROLE_NAMES = {"liaison": "联络员", "head": "单位负责人", "supervisor": "街道热线专员",
              "leader": "分管领导", "grid": "网格员"}  # fmt: skip

HELP = "如已收到督办提醒，请回复“收到”确认；有多张工单时回复“收到 工单编号”。"
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
    ack_words = ack_word_set(settings)

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
        answer = await acknowledge_reply(
            store, ack, ack_words, form.get("From") or "", form.get("Body") or ""
        )
        return _twiml(answer)

    app.router.add_post("/twilio/status", status)
    app.router.add_post("/twilio/inbound", inbound)


def parse_reply(body: str, ack_words: set[str]) -> tuple[str | None, str | None]:
    """(the acknowledgement word, the ticket named after it or None); (None, None) when the
    reply is not an acknowledgement. "1" and "1 A2026..." (also "收到，A2026...")."""
    text = body.strip(_PUNCTUATION)
    if text.casefold() in ack_words:
        return text, None
    head, _, rest = text.replace("，", " ").replace(",", " ").partition(" ")
    rest = rest.strip(_PUNCTUATION)
    named = TICKET_ID.fullmatch(rest) and any(c.isdigit() for c in rest)
    if head.strip(_PUNCTUATION).casefold() in ack_words and named:
        return head, rest
    return None, None


def reply_text(ticket: str, out: AckOutcome) -> str:
    """The answer to an acknowledging reply, in words the unit understands."""
    if out.status == "not_allowed":
        whom = "、".join(ROLE_NAMES.get(r, r) for r in out.refused_roles)
        return f"工单{ticket}的督办发给{whom}，需由其本人确认；您的回复未停止该督办。"
    if out.status != "ok" or not out.acknowledged:
        return NOTHING_TO_ACK
    if out.still_open:
        return f"已确认，工单{ticket}中发给您的提醒已停止；更高一级的督办不受影响。"
    return f"已确认，工单{ticket}的督办已停止。"


def ack_word_set(settings: DeliverySettings) -> set[str]:
    return {w.strip(_PUNCTUATION).casefold() for w in settings.ack_words}


async def acknowledge_reply(
    store: Store, ack: AckFn, ack_words: set[str], sender: str, body: str
) -> str:
    """An SMS reply from `sender` (E.164): an acknowledgement word ("收到", or "收到 <ticket>"
    naming one) answers the latest message sent to that number (of that ticket) whose ladder
    still runs. `ack` applies the rank rule (supervisor/acking.acknowledge, core.acks): the replier
    ends only what is addressed to them and those below, never a higher rank's steps. Returns
    the answer to send back (the Twilio webhook replies with it; the domestic providers' hooks
    only log it). Shared by every SMS provider's reply webhook (provider_hooks.py)."""
    word, ticket = parse_reply(body, ack_words)
    if word is None:
        return HELP
    reply = await store.latest_sent_to(sender, ticket)
    if reply is None:
        return NOTHING_TO_ACK if not ticket else f"工单{ticket}没有发给您的待确认督办。"
    # the roles this person was addressed as on the ticket (a supervisor standing in for a head)
    roles = await store.roles_sent(reply.ticket, reply.recipient)
    out = await ack(reply.ticket, reply.rule, reply.recipient, "sms", roles)
    log.info(
        "acknowledged by SMS",
        extra={
            "ticket": reply.ticket,
            "rule": reply.rule,
            "recipient": reply.recipient,
            "status": out.status,
            "ladders": out.acknowledged,
        },
    )
    return reply_text(reply.ticket, out)


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
