"""The rule files' schema: pydantic models of the YAML the office edits (rules/*.yaml).

Strict (unknown keys are errors) and frozen. rulebook.py validates each file against
`RuleFileModel` and compiles it into a Policy; jsonschema.py derives the JSON Schema editors use
(rules/rule-file.schema.json) from the same models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from supervisor.policy.facts import ANCHORS
from supervisor.policy.reviewrules import ReviewModel
from supervisor.vocabulary.durations import Duration, parse_duration

DEADLINE_NAMES = ("sign_by", "reply_by")
DEADLINE_FROM = ("dispatched_at", "reopened_at", "created_at", "signed_at")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _duration(value: Any) -> Duration:
    return parse_duration(value)


DURATION_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "pattern": r"^[+-]?\s*(\d+(\.\d+)?\s*(m|mins?|minutes?|h|hours?|d|days?|working (minutes?|hours?)|个?(工作分钟|工作小时|分钟|分|小时|钟头|天|自然日|自然天))|\d+\s*(working days?|个?工作日))$",
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


# What the desk and the office call a rule, in Chinese ("签收时限"); the id stays the key in the
# YAML, the JSON twins, the logs and the tests. Optional: without it, the description's words
# before its first "：" (or the id) stand in.
RuleName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f]+$")]


class RuleModel(_Model):
    id: RuleId
    name: RuleName | None = None
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
    # first_working_day_of_week: Monday, or the next working day when Monday is a holiday
    days: Literal[  # type: ignore[valid-type]
        "working_days",
        "every_day",
        "first_working_day_of_week",
        "first_working_day_of_month",
        *WEEKDAYS,
    ]
    at: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class ReportModel(_Model):
    id: RuleId
    name: RuleName | None = None
    description: str
    kind: Literal["look_back", "digest", "monthly_stats"]
    schedule: ScheduleModel
    to: Annotated[list[Role], Field(min_length=1)]
    channels: Annotated[list[ChannelName], Field(min_length=1)] = ["sms"]
    template: str
    window: DurationField | None = None
    enabled: bool = True


Words = Annotated[list[Annotated[str, Field(min_length=1, max_length=20)]], Field(min_length=1)]


class AddressModel(_Model):
    """The office's words for the parts of an address (supervisor/core/address.py); each list
    replaces the default list."""

    roads: Words | None = None
    compounds: Words | None = None
    buildings: Words | None = None
    divisions: Words | None = None
    details: Words | None = None


class MatterModel(_Model):
    """How tickets are matched as the same matter (supervisor/core/matter.py)."""

    address: AddressModel | None = None

    summary_similarity: Annotated[int, Field(ge=1, le=100)] = Field(
        60,
        description="rapidfuzz ratio (0-100) at which two summaries in one grid are the same matter",
    )
    min_summary_chars: Annotated[int, Field(ge=1, le=200)] = 6
    min_address_chars: Annotated[int, Field(ge=1, le=200)] = 4
    max_candidates: Annotated[int, Field(ge=10, le=100_000)] = Field(
        500,
        description="per address or grid, how many of its most recent tickets within the window "
        "a new ticket is compared with",
    )


class RuleFileModel(_Model):
    matter: MatterModel | None = None
    review: ReviewModel | None = None  # 答复审核 (policy/reviewrules.py)
    deadlines: dict[Literal["sign_by", "reply_by"], list[DeadlineModel]] = {}
    rules: list[RuleModel] = []
    reports: list[ReportModel] = []
