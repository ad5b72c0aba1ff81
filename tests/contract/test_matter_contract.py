"""Same matter (同一事项) on both stores: the keys a `created` event is stored under, the counts rules
see, the tickets a same-matter message lists, and `matter_links` both ways (the ticket view)."""

from __future__ import annotations

from typing import Any

from supervisor.application import Supervisor, validate_batch
from supervisor.core.clock import VirtualClock
from supervisor.core.matter import MatterSpec
from supervisor.storage.base import Store
from tests.helpers import ev, runtime, sh

NEIGHBOURS = [  # three callers, two categories, one address written three ways
    ("M1", 2, "市容环境", "13900001111", "幸福路12号"),
    ("M2", 10, "环境污染", "13900002222", "幸福路１２號3栋"),
    ("M3", 20, "市容环境", "13900003333", "幸福路 12号 502室"),
]


def created(ticket: str, day: int, category: str, caller: str | None, address: str | None,
            **more: Any) -> dict[str, Any]:  # fmt: skip
    fields = {"kind": "complaint", "category": category, "grid": "G02", **more}
    if caller is not None:
        fields["caller"] = caller
    if address is not None:
        fields["address"] = address
    return ev(ticket, 1, "created", sh(2026, 11, day, 10, 0), **fields)


def spec(sup: Supervisor) -> MatterSpec:
    matter = sup.runtime.policy.matter_spec
    assert matter.active  # the shipped rules/matter.yaml uses same_matter and matter_callers
    return matter


async def test_one_address_written_three_ways_is_one_matter(store: Store) -> None:
    sup = Supervisor(store, runtime(), VirtualClock(sh(2026, 11, 2, 9, 0)))
    await sup.ingest([created(*NEIGHBOURS[0])])
    out = await sup.ingest([created(*n) for n in NEIGHBOURS[1:]])  # one batch: M2 counts for M3
    # the third ticket about the matter opens the same-matter ladder, the second does not
    assert [lad.rule for lad in out.plans["M3"].opened] == ["same-matter"]
    assert "same-matter" not in [lad.rule for lad in out.plans["M2"].opened]
    fired = await sup.fire_due(now=sh(2026, 11, 20, 10, 1))
    texts = {(n.rule, n.role): n.text for n in fired.notifications if n.rule == "same-matter"}
    assert set(texts) == {("same-matter", "supervisor"), ("same-matter", "grid")}
    assert "30天内3件工单反映同一事项" in texts[("same-matter", "supervisor")]
    assert "工单M1、M2、M3" in texts[("same-matter", "supervisor")]
    matter = spec(sup)
    assert await store.matter_links("M1", matter) == ["M2", "M3"]  # later tickets too
    assert await store.matter_links("M2", matter) == ["M1", "M3"]
    assert await store.matter_links("M3", matter) == ["M1", "M2"]
    assert await store.matter_links("nope", matter) == []
    view = await sup.ticket_view("M2")
    assert view is not None and view["same_matter"] == ["M1", "M3"]


async def test_other_addresses_and_older_tickets_are_not_the_same_matter(store: Store) -> None:
    sup = Supervisor(store, runtime(), VirtualClock(sh(2026, 10, 1, 9, 0)))
    old = ev("OLD", 1, "created", sh(2026, 10, 1, 10, 0), kind="complaint", category="市容环境",
             caller="13900009999", address="幸福路12号", grid="G02")  # fmt: skip
    await sup.ingest([old])  # 32 days before M1: outside every window the rules use
    await sup.ingest([
        created("M1", 2, "市容环境", "13900001111", "幸福路12号"),
        created("X1", 3, "市容环境", "13900004444", "光明路7号"),
        created("X2", 4, "市容环境", "13900005555", "3号"),  # too little to match on
    ])  # fmt: skip
    matter = spec(sup)
    assert await store.matter_links("M1", matter) == []
    assert await store.matter_links("OLD", matter) == []
    assert await store.matter_links("X1", matter) == []
    assert await store.matter_links("X2", matter) == []


async def test_similar_summaries_in_one_grid_are_one_matter(store: Store) -> None:
    sup = Supervisor(store, runtime(), VirtualClock(sh(2026, 11, 2, 9, 0)))
    summary = "小区门口夜间烧烤油烟扰民"
    await sup.ingest([
        created("S1", 2, "环境污染", "13900001111", None, summary=summary),
        created("S2", 3, "环境污染", "13900002222", None, summary="小区门口夜间烧烤油烟扰民严重"),
        created("S3", 4, "环境污染", "13900003333", None, summary=summary, grid="G09"),
        created("S4", 5, "环境污染", "13900004444", None, summary="路灯不亮已经一周了"),
    ])  # fmt: skip
    matter = spec(sup)
    assert await store.matter_links("S1", matter) == ["S2"]
    assert await store.matter_links("S2", matter) == ["S1"]
    assert await store.matter_links("S3", matter) == []  # another grid
    assert await store.matter_links("S4", matter) == []  # another matter


async def test_a_group_complaint_is_flagged_once_across_batches(store: Store) -> None:
    sup = Supervisor(store, runtime(), VirtualClock(sh(2026, 11, 16, 9, 0)))
    for i in range(7):
        caller = "13900000002" if i == 6 else f"1390000000{i + 1}"  # the 7th: caller 2 again
        await sup.ingest([
            ev(f"G{i + 1}", 1, "created", sh(2026, 11, 16 + i, 9, 0), kind="complaint",
               category="住房保障", caller=caller, address="和平里小区")
        ])  # fmt: skip
    out = await sup.fire_due(now=sh(2026, 11, 23, 9, 0))
    group = [(n.ticket, n.role) for n in out.notifications if n.rule == "group-complaint"]
    assert sorted(group) == [("G5", "leader"), ("G5", "supervisor")]
    text = next(n.text for n in out.notifications if n.rule == "group-complaint")
    assert "7天内5位市民反映同一事项" in text and "G1、G2、G3、G4、G5" in text
    assert await store.matter_links("G1", spec(sup)) == [f"G{i}" for i in range(2, 8)]


async def test_ingest_without_a_matter_spec_keeps_no_keys(store: Store) -> None:
    sup = Supervisor(store, runtime(), VirtualClock(sh(2026, 11, 2, 9, 0)))
    events = [created(*n) for n in NEIGHBOURS]
    parsed = validate_batch(events, sup.runtime.caller_key)
    plan_fn = sup._plan_fn(sup.runtime, replan=False)
    out = await store.ingest(parsed, plan_fn, sup.runtime.policy.windows, matter=None)
    assert out.accepted == ["M1-1", "M2-1", "M3-1"]
    assert all("same-matter" not in [lad.rule for lad in p.opened] for p in out.plans.values())
    assert await store.matter_links("M1", spec(sup)) == []  # nothing was stored to match on
