"""Templates.uses: a template said not to read a context value renders the same text, call
script and provider parameters whatever that value is (firing.py skips the overdue words)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from supervisor.config.sms_templates import load_sms_templates
from supervisor.config.templates import load_templates, sample_context

ROOT = Path(__file__).resolve().parents[2]


def _loaded():  # type: ignore[no-untyped-def]
    templates = load_templates(ROOT / "config" / "templates.yaml")
    templates.sms = load_sms_templates(ROOT / "config" / "sms_templates.yaml")
    return templates


def test_unread_value_changes_nothing() -> None:
    templates = _loaded()
    readers = set()
    for name in templates.names:
        outs = []
        for value in ("", "3个工作日", "1个工作小时45分钟"):
            ctx = {**sample_context(), "overdue_by": value}
            outs.append(
                (
                    templates.render(name, ctx),
                    templates.render(name, ctx, channel="voice"),
                    templates.sms_params(name, ctx),
                )
            )
        if templates.uses(name, "overdue_by"):
            readers.add(name)
        else:
            assert outs[0] == outs[1] == outs[2], name
    # the shipped overdue texts do read it (text or provider parameters)
    assert {"sign_escalation", "reply_overdue_leader"} <= readers


def test_provider_parameters_count() -> None:
    templates = _loaded()
    sms = templates.sms
    name = next(n for n in templates.names if not templates.uses(n, "overdue_by"))
    assert not templates.uses(name, "overdue_by")
    # a mapping that reads it makes the template a reader, though its text does not
    items = next(iter(sms._items.values()))
    items[name] = replace(items[name], sources=(*items[name].sources, "{{ overdue_by }}"))
    templates.sms = sms  # the same object: the answer was kept
    templates._uses.clear()
    assert templates.uses(name, "overdue_by")
    templates.sms = None
    assert not templates.uses(name, "overdue_by")
    assert templates.uses("no such template", "overdue_by")


def _outcome(f, *args, **kw):  # type: ignore[no-untyped-def]
    try:
        return ("ok", f(*args, **kw))
    except Exception as exc:  # the same error either way
        return ("error", type(exc).__name__, str(exc))


def test_ticket_keys_are_all_a_template_reads() -> None:
    """Every shipped template renders the same (text, call script, provider parameters, or the
    same error) with only the ticket keys `ticket_keys` names as with the whole ticket."""
    from supervisor.engine.firing import _ALWAYS

    templates = _loaded()
    base = sample_context()
    variants = [base["ticket"], {**base["ticket"], "history": [], "review_findings": []},
                {**base["ticket"], "category": "未分类", "address": "幸福路 12号"}]  # fmt: skip
    for name in templates.names:
        keys = templates.ticket_keys(name)
        if keys is None:
            continue
        for ticket in variants:
            part = {k: v for k, v in ticket.items() if k in keys or k in _ALWAYS}
            full_ctx, part_ctx = {**base, "ticket": ticket}, {**base, "ticket": part}
            for channel in ("sms", "voice"):
                assert _outcome(templates.render, name, full_ctx, channel=channel) == _outcome(
                    templates.render, name, part_ctx, channel=channel
                ), name
            assert _outcome(templates.sms_params, name, full_ctx) == _outcome(
                templates.sms_params, name, part_ctx
            ), name


def test_ticket_keys_refuse_what_they_cannot_see() -> None:
    from supervisor.config.templates import Templates, TemplatesFile

    def keys(text: str):  # type: ignore[no-untyped-def]
        model = TemplatesFile.model_validate({"templates": {"t": {"text": text}}})
        return Templates(model).ticket_keys("t")

    assert keys("{{ ticket.id }}{{ ticket['unit'] }}") == {"id", "unit"}
    assert keys("{{ ticket }}") is None
    assert keys("{{ ticket | length }}") is None
    assert keys("{{ ticket[role] }}") is None
    assert keys("{% for k in ticket %}{{ k }}{% endfor %}") is None
    assert keys("{% set ticket = {} %}{{ ticket.id }}") is None
    assert keys("{{ ticket.id") is None
    assert keys("{% if ticket.urgent %}急{% endif %}{{ deadline }}") == {"urgent"}


def test_partial_ticket_context_matches_the_whole() -> None:
    """ticket_context with keys: the whole context's values for those keys, in its order."""
    from dataclasses import replace

    from supervisor.engine import deadlines as dl
    from supervisor.engine.facts import state_fields
    from supervisor.engine.firing import _ALWAYS, _TICKET_FIELDS, ticket_context
    from tests.helpers import runtime
    from tests.unit.test_notify import _state

    rt = runtime()
    states = [_state(), _state(unit="不存在的单位"), replace(_state(), unit=None, address=None),
              replace(_state(), history=("a", "b"), review_findings=("名称：补充", "x"),
                      review_kind="returned", address="幸福路  12号 502室 Block A")]  # fmt: skip
    for state in states:
        d = dl.compute(state, rt.policy.deadlines, rt.policy.calendar, state_fields(state))
        whole = ticket_context(state, d, rt.directory)
        assert list(whole) == list(_TICKET_FIELDS)
        for keys in (frozenset(), frozenset(whole), frozenset({"summary", "history"})):
            part = ticket_context(state, d, rt.directory, keys)
            assert part == {k: v for k, v in whole.items() if k in keys or k in _ALWAYS}
            assert list(part) == [k for k in whole if k in keys or k in _ALWAYS]


def test_only_the_deadline_keys_read_the_deadlines() -> None:
    """fire_step computes a ticket's deadlines only when the template reads one of DEADLINE_KEYS:
    no other key of the ticket's context may read them."""
    from supervisor.engine.firing import _TICKET_FIELDS, DEADLINE_KEYS
    from tests.helpers import runtime
    from tests.unit.test_notify import _state

    class Untouchable:
        def __getattr__(self, name: str) -> None:
            raise AssertionError(f"read deadlines.{name}")

    rt = runtime()
    state = _state()
    for key, get in _TICKET_FIELDS.items():
        if key not in DEADLINE_KEYS:
            get(state, Untouchable(), rt.directory)  # type: ignore[arg-type]
    assert DEADLINE_KEYS <= set(_TICKET_FIELDS)
