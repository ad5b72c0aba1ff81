"""Matters counted once (stats/matters.py): union-find over caller, address and summary links."""

from __future__ import annotations

from datetime import datetime, timedelta

from supervisor.core.clock import SHANGHAI
from supervisor.stats.matters import Row, group, in_period, link_words, linked_tickets


def at(day: int) -> datetime:
    return datetime(2026, 11, day, 9, tzinfo=SHANGHAI)


def test_tickets_tied_by_two_keys_are_one_matter():
    rows = [
        Row("A", at(1), "噪声扰民", "c1", "幸福路8号"),
        Row("B", at(2), "噪声扰民", "c1", "幸福路8号"),  # caller and address: two links, one matter
        Row("C", at(3), "噪声扰民", "c1", "幸福路8号"),
    ]
    (m,) = group(rows)
    assert m.tickets == ("A", "B", "C")
    assert m.kinds == ("address", "caller")
    assert link_words(m.kinds) == "同一地址、同一来电人同类诉求"


def test_a_chain_of_different_links_is_one_matter_of_three():
    rows = [
        Row("A", at(1), "市容环境", "c1", None),
        Row("B", at(2), "市容环境", "c1", "建设路12号"),  # A-B: same caller and category
        Row("C", at(3), "城市管理", "c2", "建设路12号"),  # B-C: same address
        Row("D", at(4), "城市管理", "c3", None, "G1", "小区门口垃圾堆放无人清理"),
        Row("E", at(5), "市容环境", "c4", None, "G1", "小区门口垃圾堆放没人清理"),  # D-E: summaries
        Row("F", at(6), "其他", "c5", "光明路1号"),  # alone
    ]
    matters = group(rows)
    assert sorted(m.tickets for m in matters) == [("A", "B", "C"), ("D", "E")]
    assert [m.tickets for m in matters if len(m.tickets) >= 3] == [("A", "B", "C")]
    assert linked_tickets(matters, rows, at(3)) == 3  # C, D, E created from the 3rd on


def test_links_need_the_window_and_the_period():
    rows = [Row("A", at(1), "x", "c1", None), Row("B", at(1) + timedelta(days=31), "x", "c1", None)]
    assert group(rows) == []
    rows = [Row(t, at(d), "x", "c1", None) for t, d in (("A", 1), ("B", 2), ("C", 3))]
    assert in_period(group(rows), at(4)) == []
    assert len(in_period(group(rows), at(3))) == 1
