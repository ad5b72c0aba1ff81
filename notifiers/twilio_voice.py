"""Voice calls through Twilio's Calls API: the text is read out by Twilio's text-to-speech."""

from __future__ import annotations

from datetime import datetime

from twilio.twiml.voice_response import VoiceResponse

from .base import Outgoing, SendResult
from .settings import TwilioSettings
from .twilio_client import SEND_ERRORS, TwilioClient, outcome_for
from .twilio_sms import status_callback_for, utc_floor


def twiml_for(text: str, language: str) -> str:
    """<Response><Say language=...>text</Say></Response>; the builder escapes the text for XML."""
    response = VoiceResponse()
    response.say(text, language=language)
    return str(response)


class TwilioVoiceNotifier:
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
        try:
            call = await self._client.rest().calls.create_async(**kwargs)
        except SEND_ERRORS as exc:
            return outcome_for(exc)
        return SendResult("sent", provider_id=call.sid)

    async def find_sent(self, msg: Outgoing, since: datetime) -> str | None:
        """The SID of a call from our number to the same number created since `since`.

        Twilio's call records do not keep the TwiML, so the text cannot be compared: any call
        we placed to that number in the window counts. That is the right trade for voice: a
        second call about another matter within the window is rare, a duplicate call is not.
        Filtered on date_created, not StartTime>, because a queued call has no start_time."""
        after = utc_floor(since)
        calls = await self._client.rest().calls.list_async(
            to=msg.to, from_=self._settings.from_number, limit=50
        )
        for c in calls:
            if c.date_created is not None and c.date_created >= after:
                return c.sid
        return None

    async def close(self) -> None:
        await self._client.close()
