"""The delivery policy: when an outbox message may go, how long to back off, and how several
messages to one person become one SMS. Pure: no I/O, times in, times out.

Quiet hours and grouping, decided together (the dispatcher relies on this):
- An urgent message goes at once: no quiet hours, no grouping.
- A non-urgent message waits `group_window_s` after it was produced, like Alertmanager's
  group_wait: the first message of a burst waits so that the others can join it. When the
  dispatcher sends a ready message it takes along every other pending non-urgent message for the
  same person and channel that is due within the window (see dispatcher.py), so a burst of
  reminders goes as one SMS, sent `group_window_s` after the first of them.
- If that moment falls in quiet hours, or on a day the office does not work (when the caller
  passes the calendar's `workday`), the message waits until quiet hours end (07:30) of the next
  working day. No extra
  window is added then: everything held overnight is released at the same instant, which already
  gathers it into one group, and adding the window would only delay the morning batch.
- Retries and fallbacks of non-urgent messages honour quiet hours too (`release_at`), but not the
  window: they have waited already.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from supervisor.config.templates import segments
from supervisor.vocabulary import MESSAGE_CHANNELS

CHANNELS = frozenset(MESSAGE_CHANNELS)  # the channels notifiers/ sends on (notifiers.base)


class _Strict(BaseModel):
    # A misspelt key in the YAML must be an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class QuietHours(_Strict):
    start: time = time(22, 0)
    end: time = time(7, 30)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet_hours start and end are equal; omit quiet_hours instead")
        return self


def _default_rates() -> dict[str, float]:
    # A Twilio long code sends about 1 SMS/s and an account places 1 call/s by default.
    return {"sms": 1.0, "voice": 1.0, "wecom": 5.0, "dingtalk": 5.0, "console": 5.0}


def _default_horizons() -> dict[str, float]:
    return dict.fromkeys(sorted(CHANNELS), 4 * 3600.0)


class DeliverySettings(_Strict):
    quiet_hours: QuietHours | None = Field(default_factory=QuietHours)
    group_window_s: int = Field(60, ge=0)  # 0: every message goes alone
    group_max_segments: int = Field(3, ge=1)  # SMS parts one grouped message may take
    rate_per_s: dict[str, float] = Field(default_factory=_default_rates)
    # Retries follow a time horizon, not a count: a message is retried (capped backoff) for as
    # long as it is still useful, `retry_horizon_s` per channel from when it was produced; then
    # it fails over to the fallback channel. `max_attempts`, when set, also caps the sends.
    retry_horizon_s: dict[str, float] = Field(default_factory=_default_horizons)
    max_attempts: int | None = Field(None, ge=1)
    # The circuit breaker per provider: open after this many consecutive provider failures; while
    # open, one probe every breaker_probe_s (fixed: the provider's return is seen within seconds).
    breaker_threshold: int = Field(10, ge=1)
    breaker_probe_s: float = Field(10, gt=0, le=300)
    backoff_base_s: float = Field(2, gt=0)
    backoff_cap_s: float = Field(300, gt=0)
    fallback: dict[str, str] = Field(default_factory=lambda: {"sms": "voice"})
    # How long a 'sending' row may stay before another worker reconciles it. Must exceed the
    # longest send (the notifier timeout), or a slow send is reconciled while still in flight.
    reconcile_after_s: float = Field(60, gt=0)
    ack_words: list[str] = Field(default_factory=lambda: ["1", "收到", "确认", "ok", "OK"])

    @field_validator("rate_per_s")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        _known_channels(value)
        if any(rate <= 0 for rate in value.values()):
            raise ValueError("rates must be positive")
        return value

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, data: Any) -> Any:
        old = (
            sorted({"breaker_cool_s", "breaker_cool_cap_s"} & set(data))
            if isinstance(data, dict)
            else []
        )
        if old:
            raise ValueError(
                f"{', '.join(old)}: replaced by breaker_probe_s (one probe of a down provider "
                "every so many seconds, 10 by default; the cool-down no longer doubles)"
            )
        return data

    @field_validator("fallback")
    @classmethod
    def _fallbacks(cls, value: dict[str, str]) -> dict[str, str]:
        _known_channels(value)
        _known_channels(dict.fromkeys(value.values()))
        if any(src == dst for src, dst in value.items()):
            raise ValueError("a channel cannot fall back to itself")
        return value

    @field_validator("retry_horizon_s")
    @classmethod
    def _horizons(cls, value: dict[str, float]) -> dict[str, float]:
        _known_channels(value)
        if any(h <= 0 for h in value.values()):
            raise ValueError("retry horizons must be positive")
        return value

    def rate_for(self, channel: str) -> float:
        return self.rate_per_s.get(channel, 5.0)

    def horizon_for(self, channel: str) -> timedelta:
        return timedelta(seconds=self.retry_horizon_s.get(channel, 4 * 3600.0))


def _known_channels(value: Mapping[str, object]) -> None:
    unknown = sorted(set(value) - CHANNELS)
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; known: {sorted(CHANNELS)}")


# --- when a message may go -------------------------------------------------------------------


Workday = Callable[[date], bool]


def quiet_release(
    at: datetime, quiet: QuietHours | None, workday: Workday | None = None
) -> datetime:
    """`at`, or the end of the quiet hours `at` falls in. With `workday` (the office calendar),
    a non-working day is quiet all day: the message waits until the end of quiet hours (07:30)
    of the next working day."""
    if quiet is None:
        return at
    released = _quiet_release(at, quiet)
    if workday is None:
        return released
    zone = ZoneInfo(quiet.timezone)
    day = released.astimezone(zone).date()
    if _works(workday, day):
        return released
    while not _works(workday, day):
        day += timedelta(days=1)
    return datetime.combine(day, quiet.end, tzinfo=zone)


def _works(workday: Workday, day: date) -> bool:
    try:
        return workday(day)
    except Exception:  # a year without calendar data in `error` mode: Monday to Friday
        return day.weekday() < 5


def _quiet_release(at: datetime, quiet: QuietHours) -> datetime:
    zone = ZoneInfo(quiet.timezone)
    local = at.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    if quiet.start > quiet.end:  # wraps midnight, e.g. 22:00-07:30
        if t >= quiet.start:
            day = local.date() + timedelta(days=1)
        elif t < quiet.end:
            day = local.date()
        else:
            return at
    elif quiet.start <= t < quiet.end:  # within one day, e.g. 12:00-13:30
        day = local.date()
    else:
        return at
    return datetime.combine(day, quiet.end, tzinfo=zone)


def release_at(
    at: datetime, urgent: bool, settings: DeliverySettings, workday: Workday | None = None
) -> datetime:
    """When a retry or fallback may go: urgent at once, others after quiet hours."""
    return at if urgent else quiet_release(at, settings.quiet_hours, workday)


def not_before(
    at: datetime, urgent: bool, settings: DeliverySettings, workday: Workday | None = None
) -> datetime:
    """When a new message may go (see the module docstring for how quiet hours and grouping
    combine). `at` is when the message was produced; `workday` makes non-working days quiet."""
    if urgent:
        return at
    quiet = settings.quiet_hours
    if quiet_release(at, quiet, workday) != at:
        return quiet_release(at, quiet, workday)
    return quiet_release(at + timedelta(seconds=settings.group_window_s), quiet, workday)


def expired(
    created_at: datetime, attempts: int, channel: str, now: datetime, settings: DeliverySettings
) -> bool:
    """Is a message past retrying on its channel: older than the channel's horizon, or (when
    max_attempts is set) sent that many times?"""
    if settings.max_attempts is not None and attempts >= settings.max_attempts:
        return True
    return now - created_at > settings.horizon_for(channel)


def backoff_s(attempt: int, settings: DeliverySettings, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
    Full jitter spreads the retries of many workers hit by the same 429 burst."""
    ceiling = min(settings.backoff_cap_s, settings.backoff_base_s * 2 ** max(0, attempt - 1))
    return rng.uniform(0, ceiling)


# --- grouping --------------------------------------------------------------------------------

Render = Callable[[list[dict[str, Any]]], str]

DEFAULT_TAG = "【12345督办】"
_TAG = re.compile(r"^【[^】]{1,12}】")
# why a supervisor stands in ("（老旧小区改造办未配置负责人，转您处理）", core/firing.stand_in_note)
_NOTE = re.compile(r"^（[^（）]*转您处理）")
# the house style: a text about one unit starts "城管执法中队：工单T1…" (config/templates.yaml)
_UNIT = re.compile(r"^([^：，。；（）【】]{2,30})：(?=工单)")


ACK_HINT = "回复1确认。"  # how the shipped texts end when they expect an acknowledgement
_END = "。；;，,"


def is_report(ticket: str) -> bool:
    """A periodic report's row (its subject is "-" or "unit:NAME", core/reports.py), not a
    ticket's: reports go alone, never inside a group of reminders."""
    return ticket == "-" or ticket.startswith("unit:")


class _Item:
    """One row of a group, taken apart: tag, stand-in note, unit and what is said."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        text = " ".join(str(row["text"]).split())
        tag = _TAG.match(text)
        self.tag = tag.group(0) if tag else None
        text = text[tag.end() :] if tag else text
        note = _NOTE.match(text)
        self.note = note.group(0) if note else None
        text = text[note.end() :] if note else text
        self.ack = text.endswith(ACK_HINT)
        text = text.removesuffix(ACK_HINT).rstrip(_END)  # the group ends with one 。 and one hint
        unit = _UNIT.match(text)
        self.unit = unit.group(1) if unit else None
        self.body = text[unit.end() :] if unit else text
        self.ticket = str(row["ticket"])
        self.rule = str(row.get("rule", ""))
        if self.ticket not in self.body:
            self.body = f"工单{self.ticket}：{self.body}"


def _merged(items: list[_Item]) -> list[_Item]:
    """One item per ticket: a later step of the same rule replaces the earlier (a supervisor who
    stood in for the head and is then asked in their own role reads the ticket once); another
    rule's text about the same ticket joins the item without naming the ticket again."""
    out: list[_Item] = []
    for item in items:
        same = next((o for o in out if o.ticket == item.ticket), None)
        if same is None:
            out.append(item)
            continue
        same.ack = same.ack or item.ack
        same.note = same.note or item.note
        if item.rule == same.rule:
            same.body, same.tag, same.unit = item.body, item.tag or same.tag, item.unit
        else:
            rest = re.sub(rf"^工单{re.escape(item.ticket)}(（[^）]*）)?[：，]?", "", item.body)
            same.body = f"{same.body}，{rest}"
    return out


def compose_group(rows: Sequence[Mapping[str, Any]], render: Render | None = None) -> str:
    """The text of one message carrying `rows` (mappings with at least `ticket` and `text`).
    One row goes as written. Several: the tag once, the stand-in notes once, the unit once when
    all items are about one unit, each item whole (never cut: its action is what it asks), one
    ticket once, one acknowledgement hint. `render`, when given, replaces the plain layout."""
    if len(rows) == 1:
        return str(rows[0]["text"])
    if render is not None:
        return render([dict(r) for r in rows])
    items = _merged([_Item(r) for r in rows])
    tags = {i.tag for i in items if i.tag}
    tag = tags.pop() if len(tags) == 1 else DEFAULT_TAG
    notes = "".join(dict.fromkeys(i.note for i in items if i.note))
    hint = ACK_HINT if any(i.ack for i in items) else ""
    if len(items) == 1:
        only = items[0]
        unit = f"{only.unit}：" if only.unit else ""
        return f"{tag}{notes}{unit}{only.body}。{hint}"
    units = {i.unit for i in items}
    if len(units) == 1 and None not in units:
        head = f"{units.pop()}{len(items)}件工单："
        listed = "；".join(f"{n}.{i.body}" for n, i in enumerate(items, 1))
    else:  # several units: each unit's items together, the unit named at its first item
        order = list(dict.fromkeys(i.unit for i in items))
        items = sorted(items, key=lambda i: order.index(i.unit))
        head = f"您有{len(items)}条提醒："
        listed = "；".join(
            f"{n}.{(i.unit or '') if n == 1 or i.unit != items[n - 2].unit else ''}{i.body}"
            for n, i in enumerate(items, 1)
        )
    return f"{tag}{notes}{head}{listed}。{hint}"


def split_groups(
    rows: Sequence[Mapping[str, Any]], max_segments: int, render: Render | None = None
) -> list[list[Mapping[str, Any]]]:
    """Cut `rows` (in order) into groups whose composed text fits in `max_segments` SMS parts.
    A row too long to fit even alone goes alone, as written."""
    groups: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    for row in rows:
        candidate = [*current, row]
        if len(candidate) == 1 or segments(compose_group(candidate, render)) <= max_segments:
            current = candidate
        else:
            groups.append(current)
            current = [row]
    if current:
        groups.append(current)
    return groups
