"""Acknowledging an escalation from the outside (API, SMS reply, desk): who the acknowledger is
for this ticket, what core.acks lets them end, and the store call that ends it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import asyncpg

from supervisor.application import Runtime
from supervisor.core.acks import AckScope, ack_scope, rule_step_roles, ticket_roles
from supervisor.core.state import TicketState
from supervisor.storage.pg import Store

Status = Literal["ok", "unknown_ticket", "nothing_open", "not_allowed"]


@dataclass(frozen=True)
class AckOutcome:
    status: Status
    acknowledged: int = 0
    rules: list[str] = field(default_factory=list)  # the open rules considered
    ended: list[str] = field(default_factory=list)  # rules whose ladders ended
    still_open: list[str] = field(default_factory=list)  # rules that go on for others
    refused_roles: list[str] = field(default_factory=list)  # roles this person cannot end
    roles: list[str] = field(default_factory=list)  # the roles the acknowledger holds here


def acker_roles(runtime: Runtime, person: str, state: TicketState) -> frozenset[str]:
    return ticket_roles(runtime.directory, person, state)


async def acknowledge(
    pool: asyncpg.Pool,
    store: Store,
    runtime: Runtime,
    ticket: str,
    rule: str | None,
    who: str,
    via: str,
    now: datetime,
    *,
    extra_roles: Iterable[str] = (),
    default_roles: Iterable[str] = (),
) -> AckOutcome:
    """Acknowledge as `who` (a contact id, or an API token's name). Their roles for the ticket
    come from the directory, plus `extra_roles` (the roles of the messages they were sent);
    someone holding none gets `default_roles`."""
    async with pool.acquire() as conn:
        raw = await conn.fetchval("SELECT state FROM tickets WHERE ticket = $1", ticket)
        if raw is None:
            return AckOutcome("unknown_ticket")
        open_rules = sorted(
            {
                r["rule"]
                for r in await conn.fetch(
                    "SELECT rule FROM ladders WHERE ticket = $1 AND ($2::text IS NULL OR rule = $2) AND status = 'active'",
                    ticket,
                    rule,
                )  # fmt: skip
            }
        )
    if not open_rules:
        return AckOutcome("nothing_open")
    state = TicketState.from_json(dict(raw)) if raw else TicketState(ticket=ticket)
    roles = acker_roles(runtime, who, state) | frozenset(extra_roles)
    if not roles:
        roles = frozenset(default_roles)
    rule_roles = rule_step_roles(runtime.policy.rules_by_id, open_rules)
    scope: AckScope = ack_scope(roles, rule_roles)
    ordered = sorted(roles)
    if scope.empty:  # every step is addressed above them (or to another kind of role)
        return AckOutcome(
            "not_allowed", rules=open_rules, refused_roles=scope.refused(rule_roles), roles=ordered
        )
    n = await store.ack(ticket, rule, who, via, now, scope=scope)
    return AckOutcome(
        "ok",
        acknowledged=n,
        rules=open_rules,
        ended=sorted(scope.whole),
        still_open=[r for r in open_rules if r not in scope.whole],
        refused_roles=scope.refused(rule_roles),
        roles=ordered,
    )
