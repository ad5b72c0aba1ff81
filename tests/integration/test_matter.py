"""Same matter and group complaints on PostgreSQL: keys stored (migration 008), index lookups,
links both ways, and callers only as hashes."""

from __future__ import annotations

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.storage.pg import PgStore
from tests.helpers import ev, runtime, sh

NEIGHBOURS = [  # three callers, two categories, one address written three ways
    ("M1", 2, "市容环境", "13900001111", "幸福路12号"),
    ("M2", 10, "环境污染", "13900002222", "幸福路１２號3栋"),
    ("M3", 20, "市容环境", "13900003333", "幸福路 12号 502室"),
]


def created(ticket, day, category, caller, address, **more):
    return ev(ticket, 1, "created", sh(2026, 11, day, 10, 0), kind="complaint",
              category=category, caller=caller, address=address, grid="G02", **more)  # fmt: skip


async def test_the_third_neighbour_is_flagged_and_the_tickets_are_linked_both_ways(pool):
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 2, 9, 0)))
    await sup.ingest([created(*NEIGHBOURS[0])])
    await sup.ingest([created(*n) for n in NEIGHBOURS[1:]])  # one batch: M2 counts for M3
    out = await sup.fire_due(now=sh(2026, 11, 20, 10, 1))
    texts = {(n.rule, n.role): n.text for n in out.notifications}
    assert set(texts) == {("same-matter", "supervisor"), ("same-matter", "grid")}
    assert texts[("same-matter", "supervisor")] == (
        "【12345提示】30天内3件工单反映同一事项（幸福路12号502室），工单M1、M2、M3，"
        "请督办，并请网格员上门了解、源头化解。回复1确认。"
    )
    assert await sup.matter_links("M1") == ["M2", "M3"]
    assert await sup.matter_links("M3") == ["M1", "M2"]
    view = await sup.ticket_view("M2")
    assert view is not None and view["same_matter"] == ["M1", "M3"]
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM matter_keys ORDER BY ticket")
        await conn.execute("SET enable_seqscan = off")  # a tiny table: ask whether an index serves
        plan = await conn.fetchval(
            "EXPLAIN SELECT ticket FROM matter_keys WHERE kind = 'address' AND key = 'x' "
            "AND created_at > now() - interval '30 days'"
        )
    assert {r["key"] for r in rows if r["kind"] == "address"} == {"幸福路12号"}
    dump = str([dict(r) for r in rows])
    assert "13900001111" not in dump and "1111" not in dump  # hashed callers only
    assert "Index" in plan and "matter_keys" in plan


async def test_a_group_complaint_is_flagged_once_across_batches(pool):
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 16, 9, 0)))
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


async def test_a_busy_key_hands_over_its_most_recent_tickets_and_the_memory_store_agrees(pool):
    """max_candidates: the lookup (one statement per batch, LATERAL ... LIMIT) returns per key the
    most recent tickets within the window, the same ones MemoryStore's dict gives."""
    from datetime import timedelta

    from supervisor.core.matter import Candidate, MatterKey
    from supervisor.storage.memory import MemoryStore
    from supervisor.storage.pg_matter import lookup

    key, other = MatterKey("address", "幸福路12号"), MatterKey("grid", "G02")
    t0 = sh(2026, 11, 2, 10, 0)
    rows = [(key if i % 3 else other, Candidate(f"B{i:02d}", t0 + timedelta(hours=i), None,
             "幸福路12号", None)) for i in range(30)]  # fmt: skip
    memory = MemoryStore()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO matter_keys (kind, key, ticket, created_at) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])",
            [k.kind for k, _ in rows], [k.key for k, _ in rows], [c.ticket for _, c in rows],
            [c.at for _, c in rows],
        )  # fmt: skip
        for k, c in rows:
            memory.matter_index.setdefault((k.kind, k.key), []).append(c)
        lo, hi = t0 + timedelta(hours=2), t0 + timedelta(hours=25)
        found = await lookup(conn, [key, other], lo, hi, 5)
    want = {
        key: [f"B{i:02d}" for i in (25, 23, 22, 20, 19)],
        other: [f"B{i:02d}" for i in (24, 21, 18, 15, 12)],
    }
    assert {k: [c.ticket for c in v] for k, v in found.items()} == want
    mem = memory.matter_lookup([key, other], lo, hi, 5)
    assert {k: [c.ticket for c in v] for k, v in mem.items()} == want
