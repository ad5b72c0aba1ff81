"""Voice calls through Twilio's Calls API: the text is read out by Twilio's text-to-speech."""

from __future__ import annotations

from datetime import datetime, timedelta

from twilio.twiml.voice_response import VoiceResponse

from notifiers.base import Outgoing, SendResult
from notifiers.twilio_client import SEND_ERRORS, TwilioClient, outcome_for
from notifiers.twilio_sms import CLOCK_SLACK, status_callback_for, utc_floor
from supervisor.config.notifier_settings import TwilioSettings


def twiml_for(text: str, language: str) -> str:
    """<Response><Say language=...>text</Say></Response>; the builder escapes the text for XML."""
    response = VoiceResponse()
    response.say(text, language=language)
    return str(response)


# Twilio's clock and ours may differ by a little; date_created has whole seconds.
CLOCK_SLACK_S = 5


class TwilioVoiceNotifier:
    provider = "twilio"  # SMS and calls share one account: one circuit breaker
    name = "twilio_voice"
    channels = frozenset({"voice"})

    def __init__(self, client: TwilioClient, settings: TwilioSettings) -> None:
        if settings.from_number is None:
            # A messaging service cannot place calls; the registry checks this first.
            raise ValueError("twilio voice needs from_number")
        self._client = client
        self._settings = settings
        self.required_settings: tuple[str, ...] = (
            settings.account_sid_env,
            settings.auth_token_env,
        )

    async def send(self, msg: Outgoing) -> SendResult:
        s = self._settings
        kwargs: dict[str, object] = {
            "to": msg.to,
            "from_": s.from_number,
            "twiml": twiml_for(msg.text, s.voice_language),
        }
        callback = status_callback_for(s.status_callback_url, msg)
        if callback is not None:
            kwargs["status_callback"] = callback
            # From the first event on, so that a call whose create answer was lost is tied to its
            # row (the URL carries the outbox key) within seconds, long before a reconciliation.
            kwargs["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
        try:
            call = await self._client.rest().calls.create_async(**kwargs)
        except SEND_ERRORS as exc:
            return outcome_for(exc)
        return SendResult("sent", provider_id=call.sid)

    async def find_sent(
        self, msg: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        """The SID of a call from our number to the same number created in the moments of the
        attempt that began at `since`.

        Twilio's call records do not keep the TwiML, so the text cannot be compared. The window
        is therefore narrow: from just before `since` (the dispatcher stamps it right before the
        request) to the request's time-out after it. A call to the same person outside that
        window is another call and does not count, so an attempt that never reached Twilio is
        placed again rather than lost; and a call already recorded for another message
        (`exclude`) is not this one. Filtered on date_created, not StartTime>, because a
        queued call has no start_time."""
        start = (
            utc_floor(since) + CLOCK_SLACK
        )  # utc_floor checks the zone and subtracts the SMS slack
        lo = start - timedelta(seconds=CLOCK_SLACK_S)
        hi = start + timedelta(seconds=self._settings.timeout_s + CLOCK_SLACK_S)
        stream = await self._client.rest().calls.stream_async(
            to=msg.to, from_=self._settings.from_number, page_size=100, limit=1000
        )
        async for c in stream:
            created = c.date_created
            if created is None:
                continue
            if created < lo:
                break  # newest first
            if created <= hi and c.sid not in exclude:
                return c.sid
        return None

    async def close(self) -> None:
        await self._client.close()
