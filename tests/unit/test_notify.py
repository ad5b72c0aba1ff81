"""Firing a step: recipients, fallback to the supervisor, and no personal data in the text."""

from dataclasses import replace

from supervisor.config.contacts import load_directory
from supervisor.core.events import parse_event
from supervisor.core.privacy import redact
from supervisor.core.state import fold
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.engine.firing import fire_step
from tests.helpers import CONFIG, ev, runtime, sh

CONTACTS_WITHOUT_LIAISON = (CONFIG / "contacts.yaml").read_text(encoding="utf-8")


def _state(unit: str = "城管执法中队"):
    raws = [
        ev(
            "T1",
            1,
            "created",
            sh(2026, 11, 23, 9),
            kind="complaint",
            category="市容环境",
            caller="13812345678",
            grid="G01",
            summary="来电人13812345678反映占道",
        ),
        ev("T1", 2, "dispatched", sh(2026, 11, 23, 9), unit=unit),
    ]
    return fold("T1", [redact(parse_event(r), b"k") for r in raws])


def _fire(rt, state, rule_id="sign-off", step=0):
    rule = rt.policy.rule(rule_id)
    d = dl.compute(state, rt.policy.deadlines, rt.policy.calendar, state_fields(state))
    return fire_step(rule=rule, step=rule.steps[step], rep=0, cycle=1, anchor_at=d.sign_by, state=state, deadlines=d,
                     directory=rt.directory, templates=rt.templates, at=sh(2026, 11, 23, 10, 30))  # fmt: skip


def test_the_liaison_gets_the_reminder():
    notes = _fire(runtime(), _state())
    assert [(n.role, n.to, n.channel) for n in notes] == [("liaison", "wang-qiang", "sms")]
    assert notes[0].address.startswith("+86") and notes[0].note is None


def test_a_missing_contact_goes_to_the_supervisor_with_a_warning(tmp_path):
    text = CONTACTS_WITHOUT_LIAISON.replace("liaison: [wang-qiang]", "liaison: []", 1)
    assert text != CONTACTS_WITHOUT_LIAISON
    path = tmp_path / "contacts.yaml"
    path.write_text(text, encoding="utf-8")
    directory = load_directory(path)
    assert any("城管执法中队" in gap and "liaison" in gap for gap in directory.gaps())
    rt = replace(runtime(), directory=directory)
    notes = _fire(rt, _state())
    assert [(n.role, n.to) for n in notes] == [("liaison", "zhang-min")]
    assert notes[0].note and "liaison" in notes[0].note
    # the 【12345…】 tag first, then the note (issue 12)
    assert notes[0].text.startswith("【12345催办】（城管执法中队未配置联络员，转您处理）")


def test_no_phone_number_reaches_a_message():
    for rule_id, step in (("sign-off", 0), ("sign-off", 1), ("sign-off", 2)):
        for n in _fire(runtime(), _state(), rule_id, step):
            assert "13812345678" not in n.text and "5678" not in n.text


def test_built_notifications_equal_constructed_ones():
    """fire_step builds Notifications without their __init__: the same values (eq, repr, asdict,
    field order) as Notification(...) gives, for every step of every rule."""
    from dataclasses import asdict, astuple, fields

    from supervisor.engine.firing import Notification

    rt = runtime()
    state = _state()
    d = dl.compute(state, rt.policy.deadlines, rt.policy.calendar, state_fields(state))
    built = 0
    for rule in rt.policy.rules:
        for step in rule.steps:
            try:
                notes = fire_step(rule=rule, step=step, rep=0, cycle=1, anchor_at=d.sign_by,
                                  state=state, deadlines=d, directory=rt.directory,
                                  templates=rt.templates, at=sh(2026, 11, 30, 10, 30),
                                  calendar=rt.policy.calendar)  # fmt: skip
            except Exception:  # a template this state cannot fill: nothing built
                continue
            for n in notes:
                made = Notification(*astuple(n))
                assert n == made and repr(n) == repr(made) and asdict(n) == asdict(made)
                assert list(vars(n)) == [f.name for f in fields(Notification)]
                assert type(n) is Notification
                built += 1
    assert built > 10


def test_deadlines_given_as_a_function_are_computed_only_when_read():
    """fire_step with `deadlines` as a function: the same notifications as with the deadlines,
    for every step of every rule; the function called only for steps whose templates read a
    deadline of the ticket (Templates.ticket_keys), or may read anything."""
    from supervisor.engine.firing import DEADLINE_KEYS

    rt = runtime()
    state = _state()
    d = dl.compute(state, rt.policy.deadlines, rt.policy.calendar, state_fields(state))
    asked = skipped = 0
    for rule in rt.policy.rules:
        for step in rule.steps:
            calls: list[int] = []

            def later(calls=calls):
                calls.append(1)
                return d

            kw = dict(rule=rule, step=step, rep=0, cycle=1, anchor_at=d.sign_by, state=state,
                      directory=rt.directory, templates=rt.templates, at=sh(2026, 11, 30, 10, 30),
                      calendar=rt.policy.calendar)  # fmt: skip
            try:
                eager = fire_step(deadlines=d, **kw)
            except Exception as exc:  # a template this state cannot fill: the same error
                try:
                    fire_step(deadlines=later, **kw)
                except Exception as again:
                    assert type(again) is type(exc) and str(again) == str(exc)
                continue
            assert fire_step(deadlines=later, **kw) == eager
            keys = rt.templates.ticket_keys(step.template)
            reads = keys is None or bool(keys & DEADLINE_KEYS)
            assert len(calls) == (1 if reads else 0)
            asked += reads
            skipped += not reads
    assert asked and skipped
