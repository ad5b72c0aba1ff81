"""The `review:` section of the rule files (答复审核, rules/review.yaml): its schema, and the
checks compiled into vocabulary.review.ReviewConfig with `file:line` errors at `check`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from supervisor.vocabulary.review import KINDS, REVIEWED_EVENTS, Check, ReviewConfig

Word = Annotated[str, Field(min_length=1, max_length=200)]
Kind = Literal[
    "require", "forbid", "min_length", "caller_number", "phone_format", "dates",
    "resolved_claim", "other_unit", "near_identical", "before_deadline", "extension_date",
]  # fmt: skip
ReviewedEvent = Literal["replied", "returned", "extension_requested"]
assert set(KINDS) == set(Kind.__args__) and set(REVIEWED_EVENTS) == set(ReviewedEvent.__args__)  # type: ignore[attr-defined]

# the kinds that need words or patterns to look for
NEEDS_WORDS = ("require", "forbid", "resolved_claim")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReviewCheckModel(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)]
    kind: Kind
    name: Annotated[str, Field(min_length=1, max_length=20)] = Field(
        description="the check's Chinese name, shown to the unit and on the desk"
    )
    message: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="what the unit should add or fix"
    )
    events: Annotated[list[ReviewedEvent], Field(min_length=1)] = ["replied"]
    words: list[Word] = []
    patterns: list[Word] = Field([], description="regular expressions (Python re)")
    unless: list[Word] = []
    min_chars: Annotated[int, Field(ge=0, le=2000)] = 0
    min_lines: Annotated[int, Field(ge=0, le=50)] = 0
    similarity: Annotated[int, Field(ge=50, le=100)] = 95
    edge_chars: Annotated[int, Field(ge=1, le=200)] = 30
    enabled: bool = True


class ReviewModel(_Model):
    """答复审核: the checks each reply, return and extension request must pass."""

    review_missing_text: bool = Field(
        False,
        description="review an event that carries no text field at all (false: a feed without "
        "replies' text is not reviewed; a blank text is always reviewed)",
    )
    checks: list[ReviewCheckModel] = []


def compile_review(
    model: ReviewModel, err: Callable[[tuple, str], None], where: tuple = ("review",)
) -> ReviewConfig:
    checks = []
    seen: set[str] = set()
    for i, c in enumerate(model.checks):
        at = (*where, "checks", i)
        if c.id in seen:
            err((*at, "id"), f"check id '{c.id}' is already used")
            continue
        seen.add(c.id)
        for j, p in enumerate(c.patterns):
            try:
                re.compile(p)
            except re.error as exc:
                err((*at, "patterns", j), f"not a regular expression: {exc}")
        if c.kind in NEEDS_WORDS and not (c.words or c.patterns):
            err(at, f"a '{c.kind}' check needs words or patterns")
        if c.kind == "min_length" and not (c.min_chars or c.min_lines):
            err(at, "a 'min_length' check needs min_chars or min_lines")
        if not c.enabled:
            continue
        checks.append(
            Check(
                id=c.id,
                kind=c.kind,
                name=c.name,
                message=c.message,
                events=tuple(c.events),
                words=tuple(c.words),
                patterns=tuple(c.patterns),
                unless=tuple(c.unless),
                min_chars=c.min_chars,
                min_lines=c.min_lines,
                similarity=c.similarity,
                edge_chars=c.edge_chars,
            )  # fmt: skip
        )
    return ReviewConfig(tuple(checks), model.review_missing_text)
