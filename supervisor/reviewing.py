"""答复审核 in the shell: which events are reviewed, what the pure review (core/review.py) is given,
and the `reviewed` events its findings become.

The review runs inside the ingest's plan step (it needs the ticket's state at the event: the
dispatch time, the reply deadline, an open commitment, the last callback), records what it found,
and once the batch is stored the findings are ingested as `reviewed` events (id
`<event id>~review`, at the event's own time): the fold then un-replies a reply sent back, the
rule `review-returned` texts the unit's liaison, and the desk's 待审核 lists it. A reply that
passes stores nothing and sends nothing. The replies compared for near-identical text are each
unit's recent ones this process has seen (the last RECENT_REPLIES per unit), not the whole
history: a copy is usually of the unit's own reply made days before, and a restart forgets at
most that window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from supervisor.config.contacts import Directory
from supervisor.core.events import Event
from supervisor.core.privacy import caller_hash
from supervisor.core.review import NEAR_IDENTICAL_MIN_CHARS, Finding, Subject, reply_text, review
from supervisor.core.state import TicketState, apply
from supervisor.engine import deadlines as dl
from supervisor.engine.facts import state_fields
from supervisor.engine.policy import Policy
from supervisor.vocabulary.review import REVIEWED_EVENTS, ReviewConfig

RECENT_REPLIES = 300  # per unit


@dataclass(frozen=True)
class Result:
    event: Event
    text: str
    findings: tuple[Finding, ...]

    def as_event(self) -> Event:
        return Event(
            id=f"{self.event.id}~review",
            ticket=self.event.ticket,
            type="reviewed",
            at=self.event.at,
            data={
                "of": self.event.id,
                "kind": self.event.type,
                "outcome": "returned" if self.findings else "passed",
                "checks": [f.check for f in self.findings],
                "findings": [f.line() for f in self.findings],
            },
        )


@dataclass
class Reviewer:
    """One per Supervisor: remembers recent replies (for near-identical text)."""

    # per unit, its recent replies (ticket, text, its length): a copied reply is most often the
    # unit's own from another ticket, and comparing within the unit keeps the check cheap at any
    # scale
    recent: dict[str, deque[tuple[str, str, int]]] = field(default_factory=dict)

    def remember(self, unit: str, ticket: str, text: str) -> None:
        window = self.recent.get(unit)
        if window is None:
            window = self.recent[unit] = deque(maxlen=RECENT_REPLIES)
        window.append((ticket, text, len(text)))

    def others(
        self, unit: str | None, ticket: str, text: str, config: ReviewConfig, event: str = ""
    ) -> list[str]:
        """The unit's recent replies of other tickets that could reach the near-identical
        threshold: rapidfuzz's ratio is at most 2·min/(la+lb), so a length further off than that
        allows cannot match and is not compared (the check's answer is the same, cheaper). None
        for a text the check does not compare (too short; with `event`, an event it skips)."""
        sims = [
            c.similarity
            for c in config.checks
            if c.kind == "near_identical" and (not event or event in c.events)
        ]
        window = self.recent.get(unit or "")
        if not sims or not window:
            return []
        n = len(text.strip())
        if n < NEAR_IDENTICAL_MIN_CHARS:
            return []
        spread = n * (200 / min(sims) - 2) + 1
        lo, hi = n - spread, n + spread
        return [t for tk, t, m in window if lo <= m <= hi and tk != ticket]

    def wants(self, event: Event, config: ReviewConfig) -> str | None:
        """The text to review, or None when the event is not reviewed."""
        if not config.active or event.type not in REVIEWED_EVENTS:
            return None
        text = reply_text(event.data)
        if text is None and not config.review_missing_text:
            return None
        return text or ""

    def review_ticket(
        self,
        events: Sequence[Event],
        new_ids: set[str] | None,
        start: TicketState | None,
        policy: Policy,
        directory: Directory,
        caller_key: bytes,
    ) -> list[Result]:
        """Review the new reviewable events of one ticket, each against the state before it."""
        config = policy.review
        if not config.active:
            return []
        todo = [
            e
            for e in events
            if (new_ids is None or e.id in new_ids) and self.wants(e, config) is not None
        ]
        if not todo:
            return []
        wanted = {e.id for e in todo}
        state = start or TicketState(ticket=events[0].ticket)
        out = []
        for ev in sorted(events, key=lambda e: e.at):
            if ev.id in wanted:
                text = self.wants(ev, config) or ""
                subject = self.subject(ev, text, state, policy, directory, caller_key)
                out.append(Result(ev, text, review(subject, config)))
                if ev.type == "replied" and text.strip():
                    self.remember(subject.unit or "", ev.ticket, text.strip())
                wanted.discard(ev.id)
                if not wanted:  # the state after the last reviewed event is not needed
                    break
            try:
                state = apply(state, ev)
            except (ValueError, KeyError):
                pass
        return out

    def subject(
        self,
        ev: Event,
        text: str,
        state: TicketState,
        policy: Policy,
        directory: Directory,
        caller_key: bytes,
    ) -> Subject:
        reply_by = None
        if any(c.kind in _NEED_DEADLINE and ev.type in c.events for c in policy.review.checks):
            deadlines = dl.compute(state, policy.deadlines, policy.calendar, state_fields(state))
            reply_by = deadlines.reply_by
        unit = ev.data.get("unit") or state.unit
        until = ev.data.get("until") if ev.type == "extension_requested" else None  # validated
        own = (unit, directory.unit_name(unit)) if unit else ()
        others_units = _unit_names(directory)
        hasher: Callable[[str], str] = lambda n: caller_hash(n, caller_key)  # noqa: E731
        return Subject(
            event=ev.type,
            text=text,
            at=ev.at,
            unit=unit,
            unit_names=tuple(x for x in own if x),
            other_units=others_units,
            dispatched_at=state.dispatched_at,
            reply_by=reply_by,
            until=datetime.fromisoformat(until) if isinstance(until, str) else None,
            commitment_open=state.commitment_due is not None and state.commitment_kept_at is None,
            unresolved=state.resolved is False,
            caller_hash=state.caller_hash,
            others=self.others(unit, ev.ticket, text, policy.review, ev.type),
            hash_number=hasher,
        )


# the kinds that need the reply deadline the event found
_NEED_DEADLINE = frozenset(["before_deadline", "extension_date"])


_UNIT_NAMES: dict[int, tuple[Directory, tuple[str, ...]]] = {}


def _unit_names(directory: Directory) -> tuple[str, ...]:
    """Every unit's id and name (the directory's), once per directory loaded."""
    hit = _UNIT_NAMES.get(id(directory))
    if hit is None or hit[0] is not directory:
        if len(_UNIT_NAMES) > 16:
            _UNIT_NAMES.clear()
        hit = _UNIT_NAMES[id(directory)] = (directory, _all_unit_names(directory))
    return hit[1]


def _all_unit_names(directory: Directory) -> tuple[str, ...]:
    names: list[str] = []
    for uid, unit in directory.model.units.items():
        names.append(uid)
        if unit.name:
            names.append(unit.name)
    return tuple(dict.fromkeys(names))


def returned(results: Iterable[Result]) -> list[Event]:
    """The `reviewed` events to store: only reviews that found something."""
    return [r.as_event() for r in results if r.findings]
