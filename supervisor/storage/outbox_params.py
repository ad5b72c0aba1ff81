"""Writes the template-SMS parameters of new outbox rows (migration 007, notifiers/aliyun_sms.py).

Kept apart from INSERT_OUTBOX so that the insert stays as it is: the rows just inserted are found
again by their UNIQUE key, and only rows without parameters are touched (a row that already
existed keeps what it was sent with)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg

from supervisor.core.firing import Notification

STORE_PARAMS = """
UPDATE outbox AS o SET params = v.params
FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::text[],
            $8::text[]::jsonb[]) AS v(ticket, rule, cycle, step, rep, recipient, channel, params)
WHERE o.ticket = v.ticket AND o.rule = v.rule AND o.cycle = v.cycle AND o.step = v.step
  AND o.rep = v.rep AND o.recipient = v.recipient AND o.channel = v.channel AND o.params IS NULL
"""


async def store_params(conn: asyncpg.Connection, notes: Sequence[Notification]) -> None:
    """Call in the transaction that inserted `notes` into the outbox."""
    with_params = [n for n in notes if n.params is not None]
    if not with_params:
        return
    await conn.execute(
        STORE_PARAMS,
        [n.ticket for n in with_params], [n.rule for n in with_params],
        [n.cycle for n in with_params], [n.step for n in with_params],
        [n.rep for n in with_params], [n.to or "-" for n in with_params],
        [n.channel for n in with_params],
        [json.dumps(n.params, ensure_ascii=False) for n in with_params],
    )  # fmt: skip
