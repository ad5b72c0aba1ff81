"""Matters counted once (DOMAIN.md, *Counting rules*): tickets tied together by any links - the
same caller and category, the same address key, similar summaries in one grid - are one matter,
however many links tie them. Pure: rows in, groups out (union-find over the links).

Two tickets under one key are linked when they were created less than `window` apart (the rules'
30 days); a group's tickets are linked through its neighbours in time, so a chain of calls each
within 30 days of the last is one matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from rapidfuzz import fuzz, process

WINDOW = timedelta(days=30)
LINK_ZH = {"caller": "同一来电人同类诉求", "address": "同一地址", "summary": "诉求内容相似"}


def link_words(kinds: Iterable[str]) -> str:
    """The kinds of link of a matter in words: 同一来电人同类诉求、同一地址."""
    return "、".join(LINK_ZH.get(k, k) for k in kinds)


class Row(NamedTuple):
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


_CALLER, _ADDRESS, _SUMMARY = 1, 2, 4  # kinds of link, as bits
_KIND_BITS = (("address", _ADDRESS), ("caller", _CALLER), ("summary", _SUMMARY))  # sorted by name


def group(
    rows: Iterable[Row], *, summary_similarity: int = 60, window: timedelta = WINDOW
) -> list[Matter]:
    """Every group of two or more linked tickets, each once.

    Tickets under one key (caller and category, or address) are linked to their time-neighbours
    less than `window` apart; every ticket of a key that links any gets that kind of link. In a
    grid, every two tickets less than `window` apart whose summaries are similar (rapidfuzz's
    ratio, as core.matter.similar) are linked. Union-find over ticket numbers; one sort of all
    rows by time gives every key's and grid's tickets in order."""
    rows = list(rows)
    ordered = sorted(rows, key=lambda r: (r.created_at, r.ticket))
    index: dict[str, int] = {}
    for r in rows:
        index.setdefault(r.ticket, len(index))
    parent = list(range(len(index)))

    def find(x: int) -> int:
        root = x
        while root != parent[root]:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    kinds_of = [0] * len(index)  # per ticket: the kinds of link it takes part in
    keyed: dict[tuple[str, object], list[Row]] = {}
    grids: dict[str, list[Row]] = {}
    for r in ordered:
        if r.caller_hash:
            keyed.setdefault(("caller", (r.caller_hash, r.category)), []).append(r)
        if r.address_key:
            keyed.setdefault(("address", r.address_key), []).append(r)
        if r.grid and r.summary_key:
            grids.setdefault(r.grid, []).append(r)
    for (kind, _), members in keyed.items():
        if len(members) < 2:
            continue
        linked = False
        prev = members[0]
        for cur in members[1:]:
            if cur.created_at - prev.created_at < window:
                union(index[prev.ticket], index[cur.ticket])
                linked = True
            prev = cur
        if linked:
            bit = _CALLER if kind == "caller" else _ADDRESS
            for m in members:
                kinds_of[index[m.ticket]] |= bit
    for members in grids.values():
        keys = [m.summary_key for m in members]
        end = 0
        for i, a in enumerate(members):
            end = max(end, i + 1)
            while end < len(members) and members[end].created_at - a.created_at < window:
                end += 1
            if end == i + 1:
                continue
            found = process.extract(
                a.summary_key, keys[i + 1 : end], scorer=fuzz.ratio, processor=None,
                score_cutoff=summary_similarity, limit=None,
            )  # fmt: skip
            for _, _, k in found:
                ia, ib = index[a.ticket], index[members[i + 1 + k].ticket]
                union(ia, ib)
                kinds_of[ia] |= _SUMMARY
                kinds_of[ib] |= _SUMMARY
    roots = [find(x) for x in range(len(index))]
    components: dict[int, list[Row]] = {}
    for r in rows:  # the groups in the order of their first row
        components.setdefault(roots[index[r.ticket]], [])
    for r in ordered:  # each group's rows oldest first
        components[roots[index[r.ticket]]].append(r)
    out = []
    for members in components.values():
        if len(members) < 2:
            continue
        bits = 0
        for m in members:
            bits |= kinds_of[index[m.ticket]]
        categories = sorted(m.category for m in members if m.category)
        addresses = [m.address_key for m in members if m.address_key]
        out.append(
            Matter(
                tickets=tuple(m.ticket for m in members),
                kinds=tuple(name for name, bit in _KIND_BITS if bits & bit),
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
