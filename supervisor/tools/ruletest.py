"""`hotline-supervisor test-rules FILE...`: rule unit tests in YAML, in the spirit of
`promtool test rules`. Each test replays events on a virtual clock and compares the notifications
with what it expects, and expects silence from the rules it names for anything else.

    tests:
      - name: a ticket signed in time produces no sign-off messages
        ticket: T1                      # optional, default T1; events may name their own
        events:
          - {at: "2026-11-23T10:00:00+08:00", type: created, kind: complaint}
          - {at: "2026-11-23T10:00:00+08:00", type: dispatched, unit: 城管执法中队}
          - {at: "2026-11-23T10:20:00+08:00", type: signed, unit: 城管执法中队}
        acks:                           # optional: acknowledge a ladder at a time
          - {at: "...", rule: sign-off, by: zhang-min}
        until: "2026-11-30T18:00:00+08:00"   # optional, default 30 days after the last event
        rules: [sign-off, sign-off-urgent]   # the rules this test speaks for (default: all)
        findings: [contact, push-away]  # optional: the review checks that fail (答复审核)
        expect: []                      # exactly these notifications from those rules
                                        # (keys: at rule step role to channel text text_contains
                                        #  note repeat cycle)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from supervisor.application import BatchRejected, Runtime, validate_batch
from supervisor.config.yamlconf import ConfigError, ConfigInvalid, Located, load_yaml, validate
from supervisor.core.events import _parse_timestamp
from supervisor.engine.firing import Notification
from supervisor.tools.simulate import Simulation

EXPECT_KEYS = ("at", "rule", "step", "role", "to", "channel")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expected(_Model):
    at: str | None = None
    rule: str | None = None
    step: int | None = None
    role: str | None = None
    to: str | None = None
    channel: str | None = None
    text_contains: str | None = None
    text: str | None = None  # the whole text, exactly
    note: str | None = None  # text the notification's note (why a stand-in) must contain
    repeat: int | None = None
    cycle: int | None = None


class AckModel(_Model):
    at: str
    rule: str | None = None
    ticket: str | None = None
    by: str = "test"


class RuleTest(_Model):
    name: str
    ticket: str = "T1"
    events: Annotated[list[dict[str, Any]], Field(min_length=1)]
    acks: list[AckModel] = []
    until: str | None = None
    rules: list[str] | None = None
    expect: list[Expected] = []
    # 答复审核: the ids of the review checks the test's replies, returns and extension requests
    # fail, all together (rules/review.yaml); [] means every one passes
    findings: list[str] | None = None


class RuleTestFile(_Model):
    tests: Annotated[list[RuleTest], Field(min_length=1)]


@dataclass
class TestResult:
    file: str
    name: str
    line: int | None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _matches(exp: Expected, n: Notification) -> bool:
    if exp.at is not None and _parse_timestamp(exp.at) != n.at:
        return False
    for key in ("rule", "step", "role", "to", "channel"):
        want = getattr(exp, key)
        if want is not None and want != getattr(n, key):
            return False
    if exp.repeat is not None and exp.repeat != n.rep:
        return False
    if exp.cycle is not None and exp.cycle != n.cycle:
        return False
    if exp.text is not None and exp.text != n.text:
        return False
    if exp.note is not None and (n.note is None or exp.note not in n.note):
        return False
    return exp.text_contains is None or exp.text_contains in n.text


def describe(n: Notification) -> str:
    return f"{n.at.isoformat()} {n.rule} step {n.step}{f' repeat {n.rep}' if n.rep else ''} → {n.role} {n.to} {n.channel}"


def _describe_expected(e: Expected) -> str:
    return " ".join(f"{k}={v}" for k, v in e.model_dump(exclude_none=True).items())


async def run_test(test: RuleTest, runtime: Runtime, file: str, line: int | None) -> TestResult:
    result = TestResult(file, test.name, line)
    raws = []
    for i, ev in enumerate(test.events):
        raw = {"ticket": test.ticket, "id": f"{ev.get('ticket', test.ticket)}-e{i}", **ev}
        raws.append(raw)
    try:
        events = validate_batch(raws, runtime.caller_key)
    except BatchRejected as exc:
        result.failures += [f"events[{i}].{p.field}: {p.message}" for i, p in exc.problems]
        return result
    known = {r.id for r in runtime.policy.rules} | {r.id for r in runtime.policy.reports}
    for rid in test.rules or []:
        if rid not in known:
            result.failures.append(f"rules: unknown rule or report '{rid}'")
    if result.failures:
        return result
    sim = Simulation(runtime, min(e.at for e in events))
    pending = sorted(((_parse_timestamp(a.at), a) for a in test.acks), key=lambda x: x[0])
    for event in events:
        while pending and pending[0][0] <= event.at:
            at, ack = pending.pop(0)
            await sim.ack(ack.ticket or test.ticket, ack.rule, ack.by, at)
        await sim.arrive(event)
    for at, ack in pending:
        await sim.ack(ack.ticket or test.ticket, ack.rule, ack.by, at)
    until = (
        _parse_timestamp(test.until)
        if test.until
        else max(e.at for e in events) + timedelta(days=30)
    )
    await sim.advance(until)
    got = [n for n in sim.notifications if test.rules is None or n.rule in test.rules]
    unmatched = list(got)
    for exp in test.expect:
        hit = next((n for n in unmatched if _matches(exp, n)), None)
        if hit is None:
            result.failures.append(f"expected, not produced: {_describe_expected(exp)}")
        else:
            unmatched.remove(hit)
    for n in unmatched:
        result.failures.append(f"produced, not expected: {describe(n)}: {n.text}")
    if test.findings is not None:
        found = sorted(
            {c for e in sim.store.events.values() if e.type == "reviewed" for c in e.data.get("checks", ())}
        )
        if found != sorted(set(test.findings)):
            result.failures.append(
                f"review findings: expected {sorted(set(test.findings))}, found {found}"
            )
    return result


async def run_files(paths: list[Path], runtime: Runtime) -> list[TestResult]:
    results: list[TestResult] = []
    errors: list[ConfigError] = []
    for path in paths:
        try:
            located: Located = load_yaml(path)
            model = validate(RuleTestFile, located)
        except ConfigInvalid as exc:
            errors.extend(exc.errors)
            continue
        for i, test in enumerate(model.tests):
            results.append(
                await run_test(test, runtime, str(path), located.line_of(("tests", i, "name")))
            )
            # in the daemon (reload) the tests share the event loop with HTTP and the timers:
            # let them run between tests (each takes milliseconds; all of them about a second)
            await asyncio.sleep(0)
    if errors:
        raise ConfigInvalid(errors)
    return results


def test_files(rule_files: list[str] | tuple[str, ...] | list[Path]) -> list[Path]:
    """The rule tests next to the rules: rules/tests/*.yaml."""
    if not rule_files:
        return []
    return sorted(Path(rule_files[0]).parent.glob("tests/*.yaml"))


async def failing(paths: list[Path], runtime: Runtime) -> list[str]:
    """Every failing test as `file:line: name: failure; ...` (or the test files' own errors);
    [] when all pass. A rules folder without tests fails: nothing would guard the edit."""
    if not paths:
        return ["no rule tests found (rules/tests/*.yaml): a rules edit needs its tests"]
    try:
        results = await run_files(paths, runtime)
    except ConfigInvalid as exc:
        return [str(e) for e in exc.errors]
    return [
        f"{r.file}:{r.line}: {r.name}: {'; '.join(r.failures)}" for r in results if not r.ok
    ]
