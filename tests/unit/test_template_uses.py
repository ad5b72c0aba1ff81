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
