"""Who may acknowledge what: the pure rule that an acknowledgement ends only the steps addressed
to the person acknowledging and to those below them (docs/RELIABILITY.md, "Acknowledgements").

Ranks: liaison < head < supervisor < leader. The grid member is outside the ladder: only a grid
member acknowledges a grid step, and a grid member acknowledges nothing else. So the unit being
chased cannot silence its own escalation: a liaison's "1" stops the liaison's reminders, never
the head's call or the supervisor's escalation, and only the supervisor and the leader end the
steps addressed to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RANKS: dict[str, int] = {"liaison": 1, "head": 2, "supervisor": 3, "leader": 4}
GRID = "grid"


def covers(acker_roles: Iterable[str], target_role: str) -> bool:
    """Whether someone holding `acker_roles` may end a message addressed to `target_role`."""
    roles = set(acker_roles)
    if target_role == GRID:
        return GRID in roles
    rank = RANKS.get(target_role)
    if rank is None:
        return False
    return any(RANKS.get(r, 0) >= rank for r in roles)


def covered_roles(acker_roles: Iterable[str]) -> frozenset[str]:
    roles = tuple(acker_roles)
    return frozenset(r for r in (*RANKS, GRID) if covers(roles, r))


@dataclass(frozen=True)
class AckScope:
    """What one acknowledgement ends. `roles`: pending messages addressed to these roles are
    cancelled; `steps`: per rule, the steps (all of whose roles are covered) whose pending timers
    are cancelled; `whole`: the rules every step of which is covered, whose ladders end."""

    acker_roles: frozenset[str]
    roles: frozenset[str]
    steps: Mapping[str, frozenset[int]] = field(default_factory=dict)
    whole: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not any(self.steps.values())

    def refused(self, rule_roles: Mapping[str, Iterable[Iterable[str]]]) -> list[str]:
        """The roles of the given rules' steps this acknowledgement cannot end, for messages."""
        out = {r for steps in rule_roles.values() for roles in steps for r in roles}
        return sorted(out - self.roles, key=lambda r: RANKS.get(r, 9))


def ack_scope(
    acker_roles: Iterable[str], rule_roles: Mapping[str, Iterable[Iterable[str]]]
) -> AckScope:
    """The scope of an acknowledgement by someone holding `acker_roles`, over rules given as
    rule id -> each step's roles (in step order)."""
    acker = frozenset(acker_roles)
    roles = covered_roles(acker)
    steps: dict[str, frozenset[int]] = {}
    whole = set()
    for rule, step_roles in rule_roles.items():
        listed = [tuple(r) for r in step_roles]
        done = frozenset(i for i, rs in enumerate(listed) if _step_covered(rs, acker, roles))
        steps[rule] = done
        if listed and len(done) == len(listed):
            whole.add(rule)
    return AckScope(acker, roles, steps, frozenset(whole))


def _step_covered(step_roles: Iterable[str], acker: frozenset[str], roles: frozenset[str]) -> bool:
    """Whether an acknowledgement ends a step: every ladder role of the step is covered. The grid
    member is outside the ladder, so a step addressed to the supervisor and the grid member (a
    repeat caller, a same matter) is the supervisor's to end; the grid member's own messages are
    not cancelled by it (`roles` leaves grid out), and only the grid member ends a grid-only step."""
    ladder = set(step_roles) - {GRID}
    if not ladder:
        return bool(step_roles) and GRID in acker
    return ladder <= roles


def roles_held(
    person: str,
    *,
    unit_roles: Mapping[str, Mapping[str, Iterable[str]]],
    street: Mapping[str, Iterable[str]],
    grids: Mapping[str, Iterable[str]],
    units: Iterable[str],
    grid: str | None,
) -> frozenset[str]:
    """The roles `person` holds for a ticket handled by `units` in `grid`: a liaison of another
    unit is nobody here. `unit_roles` is unit -> role -> person ids; `street` role -> ids."""
    held = {role for role, ids in street.items() if person in ids}
    for unit in units:
        for role, ids in unit_roles.get(unit, {}).items():
            if person in ids:
                held.add(role)
    if grid is not None and person in grids.get(grid, ()):
        held.add(GRID)
    return frozenset(held)


def ticket_roles(directory: Any, person: str, state: Any) -> frozenset[str]:
    """roles_held for a ticket state (its lead and co-handling units, its grid), from a
    config.contacts.Directory."""
    model = directory.model
    return roles_held(
        person,
        unit_roles={uid: {"liaison": u.liaison, "head": u.head} for uid, u in model.units.items()},
        street={"supervisor": model.street.supervisor, "leader": model.street.leader},
        grids=model.grids,
        units=[u for u in (state.unit, *state.co_units) if u],
        grid=state.grid,
    )


def rule_step_roles(
    rules: Mapping[str, Any], rule_ids: Iterable[str]
) -> dict[str, list[tuple[str, ...]]]:
    """rule id -> each step's roles, for ack_scope (an unknown rule: no steps, nothing covered)."""
    return {r: [tuple(s.roles) for s in rules[r].steps] if r in rules else [] for r in rule_ids}
