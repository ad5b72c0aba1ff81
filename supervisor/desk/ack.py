"""Acknowledging an escalation from the desk: the desk's checks, then the one rank rule.

Who may end which steps is decided in one place only: `supervisor.acking.acknowledge` over
`core.acks` (an acknowledgement ends only the steps addressed to the person acknowledging and
those below them; escalations to the supervisor and the leader only by them), through the Store.
The desk adds what is the desk's own: a unit user sees and acknowledges only their unit's
ladders, and only those that have reached their role; the acknowledger is the signed-in user
(recorded as "login (role)"); every acknowledgement is written to desk_audit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from supervisor.acking import acknowledge
from supervisor.core.acks import ack_scope, rule_step_roles
from supervisor.desk.users import User


def desk_steps(rules: Any, rule_id: str, role: str) -> frozenset[int]:
    """The steps of `rule_id` an acknowledgement by someone in `role` ends (core.acks' rule)."""
    return ack_scope({role}, rule_step_roles(rules, [rule_id])).steps.get(rule_id, frozenset())


def may_ack(
    user: User, rules: Any, rule_id: str, sent_roles: Iterable[str], done: Iterable[int] = ()
) -> bool:
    """Whether the desk offers `user` the acknowledge button: something left to end (`done`:
    the steps already acknowledged on the desk), and for a unit user, a message of this ladder
    sent to their role."""
    sent = set(sent_roles)
    if not sent or not desk_steps(rules, rule_id, user.role) - set(done):
        return False
    return user.sees_all or user.role in sent


@dataclass(frozen=True)
class AckResult:
    ok: bool
    message: str  # shown to the user, in Chinese
    steps: tuple[int, ...] = ()
    ladder_acked: bool = False
    status: int = 200  # HTTP status when not ok


LADDER = """
SELECT l.status, t.unit FROM ladders l JOIN tickets t USING (ticket)
WHERE l.ticket = $1 AND l.rule = $2 AND l.cycle = $3
"""
ROLES_SENT = """
SELECT DISTINCT role FROM outbox WHERE ticket = $1 AND rule = $2 AND cycle = $3 AND status <> 'cancelled'
"""
AUDIT = """
INSERT INTO desk_audit (at, actor, role, unit, action, ticket, rule, cycle, steps, remote, detail)
VALUES ($1, $2, $3, $4, 'ack', $5, $6, $7, $8, $9, $10)
"""


def by_whom(user: User) -> str:
    return f"{user.login} ({user.role})"


async def desk_ack(
    pool: asyncpg.Pool,
    supervisor: Any,
    user: User,
    ticket: str,
    rule_id: str,
    cycle: int,
    now: datetime,
    remote: str | None,
) -> AckResult:
    """Acknowledge one ladder (ticket, rule, cycle) as the signed-in `user`: the desk's checks,
    then `supervisor.acking.acknowledge` through the Store, then the audit row."""
    runtime = supervisor.runtime
    rules = runtime.policy.rules_by_id
    async with pool.acquire() as conn:
        lad = await conn.fetchrow(LADDER, ticket, rule_id, cycle)
        if lad is None or (not user.sees_all and lad["unit"] != user.unit):
            return AckResult(False, "没有这条督办", status=404)
        if rule_id not in rules:
            return AckResult(False, "该规则已不在当前规则中，无法确认", status=409)
        if lad["status"] != "active":
            return AckResult(False, "这条督办已结束或已确认", status=409)
        sent_to = {r["role"] for r in await conn.fetch(ROLES_SENT, ticket, rule_id, cycle)}
    if not sent_to:
        return AckResult(False, "这条督办还没有发出消息，无需确认", status=409)
    if not user.sees_all and user.role not in sent_to:
        return AckResult(False, "只能确认发给本人角色的督办", status=403)
    outcome = await acknowledge(
        supervisor.store, runtime, ticket, rule_id, by_whom(user), "desk", now,
        extra_roles=(user.role,),
    )  # fmt: skip
    if outcome.status == "not_allowed":
        return AckResult(False, "您的角色不能确认这条督办", status=403)
    if outcome.status != "ok" or not outcome.acknowledged:
        return AckResult(False, "这条督办已结束或已确认", status=409)
    whole = rule_id in outcome.ended
    steps = sorted(desk_steps(rules, rule_id, user.role))
    await pool.execute(
        AUDIT, now, user.login, user.role, user.unit, ticket, rule_id, cycle, steps, remote,
        {"ladder_acked": whole, "roles": outcome.roles, "still_for": outcome.refused_roles},
    )  # fmt: skip
    if whole:
        return AckResult(True, "已确认，本条督办结束", tuple(steps), True)
    return AckResult(True, "已确认，发给您及以下角色的提醒停止；上级督办继续", tuple(steps))
