"""Telling people about a provider outage: who hears of it, on which channels (pure), and the
configuration check that someone can hear of it at all.

When a provider goes down, the supervisors and the leaders are told by every channel of theirs
that is not on the failing provider, and on every group robot (WeCom, DingTalk) that is
configured and up: the people who can act learn of it even when their SMS and calls are all on
the provider that is down. With nothing left, the notice goes to the console (and the desk shows
a banner to everyone signed in). When it comes back, one message each, on the first of their
channels that works, says so."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from supervisor.config.contacts import Recipient
from supervisor.engine.firing import Notification

OUTAGE_RULE = "provider-outage"  # the outbox rule id of outage notices (no ladder: never cancelled)
ROBOTS = ("wecom", "dingtalk")  # group robots: the whole group reads them, whoever is named


def outage_notices(
    provider: str,
    down: bool,
    channels: frozenset[str],
    recipients: list[Recipient],
    working: Mapping[str, str],
    at: datetime,
    serial: int,
) -> list[Notification]:
    """What the supervisors and leaders are told when `provider` (serving `channels`) goes down
    or comes back. `working`: channel -> provider of every channel that is served by a real
    provider other than the failing one (a down notice) or by any real provider (a back notice);
    the console is not in it. `serial` keeps one outage's notices apart from the next one's (the
    outbox key is per recipient and channel)."""
    names = "、".join(sorted(channels)) or provider
    robots = [c for c in ROBOTS if c in working]
    out = []
    for rec in recipients:
        own = [c for c in rec.channels if c in working]
        if down:
            text = (
                f"【12345督办】{rec.name}：{provider}（{names}）暂时无法发送，提醒将在恢复后补发，"
                "紧急事项请电话联系。"
            )
            targets = own + [c for c in robots if c not in own]
        else:
            text = f"【12345督办】{rec.name}：{provider}（{names}）已恢复，积压的提醒正在补发。"
            targets = own[:1] or robots[:1]
        for channel in targets or ["console"]:
            out.append(
                Notification(
                    at=at,
                    ticket="-",
                    rule=OUTAGE_RULE,
                    cycle=serial,
                    step=0 if down else 1,
                    rep=0,
                    role=rec.role,
                    to=rec.person,
                    name=rec.name,
                    address=rec.phone if channel in ("sms", "voice") else None,
                    channel=channel,
                    text=text,
                    urgent=True,
                )  # fmt: skip
            )
    return out


