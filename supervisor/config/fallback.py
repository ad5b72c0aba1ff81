"""Who hears of a provider outage, and whether anyone can: the configuration's side of the outage
notices (delivery/outage.py sends them). Pure: the directory and the notifier settings in, the
people or a warning out. It lives in config so that loading the configuration can warn without
reaching into delivery or the notifiers."""

from __future__ import annotations

from collections.abc import Mapping

from supervisor.config.contacts import Directory, Recipient
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.vocabulary import MESSAGE_CHANNELS as CHANNELS

TOLD_ROLES = ("supervisor", "leader")


def told(directory: Directory) -> list[Recipient]:
    """The supervisors and the leaders, each once (a street without a leader falls back to its
    supervisors, who are already there)."""
    seen: set[str | None] = set()
    out = []
    for role in TOLD_ROLES:
        for rec in directory.resolve(role):
            if rec.person not in seen:
                seen.add(rec.person)
                out.append(rec)
    return out


def channel_providers(settings: NotifierSettings) -> dict[str, str]:
    """Which provider serves each channel (as the dispatcher's breakers name them), from the
    settings alone, with build_notifiers' precedence; "console" where none is configured."""
    chosen = dict.fromkeys(CHANNELS, "console")
    if settings.twilio is not None:
        chosen["sms"] = "twilio"
        if settings.twilio.from_number is not None:
            chosen["voice"] = "twilio"
    if settings.aliyun is not None:
        chosen["sms"] = "aliyun_sms"
    if settings.tencent is not None:
        chosen["sms"] = "tencent_sms"
    if settings.wecom is not None:
        chosen["wecom"] = "wecom"
    if settings.dingtalk is not None:
        chosen["dingtalk"] = "dingtalk"
    return chosen


def single_provider_warning(directory: Directory, providers: Mapping[str, str]) -> str | None:
    """`check`'s warning when every channel of the supervisors and the leaders depends on one
    provider and nothing else is configured: an outage of that provider would reach nobody who
    can act (only the console and the desk). `providers`: channel -> provider (or "console")."""
    people = told(directory)
    used = {providers.get(c, "console") for rec in people for c in rec.channels} - {"console"}
    if len(used) != 1:
        return None  # several providers (one is left in an outage), or none to fail
    (only,) = used
    others = {p for p in providers.values() if p not in ("console", only)}
    if others:
        return None  # a robot or a second SMS provider carries the outage notice
    who = "、".join(f"{rec.name}" for rec in people)
    return (
        f"outage notice: every channel of the supervisors and leaders ({who}) is on {only} and "
        f"no other channel is configured: while {only} is down they would not be told (only the "
        "console and the desk banner); configure a WeCom or DingTalk robot or a second SMS "
        'provider (docs/operations.md, "A fallback for outage notices")'
    )
