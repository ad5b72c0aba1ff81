"""SMS through Twilio's Messages API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from notifiers.base import Outgoing, SendResult
from notifiers.twilio_client import SEND_ERRORS, TwilioClient, outcome_for
from supervisor.config.notifier_settings import TwilioSettings

# Twilio's dates have one-second resolution and its clock is not ours: look this far before
# `since` so that a message accepted in the same second as the attempt is not missed.
CLOCK_SLACK = timedelta(seconds=60)


def status_callback_for(base: str | None, msg: Outgoing) -> str | None:
    """Our outbox key rides along in the callback URL, so a status callback can be matched to
    its outbox row even when the create call's answer was lost (no SID on our side)."""
    if base is None:
        return None
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{urlencode({'key': msg.key})}"


def utc_floor(since: datetime) -> datetime:
    if since.tzinfo is None:
        # The SDK formats datetimes with strftime(...Z) without converting: a naive or local
        # time would silently shift the window by the UTC offset.
        raise ValueError("since must be timezone-aware")
    return since.astimezone(UTC) - CLOCK_SLACK


MAX_SCAN = 5_000  # messages to one number looked at when reconciling; far more than a window holds


class TwilioSmsNotifier:
    provider = "twilio"  # SMS and calls share one account: one circuit breaker
    name = "twilio_sms"
    channels = frozenset({"sms"})

    def __init__(self, client: TwilioClient, settings: TwilioSettings) -> None:
        self._client = client
        self._settings = settings
        self.required_settings: tuple[str, ...] = (
            settings.account_sid_env,
            settings.auth_token_env,
        )

    async def send(self, msg: Outgoing) -> SendResult:
        s = self._settings
        kwargs: dict[str, object] = {"to": msg.to, "body": msg.text}
        if s.messaging_service_sid is not None:
            kwargs["messaging_service_sid"] = s.messaging_service_sid
        else:
            kwargs["from_"] = s.from_number
        if s.validity_period_s is not None:
            kwargs["validity_period"] = s.validity_period_s
        callback = status_callback_for(s.status_callback_url, msg)
        if callback is not None:
            kwargs["status_callback"] = callback
        try:
            message = await self._client.rest().messages.create_async(**kwargs)
        except SEND_ERRORS as exc:
            return outcome_for(exc)
        return SendResult("sent", provider_id=message.sid)

    async def find_sent(
        self, msg: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        """The SID of a message to the same number with the same body created since `since`.

        We filter on date_created ourselves rather than with DateSent>: a message Twilio has
        accepted but not yet handed to the carrier (status queued, which can last minutes
        behind a 1 msg/s long code) has no date_sent and would be missed, and we would send it
        twice. The list is newest first: we page back until messages are older than `since`
        (however many reached this number meanwhile), up to MAX_SCAN messages."""
        after = utc_floor(since)
        stream = await self._client.rest().messages.stream_async(
            to=msg.to, page_size=100, limit=MAX_SCAN
        )
        async for m in stream:
            if m.date_created is not None and m.date_created < after:
                break  # newest first: everything further is older still
            if m.body == msg.text and m.date_created is not None and m.sid not in exclude:
                return m.sid
        return None

    async def close(self) -> None:
        await self._client.close()
