"""Rule files: the YAML the office edits (rules/*.yaml), validated and compiled into a Policy.

See docs/rules.md for the language. Everything a rule says is checked here, before anything runs:
unknown keys, fields, operators, roles and templates, durations that do not parse, rules that
use the triggering event without being anchored on it, and conditions no ticket can satisfy.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from supervisor.config.yamlconf import ConfigError, ConfigInvalid, Located, load_yaml, validate
from supervisor.core.durations import Duration, parse_duration
from supervisor.core.workcal import WorkCalendar
from supervisor.policy.conditions import ALWAYS, Compiled, compile_condition, evaluate
from supervisor.policy.facts import ANCHORS, FIELDS
from supervisor.policy.matcher import Matcher, make_matcher

DEADLINE_NAMES = ("sign_by", "reply_by")
DEADLINE_FROM = ("dispatched_at", "reopened_at", "created_at", "signed_at")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _duration(value: Any) -> Duration:
    return parse_duration(value)


DURATION_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "pattern": r"^[+-]?\s*\d+\s*(m|h|d|minutes?|hours?|days?|working (minutes?|hours?|days?)|个?工作(分钟|小时|日))$",
        },
        {"type": "integer", "const": 0},
    ],
    "description": "30m, 24h, 2d (natural time) or 2 working hours, -30 working minutes, 3 working days",
}
DurationField = Annotated[Duration, BeforeValidator(_duration), WithJsonSchema(DURATION_SCHEMA)]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Role = Literal["liaison", "head", "supervisor", "leader", "grid"]
ChannelName = Literal["sms", "voice", "wecom", "dingtalk", "console"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True
    )


class RepeatModel(_Model):
    every: DurationField
    times: Annotated[int, Field(ge=1, le=50)]


class StepModel(_Model):
    at: DurationField = Field(
        description="offset from the anchor: negative is before it, e.g. -30 working minutes"
    )
    notify: Annotated[list[Role], Field(min_length=1)]
    channels: Annotated[list[ChannelName], Field(min_length=1)] = ["sms"]
    template: str
    units: Literal["lead", "co_unsigned"] = "lead"
    urgent: bool | None = Field(
        None, description="send through quiet hours; default: the ticket's urgency"
    )
    repeat: RepeatModel | None = None


class RuleModel(_Model):
    id: RuleId
    description: str
    when: Any = None
    anchor: Literal[ANCHORS]  # type: ignore[valid-type]
    stop_when: Any = None
    once: bool = False
    enabled: bool = True
    steps: Annotated[list[StepModel], Field(min_length=1)]


class DeadlineModel(_Model):
    when: Any = None
    from_: Literal[DEADLINE_FROM] = Field("dispatched_at", alias="from")  # type: ignore[valid-type]
    after: DurationField


class ScheduleModel(_Model):
    days: Literal["working_days", "every_day", *WEEKDAYS]  # type: ignore[valid-type]
    at: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class ReportModel(_Model):
    id: RuleId
    description: str
    kind: Literal["look_back", "digest"]
    schedule: ScheduleModel
    to: Annotated[list[Role], Field(min_length=1)]
    channels: Annotated[list[ChannelName], Field(min_length=1)] = ["sms"]
    template: str
    window: DurationField | None = None
    enabled: bool = True


class RuleFileModel(_Model):
    deadlines: dict[Literal["sign_by", "reply_by"], list[DeadlineModel]] = {}
    rules: list[RuleModel] = []
    reports: list[ReportModel] = []


# --- compiled, immutable -----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    index: int
    offset: Duration
    roles: tuple[str, ...]
    channels: tuple[str, ...]
    template: str
    units: str
    urgent: bool | None
    repeat_every: Duration | None
    repeat_times: int


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    anchor: str
    when: Compiled
    stop_when: Compiled | None
    once: bool
    steps: tuple[Step, ...]
    source: str
    lists_linked: bool = False  # its messages list the caller's linked tickets (repeat_calls)

    @property
    def event_triggered(self) -> bool:
        return self.anchor == "event"


@dataclass(frozen=True)
class DeadlineDefault:
    id: str
    target: str
    when: Compiled
    start: str
    after: Duration


@dataclass(frozen=True)
class Report:
    id: str
    description: str
    kind: str
    days: str
    at: str
    to: tuple[str, ...]
    channels: tuple[str, ...]
    template: str
    window: Duration | None


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    deadlines: dict[str, tuple[DeadlineDefault, ...]]
    reports: tuple[Report, ...]
    calendar: WorkCalendar
    matcher: Matcher
    windows: frozenset[int]  # minutes of the repeat_calls windows the rules use
    files: tuple[str, ...] = field(default=())

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def rules_by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


def rule_files(rules_dir: Path) -> list[Path]:
    return sorted(p for p in rules_dir.glob("*.yaml") if p.is_file())


def load_policy(
    paths: Sequence[Path],
    calendar: WorkCalendar,
    *,
    templates: Iterable[str] | None = None,
    matcher: str = "durable_rules",
) -> Policy:
    """Load, check and compile rule files. Raises ConfigInvalid listing every problem."""
    errors: list[ConfigError] = []
    template_names = set(templates) if templates is not None else None
    mpd = calendar.minutes_per_day
    rules: list[Rule] = []
    reports: list[Report] = []
    deadlines: dict[str, tuple[DeadlineDefault, ...]] = {}
    deadline_src: dict[str, str] = {}
    seen: dict[str, str] = {}
    conditions: dict[str, Compiled] = {}
    windows: set[int] = set()
    for path in paths:
        try:
            located = load_yaml(path)
            model = validate(RuleFileModel, located)
        except ConfigInvalid as exc:
            errors.extend(exc.errors)
            continue
        assert isinstance(model, RuleFileModel)

        def err(p: tuple, msg: str, _loc: Located = located) -> None:
            errors.append(_loc.error(p, msg))

        for target, entries in model.deadlines.items():
            if target in deadline_src:
                err(
                    ("deadlines", target),
                    f"'{target}' defaults are already set in {deadline_src[target]}",
                )
                continue
            deadline_src[target] = str(path)
            compiled_entries = []
            for i, entry in enumerate(entries):
                res = compile_condition(entry.when, ("deadlines", target, i, "when"), mpd)
                for p, msg in res.errors:
                    err(p, msg)
                bad = sorted(f for f in res.fields if FIELDS[f].event)
                if bad:
                    err(
                        ("deadlines", target, i, "when"),
                        f"a deadline cannot depend on the event ({', '.join(bad)})",
                    )
                windows |= res.windows
                did = f"deadline:{target}:{i}"
                conditions[did] = res.condition
                compiled_entries.append(
                    DeadlineDefault(did, target, res.condition, entry.from_, entry.after)
                )
            if compiled_entries and compiled_entries[-1].when != ALWAYS:
                err(
                    ("deadlines", target, len(entries) - 1),
                    "the last default should have no 'when', so every ticket gets a deadline",
                )
            deadlines[target] = tuple(compiled_entries)

        for i, rm in enumerate(model.rules):
            where = ("rules", i)
            if rm.id in seen:
                err((*where, "id"), f"rule id '{rm.id}' is already used in {seen[rm.id]}")
                continue
            seen[rm.id] = f"{path}:{located.line_of((*where, 'id'))}"
            res = compile_condition(rm.when, (*where, "when"), mpd)
            stop = (
                compile_condition(rm.stop_when, (*where, "stop_when"), mpd)
                if rm.stop_when is not None
                else None
            )
            for p, msg in res.errors + (stop.errors if stop else []):
                err(p, msg)
            windows |= res.windows
            event_fields = sorted(f for f in res.fields if FIELDS[f].event)
            if event_fields and rm.anchor != "event":
                err(
                    (*where, "when"),
                    f"uses the triggering event ({', '.join(event_fields)}) but is anchored on '{rm.anchor}': use 'anchor: event'",
                )
            if stop and any(FIELDS[f].event for f in stop.fields):
                err(
                    (*where, "stop_when"),
                    "stop_when is checked against the ticket's state and cannot use event fields",
                )
            if not res.errors and not _satisfiable(res.condition, res.fields, mpd):
                err((*where, "when"), "this condition can never hold, so the rule can never fire")
            steps = []
            for j, sm in enumerate(rm.steps):
                if template_names is not None and sm.template not in template_names:
                    err(
                        (*where, "steps", j, "template"),
                        f"unknown template '{sm.template}' (config/templates.yaml has: {', '.join(sorted(template_names))})",
                    )
                if rm.anchor == "event" and sm.at.is_negative:
                    err(
                        (*where, "steps", j, "at"),
                        "a step cannot come before the event it reacts to",
                    )
                steps.append(
                    Step(
                        j,
                        sm.at,
                        tuple(sm.notify),
                        tuple(dict.fromkeys(sm.channels)),
                        sm.template,
                        sm.units,
                        sm.urgent,
                        sm.repeat.every if sm.repeat else None,
                        sm.repeat.times if sm.repeat else 0,
                    )
                )
            if not rm.enabled:
                continue
            conditions[f"rule:{rm.id}"] = res.condition
            if stop:
                conditions[f"stop:{rm.id}"] = stop.condition
            rules.append(
                Rule(
                    rm.id,
                    rm.description,
                    rm.anchor,
                    res.condition,
                    stop.condition if stop else None,
                    rm.once,
                    tuple(steps),
                    seen[rm.id],
                    "repeat_calls" in res.fields,
                )
            )

        for i, rp in enumerate(model.reports):
            where = ("reports", i)
            if rp.id in seen:
                err((*where, "id"), f"id '{rp.id}' is already used in {seen[rp.id]}")
                continue
            seen[rp.id] = f"{path}:{located.line_of((*where, 'id'))}"
            if template_names is not None and rp.template not in template_names:
                err((*where, "template"), f"unknown template '{rp.template}'")
            if rp.enabled:
                reports.append(
                    Report(
                        rp.id,
                        rp.description,
                        rp.kind,
                        rp.schedule.days,
                        rp.schedule.at,
                        tuple(rp.to),
                        tuple(rp.channels),
                        rp.template,
                        rp.window,
                    )
                )

    for name in DEADLINE_NAMES:
        if name not in deadlines and paths:
            errors.append(
                ConfigError(
                    str(paths[0].parent),
                    None,
                    f"deadlines.{name}",
                    f"no rule file sets the default '{name}'",
                )
            )
    if errors:
        raise ConfigInvalid(errors)
    return Policy(
        rules=tuple(rules),
        deadlines=deadlines,
        reports=tuple(reports),
        calendar=calendar,
        matcher=make_matcher(conditions, matcher),
        windows=frozenset(windows),
        files=tuple(str(p) for p in paths),
    )


# --- "can never fire" --------------------------------------------------------------------------

_MAX_COMBINATIONS = 50_000


def _satisfiable(cond: Compiled, used: set[str], mpd: int) -> bool:
    """Search a small domain per field (its closed values, or the constants the condition names
    and their neighbours). Exact for this language; gives up (True) when the space is too big."""
    constants: dict[str, set[Any]] = {}
    _collect(cond, constants)
    keys = sorted(constants)
    domains: list[list[Any]] = []
    for key in keys:
        base = key.split("__", 1)[0]
        spec = FIELDS.get(base)
        values = constants[key]
        if spec is not None and spec.type == "bool":
            dom: list[Any] = [True, False]
        elif spec is not None and spec.type == "str":
            dom = list(spec.values) if spec.values else [*values, "\x00other"]
        else:
            dom = sorted({v + d for v in values for d in (-1, 0, 1)} | {-1, 0})
        domains.append(dom)
    total = 1
    for dom in domains:
        total *= len(dom)
        if total > _MAX_COMBINATIONS:
            return True
    for combo in itertools.product(*domains):
        msg = dict(zip(keys, combo, strict=True))
        msg["_"] = 1
        if evaluate(cond, msg):
            return True
    return False


def _collect(cond: Compiled, out: dict[str, set[Any]]) -> None:
    ((key, value),) = cond.items()
    if key in ("$and", "$or"):
        for c in value:
            _collect(c, out)
    elif key.startswith("$"):
        ((fname, operand),) = value.items()
        out.setdefault(fname, set()).add(operand)
    elif key != "_":
        out.setdefault(key, set()).add(value)
