"""Per-recipient limits of the SMS providers (Aliyun's per-number frequency control, Tencent's
LimitExceeded.PhoneNumber*Limit): the notice that tells the supervisors a person is being
limited, at most once a day per person (the outbox UNIQUE key: ticket "-", this rule, the day as
the cycle, the person's stable number as the step).

A limited person is no provider failure (delivery/outbox.py `_limited`): their message waits the
limit out, everybody else's go on, and the breaker is not touched."""

from __future__ import annotations

import zlib
from datetime import datetime

from supervisor.config.contacts import Recipient
from supervisor.core.clock import SHANGHAI
from supervisor.engine.firing import Notification

LIMITED_RULE = "recipient-limited"  # the outbox rule id of these notices (no ladder)


def person_key(person: str) -> int:
    """A stable small number for a contact id: the notice's step, so each person has one a day."""
    return zlib.crc32(person.encode()) & 0x7FFFFFFF


def limit_notices(
    person: str,
    name: str | None,
    recipients: list[Recipient],
    at: datetime,
) -> list[Notification]:
    """What the supervisors are told when the SMS provider limits `person` (a contact id): one
    message each, on their first channel, keyed so that a day has at most one per person."""
    day = at.astimezone(SHANGHAI)
    who = name or person
    text = (
        f"【12345督办】短信平台今日限制向{who}发送短信（同一号码发送过多），"
        "发给其本人的提醒将延后发送，紧急事项请电话联系。"
    )
    out = []
    for rec in recipients:
        channel = rec.channels[0] if rec.channels else "console"
        out.append(
            Notification(
                at=at, ticket="-", rule=LIMITED_RULE, cycle=int(f"{day:%Y%m%d}"),
                step=person_key(person), rep=0, role="supervisor", to=rec.person, name=rec.name,
                address=rec.phone if channel in ("sms", "voice") else None, channel=channel,
                text=text, urgent=False,
            )  # fmt: skip
        )
    return out
