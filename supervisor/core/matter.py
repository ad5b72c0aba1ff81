"""Same matter (同一事项): matching keys for a ticket's address and summary, and the counts rules see.

Pure. Two tickets concern the same matter, whatever their callers or categories, when
- their addresses normalise to the same key: full-width and half-width digits and letters
  folded (NFKC), spaces and punctuation dropped, 號 read as 号, and the trailing detail of
  building, unit and room (3栋2单元501室, 12号楼, 502) cut off; or
- they lie in the same grid and their summaries say the same thing: rapidfuzz's `ratio` of the
  normalised summaries reaches `summary_similarity` (a threshold in the rule files' `matter:`).

Keys are stored (table matter_keys, migration 008) so a new ticket finds its matches with an index
lookup: its address key, and its grid's recent tickets (whose summaries are then compared here).
Callers appear only as their keyed hash: a group complaint counts distinct hashes.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz, process

from supervisor.core.address import address_key
from supervisor.vocabulary.matter import MatterConfig

ADDRESS = "address"
GRID = "grid"

_SUMMARY_DROP = re.compile(r"[^\w]+")


def normalise_address(text: str | None, config: MatterConfig = MatterConfig()) -> str | None:
    """The address's matching key (core/address.py), or None when there is too little."""
    return address_key(text, config.address, config.min_address_chars)


def normalise_summary(text: str | None, config: MatterConfig = MatterConfig()) -> str | None:
    if not text:
        return None
    key = _SUMMARY_DROP.sub("", unicodedata.normalize("NFKC", text).lower())
    return key if len(key) >= config.min_summary_chars else None


@dataclass(frozen=True)
class MatterKey:
    """One stored row: the ticket can be found under (kind, key)."""

    kind: str  # ADDRESS or GRID
    key: str


def keys_for(
    address: str | None, grid: str | None, summary: str | None, config: MatterConfig
) -> tuple[MatterKey, ...]:
    out = []
    addr = normalise_address(address, config)
    if addr:
        out.append(MatterKey(ADDRESS, addr))
    if grid and normalise_summary(summary, config):
        out.append(MatterKey(GRID, grid))
    return tuple(out)


@dataclass(frozen=True)
class Candidate:
    """A stored ticket found under one of the new ticket's keys."""

    ticket: str
    at: datetime  # created
    caller: str | None  # keyed hash
    address_key: str | None
    summary_key: str | None

    @property
    def who(self) -> str:
        """Who reported it: the caller's hash, or the ticket itself when it has no caller."""
        return self.caller or f"ticket:{self.ticket}"


_SIMILAR: dict[tuple[str, str, int], bool] = {}


def similar(a: str, b: str, threshold: int) -> bool:
    """rapidfuzz's ratio of two normalised summaries reaches `threshold`; memoised (a grid's
    tickets are compared with every new ticket of the grid), bounded."""
    key = (a, b, threshold) if a <= b else (b, a, threshold)
    hit = _SIMILAR.get(key)
    if hit is None:
        if len(_SIMILAR) >= 100_000:
            _SIMILAR.clear()
        hit = _SIMILAR[key] = fuzz.ratio(a, b, score_cutoff=threshold) >= threshold
    return hit


def matches(
    ticket: str,
    address: str | None,
    summary: str | None,
    candidates: Iterable[Candidate],
    config: MatterConfig,
) -> list[Candidate]:
    """The candidates about the same matter as this ticket (itself excluded), oldest first."""
    a = normalise_address(address, config)
    s = normalise_summary(summary, config)
    found: dict[str, Candidate] = {}
    for c in candidates:
        if c.ticket == ticket or c.ticket in found:
            continue
        if (a and c.address_key == a) or (
            s and c.summary_key and similar(s, c.summary_key, config.summary_similarity)
        ):
            found[c.ticket] = c
    return sorted(found.values(), key=_at_ticket)


def _at_ticket(c: Candidate) -> tuple[datetime, str]:
    return c.at, c.ticket


def _at(c: Candidate) -> datetime:
    return c.at


def counts(
    at: datetime,
    caller: str | None,
    ticket: str,
    matched: Sequence[Candidate],
    same_windows: Iterable[int],
    caller_windows: Iterable[int],
) -> dict[str, int]:
    """The message fields for a new ticket created at `at` (`matched`: its matches, any order). The
    definition; `match_batch` computes the same over grouped keys, and a property test holds them
    to it:

    same_matter__{m}m: tickets about the matter within m minutes up to `at`, this one included;
    matter_callers__{m}m: distinct callers among them, this one included, when this ticket's
    caller is new to the matter in that window; 0 when the caller had already reported it. So
    `matter_callers: {within: 7d, eq: 5}` holds once, for the fifth caller's ticket: a group
    complaint is flagged once per matter and window, not once per ticket. A ticket without a
    caller counts as a caller of its own.
    """
    out: dict[str, int] = {}
    for minutes in same_windows:
        lo = at - timedelta(minutes=minutes)
        out[f"same_matter__{minutes}m"] = 1 + sum(1 for c in matched if lo < c.at <= at)
    me = caller or f"ticket:{ticket}"
    for minutes in caller_windows:
        lo = at - timedelta(minutes=minutes)
        earlier = {c.who for c in matched if lo < c.at <= at}
        out[f"matter_callers__{minutes}m"] = 0 if me in earlier else len(earlier) + 1
    return out


@dataclass(frozen=True)
class NewTicket:
    """A `created` event as same-matter matching sees it."""

    id: str  # the event's id
    ticket: str
    at: datetime
    data: dict


_ALL = slice(None)


class _Run:
    """Candidates of one key (or of one summary within a grid), oldest first, as parallel lists,
    so that a window is a slice and a union is a set operation in C."""

    __slots__ = ("ats", "tickets", "who")

    def __init__(self) -> None:
        self.ats: list[datetime] = []
        self.tickets: list[str] = []
        self.who: list[str] = []  # the caller's hash, or the ticket for a ticket without one

    @classmethod
    def of(cls, rows: Iterable[Candidate]) -> _Run:
        run = cls()
        for c in sorted(rows, key=_at):
            run.ats.append(c.at)
            run.tickets.append(c.ticket)
            run.who.append(c.who)
        return run

    def add(self, c: Candidate) -> None:
        i = bisect_right(self.ats, c.at)
        self.ats.insert(i, c.at)
        self.tickets.insert(i, c.ticket)
        self.who.insert(i, c.who)

    def copy(self) -> _Run:
        run = _Run()
        run.ats, run.tickets, run.who = self.ats[:], self.tickets[:], self.who[:]
        return run

    def forget(self, rows: Sequence[Candidate]) -> None:
        """Drop `rows`, this run's oldest (every row created up to some time, ties together)."""
        del self.ats[: len(rows)], self.tickets[: len(rows)], self.who[: len(rows)]

    def window(self, lo: datetime, hi: datetime) -> slice:
        ats = self.ats
        if ats and ats[0] > lo and ats[-1] <= hi:  # the usual case: all of it
            return _ALL
        return slice(bisect_right(ats, lo), bisect_right(ats, hi))


class _Grid:
    """A grid's candidates, one run per distinct summary; `names` for rapidfuzz's batch scorer.
    A copy shares its runs with the original until it adds to one (`mine`: the runs it owns;
    None: all of them)."""

    __slots__ = ("runs", "names", "mine")

    def __init__(self) -> None:
        self.runs: dict[str, _Run] = {}
        self.names: list[str] = []
        self.mine: set[str] | None = None

    @classmethod
    def of(cls, rows: Iterable[Candidate]) -> _Grid:
        grid = cls()
        by_summary: dict[str, list[Candidate]] = {}
        for c in rows:
            if c.summary_key:
                by_summary.setdefault(c.summary_key, []).append(c)
        for name, same in by_summary.items():
            grid.runs[name] = _Run.of(same)
            grid.names.append(name)
        return grid

    def add(self, c: Candidate) -> None:
        name = c.summary_key
        if not name:
            return
        run = self.runs.get(name)
        if run is None:
            run = self.runs[name] = _Run()
            self.names.append(name)
            if self.mine is not None:
                self.mine.add(name)
        elif self.mine is not None and name not in self.mine:
            run = self.runs[name] = run.copy()
            self.mine.add(name)
        run.add(c)

    def copy(self) -> _Grid:
        grid = _Grid()
        grid.runs, grid.names, grid.mine = dict(self.runs), self.names[:], set()
        return grid

    def forget(self, rows: Sequence[Candidate]) -> None:
        """Drop `rows`, the grid's oldest (every row created up to some time, ties together): in
        each run they are its oldest. Only on a grid that owns its runs."""
        emptied = False
        for name, n in Counter(c.summary_key for c in rows if c.summary_key).items():
            run = self.runs[name]
            del run.ats[:n], run.tickets[:n], run.who[:n]
            if not run.ats:
                del self.runs[name]
                emptied = True
        if emptied:
            self.names = list(self.runs)

    def alike(self, summary: str, threshold: int) -> list[_Run]:
        hits = process.extract(
            summary, self.names, scorer=fuzz.ratio, score_cutoff=threshold, limit=None
        )
        return [self.runs[self.names[i]] for _, _, i in hits]


Built = _Run | _Grid


def build(kind: str, rows: Iterable[Candidate]) -> Built:
    """A key's candidates grouped as `match_batch` groups them. A store may keep it across batches
    (`add` what is stored later, `forget` what the window leaves) and hand it in as `built`."""
    return _Run.of(rows) if kind == ADDRESS else _Grid.of(rows)


def match_batch(
    spec: MatterSpec,
    created: Iterable[NewTicket],
    found: dict[MatterKey, list[Candidate]],
    built: Mapping[MatterKey, tuple[Built, Container[str]]] | None = None,
) -> tuple[dict[str, dict[str, int]], list[tuple[MatterKey, Candidate]]]:
    """One ingest batch's new tickets against the stored index: the message fields per event id
    (what `counts(matches(...))` gives each, the property test's reference) and the (key,
    candidate) rows to store. `found` is what the store holds under the batch's keys, created up
    to the batch's last ticket, at most `max_candidates` per key, in any order. The batch's
    tickets are matched in time order, each one then joining the candidates, so a batch's earlier
    tickets count for its later ones, as if they had arrived one by one.

    `built`: keys whose candidates the store keeps grouped already (`build`), with their tickets;
    each may also hold rows created after the batch's last ticket (no window reaches them). They
    are not changed: a key the batch's tickets join is copied first (its runs when they change)."""
    config = spec.config
    threshold = config.summary_similarity
    same_windows = sorted(m for name, m in spec.windows if name == "same_matter")
    caller_windows = sorted(m for name, m in spec.windows if name == "matter_callers")
    addresses: dict[str, _Run] = {}
    grids: dict[str, _Grid] = {}
    shared: set[MatterKey] = set()  # keys of `built` not copied yet
    held: dict[MatterKey, Container[str]] = {}  # their tickets

    def join(k: MatterKey, c: Candidate) -> None:
        groups: dict[str, Any] = addresses if k.kind == ADDRESS else grids
        group = groups.get(k.key)
        if group is None:
            group = groups[k.key] = _Run() if k.kind == ADDRESS else _Grid()
        elif k in shared:  # the store's (built): copied before this batch changes it
            group = groups[k.key] = group.copy()
            shared.discard(k)
        group.add(c)

    seen: set[str] = set()  # every ticket among the candidates (and under `held`)
    for k, rows in found.items():
        if k.kind == ADDRESS:
            addresses[k.key] = _Run.of(rows)
        else:
            grids[k.key] = _Grid.of(rows)
        seen.update(c.ticket for c in rows)
    for k, (index, members) in (built or {}).items():
        if k.kind == ADDRESS:
            assert isinstance(index, _Run)
            addresses[k.key] = index
        else:
            assert isinstance(index, _Grid)
            grids[k.key] = index
        shared.add(k)
        held[k] = members
    out: dict[str, dict[str, int]] = {}
    stored: list[tuple[MatterKey, Candidate]] = []
    for ev in sorted(created, key=lambda e: (e.at, e.ticket)):
        keys, address_key, summary_key = spec.index(ev.data)
        if not keys:
            continue
        caller = ev.data.get("caller_hash")
        me = Candidate(ev.ticket, ev.at, caller, address_key, summary_key)
        runs: list[_Run] = []
        for k in keys:
            if k.kind == ADDRESS:
                if k.key in addresses:
                    runs.append(addresses[k.key])
            elif me.summary_key and k.key in grids:
                runs += grids[k.key].alike(me.summary_key, threshold)
        fields: dict[str, int] = {}
        for m in same_windows:
            lo = ev.at - timedelta(minutes=m)
            tickets: set[str] = set()
            for run in runs:
                tickets.update(run.tickets[run.window(lo, ev.at)])
            tickets.discard(ev.ticket)  # a ticket created twice is not its own match
            fields[f"same_matter__{m}m"] = 1 + len(tickets)
        who_me = me.who
        for m in caller_windows:
            lo = ev.at - timedelta(minutes=m)
            who: set[str] = set()
            twice = ev.ticket in seen or any(ev.ticket in held[k] for k in keys if k in held)
            for run in runs:
                w = run.window(lo, ev.at)
                if twice:  # created twice (rare): leave its own earlier entry out
                    who.update(
                        x for x, t in zip(run.who[w], run.tickets[w], strict=True) if t != ev.ticket
                    )
                else:
                    who.update(run.who[w])
            fields[f"matter_callers__{m}m"] = 0 if who_me in who else len(who) + 1
        out[ev.id] = fields
        for k in keys:
            join(k, me)
            stored.append((k, me))
        seen.add(ev.ticket)
    return out, stored


def distinct_callers(items: Iterable[tuple[str, str | None]]) -> int:
    """(ticket, caller hash) pairs -> the number of distinct callers (no caller: its own)."""
    return len({caller or f"ticket:{ticket}" for ticket, caller in items})


@dataclass(frozen=True)
class MatterSpec:
    """What a store needs to match new tickets: the thresholds and the windows rules use."""

    config: MatterConfig
    windows: frozenset[tuple[str, int]]  # (same_matter | matter_callers, minutes)
    rules: frozenset[str] = frozenset()  # rules whose messages list the matter's tickets

    @property
    def active(self) -> bool:
        return bool(self.windows)

    @property
    def horizon(self) -> timedelta:
        return timedelta(minutes=max((m for _, m in self.windows), default=0))

    def keys(self, data: dict) -> tuple[MatterKey, ...]:
        """A `created` event's keys (its data: address, grid, summary)."""
        return self.index(data)[0]

    def index(self, data: dict) -> tuple[tuple[MatterKey, ...], str | None, str | None]:
        """A `created` event's keys, address key and summary key (as its candidate has them)."""
        parts = data.get("address"), data.get("grid"), data.get("summary")
        try:
            return _index(*parts, self.config)
        except TypeError:  # a value that is not hashable (the contract checks types elsewhere)
            return _index.__wrapped__(*parts, self.config)

    def candidate(self, ticket: str, at: datetime, data: dict) -> Candidate:
        _, address_key, summary_key = self.index(data)
        return Candidate(ticket, at, data.get("caller_hash"), address_key, summary_key)


@lru_cache(maxsize=8192)
def _index(
    address: str | None, grid: str | None, summary: str | None, config: MatterConfig
) -> tuple[tuple[MatterKey, ...], str | None, str | None]:
    """keys_for and the candidate's keys at once; memoised (a store asks for a batch's keys, then
    matches the batch)."""
    addr = normalise_address(address, config)
    summ = normalise_summary(summary, config) if grid else None
    keys = []
    if addr:
        keys.append(MatterKey(ADDRESS, addr))
    if grid and summ:
        keys.append(MatterKey(GRID, grid))
    return tuple(keys), addr, summ


def matter_context(
    linked: Sequence[tuple[str, datetime, str | None]], created_at: datetime, window_m: int
) -> dict[str, object]:
    """Template context for a same-matter message: the matter's tickets within the rule's window
    up to this ticket (`tickets`, `count`) and its distinct callers (`callers`); never a number."""
    lo = created_at - timedelta(minutes=window_m)
    rows = [r for r in linked if lo < r[1] <= created_at]
    return {
        "tickets": [{"id": t} for t, _, _ in rows],
        "count": len(rows),
        "callers": distinct_callers((t, c) for t, _, c in rows),
    }
