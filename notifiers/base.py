"""The notifier interface: what the dispatcher hands a notifier and what it gets back.

A notifier does exactly one attempt per `send` call. Retrying, backing off and switching channel
are the dispatcher's job, because only it knows the outbox state; so the outcome has to say
precisely whether a resend could duplicate a message (see SendResult)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from supervisor.vocabulary import MESSAGE_CHANNELS

CHANNELS = frozenset(MESSAGE_CHANNELS)

Outcome = Literal["sent", "retry", "failed", "unknown", "limited"]


@dataclass(frozen=True)
class Outgoing:
    key: str  # stable idempotency key of this message in our outbox, e.g. "outbox:123"
    channel: str  # "sms" | "voice" | "console" | "wecom" | "dingtalk"
    to: str  # E.164 phone for sms/voice; ignored for webhook robots; a label for console
    text: str  # the message body (Chinese), already rendered
    urgent: bool = False
    # For providers that send only registered templates (aliyun_sms, tencent_sms): the template
    # and its parameters rendered when the step fired (supervisor/config/sms_templates.py):
    # {"template": name, "aliyun": {"code", "sign_name", "params"}, "tencent": {...}}.
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SendResult:
    """The result of one attempt.

    "sent":    the provider accepted it.
    "retry":   definitely NOT accepted (429, connection refused before sending) -> safe to resend.
    "failed":  permanent (invalid number, bad credentials) -> do not resend on this channel.
    "unknown": may or may not have been accepted (5xx after the request was sent, read
               timeout) -> the caller must reconcile with `find_sent` before resending.
    "limited": definitely NOT accepted because the provider limits this recipient (a per-number
               or per-template frequency or daily limit): the provider works, so this is no
               provider failure; resend to this person later (`retry_after_s`: how much later).
    """

    outcome: Outcome
    provider_id: str | None = None  # Twilio SID etc.
    error: str | None = None  # short reason, never containing the phone number
    retry_after_s: float | None = None  # when the provider said when (429 Retry-After)


@runtime_checkable
class Notifier(Protocol):
    name: str  # registry name
    channels: frozenset[str]
    required_settings: tuple[str, ...]  # names of settings (env vars or config keys) it needs

    async def send(self, msg: Outgoing) -> SendResult: ...

    async def find_sent(
        self, msg: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        """Reconcile after "unknown": the provider id of an already-accepted identical message
        sent at or after `since`, else None. Raises if the provider cannot be asked (a None must
        mean "not there", or the caller would resend a duplicate). Ids in `exclude` are already
        recorded for other messages and are never this one."""
        ...

    async def close(self) -> None: ...
