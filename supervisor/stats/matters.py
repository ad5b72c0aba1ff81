"""Matters counted once (DOMAIN.md, *Counting rules*): tickets tied together by any links - the
same caller and category, the same address key, similar summaries in one grid - are one matter,
however many links tie them. Pure: rows in, groups out (union-find over the links).

Two tickets under one key are linked when they were created less than `window` apart (the rules'
30 days); a group's tickets are linked through its neighbours in time, so a chain of calls each
within 30 days of the last is one matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from supervisor.core.matter import similar

WINDOW = timedelta(days=30)
LINK_ZH = {"caller": "同一来电人同类诉求", "address": "同一地址", "summary": "诉求内容相似"}


def link_words(kinds: Iterable[str]) -> str:
    """The kinds of link of a matter in words: 同一来电人同类诉求、同一地址."""
    return "、".join(LINK_ZH.get(k, k) for k in kinds)


@dataclass(frozen=True)
class Row:
    ticket: str
    created_at: datetime
    category: str | None
    caller_hash: str | None
    address_key: str | None
    grid: str | None = None
    summary_key: str | None = None


@dataclass(frozen=True)
class Matter:
    tickets: tuple[str, ...]  # oldest first
    kinds: tuple[str, ...]  # the kinds of link that tie it: caller, address, summary
    category: str | None
    address: str | None
    first_at: datetime
    last_at: datetime


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _chain(rows: Sequence[Row], uf: _Union, window: timedelta) -> bool:
    """Link time-neighbours of one key group less than `window` apart; whether any were."""
    linked = False
    ordered = sorted(rows, key=lambda r: (r.created_at, r.ticket))
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if cur.created_at - prev.created_at < window:
            uf.union(prev.ticket, cur.ticket)
            linked = True
    return linked


def group(
    rows: Iterable[Row], *, summary_similarity: int = 60, window: timedelta = WINDOW
) -> list[Matter]:
    """Every group of two or more linked tickets, each once."""
    rows = list(rows)
    uf = _Union()
    for r in rows:
        uf.find(r.ticket)
    kinds_of: dict[str, set[str]] = {}  # ticket -> kinds of link it takes part in
    keyed: dict[tuple[str, object], list[Row]] = {}
    for r in rows:
        if r.caller_hash:
            keyed.setdefault(("caller", (r.caller_hash, r.category)), []).append(r)
        if r.address_key:
            keyed.setdefault(("address", r.address_key), []).append(r)
    for (kind, _), members in keyed.items():
        if len(members) > 1 and _chain(members, uf, window):
            for m in members:
                kinds_of.setdefault(m.ticket, set()).add(kind)
    grids: dict[str, list[Row]] = {}
    for r in rows:
        if r.grid and r.summary_key:
            grids.setdefault(r.grid, []).append(r)
    for members in grids.values():
        members.sort(key=lambda r: (r.created_at, r.ticket))
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if b.created_at - a.created_at >= window:
                    break
                assert a.summary_key is not None and b.summary_key is not None
                if similar(a.summary_key, b.summary_key, summary_similarity):
                    uf.union(a.ticket, b.ticket)
                    kinds_of.setdefault(a.ticket, set()).add("summary")
                    kinds_of.setdefault(b.ticket, set()).add("summary")
    components: dict[str, list[Row]] = {}
    for r in rows:
        components.setdefault(uf.find(r.ticket), []).append(r)
    out = []
    for members in components.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda r: (r.created_at, r.ticket))
        kinds = sorted({k for m in members for k in kinds_of.get(m.ticket, ())})
        categories = sorted(m.category for m in members if m.category)
        addresses = [m.address_key for m in members if m.address_key]
        out.append(
            Matter(
                tickets=tuple(m.ticket for m in members),
                kinds=tuple(kinds),
                category=categories[0] if categories else None,
                address=addresses[0] if addresses else None,
                first_at=members[0].created_at,
                last_at=members[-1].created_at,
            )
        )
    return out


def in_period(matters: Iterable[Matter], start: datetime) -> list[Matter]:
    """The matters with a ticket created at or after `start` (the rows end at the period's end)."""
    return [m for m in matters if m.last_at >= start]


def linked_tickets(matters: Iterable[Matter], rows: Iterable[Row], start: datetime) -> int:
    """重复诉求: tickets created from `start` on that belong to a matter (the first included)."""
    linked = {t for m in matters for t in m.tickets}
    return sum(1 for r in rows if r.created_at >= start and r.ticket in linked)
