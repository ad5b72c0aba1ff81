"""Acknowledging an escalation from the outside (API, SMS reply, desk): who the acknowledger is
for this ticket, what core.acks lets them end, and the store call that ends it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from supervisor.application import Runtime, Supervisor
from supervisor.core.acks import AckScope, ack_scope, rule_step_roles, ticket_roles
from supervisor.core.state import TicketState
from supervisor.storage.base import Store

# "already": a repeat; what this acknowledgement would end was acknowledged before (409)
Status = Literal["ok", "unknown_ticket", "nothing_open", "not_allowed", "already"]


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
    someone holding none gets `default_roles`. The only way from the outside (API, SMS replies
    of every provider, Supervisor.ack) to Store.ack: always with a scope."""
    subject = await store.ack_subject(ticket, rule)
    if subject is None:
        return AckOutcome("unknown_ticket")
    state, open_rules = subject.state, sorted(subject.open_rules)
    if not open_rules:
        return AckOutcome("already" if subject.acked_rules else "nothing_open")
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
        "ok" if n else "already",
        acknowledged=n,
        rules=open_rules,
        ended=sorted(scope.whole),
        still_open=[r for r in open_rules if r not in scope.whole],
        refused_roles=scope.refused(rule_roles),
        roles=ordered,
    )


def reply_ack(
    supervisor: Supervisor,
) -> Callable[[str, str | None, str, str, frozenset[str]], Awaitable[AckOutcome]]:
    """The acknowledgement of an SMS reply (Twilio, Aliyun, Tencent: twilio_hooks.AckFn), as the
    daemon wires it: `acknowledge` with the roles of the messages the replier was sent. The
    runtime is read at each call (a reload replaces it)."""

    async def ack(
        ticket: str, rule: str | None, by: str, via: str, roles: frozenset[str]
    ) -> AckOutcome:
        return await acknowledge(
            supervisor.store, supervisor.runtime, ticket, rule, by, via, supervisor.clock.now(),
            extra_roles=roles,
        )  # fmt: skip

    return ack
