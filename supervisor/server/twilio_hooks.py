"""Twilio's webhooks: delivery status callbacks, SMS replies that acknowledge an escalation, and
the key pressed during a call (<Gather>: 1 acknowledges, 2 repeats).

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
from datetime import datetime

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from notifiers.twilio_voice import twiml_for
from supervisor.acking import AckOutcome
from supervisor.config.delivery import DeliverySettings
from supervisor.config.notifier_settings import TwilioSettings
from supervisor.core.clock import Clock
from supervisor.core.events import TICKET_ID
from supervisor.delivery.outbox import Dispatcher
from supervisor.delivery.sending import compose
from supervisor.storage.base import NOT_DELIVERED, OutboxRow, Store

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
    voice: TwilioSettings | None = None,
) -> None:
    """Add POST /twilio/status, /twilio/inbound (SMS replies) and /twilio/gather (the key pressed
    during a call) to `app`. `voice`: the call settings (language, voice) the answers to a key
    are read with."""
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

    async def gather(request: web.Request) -> web.Response:
        form = await verified_form(request)
        if form is None:
            return web.Response(status=403, text="invalid signature")
        oid = _outbox_id(request.query.get("key"))
        rows = await store.call_rows(oid) if oid is not None else []
        base = public_url.rstrip("/") if public_url else f"{request.scheme}://{request.host}"
        answer = await keypress(
            store, ack, rows, (form.get("Digits") or "").strip(), clock.now(),
            voice=voice, action=base + request.raw_path,
        )  # fmt: skip
        return web.Response(text=answer, content_type="text/xml")

    app.router.add_post("/twilio/status", status)
    app.router.add_post("/twilio/inbound", inbound)
    app.router.add_post("/twilio/gather", gather)


def parse_reply(body: str, ack_words: set[str]) -> tuple[str | None, str | None]:
    """(the acknowledgement word, the word after it or None); (None, None) when the reply is not
    an acknowledgement. "1", "1 A2026...", "收到，A2026...", "1 RA". The word after it is only a
    candidate: any valid ticket id, digits or not (the documented alphabet allows ids of
    letters only); acknowledge_reply takes it as a ticket only when it names one of the
    replier's open ladders."""
    text = body.strip(_PUNCTUATION)
    if text.casefold() in ack_words:
        return text, None
    head, _, rest = text.replace("，", " ").replace(",", " ").partition(" ")
    rest = rest.strip(_PUNCTUATION)
    if head.strip(_PUNCTUATION).casefold() in ack_words and TICKET_ID.fullmatch(rest):
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
    if reply is None and ticket and ticket.upper() != ticket:  # "1 ra" for ticket RA
        reply = await store.latest_sent_to(sender, ticket.upper())
    if reply is None:
        if not ticket:
            return NOTHING_TO_ACK
        if not any(c.isdigit() for c in ticket):
            # a word that is none of their open tickets ("收到 好的") is not taken as an id
            return HELP
        return f"工单{ticket}没有发给您的待确认督办。"
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


async def keypress(
    store: Store,
    ack: AckFn,
    rows: list[OutboxRow],
    digits: str,
    now: datetime,
    *,
    voice: TwilioSettings | None,
    action: str,
) -> str:
    """The TwiML answering a key pressed during a call (rows: the call's message group). 1
    acknowledges every ticket the call was about, through the rank rule (`ack`, as an SMS reply
    does): the person ends only what is addressed to them and those below; 2 (or another key)
    reads the call again. What the key did is recorded on the call's rows (工单详情 shows it)."""
    language = voice.say_language if voice is not None else "zh-CN"
    say = {"language": language, **({"voice": voice.voice} if voice and voice.voice else {})}
    response = VoiceResponse()
    if not rows:
        response.say("没有找到这通电话对应的提醒，再见。", **say)
        return str(response)
    lead = rows[0]["id"]
    if digits != "1":
        result = "重听" if digits == "2" else f"按{digits or '空'}键，重听"
        await store.record_keypress(lead, digits, result, now)
        timeout = voice.gather_timeout_s if voice is not None else 6
        return twiml_for(compose(rows), language, voice=voice.voice if voice else None,
                         action=action, timeout_s=timeout)  # fmt: skip
    person = str(rows[0]["recipient"])
    outcomes = []
    for ticket, rule in dict.fromkeys((str(r["ticket"]), str(r["rule"])) for r in rows):
        roles = await store.roles_sent(ticket, person)
        outcomes.append(await ack(ticket, rule, person, "voice", roles))
    words, result = keypress_words(outcomes)
    await store.record_keypress(lead, digits, result, now)
    log.info("acknowledged by keypress",
             extra={"outbox": lead, "recipient": person, "result": result})  # fmt: skip
    response.say(words, **say)
    return str(response)


def keypress_words(outcomes: list[AckOutcome]) -> tuple[str, str]:
    """(what the call says, what the desk shows) after a 1."""
    done = [o for o in outcomes if o.status == "ok" and o.acknowledged]
    refused = sorted({r for o in outcomes if o.status == "not_allowed" for r in o.refused_roles})
    if done and any(o.still_open for o in done):
        return "已确认收到，发给您的提醒已停止，更高一级的督办不受影响。谢谢，再见。", "已确认（本级）"
    if done:
        return "已确认收到，督办已停止。谢谢，再见。", "已确认"
    if refused:
        whom = "、".join(ROLE_NAMES.get(r, r) for r in refused)
        return f"该督办需由{whom}本人确认，您的按键未停止督办。再见。", "无权确认"
    return "没有需要确认的督办提醒，再见。", "无待确认"


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
