"""Voice calls through Twilio's Calls API: the call's own script (core/spoken.py) read out by
Twilio's text-to-speech, with a <Gather> for the key that acknowledges (server/twilio_hooks.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from notifiers.base import Outgoing, SendResult
from notifiers.twilio_client import SEND_ERRORS, TwilioClient, outcome_for
from notifiers.twilio_sms import CLOCK_SLACK, status_callback_for, utc_floor
from supervisor.config.notifier_settings import TwilioSettings

PROMPT = "按1确认收到，按2重听。"
GOODBYE = "详情将以短信发送给您，再见。"
READINGS = 2  # a call is read at most this often without a key


def twiml_for(
    text: str,
    language: str,
    *,
    voice: str | None = None,
    action: str | None = None,
    timeout_s: int = 6,
    readings: int = READINGS,
) -> str:
    """The call's TwiML. With `action` (our /twilio/gather URL for this message), each reading is
    a <Gather numDigits="1"> around <Say> that ends with the key prompt: a key posts `Digits`
    there (1 acknowledges, 2 repeats); no key after `readings` readings ends politely (the SMS
    with the details follows). Without it, the text is read `readings` times and asks for no key.
    The builder escapes the text for XML."""
    response = VoiceResponse()
    say = {"language": language, **({"voice": voice} if voice else {})}
    for _ in range(readings):
        if action is None:
            response.say(text, **say)  # the script ends with 详情请查看短信
            continue
        gather = response.gather(
            num_digits=1, action=action, method="POST", timeout=timeout_s, action_on_empty_result=False
        )
        gather.say(text + PROMPT, **say)
    response.say(GOODBYE, **say)
    return str(response)


def gather_action(base: str | None, key: str) -> str | None:
    """Our /twilio/gather URL for this message: the outbox key rides along, as for the status
    callback, so the key pressed is tied to its message."""
    if base is None:
        return None
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{urlencode({'key': key})}"


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
            "twiml": twiml_for(
                msg.text, s.say_language, voice=s.voice,
                action=gather_action(s.gather_url, msg.key), timeout_s=s.gather_timeout_s,
            ),  # fmt: skip
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
