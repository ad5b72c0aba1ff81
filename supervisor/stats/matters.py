"""Matters counted once (DOMAIN.md, *Counting rules*): tickets tied together by any links - the
same caller and category, the same address key, similar summaries in one grid - are one matter,
however many links tie them. Pure: rows in, groups out (union-find over the links).

Two tickets under one key are linked when they were created less than `window` apart (the rules'
30 days); a group's tickets are linked through its neighbours in time, so a chain of calls each
within 30 days of the last is one matter.

The report uses linked(): the database finds the caller and address links (queries.MATTER_LINKS)
and Python only unions them and compares the grids' summaries; group() links rows by itself (the
reference the tests hold linked() to).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

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
_BY_TIME = itemgetter(1, 0)  # a Row's (created_at, ticket)
_CREATED = itemgetter(1)


def _disjoint_sets(parent: list[int]) -> tuple[Callable[[int], int], Callable[[int, int], None]]:
    """find and union over `parent` (union-find with path compression; a set's root is its
    smallest member, so roots do not depend on the order of the unions)."""

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

    return find, union


def group(
    rows: Iterable[Row], *, summary_similarity: int = 60, window: timedelta = WINDOW
) -> list[Matter]:
    """Every group of two or more linked tickets, each once.

    Tickets under one key (caller and category, or address) are linked to their time-neighbours
    less than `window` apart; every ticket of a key that links any gets that kind of link. In a
    grid, every two tickets less than `window` apart whose summaries are similar (rapidfuzz's
    ratio, as core.matter.similar) are linked. Union-find over ticket numbers; the rows sorted
    once by time give each key's time-neighbours as they come."""
    rows = list(rows)
    ordered = sorted(rows, key=_BY_TIME)
    index = {t: i for i, t in enumerate(dict.fromkeys(r.ticket for r in rows))}
    parent = list(range(len(index)))

    find, union = _disjoint_sets(parent)

    last: dict[object, tuple[datetime, int]] = {}  # key -> its latest row so far: time, ticket
    linked: set[object] = set()  # the keys that link two tickets or more
    grids: dict[str, list[Row]] = {}
    for r in ordered:
        x = index[r.ticket]
        for key in (
            ("caller", r.caller_hash, r.category) if r.caller_hash else None,
            ("address", r.address_key) if r.address_key else None,
        ):
            if key is None:
                continue
            prev = last.get(key)
            if prev is not None and r.created_at - prev[0] < window:
                union(prev[1], x)
                linked.add(key)
            last[key] = (r.created_at, x)
        if r.grid and r.summary_key:
            grids.setdefault(r.grid, []).append(r)
    kinds_of = [0] * len(index)  # per ticket: the kinds of link it takes part in, as bits
    if linked:
        for r in rows:
            if r.caller_hash and ("caller", r.caller_hash, r.category) in linked:
                kinds_of[index[r.ticket]] |= _CALLER
            if r.address_key and ("address", r.address_key) in linked:
                kinds_of[index[r.ticket]] |= _ADDRESS
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
    size = [0] * len(index)
    for r in rows:
        size[roots[index[r.ticket]]] += 1
    components: dict[int, list[Row]] = {}
    for r in rows:  # the groups of two rows or more, in the order of their first row
        root = roots[index[r.ticket]]
        if size[root] > 1 and root not in components:
            components[root] = []
    for r in ordered:  # each group's rows oldest first
        members_of = components.get(roots[index[r.ticket]])
        if members_of is not None:
            members_of.append(r)
    out = []
    for members in components.values():
        bits = 0
        for m in members:
            bits |= kinds_of[index[m.ticket]]
        categories = [m.category for m in members if m.category]
        addresses = [m.address_key for m in members if m.address_key]
        out.append(
            Matter(
                tickets=tuple(m.ticket for m in members),
                kinds=tuple(name for name, bit in _KIND_BITS if bits & bit),
                category=min(categories) if categories else None,
                address=addresses[0] if addresses else None,
                first_at=members[0].created_at,
                last_at=members[-1].created_at,
            )
        )
    return out


def linked(
    rows: Sequence[Sequence[Any]],
    start: datetime,
    *,
    summary_similarity: int = 60,
    window: timedelta = WINDOW,
    min_size: int = 2,
) -> tuple[list[Matter], int]:
    """The matters with a ticket created at or after `start`, and 重复诉求 (the rows from `start` on
    that belong to a matter): what in_period(group(...)) and linked_tickets give, from the rows of
    queries.MATTER_LINKS, whose caller and address links the database found.

    A row: ticket, created_at, category, address_key, grid, summary_key, cp, ap, kinds; in the order
    of (created_at, ticket); cp and ap the tickets it is linked to by its caller and its address,
    kinds the bits of its caller's and address's links. The rows of one ticket (two grid keys) are
    one. Union-find over row numbers, every root the smallest number of its set; the grids'
    summaries compared as group() does. Matters of fewer than `min_size` rows are counted in
    重复诉求 but not returned (the report shows those of three tickets or more)."""
    n = len(rows)
    parent = list(range(n))
    kinds_of = [r[8] for r in rows]
    at = {r[0]: i for i, r in enumerate(rows)}

    find, union = _disjoint_sets(parent)

    grids: dict[str, list[int]] = {}
    last = None
    for i, r in enumerate(rows):  # union(), inlined: most links go to a root (an earlier row)
        ticket, cp, ap = r[0], r[6], r[7]
        ri = i if parent[i] == i else find(i)
        for j in (i - 1 if ticket == last else None, None if cp is None else at[cp], None if ap is None else at[ap]):
            if j is None:
                continue
            rj = j if parent[j] == j else find(j)
            if rj < ri:
                parent[ri] = ri = rj
            elif rj > ri:
                parent[rj] = ri
        last = ticket
        if r[4] and r[5]:
            grids.setdefault(r[4], []).append(i)
    for members in grids.values():
        keys = [rows[m][5] for m in members]
        end = 0
        for k, a in enumerate(members):
            end = max(end, k + 1)
            a_at = rows[a][1]
            while end < len(members) and rows[members[end]][1] - a_at < window:
                end += 1
            if end == k + 1:
                continue
            found = process.extract(
                keys[k], keys[k + 1 : end], scorer=fuzz.ratio, processor=None,
                score_cutoff=summary_similarity, limit=None,
            )  # fmt: skip
            for _, _, j in found:
                b = members[k + 1 + j]
                union(a, b)
                kinds_of[a] |= _SUMMARY
                kinds_of[b] |= _SUMMARY
    roots = parent  # every parent an earlier row (the smaller root wins): the roots in one pass
    for x in range(n):
        roots[x] = roots[roots[x]]
    size = Counter(roots)
    # the groups with a row from `start` on (the rows are in the order of time: a suffix), each
    # such row counted; their rows oldest first, the groups in the order of their first row
    first_in = bisect_left(rows, start, key=_CREATED)
    shown: set[int] = set()
    count = 0
    for x in range(first_in, n):
        root = roots[x]
        if size[root] > 1:
            count += 1
            shown.add(root)
    components: dict[int, list[int]] = {}
    for x in range(n):
        root = roots[x]
        if root in shown:
            if root in components:
                components[root].append(x)
            else:
                components[root] = [x]
    out = []
    tickets, created = [r[0] for r in rows], [r[1] for r in rows]
    categories, addresses = [r[2] for r in rows], [r[3] for r in rows]
    words: dict[int, tuple[str, ...]] = {}  # the kinds of link of a set of bits
    for members in components.values():
        if len(members) < min_size:  # counted, not shown
            continue
        bits = 0
        for m in members:
            bits |= kinds_of[m]
        if bits not in words:
            words[bits] = tuple(name for name, bit in _KIND_BITS if bits & bit)
        out.append(
            Matter(
                tickets=tuple(map(tickets.__getitem__, members)),
                kinds=words[bits],
                category=min(filter(None, map(categories.__getitem__, members)), default=None),
                address=next(filter(None, map(addresses.__getitem__, members)), None),
                first_at=created[members[0]],
                last_at=created[members[-1]],
            )
        )
    return out, count


def in_period(matters: Iterable[Matter], start: datetime) -> list[Matter]:
    """The matters with a ticket created at or after `start` (the rows end at the period's end)."""
    return [m for m in matters if m.last_at >= start]


def linked_tickets(matters: Iterable[Matter], rows: Iterable[Row], start: datetime) -> int:
    """重复诉求: tickets created from `start` on that belong to a matter (the first included)."""
    linked = {t for m in matters for t in m.tickets}
    return sum(1 for r in rows if r.created_at >= start and r.ticket in linked)
