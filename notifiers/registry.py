"""Which notifier serves which channel, built from the `notifiers:` settings and the
environment (which holds the secrets the settings name)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from notifiers.aliyun_sms import AliyunSmsNotifier
from notifiers.base import CHANNELS, Notifier
from notifiers.console import ConsoleNotifier
from notifiers.tencent_sms import TencentSmsNotifier
from notifiers.twilio_client import TwilioClient
from notifiers.twilio_sms import TwilioSmsNotifier
from notifiers.twilio_voice import TwilioVoiceNotifier
from notifiers.webhook import DingTalkNotifier, WeComNotifier
from supervisor.config.notifier_settings import NotifierSettings, missing_settings

__all__ = ["NOTIFIERS", "build_notifiers", "close_all", "missing_settings"]

NOTIFIERS: dict[str, type] = {
    cls.name: cls
    for cls in (
        ConsoleNotifier,
        TwilioSmsNotifier,
        TwilioVoiceNotifier,
        WeComNotifier,
        DingTalkNotifier,
        AliyunSmsNotifier,
        TencentSmsNotifier,
    )
}


def build_notifiers(
    settings: NotifierSettings, env: Mapping[str, str], *, stream: TextIO | None = None
) -> dict[str, Notifier]:
    """A notifier for every channel. A channel whose provider is not configured goes to the
    console, so a demo or a test configuration runs without any credentials.

    Raises ValueError listing everything missing, rather than failing at the first message."""
    missing = missing_settings(settings, env)
    if missing:
        raise ValueError("; ".join(missing))
    console = ConsoleNotifier(stream)
    chosen: dict[str, Notifier] = dict.fromkeys(CHANNELS, console)

    tw = settings.twilio
    if tw is not None:
        # One client for both: one connection pool and one place to close.
        client = TwilioClient(
            env[tw.account_sid_env],
            env[tw.auth_token_env],
            base_url=tw.base_url,
            timeout_s=tw.timeout_s,
        )
        chosen["sms"] = TwilioSmsNotifier(client, tw)
        if tw.from_number is not None:  # a messaging service alone cannot place calls
            chosen["voice"] = TwilioVoiceNotifier(client, tw)

    # A domestic template provider takes the sms channel; a Twilio configured too keeps voice.
    if settings.aliyun is not None:
        al = settings.aliyun
        chosen["sms"] = AliyunSmsNotifier(
            env[al.access_key_id_env], env[al.access_key_secret_env], al
        )
    if settings.tencent is not None:
        tc = settings.tencent
        chosen["sms"] = TencentSmsNotifier(env[tc.secret_id_env], env[tc.secret_key_env], tc)

    if settings.wecom is not None:
        var = settings.wecom.webhook_url_env
        chosen["wecom"] = WeComNotifier(
            env[var],
            timeout_s=settings.wecom.timeout_s,
            required_settings=(var,),
            format=settings.wecom.format,
        )

    dt = settings.dingtalk
    if dt is not None:
        chosen["dingtalk"] = DingTalkNotifier(
            env[dt.webhook_url_env],
            secret=env[dt.secret_env] if dt.secret_env is not None else None,
            timeout_s=dt.timeout_s,
            required_settings=tuple(v for v in (dt.webhook_url_env, dt.secret_env) if v),
            format=dt.format,
        )
    return chosen


async def close_all(notifiers: Mapping[str, Notifier]) -> None:
    """Close each distinct notifier once (several channels may share one)."""
    seen: set[int] = set()
    for notifier in notifiers.values():
        if id(notifier) not in seen:
            seen.add(id(notifier))
            await notifier.close()
