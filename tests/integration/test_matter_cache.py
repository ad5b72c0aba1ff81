"""The per-process cache of matter keys (storage/matter_cache.py) answers what the table does,
also when another daemon's transaction commits out of order, and when a key is busy or a batch
is from long ago."""

from __future__ import annotations

import random
from datetime import timedelta

from supervisor.core.matter import MatterKey
from supervisor.storage import queries as q
from supervisor.storage.matter_cache import MatterCache
from supervisor.storage.pg_matter import lookup
from tests.helpers import sh

T0 = sh(2026, 11, 2, 10, 0)
KEYS = [MatterKey("address", f"幸福路{i}号") for i in range(3)] + [MatterKey("grid", "G02")]


async def _insert(conn, rows) -> None:
    await conn.execute(
        q.MATTER_INSERT,
        [k.kind for k, _, _ in rows], [k.key for k, _, _ in rows], [t for _, t, _ in rows],
        [at for _, _, at in rows], [None] * len(rows), [None] * len(rows),
        # a grid's rows have a summary (core.matter.keys_for): a few, so a grid has several runs
        [f"摘要{int(t[1:]) % 3}" if k.kind == "grid" else None for k, t, _ in rows],
    )  # fmt: skip


def _names(found) -> dict:
    return {k: sorted(c.ticket for c in v) for k, v in found.items() if v}


async def test_a_transaction_committing_after_a_read_is_seen_at_the_next(pool):
    cache = MatterCache()
    async with pool.acquire() as a, pool.acquire() as b, pool.acquire() as c:
        await cache.lookup(c, KEYS, T0 - timedelta(days=30), T0, 10)  # the keys are cached
        tr = a.transaction()
        await tr.start()
        await _insert(a, [(KEYS[0], "LATE", T0 - timedelta(hours=1))])  # its xid is older
        await _insert(b, [(KEYS[0], "EARLY", T0 - timedelta(hours=2))])  # commits first
        first = await cache.lookup(c, KEYS, T0 - timedelta(days=30), T0, 10)
        await tr.commit()
        second = await cache.lookup(c, KEYS, T0 - timedelta(days=30), T0, 10)
        direct = await lookup(c, KEYS, T0 - timedelta(days=30), T0, 10)
    assert _names(first) == {KEYS[0]: ["EARLY"]}
    assert _names(second) == _names(direct) == {KEYS[0]: ["EARLY", "LATE"]}
    assert cache.hits >= len(KEYS)  # the second and third asks came from memory


async def test_two_caches_agree_with_the_table_on_random_interleavings(pool):
    rnd = random.Random(22)
    caches = [MatterCache(max_rows=60), MatterCache()]  # one small enough to evict
    n = 0
    async with pool.acquire() as w, pool.acquire() as r:
        for step in range(60):
            rows = []
            for _ in range(rnd.randint(0, 6)):
                n += 1
                at = T0 + timedelta(hours=rnd.randint(-24 * 40, 24 * 5))
                rows.append((rnd.choice(KEYS), f"T{n:04d}", at))
            if rows:
                await _insert(w, rows)
            hi = T0 + timedelta(hours=rnd.randint(-24 * 35, 24 * 5))
            lo = hi - timedelta(days=rnd.choice([1, 7, 30]))
            limit = rnd.choice([3, 8, 500])
            keys = rnd.sample(KEYS, rnd.randint(1, len(KEYS)))
            cache = caches[step % 2]
            async with r.transaction():
                got = await cache.lookup(r, keys, lo, hi, limit)
                want = await lookup(r, keys, lo, hi, limit)
            assert _names(got) == _names(want), (step, lo, hi, limit)
    assert caches[0].rows <= 60
    assert caches[1].hits > 0 and caches[1].loads > 0


def _grouped_names(built, hi) -> dict:
    out = {}
    for k, (grouped, _) in built.items():
        runs = grouped.runs.values() if hasattr(grouped, "runs") else [grouped]
        pairs = (p for r in runs for p in zip(r.ats, r.tickets, strict=True))
        names = sorted(t for a, t in pairs if a <= hi)  # every one > lo
        if names:
            out[k] = names
    return out


async def test_grouped_candidates_follow_the_table_on_random_interleavings(pool):
    """The grouped candidates a cache keeps across batches (`lookup_grouped`) hold what the
    table holds, as commits from other connections arrive out of order, rows are added, the
    window moves on and back, and the cache evicts."""
    rnd = random.Random(23)
    caches = [MatterCache(max_rows=40), MatterCache()]
    n = 0
    grouped_seen = 0
    async with pool.acquire() as w, pool.acquire() as x, pool.acquire() as r:
        for step in range(80):
            late = x.transaction()  # a writer whose commit comes after the next read
            await late.start()
            for conn in (w, x):
                rows = []
                for _ in range(rnd.randint(0, 4)):
                    n += 1
                    at = T0 + timedelta(hours=step * 6 + rnd.randint(-24 * 3, 24))
                    rows.append((rnd.choice(KEYS), f"T{n:04d}", at))
                if rows:
                    await _insert(conn, rows)
            hi = T0 + timedelta(hours=step * 6 + rnd.choice([0, 0, 0, -24 * 20]))
            lo = hi - timedelta(days=rnd.choice([7, 30]))
            limit = rnd.choice([8, 500, 500])
            keys = rnd.sample(KEYS, rnd.randint(1, len(KEYS)))
            cache = caches[step % 2]
            async with r.transaction():
                found, built = await cache.lookup_grouped(r, keys, lo, hi, limit)
                want = await lookup(r, keys, lo, hi, limit)
            await late.commit()
            got = _names(found) | _grouped_names(built, hi)
            assert got == _names(want), (step, lo, hi, limit)
            assert not set(_names(found)) & set(built)
            grouped_seen += len(built)
    assert grouped_seen > 20
