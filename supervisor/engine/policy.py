"""The policy the engine applies: the compiled rule files (policy/) bound to the calendar (core/).

The rule language and the core do not know each other (.importlinter); a Policy is where they
meet: a Rulebook with the WorkCalendar its working durations count in, the MatterSpec the stores
match new tickets with, and the fingerprint of what computed a deadline.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from supervisor.core.matter import MatterSpec
from supervisor.core.workcal import WorkCalendar
from supervisor.policy.rulebook import Rulebook, load_rulebook


@dataclass(frozen=True)
class Policy(Rulebook):
    calendar: WorkCalendar = field(kw_only=True)

    @property
    def matter_spec(self) -> MatterSpec:
        return MatterSpec(self.matter, self.matter_windows, self.matter_rules)

    @functools.cached_property
    def fingerprint(self) -> str:
        """Which deadline rules and calendar computed a deadline (the desk's desk_deadlines rows
        say which policy wrote them, so a rules edit recomputes them)."""
        text = repr(sorted((k, repr(v)) for k, v in self.deadlines.items()))
        text += repr(self.calendar.config)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def bind(rulebook: Rulebook, calendar: WorkCalendar) -> Policy:
    """The rulebook applied with this calendar."""
    return Policy(
        **{f.name: getattr(rulebook, f.name) for f in fields(rulebook)}, calendar=calendar
    )


def load_policy(
    paths: Sequence[Path],
    calendar: WorkCalendar,
    *,
    templates: Iterable[str] | None = None,
    matcher: str = "durable_rules",
    sms_mapped: Mapping[str, frozenset[str]] | None = None,
) -> Policy:
    """Load, check and compile rule files (policy/rulebook.py) for this calendar. Raises
    ConfigInvalid listing every problem."""
    rulebook = load_rulebook(
        paths,
        calendar.minutes_per_day,
        templates=templates,
        matcher=matcher,
        sms_mapped=sms_mapped,
    )
    return bind(rulebook, calendar)
