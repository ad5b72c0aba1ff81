"""Acknowledging an escalation from the desk: who may end which steps, and the write itself.

The rule (issue 9): an acknowledgement ends only the steps addressed to the person acknowledging
and those below them (liaison < head < supervisor < leader). A liaison's acknowledgement stops
the liaison's reminders, never the head's call or the supervisor's escalation; escalations to the
supervisor and the leader are ended only by them. When every step of the ladder is ended, the
ladder itself is acknowledged (as an SMS reply does); otherwise only those steps' pending timers
and unsent messages are cancelled and the ladder goes on.

`ackable_steps` is the desk's own small pure function for this rule until the core one from
issue 9 is merged; then it should call that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from supervisor.desk.users import User
from supervisor.policy.rulebook import Rule

RANK = {"grid": 1, "liaison": 1, "head": 2, "supervisor": 3, "leader": 4}


def ackable_steps(rule: Rule, role: str) -> frozenset[int]:
    """The steps of `rule` that a person in `role` may end: those whose every recipient role
    ranks at or below theirs."""
    mine = RANK.get(role, 0)
    return frozenset(s.index for s in rule.steps if all(RANK.get(r, 99) <= mine for r in s.roles))


@dataclass(frozen=True)
class AckResult:
    ok: bool
    message: str  # shown to the user, in Chinese
    steps: tuple[int, ...] = ()
    ladder_acked: bool = False
    status: int = 200  # HTTP status when not ok


LADDER = """
SELECT l.ticket, l.rule, l.cycle, l.status, t.unit FROM ladders l JOIN tickets t USING (ticket)
WHERE l.ticket = $1 AND l.rule = $2 AND l.cycle = $3 FOR UPDATE OF l
"""
ROLES_SENT = """
SELECT DISTINCT role FROM outbox WHERE ticket = $1 AND rule = $2 AND cycle = $3 AND status <> 'cancelled'
"""


async def desk_ack(
    pool: asyncpg.Pool,
    user: User,
    ticket: str,
    rule: Rule | None,
    cycle: int,
    now: datetime,
    remote: str | None,
) -> AckResult:
    """Acknowledge one ladder (ticket, rule, cycle) as `user`, audited in the same transaction."""
    if rule is None:
        return AckResult(False, "该规则已不在当前规则中，无法确认", status=409)
    async with pool.acquire() as conn, conn.transaction():
        lad = await conn.fetchrow(LADDER, ticket, rule.id, cycle)
        if lad is None or (not user.sees_all and lad["unit"] != user.unit):
            return AckResult(False, "没有这条督办", status=404)
        if lad["status"] != "active":
            return AckResult(False, "这条督办已结束或已确认", status=409)
        sent_to = {r["role"] for r in await conn.fetch(ROLES_SENT, ticket, rule.id, cycle)}
        if not sent_to:
            return AckResult(False, "这条督办还没有发出消息，无需确认", status=409)
        if not user.sees_all and user.role not in sent_to:
            return AckResult(False, "只能确认发给本人角色的督办", status=403)
        steps = ackable_steps(rule, user.role)
        if not steps:
            return AckResult(False, "您的角色不能确认这条督办", status=403)
        whole = steps >= {s.index for s in rule.steps}
        by = f"{user.login} ({user.role})"
        if whole:
            await conn.execute(
                """UPDATE ladders SET status = 'acked', acked_by = $4, acked_at = $5,
                   reason = 'acknowledged via desk' WHERE ticket = $1 AND rule = $2 AND cycle = $3""",
                ticket, rule.id, cycle, by, now,
            )  # fmt: skip
        step_list = sorted(steps)
        await conn.execute(
            """UPDATE timers SET status = 'cancelled' WHERE ticket = $1 AND rule = $2 AND cycle = $3
               AND status = 'pending' AND step = ANY($4::int[])""",
            ticket, rule.id, cycle, step_list,
        )  # fmt: skip
        await conn.execute(
            """UPDATE outbox SET status = 'cancelled', last_error = 'acknowledged'
               WHERE ticket = $1 AND rule = $2 AND cycle = $3 AND status = 'pending'
               AND step = ANY($4::int[])""",
            ticket, rule.id, cycle, step_list,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO acks (ticket, rule, cycle, by_whom, via, at) VALUES ($1,$2,$3,$4,'desk',$5)",
            ticket, rule.id, cycle, by, now,
        )  # fmt: skip
        await conn.execute(
            """INSERT INTO desk_audit (at, actor, role, unit, action, ticket, rule, cycle, steps, remote, detail)
               VALUES ($1, $2, $3, $4, 'ack', $5, $6, $7, $8, $9, $10)""",
            now, user.login, user.role, user.unit, ticket, rule.id, cycle, step_list, remote,
            {"ladder_acked": whole},
        )  # fmt: skip
    if whole:
        return AckResult(True, "已确认，本条督办结束", tuple(step_list), True)
    return AckResult(True, "已确认，发给您及以下角色的提醒停止；上级督办继续", tuple(step_list))
