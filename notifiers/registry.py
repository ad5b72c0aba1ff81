"""Which notifier serves which channel, built from the `notifiers:` settings and the
environment (which holds the secrets the settings name)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from notifiers.aliyun_sms import AliyunSmsNotifier
from notifiers.base import CHANNELS, Notifier
from notifiers.console import ConsoleNotifier
from notifiers.settings import NotifierSettings
from notifiers.tencent_sms import TencentSmsNotifier
from notifiers.twilio_client import TwilioClient
from notifiers.twilio_sms import TwilioSmsNotifier
from notifiers.twilio_voice import TwilioVoiceNotifier
from notifiers.webhook import DingTalkNotifier, WeComNotifier

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


def missing_settings(settings: NotifierSettings, env: Mapping[str, str]) -> list[str]:
    """What a configured notifier lacks, as messages for a human; empty when all is set."""
    wanted: list[tuple[str, str, str | None]] = []  # (notifier, setting key, env var name)
    if settings.twilio is not None:
        wanted += [
            ("twilio", "account_sid_env", settings.twilio.account_sid_env),
            ("twilio", "auth_token_env", settings.twilio.auth_token_env),
        ]
    if settings.wecom is not None:
        wanted.append(("wecom", "webhook_url_env", settings.wecom.webhook_url_env))
    if settings.dingtalk is not None:
        wanted.append(("dingtalk", "webhook_url_env", settings.dingtalk.webhook_url_env))
        wanted.append(("dingtalk", "secret_env", settings.dingtalk.secret_env))
    if settings.aliyun is not None:
        wanted += [
            ("aliyun", "access_key_id_env", settings.aliyun.access_key_id_env),
            ("aliyun", "access_key_secret_env", settings.aliyun.access_key_secret_env),
            ("aliyun", "callback_token_env", settings.aliyun.callback_token_env),
        ]
    if settings.tencent is not None:
        wanted += [
            ("tencent", "secret_id_env", settings.tencent.secret_id_env),
            ("tencent", "secret_key_env", settings.tencent.secret_key_env),
            ("tencent", "callback_token_env", settings.tencent.callback_token_env),
        ]
    return [
        f"{section}: {var} is not set (named by notifiers.{section}.{key})"
        for section, key, var in wanted
        if var is not None and not env.get(var)
    ]


def channel_providers(settings: NotifierSettings) -> dict[str, str]:
    """Which provider serves each channel (as the dispatcher's breakers name them), from the
    settings alone, with build_notifiers' precedence; "console" where none is configured."""
    chosen = dict.fromkeys(CHANNELS, "console")
    if settings.twilio is not None:
        chosen["sms"] = "twilio"
        if settings.twilio.from_number is not None:
            chosen["voice"] = "twilio"
    if settings.aliyun is not None:
        chosen["sms"] = AliyunSmsNotifier.name
    if settings.tencent is not None:
        chosen["sms"] = TencentSmsNotifier.name
    if settings.wecom is not None:
        chosen["wecom"] = WeComNotifier.name
    if settings.dingtalk is not None:
        chosen["dingtalk"] = DingTalkNotifier.name
    return chosen


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
