"""Rule files: the YAML the office edits (rules/*.yaml), validated and compiled into a Rulebook.

See docs/rules.md for the language. Everything a rule says is checked here, before anything runs:
unknown keys, fields, operators, roles and templates, durations that do not parse, rules that
use the triggering event without being anchored on it, and conditions no ticket can satisfy.
The files' schema (the pydantic models) is in rulefile.py; this module compiles what they hold.
The engine binds a rulebook to the office's working calendar (engine/policy.py: Policy).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from supervisor.config.yamlconf import ConfigError, ConfigInvalid, Located, load_yaml, validate
from supervisor.policy.conditions import ALWAYS, Compiled, compile_condition, evaluate
from supervisor.policy.facts import FIELDS, MATTER_WINDOW_FIELDS
from supervisor.policy.matcher import Matcher, make_matcher
from supervisor.policy.reviewrules import compile_review
from supervisor.policy.rulefile import DEADLINE_NAMES, RuleFileModel
from supervisor.vocabulary.durations import Duration
from supervisor.vocabulary.matter import DEFAULT_WORDS, MatterConfig
from supervisor.vocabulary.review import ReviewConfig

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
    lists_matter: bool = False  # its messages list the tickets about the same matter
    matter_window_m: int = 0  # ... within this many minutes (its longest matter window)
    name: str = ""  # in Chinese, for people (display_name); the id is the key

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
    name: str = ""  # in Chinese, for people (display_name); the id is the key


@dataclass(frozen=True)
class Rulebook:
    """The rule files compiled: what the engine applies (engine/policy.py adds the calendar)."""

    rules: tuple[Rule, ...]
    deadlines: dict[str, tuple[DeadlineDefault, ...]]
    reports: tuple[Report, ...]
    matcher: Matcher
    windows: frozenset[int]  # minutes of the repeat_calls windows the rules use
    files: tuple[str, ...] = field(default=())
    # same-matter matching: thresholds, and the (field, minutes) windows the rules use
    matter: MatterConfig = field(default_factory=MatterConfig)
    matter_windows: frozenset[tuple[str, int]] = field(default=frozenset())
    review: ReviewConfig = field(default_factory=ReviewConfig)  # 答复审核

    @property
    def matter_rules(self) -> frozenset[str]:
        """Rules whose messages list the matter's tickets."""
        return frozenset(r.id for r in self.rules if r.lists_matter)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def rules_by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


def display_name(name: str | None, description: str, rid: str) -> str:
    """A rule's name for people: its `name`, else its description's words before the first
    "：" when they are short, else its id."""
    if name:
        return name
    head = description.split("：", 1)[0].strip()
    return head if head and len(head) <= 20 and "：" in description else rid


def rule_files(rules_dir: Path) -> list[Path]:
    return sorted(p for p in rules_dir.glob("*.yaml") if p.is_file())


def load_rulebook(
    paths: Sequence[Path],
    minutes_per_day: int,
    *,
    templates: Iterable[str] | None = None,
    matcher: str = "durable_rules",
    sms_mapped: Mapping[str, frozenset[str]] | None = None,
) -> Rulebook:
    """Load, check and compile rule files. Raises ConfigInvalid listing every problem.

    `minutes_per_day`: the office calendar's working minutes in a day (working durations in
    conditions count in minutes).
    `sms_mapped`: for each configured template-only SMS provider (aliyun, tencent), the templates
    config/sms_templates.yaml maps; a step or report sending sms with another one is an error."""
    errors: list[ConfigError] = []
    template_names = set(templates) if templates is not None else None

    def unmapped(channels: Sequence[str], template: str) -> list[str]:
        if "sms" not in channels:
            return []
        return [
            f"template '{template}' has no {provider} mapping in sms_templates.yaml "
            f"(notifiers.{provider} sends only registered templates)"
            for provider, names in (sms_mapped or {}).items()
            if template not in names
        ]

    mpd = minutes_per_day
    rules: list[Rule] = []
    reports: list[Report] = []
    deadlines: dict[str, tuple[DeadlineDefault, ...]] = {}
    deadline_src: dict[str, str] = {}
    seen: dict[str, str] = {}
    conditions: dict[str, Compiled] = {}
    windows: set[int] = set()
    matter_windows: set[tuple[str, int]] = set()
    matter = MatterConfig()
    matter_src: str | None = None
    review = ReviewConfig()
    review_src: str | None = None
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

        if model.matter is not None:
            if matter_src is not None:
                err(("matter",), f"'matter' is already set in {matter_src}")
            else:
                matter_src = str(path)
                matter = _matter_config(model.matter)

        if model.review is not None:
            if review_src is not None:
                err(("review",), f"'review' is already set in {review_src}")
            else:
                review_src = str(path)
                review = compile_review(model.review, err)

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
            matter_windows |= {(f, m) for f, m in res.field_windows if f in MATTER_WINDOW_FIELDS}
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
                for msg in unmapped(sm.channels, sm.template):
                    err((*where, "steps", j, "template"), msg)
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
                    bool(res.fields & set(MATTER_WINDOW_FIELDS)),
                    max((m for f, m in res.field_windows if f in MATTER_WINDOW_FIELDS), default=0),
                    display_name(rm.name, rm.description, rm.id),
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
            for msg in unmapped(rp.channels, rp.template):
                err((*where, "template"), msg)
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
                        display_name(rp.name, rp.description, rp.id),
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
    return Rulebook(
        rules=tuple(rules),
        deadlines=deadlines,
        reports=tuple(reports),
        matcher=make_matcher(conditions, matcher),
        windows=frozenset(windows),
        matter=matter,
        matter_windows=frozenset(matter_windows),
        review=review,
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


def _matter_config(model: Any) -> MatterConfig:
    """The `matter:` section as MatterConfig, the office's address words over the defaults."""
    values = model.model_dump(exclude={"address"})
    words = DEFAULT_WORDS
    if model.address is not None:
        given = {k: tuple(v) for k, v in model.address.model_dump(exclude_none=True).items()}
        words = replace(DEFAULT_WORDS, **given)
    return MatterConfig(**values, address=words)
