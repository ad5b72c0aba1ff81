"""Webhooks of the domestic SMS providers: delivery receipts (回执) and replies (上行短信).

    POST /providers/aliyun/{token}/report    Aliyun SmsReport, a JSON array  -> {"code": 0, ...}
    POST /providers/aliyun/{token}/reply     Aliyun SmsUp, a JSON array      -> {"code": 0, ...}
    POST /providers/tencent/{token}/report   Tencent status callback, array  -> {"result": 0, ...}
    POST /providers/tencent/{token}/reply    Tencent reply callback, object  -> {"result": 0, ...}

Neither provider signs these pushes (their documented payloads carry no signature and no
secret), so the URL is the credential: `{token}` must equal the secret named by
notifiers.<provider>.callback_token_env, compared in constant time; anything else gets 403 and
changes nothing. Register the full URL, token included, in the provider's console, over HTTPS.

A receipt finds its outbox row by our key (Aliyun's out_id is "outbox:<id>") or by the
provider's id (BizId, SerialNo), like Twilio's status callbacks: success -> delivery_status
'delivered'; failure -> 'undelivered' and the dispatcher's fallback (sms -> voice), once. A
reply goes through the same acknowledgement path as a Twilio SMS reply
(twilio_hooks.acknowledge_reply); the providers cannot carry an answer back, so none is sent.
Providers retry a push they got no 2xx for, and every handler is idempotent.

Phone numbers in the payloads are personal data: used to find the message replied to, never
logged.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from supervisor.config.delivery import DeliverySettings
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.core.clock import Clock
from supervisor.core.inputs import InputRefused
from supervisor.delivery.outbox import Dispatcher
from supervisor.server.body import decode_checked
from supervisor.server.twilio_hooks import AckFn, _outbox_id, ack_word_set, acknowledge_reply
from supervisor.storage.base import Store

log = logging.getLogger(__name__)

MAX_ITEMS = 1000  # receipts in one push; the providers send at most a few hundred

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_provider_hooks(
    app: web.Application,
    *,
    store: Store,
    clock: Clock,
    notifiers: NotifierSettings,
    env: Mapping[str, str],
    ack: AckFn,
    dispatcher: Dispatcher | None,
    settings: DeliverySettings,
) -> list[str]:
    """Add the routes of each configured provider that names a callback token; returns the
    providers served (a provider without `callback_token_env` gets no webhook)."""
    ack_words = ack_word_set(settings)
    served = []

    async def record(row_key: str | None, provider_id: str | None, ok: bool, reason: str) -> None:
        state = "delivered" if ok else "undelivered"
        # the row by our key, else by the provider's id; the status goes on its whole group
        row_id = await store.record_status(_outbox_id(row_key), provider_id, state, clock.now())
        if row_id is None:
            log.warning("receipt for no known message", extra={"status": state})
            return
        if not ok:
            if dispatcher is not None:
                await dispatcher.delivery_failed(row_id, reason)
            else:  # no dispatcher in this process: record it; nobody can fall back here
                await store.mark_failed(row_id, reason)
        log.info("delivery status", extra={"outbox": row_id, "status": state})

    async def on_reply(provider: str, sender: str, text: str) -> None:
        answer = await acknowledge_reply(store, ack, ack_words, sender, text)
        log.info("sms reply handled", extra={"provider": provider, "answer": answer})

    # -- Aliyun ------------------------------------------------------------------------------

    async def aliyun_report(items: list[dict[str, Any]]) -> None:
        for item in items:
            ok = item.get("success") is True
            reason = f"aliyun {item.get('err_code') or 'undelivered'}"
            await record(_str(item.get("out_id")), _str(item.get("biz_id")), ok, reason)

    async def aliyun_reply(items: list[dict[str, Any]]) -> None:
        for item in items:
            await on_reply(
                "aliyun",
                e164(_str(item.get("phone_number")) or ""),
                _str(item.get("content")) or "",
            )

    # -- Tencent -----------------------------------------------------------------------------

    async def tencent_report(items: list[dict[str, Any]]) -> None:
        for item in items:
            ok = item.get("report_status") == "SUCCESS"
            reason = f"tencent {item.get('errmsg') or 'FAIL'}"
            await record(None, _str(item.get("sid")), ok, reason)

    async def tencent_reply(items: list[dict[str, Any]]) -> None:
        for item in items:
            code = _str(item.get("nationcode")) or "86"
            await on_reply(
                "tencent", f"+{code}{_str(item.get('mobile')) or ''}", _str(item.get("text")) or ""
            )

    aliyun_ok = {"code": 0, "msg": "成功"}
    tencent_ok = {"result": 0, "errmsg": "OK"}
    routes = {
        "aliyun": (notifiers.aliyun, aliyun_report, aliyun_reply, aliyun_ok),
        "tencent": (notifiers.tencent, tencent_report, tencent_reply, tencent_ok),
    }
    for provider, (cfg, on_report, on_up, ok_body) in routes.items():
        if cfg is None or cfg.callback_token_env is None:
            continue
        token = env.get(cfg.callback_token_env, "")
        if not token:
            raise ValueError(f"{provider}: {cfg.callback_token_env} is not set")
        base = f"/providers/{provider}/{{token}}"
        app.router.add_post(f"{base}/report", _handler(provider, token, on_report, ok_body))
        app.router.add_post(f"{base}/reply", _handler(provider, token, on_up, ok_body))
        served.append(provider)
    return served


def _handler(
    provider: str,
    token: str,
    handle: Callable[[list[dict[str, Any]]], Awaitable[None]],
    ok_body: dict[str, Any],
) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if not hmac.compare_digest(request.match_info["token"].encode(), token.encode()):
            log.warning("provider webhook with a wrong token", extra={"provider": provider})
            return web.Response(status=403, text="forbidden")
        try:
            payload = decode_checked(await request.read())
        except InputRefused as exc:
            return web.json_response({"error": exc.english}, status=400)
        except (ValueError, RecursionError):
            return web.Response(status=400, text="JSON expected")
        items = payload if isinstance(payload, list) else [payload]
        if len(items) > MAX_ITEMS or not all(isinstance(i, dict) for i in items):
            return web.Response(status=400, text="a JSON object or an array of objects expected")
        await handle(items)
        return web.json_response(ok_body)

    return handler


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def e164(number: str) -> str:
    """A mainland number as Aliyun writes it (13800000000, 8613800000000, +86...) in E.164."""
    digits = number.strip().lstrip("+")
    if digits.startswith("0086"):
        digits = digits[4:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"+86{digits}"
    return f"+{digits}"
