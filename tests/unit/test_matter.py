"""Same-matter keys and counts (core/matter.py), and amounts of working time in words."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from supervisor.core.clock import SHANGHAI
from supervisor.core.matter import (
    Candidate,
    counts,
    matches,
    normalise_address,
)
from supervisor.core.workcal import WorkCalendar
from supervisor.engine.firing import overdue_words
from supervisor.vocabulary.matter import MatterConfig


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("幸福路12号", "幸福路12号"),
        ("幸福路１２號", "幸福路12号"),  # full-width digits, 號
        ("幸福路 12号 3栋2单元501室", "幸福路12号"),  # spaces, building/unit/room detail
        ("幸福路12号502", "幸福路12号"),
        ("和平里小区5号楼2单元", "和平里小区5栋"),  # a compound with its building
        ("ＡＢＣ大厦Ａ座1201", "abc大厦a栋"),
        ("幸福路12号（东门）", "幸福路12号"),  # 东门 is detail
        ("建设路12号", "建设路12号"),
        ("建设路１２号３单元", "建设路12号"),
        ("建设路 12 号 2栋楼下", "建设路12号"),
        ("某市某区解放街道建设路12号北门对面", "建设路12号"),  # divisions in front dropped
        ("人民医院门口", "人民医院"),
        ("3号", None),  # too little to match on
        ("", None),
    ],
)
def test_address_keys(address, key):
    assert normalise_address(address) == key


def test_another_house_number_is_another_address():
    keys = {normalise_address(a) for a in ("建设路12号", "建设路１２号３单元", "建设路 12 号 2栋楼下")}
    assert keys == {"建设路12号"}
    assert normalise_address("建设路21号") != "建设路12号"


def test_the_offices_own_address_words(tmp_path):
    from supervisor.core.address import address_key
    from supervisor.vocabulary.matter import AddressWords

    words = AddressWords(compounds=("小区", "坊"), details=("楼下", "跟前"))
    assert address_key("永宁坊3栋跟前", words) == "永宁坊3栋"
    assert address_key("永宁坊3栋跟前") == "永宁坊3栋跟前"  # neither word is a default


def at(day, hour=10):
    return datetime(2026, 11, day, hour, tzinfo=SHANGHAI)


def test_counts_and_the_fifth_caller():
    cfg = MatterConfig()
    cands = [Candidate(f"G{i}", at(15 + i), f"c{i}", "和平里小区3栋", None) for i in range(1, 5)]
    cands.append(Candidate("X", at(17), "cx", "光明路7号", None))  # another matter
    found = matches("G5", "和平里小区3号楼", None, cands, cfg)
    assert [c.ticket for c in found] == ["G1", "G2", "G3", "G4"]
    fields = counts(at(20), "c5", "G5", found, [30 * 1440], [7 * 1440])
    assert fields == {"same_matter__43200m": 5, "matter_callers__10080m": 5}
    # the same caller again: not a new caller, so the group rule's `eq: 5` does not hold twice
    again = counts(at(20), "c2", "G6", found, [], [7 * 1440])
    assert again == {"matter_callers__10080m": 0}
    # no caller: a caller of its own
    assert counts(at(20), None, "G7", found, [], [7 * 1440]) == {"matter_callers__10080m": 5}


def test_summaries_match_by_similarity_and_threshold():
    a = Candidate("T1", at(2), "c1", None, "幸福小区东门夜间烧烤油烟扰民")
    assert matches("T2", None, "幸福小区东门夜间烧烤摊油烟扰民", [a], MatterConfig())
    assert not matches("T2", None, "光明路路灯损坏不亮", [a], MatterConfig())
    strict = MatterConfig(summary_similarity=99)
    assert not matches("T2", None, "幸福小区东门夜间烧烤摊油烟扰民", [a], strict)


CAL = WorkCalendar()


@pytest.mark.parametrize(
    ("deadline", "now", "working", "words"),
    [
        # Friday 16:45 to Monday 09:30: 45 + 30 working minutes, the weekend not counted
        (datetime(2026, 11, 27, 16, 45), datetime(2026, 11, 30, 9, 30), True, "1个工作小时15分钟"),
        (datetime(2026, 11, 25, 11, 0), datetime(2026, 11, 25, 14, 15), True, "1个工作小时45分钟"),
        (datetime(2026, 11, 23, 10, 0), datetime(2026, 11, 26, 10, 0), True, "3个工作日"),
        (
            datetime(2026, 11, 23, 10, 0),
            datetime(2026, 11, 26, 11, 30),
            True,
            "3个工作日1个工作小时",
        ),
        # across National Day: 09-30 10:00 to 10-09 10:00 is 2 working days, not 9 days
        (datetime(2026, 9, 30, 10, 0), datetime(2026, 10, 9, 10, 0), True, "2个工作日"),
        (datetime(2026, 11, 24, 23, 40), datetime(2026, 11, 25, 0, 40), False, "1小时"),
        (datetime(2026, 11, 27, 17, 30), datetime(2026, 11, 28, 10, 0), True, "不足1个工作分钟"),
    ],
)
def test_overdue_words_count_working_time(deadline, now, working, words):
    d, n = deadline.replace(tzinfo=SHANGHAI), now.replace(tzinfo=SHANGHAI)
    assert overdue_words(n, d, CAL, working) == words
    assert overdue_words(d - timedelta(minutes=1), d, CAL, working) == ""


# --- one batch at a time (match_batch), as both stores run it -----------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from supervisor.core.matter import MatterKey, MatterSpec, NewTicket, match_batch  # noqa: E402

SPEC = MatterSpec(
    MatterConfig(), frozenset({("same_matter", 30 * 1440), ("matter_callers", 7 * 1440)})
)
ADDRESSES = ["幸福路12号", "幸福路１２號3栋", "光明路7号", None]
SUMMARIES = [
    "幸福小区东门夜间烧烤油烟扰民",
    "幸福小区东门夜间烧烤摊油烟扰民",
    "楼道堆物无人清理",
    None,
]


def new_ticket(i: int, day: int, address, summary, caller) -> NewTicket:
    data = {"grid": "G01", "caller_hash": caller}
    if address:
        data["address"] = address
    if summary:
        data["summary"] = summary
    return NewTicket(f"e{i}", f"T{i}", at(1) + timedelta(hours=day * 7), data)


tickets = st.lists(
    st.tuples(
        st.integers(0, 200),  # hours x 7 after the first: up to 58 days, past the 30-day window
        st.sampled_from(ADDRESSES),
        st.sampled_from(SUMMARIES),
        st.sampled_from(["c1", "c2", "c3", None]),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(tickets, st.integers(1, 25))
def test_a_batch_counts_as_its_tickets_one_by_one(rows, cut):
    """match_batch (grouped runs, set unions) gives every ticket the counts the definition gives
    (counts of matches over every earlier ticket under its keys), whether the earlier tickets were
    stored before the batch or are in it."""
    news = [new_ticket(i, *r) for i, r in enumerate(rows)]
    # the definition: counts(matches(...)) over every earlier ticket under the same keys
    alone: dict[str, dict[str, int]] = {}
    earlier: list[tuple[tuple[MatterKey, ...], Candidate]] = []
    for n in sorted(news, key=lambda n: (n.at, n.ticket)):
        keys = SPEC.keys(n.data)
        if not keys:
            continue
        pool = [c for ks, c in earlier if set(ks) & set(keys) and n.at - SPEC.horizon < c.at]
        same = matches(n.ticket, n.data.get("address"), n.data.get("summary"), pool, SPEC.config)
        alone[n.id] = counts(n.at, n.data["caller_hash"], n.ticket, same, [30 * 1440], [7 * 1440])
        earlier.append((keys, SPEC.candidate(n.ticket, n.at, n.data)))
    index: dict[MatterKey, list[Candidate]] = {}
    at_once: dict[str, dict[str, int]] = {}
    ordered = sorted(news, key=lambda n: (n.at, n.ticket))
    for part in (ordered[:cut], ordered[cut:]):
        fields, stored = match_batch(SPEC, part, index)
        at_once.update(fields)
        for k, c in stored:  # what the store keeps
            index.setdefault(k, []).append(c)
    assert at_once == alone


def test_a_busy_key_is_compared_with_its_most_recent_tickets_only():
    """max_candidates bounds the work per key: what the store hands over is the cap; the store
    contract test shows both stores hand over the most recent ones."""
    spec = MatterSpec(MatterConfig(max_candidates=10), SPEC.windows)
    found = {MatterKey("address", "幸福路12号"): [
        Candidate(f"T{i}", at(1) + timedelta(hours=i), f"c{i}", "幸福路12号", None)
        for i in range(10)
    ]}  # fmt: skip
    fields, rows = match_batch(spec, [new_ticket(99, 2, "幸福路12号", None, "c99")], found)
    assert fields["e99"]["same_matter__43200m"] == 11
    assert [(k.kind, c.ticket) for k, c in rows] == [("address", "T99")]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 200),
            st.sampled_from(ADDRESSES),
            st.sampled_from(SUMMARIES),
            st.sampled_from(["c1", "c2", "c3", None]),
            st.integers(0, 30),  # the ticket: a few are created twice
        ),
        max_size=30,
    ),
    st.lists(st.integers(0, 30), max_size=3),
    st.randoms(use_true_random=False),
)
def test_candidates_kept_grouped_across_batches_count_as_rows_do(rows, cuts, rnd):
    """A store keeping each key's candidates grouped (`build`, then `add` what is stored and
    `forget` what the window leaves, as storage/matter_cache.py does) and handing them in as
    `built` gets what handing the rows in gives, for batches in any order, tickets created
    twice, and rows created after a batch's last ticket; match_batch leaves them unchanged."""
    from supervisor.core.matter import build

    news = [
        NewTicket(f"e{i}", f"T{r[4]}", at(1) + timedelta(hours=r[0] * 7), {
            "grid": "G01", "caller_hash": r[3],
            **({"address": r[1]} if r[1] else {}), **({"summary": r[2]} if r[2] else {}),
        })
        for i, r in enumerate(rows)
    ]  # fmt: skip
    edges = sorted({0, len(news), *(min(c, len(news)) for c in cuts)})
    parts = [news[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    rnd.shuffle(parts)
    index: dict[MatterKey, list[Candidate]] = {}
    kept: dict[MatterKey, tuple[object, set[str], datetime]] = {}  # grouped, tickets, floor
    for part in parts:
        if not part:
            continue
        lo = min(n.at for n in part) - SPEC.horizon
        hi = max(n.at for n in part)
        found = {k: [c for c in cs if lo < c.at <= hi] for k, cs in index.items()}
        want, stored = match_batch(SPEC, part, {k: v for k, v in found.items() if v})
        as_rows: dict[MatterKey, list[Candidate]] = {}
        built = {}
        for k, cs in index.items():
            if k in kept and kept[k][2] > lo:  # forgotten what this batch needs: regroup
                del kept[k]
            if k not in kept or rnd.random() < 0.3:  # some keys come as rows
                if found[k]:
                    as_rows[k] = found[k]
                continue
            grouped, tickets, floor = kept[k]
            gone = sorted((c for c in cs if floor < c.at <= lo), key=lambda c: c.at)
            grouped.forget(gone)  # type: ignore[attr-defined]
            tickets.difference_update(c.ticket for c in gone)
            kept[k] = (grouped, tickets, max(floor, lo))
            built[k] = (grouped, tickets)
        before = {k: _shape(g) for k, (g, _) in built.items()}
        got, stored2 = match_batch(SPEC, part, as_rows, built)  # type: ignore[arg-type]
        assert got == want
        assert stored2 == stored
        assert {k: _shape(g) for k, (g, _) in built.items()} == before
        for k, c in stored:  # committed: the store keeps the rows, and the groups follow
            index.setdefault(k, []).append(c)
            if k in kept:
                kept[k][0].add(c)  # type: ignore[attr-defined]
                kept[k][1].add(c.ticket)
        for k, cs in index.items():
            if k not in kept:
                floor = at(1) - timedelta(days=400)
                kept[k] = (build(k.kind, cs), {c.ticket for c in cs}, floor)


def _shape(grouped) -> object:
    runs = grouped.runs if hasattr(grouped, "runs") else {"": grouped}
    names = sorted(getattr(grouped, "names", [""]))
    return names, {n: (r.ats[:], sorted(r.tickets), sorted(r.who)) for n, r in runs.items()}
