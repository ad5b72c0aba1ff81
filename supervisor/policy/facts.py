"""The message a rule condition sees: one flat, total dict per (ticket state, event).

durable_rules misbehaves on missing fields (a `$neq` on an absent key never matches, `$nex` inside
`$or` hangs), so every field below is always present with a value of its declared type. Rule files
are checked against this table: an unknown field or a value of the wrong type is an error.
The engine builds each message from the core's ticket state and event (engine/facts.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from supervisor import vocabulary


@dataclass(frozen=True)
class FieldSpec:
    type: str  # "str" | "bool" | "int" | "duration" | "window"
    doc: str
    event: bool = False  # depends on the triggering event: only for rules anchored on the event
    values: tuple[str, ...] = ()  # allowed values of a str field, when closed


# Closed value sets of the fields; "" is the value of a field not (yet) known.
STATUSES = (*vocabulary.TICKET_STATUSES, )
KINDS = (*vocabulary.KINDS, "")
CHANNELS = (*vocabulary.INTAKE_CHANNELS, "")
SATISFACTION = (*vocabulary.SATISFACTION, "")
EVENT_TYPES = vocabulary.EVENT_TYPES

FIELDS: dict[str, FieldSpec] = {
    "status": FieldSpec("str", "lifecycle status after the event", values=STATUSES),
    "kind": FieldSpec("str", "诉求类型 (empty when unknown)", values=KINDS),
    "category": FieldSpec("str", "诉求归口 (empty when unknown)"),
    "channel": FieldSpec("str", "where the request came in", values=CHANNELS),
    "urgent": FieldSpec("bool", "urgent ticket"),
    "unit": FieldSpec("str", "the lead unit (主办), empty before dispatch"),
    "grid": FieldSpec("str", "the ticket's grid (网格)"),
    "satisfaction": FieldSpec("str", "the last callback's rating", values=SATISFACTION),
    "dispatch_count": FieldSpec("int", "dispatches so far (2+ means re-dispatched)"),
    "return_count": FieldSpec("int", "returns so far"),
    "returned_unit_count": FieldSpec("int", "distinct units that returned the ticket"),
    "co_unit_count": FieldSpec("int", "co-handling units (协办) of the current dispatch"),
    "unsigned_co_unit_count": FieldSpec("int", "co-handling units that have not signed"),
    "dissatisfied_count": FieldSpec("int", "dissatisfied callbacks so far"),
    "reopened_count": FieldSpec("int", "re-handlings (重办) so far"),
    "extension_count": FieldSpec("int", "approved extensions"),
    "contacted_before": FieldSpec("bool", "the unit contacted the citizen before handling"),
    "contacted_after": FieldSpec("bool", "the unit contacted the citizen after handling"),
    "has_commitment": FieldSpec("bool", "the unit made a commitment (承诺) with a due date"),
    "commitment_kept": FieldSpec("bool", "the unit reported the promise kept (commitment_kept) after it was made"),
    "resolved": FieldSpec("bool", "the last callback said resolved"),
    "event": FieldSpec("str", "type of the triggering event", event=True, values=EVENT_TYPES),
    "event_unit": FieldSpec("str", "unit named by the triggering event", event=True),
    "event_approved": FieldSpec("bool", "extension_decided: approved", event=True),
    "event_satisfaction": FieldSpec("str", "visited: the rating", event=True, values=SATISFACTION),
    "event_review": FieldSpec("str", "reviewed / review_decided: the outcome of the review (答复审核)", event=True, values=("passed", "returned", "")),
    "event_after_sign_by": FieldSpec("bool", "the event happened after the sign-off deadline", event=True),
    "event_after_reply_by": FieldSpec("bool", "the event happened after the reply deadline", event=True),
    "since_dispatch": FieldSpec("duration", "time from the last dispatch to the event", event=True),
    "repeat_calls": FieldSpec("window", "tickets from the same caller in the same category within a window, this one included", event=True),
    "same_matter": FieldSpec("window", "tickets about the same matter (same normalised address, or similar summary in the grid) within a window, whatever the caller or category, this one included; on created events", event=True),
    "matter_callers": FieldSpec("window", "distinct callers about the same matter within a window, this one included, when this ticket's caller is new to the matter in that window (else 0): eq N holds once per matter and window; on created events", event=True),
}  # fmt: skip

ANCHORS = (
    "event", "sign_by", "reply_by", "commitment_due", "created_at", "dispatched_at", "signed_at",
    "replied_at", "visited_at", "reopened_at",
)  # fmt: skip

NO_DURATION = -1  # since_dispatch before any dispatch


def duration_key(name: str, working: bool) -> str:
    return f"{name}__{'wm' if working else 'm'}"


MATTER_WINDOW_FIELDS = ("same_matter", "matter_callers")


def window_key(name: str, minutes: int) -> str:
    return f"{name}__{minutes}m"
