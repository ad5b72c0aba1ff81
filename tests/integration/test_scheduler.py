"""Timers in PostgreSQL: exactly-once firing across daemons, moves on events, catch-up."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.storage.db import create_pool
from supervisor.storage.pg import PgStore
from tests.helpers import ev, runtime, sh


def ticket_events(n: int, start) -> list[dict]:
    out = []
    for i in range(n):
        t = f"T{i:05d}"
        out.append(ev(t, 1, "created", start, kind="complaint", category="市容环境", grid="G01"))
        out.append(ev(t, 2, "dispatched", start, unit="城管执法中队"))
    return out


async def test_two_daemons_fire_each_due_step_exactly_once(pg_url):
    pools = [await create_pool(pg_url, max_size=3) for _ in range(2)]
    try:
        start = sh(2026, 11, 23, 9, 0)  # Monday
        rt = runtime()
        sups = [Supervisor(PgStore(p), rt, VirtualClock(start)) for p in pools]
        await sups[0].ingest(ticket_events(300, start))
        # 09:00 + 2 working hours: sign_by 11:00; steps at 10:30, 11:00, 12:00 (lunch: 13:30+...)
        now = sh(2026, 11, 23, 10, 31)

        async def worker(sup: Supervisor) -> int:
            fired = 0
            while True:
                out = await sup.fire_due(limit=25, now=now)
                fired += out.fired
                if not (out.fired or out.cancelled or out.superseded):
                    return fired
                await asyncio.sleep(0)

        done = await asyncio.gather(worker(sups[0]), worker(sups[1]))
        assert sum(done) == 300 and all(d > 0 for d in done), done
        async with pools[0].acquire() as conn:
            rows = await conn.fetch("SELECT ticket, rule, step, recipient, channel FROM outbox")
            fired = await conn.fetchval("SELECT count(*) FROM timers WHERE status = 'fired'")
        assert fired == 300
        keys = Counter(
            (r["ticket"], r["rule"], r["step"], r["recipient"], r["channel"]) for r in rows
        )
        assert len(keys) == 300 and max(keys.values()) == 1
        assert {r["rule"] for r in rows} == {"sign-off"} and {r["step"] for r in rows} == {0}
    finally:
        for p in pools:
            await p.close()


async def test_signing_cancels_and_extension_moves_only_the_affected_rows(pool):
    start = sh(2026, 11, 23, 9, 0)
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(start))
    await sup.ingest([
        ev("T1", 1, "created", start, kind="complaint", category="市容环境"),
        ev("T1", 2, "dispatched", start, unit="城管执法中队"),
        ev("T1", 3, "commitment_made", start + timedelta(minutes=5), due="2026-12-10"),
    ])  # fmt: skip
    async with pool.acquire() as conn:
        before = {
            (r["rule"], r["cycle"], r["step"]): (r["id"], r["due_at"])
            for r in await conn.fetch("SELECT * FROM timers WHERE status='pending'")
        }
    assert {k[0] for k in before} == {"sign-off", "reply-deadline", "commitment"}
    await sup.ingest([ev("T1", 4, "signed", start + timedelta(minutes=20), unit="城管执法中队")])
    await sup.ingest([
        ev("T1", 5, "extension_requested", start + timedelta(hours=1), until=sh(2026, 12, 7, 17, 0).isoformat()),
        ev("T1", 6, "extension_decided", start + timedelta(hours=2), approved=True),
    ])  # fmt: skip
    async with pool.acquire() as conn:
        after = {
            (r["rule"], r["cycle"], r["step"]): (r["id"], r["due_at"], r["status"])
            for r in await conn.fetch("SELECT * FROM timers")
        }
    assert all(after[k][2] == "cancelled" for k in after if k[0] == "sign-off")
    assert all(after[k][2] == "cancelled" for k in after if k[0] == "reply-deadline" and k[1] == 1)
    moved = {k: v for k, v in after.items() if k[0] == "reply-deadline" and k[1] == 2}
    assert moved[("reply-deadline", 2, 2)][1] == sh(2026, 12, 7, 17, 0)
    assert moved[("reply-deadline", 2, 0)][1] == sh(2026, 12, 4, 17, 0)
    # the commitment ladder's rows are untouched: same ids, same times, still pending
    for k, (tid, due) in before.items():
        if k[0] == "commitment":
            assert after[k] == (tid, due, "pending")


async def test_after_downtime_only_the_latest_overdue_step_fires(pool):
    start = sh(2026, 11, 23, 9, 0)
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(start))
    await sup.ingest(ticket_events(1, start))
    out = await sup.fire_due(now=sh(2026, 11, 23, 14, 0))  # down from 09:00 to 14:00
    assert out.fired == 1 and out.superseded == 2
    assert {(n.rule, n.step) for n in out.notifications} == {("sign-off", 2)}
    assert all(lag > 3600 for lag in out.lags_s)


async def test_repeat_caller_links_the_tickets_on_postgres(pool):
    start = sh(2026, 11, 2, 9, 0)
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(start))
    for i, day in enumerate((2, 10, 20)):
        await sup.ingest(
            [
                ev(
                    f"R{i}",
                    1,
                    "created",
                    sh(2026, 11, day, 9, 0),
                    kind="complaint",
                    category="市容环境",
                    grid="G01",
                    caller="138 1234 5678",
                )
            ]
        )
    # a different category from the same caller does not count
    await sup.ingest(
        [
            ev(
                "R9",
                1,
                "created",
                sh(2026, 11, 21, 9, 0),
                kind="complaint",
                category="物业管理",
                caller="13812345678",
            )
        ]
    )
    out = await sup.fire_due(now=sh(2026, 11, 21, 9, 1))
    texts = {(n.rule, n.role): n.text for n in out.notifications}
    assert set(texts) == {("repeat-caller", "supervisor"), ("repeat-caller", "grid")}
    assert (
        "R0、R1、R2" in texts[("repeat-caller", "supervisor")]
        and "3次" in texts[("repeat-caller", "supervisor")]
    )
    assert "13812345678" not in str(texts) and "5678" not in str(texts)
    view = await sup.store.ticket_view("R2")
    assert view["linked"] == ["R0", "R1"]


async def test_repeat_callers_in_one_batch_count_each_other(pool):
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 2, 9, 0)))
    batch = [
        ev(
            f"Q{i}",
            1,
            "created",
            sh(2026, 11, 2 + i, 9, 0),
            kind="complaint",
            category="市容环境",
            grid="G01",
            caller="13812345678",
        )
        for i in range(3)
    ]
    out = await sup.ingest(batch)
    assert [lad.rule for lad in out.plans["Q2"].opened] == ["repeat-caller"]
    assert not any(lad.rule == "repeat-caller" for t in ("Q0", "Q1") for lad in out.plans[t].opened)


async def test_a_batch_with_a_callers_call_waits_for_another_batch_of_that_caller(pool, pg_url):
    """Repeat calls are counted under a per-caller lock, so a batch sees the calls another batch
    of the same caller is committing, instead of missing them."""
    import asyncpg

    from supervisor.core.privacy import caller_hash

    rt = runtime()
    sup = Supervisor(PgStore(pool), rt, VirtualClock(sh(2026, 11, 2, 9)))
    call = ev(
        "C1",
        1,
        "created",
        sh(2026, 11, 3, 9),
        kind="complaint",
        category="市容环境",
        caller="13912345678",
    )
    other = await asyncpg.connect(pg_url)
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "SELECT pg_advisory_xact_lock(7345, hashtext($1))",
            caller_hash("13912345678", rt.caller_key),
        )
        task = asyncio.create_task(sup.ingest([call]))
        await asyncio.sleep(0.5)
        assert not task.done()  # waiting for the other batch of this caller
        await tx.rollback()
        out = await asyncio.wait_for(task, 10)
        assert out.accepted == ["C1-1"]
    finally:
        await other.close()
