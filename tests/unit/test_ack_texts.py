"""A text asks for 回复1确认 only from someone whose reply can end the step it was sent for
(core/acks.py's rank rule): a head is not asked to acknowledge a step that is also the
supervisor's, a supervisor not one that is also the leader's; a supervisor may end a step shared
with the grid member (outside the ladder)."""

from __future__ import annotations

from supervisor.config.templates import sample_context
from supervisor.core.acks import ack_scope, rule_step_roles
from tests.helpers import loaded


def test_every_text_that_asks_for_an_acknowledgement_can_be_acknowledged() -> None:
    lo = loaded()
    rules = lo.policy.rules_by_id
    asked: list[tuple[str, int, str]] = []
    wrong: list[tuple[str, int, str]] = []
    for rule in lo.policy.rules:
        step_roles = rule_step_roles(rules, [rule.id])
        for step in rule.steps:
            for role in step.roles:
                text = lo.templates.render(step.template, {**sample_context(), "role": role})
                if "回复1确认" not in text:
                    continue
                asked.append((rule.id, step.index, role))
                if step.index not in ack_scope({role}, step_roles).steps[rule.id]:
                    wrong.append((rule.id, step.index, role))
    assert wrong == []
    # the shipped rules do ask: the head at the sign-off deadline, the supervisor for a repeat
    # caller and a same matter, the leader for a group complaint
    for expected in [("sign-off", 1, "head"), ("repeat-caller", 0, "supervisor"),
                     ("same-matter", 0, "supervisor"), ("group-complaint", 0, "leader"),
                     ("dissatisfied", 0, "supervisor")]:  # fmt: skip
        assert expected in asked
    assert ("dissatisfied", 0, "head") not in asked
