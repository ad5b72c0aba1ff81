"""The reply review's checks (答复审核), as the rules' `review:` section gives them.

What a check finds in a text is core/review.py's; policy/reviewrules.py compiles the checks from
the rule files. Here so that both sides speak them without importing each other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

REVIEWED_EVENTS = ("replied", "returned", "extension_requested")
KINDS = (
    "require", "forbid", "min_length", "caller_number", "phone_format", "dates",
    "resolved_claim", "other_unit", "near_identical", "before_deadline", "extension_date",
)  # fmt: skip


@dataclass(frozen=True)
class Check:
    id: str
    kind: str
    name: str  # Chinese, shown to the unit and on the desk
    message: str  # what to add or fix
    events: tuple[str, ...] = ("replied",)
    words: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()  # regular expressions
    unless: tuple[str, ...] = ()  # words or patterns that lift a forbid / a promised date
    min_chars: int = 0
    min_lines: int = 0
    similarity: int = 95
    edge_chars: int = 30  # other_unit: how far from the head and foot the name counts

    def compiled(self) -> re.Pattern[str] | None:
        return _compile(self.words, self.patterns)

    def compiled_unless(self) -> re.Pattern[str] | None:
        return _compile(self.unless, ())


@dataclass(frozen=True)
class ReviewConfig:
    checks: tuple[Check, ...] = ()
    # an event without the text field at all (a feed that does not carry replies' text) is not
    # reviewed unless this is True; a text field present but blank is always reviewed as blank
    review_missing_text: bool = False

    @property
    def active(self) -> bool:
        return bool(self.checks)


def _compile(words: Sequence[str], patterns: Sequence[str]) -> re.Pattern[str] | None:
    parts = [re.escape(w) for w in words] + [f"(?:{p})" for p in patterns]
    return re.compile("|".join(parts)) if parts else None
