"""The monthly report's faster queries (issue 22) give what the earlier ones gave; so does the
desk's 待审核 queue.

Random facts and events about October-November 2026, several seeds: the earlier text of each
query that changed shape (kept here as the reference) and the current one run on the same
database must return the same rows; the matters read through the narrower MATTER_ROWS and the
current matters.group must be those that the earlier union-find made of every ticket's row.
答复一次通过率 counts the first replies kept in stats_first_replies: filled by migration 024 on a
database with data, and again by the refresh, they must give what the passes over the events gave.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from supervisor.core.clock import SHANGHAI
from supervisor.core.matter import similar
from supervisor.desk.reviews import QUEUE
from supervisor.stats import matters as mt
from supervisor.stats import queries as q
from supervisor.stats.monthly import ESCALATION_ROLES, REMINDER_ROLES, month
from supervisor.stats.refresh import refresh
from supervisor.storage.db import migrate
from tests.helpers import runtime

NOVEMBER = month(datetime(2026, 11, 1).date())
A, B = NOVEMBER.start, NOVEMBER.end
CUT = B

OLD_RECEIVED = """
SELECT GROUPING(category) AS g_cat, GROUPING(channel) AS g_ch, GROUPING(kind) AS g_kind,
       GROUPING(grid) AS g_grid, category, channel, kind, grid, count(*) AS n
FROM (SELECT data->>'category' AS category, data->>'channel' AS channel, data->>'kind' AS kind,
             data->>'grid' AS grid
      FROM events WHERE type = 'created' AND at >= $1 AND at < $2) c
GROUP BY GROUPING SETS ((category), (channel), (kind), (grid), ())
"""

OLD_ON_TIME = """
WITH h AS (
    SELECT CASE WHEN replied_at >= $1 AND replied_at < $2 THEN coalesce(reply_unit, unit) ELSE unit END AS unit,
           (replied_at >= $1 AND replied_at < $2) AS replied,
           (replied_at >= $1 AND replied_at < $2 AND (reply_due IS NULL OR replied_at <= reply_due)) AS on_time
    FROM stats_handlings
    WHERE (replied_at >= $1 AND replied_at < $2)
       OR ((CASE WHEN due_since >= $2 THEN prev_due ELSE reply_due END) >= $1
           AND (CASE WHEN due_since >= $2 THEN prev_due ELSE reply_due END) < $3
           AND (replied_at IS NULL OR replied_at >= $2))
)
SELECT GROUPING(unit) AS total, unit, count(*) FILTER (WHERE on_time) AS num, count(*) AS den,
       count(*) FILTER (WHERE replied) AS replies
FROM h GROUP BY GROUPING SETS ((unit), ())
"""

OLD_MESSAGES = """
SELECT GROUPING(t.unit) AS g_unit, GROUPING(o.role) AS g_role, t.unit, o.role,
       count(DISTINCT (o.ticket, o.rule, o.cycle, o.step, o.rep, o.role)) AS n
FROM outbox o JOIN tickets t ON t.ticket = o.ticket
WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled' AND o.role = ANY($3::text[])
GROUP BY GROUPING SETS ((t.unit), (o.role), ())
"""

OLD_FIRST_PASS = """
WITH r AS (
    SELECT e.id, e.ticket, e.at, e.data->>'unit' AS unit,
           (SELECT count(*) FROM events o
            WHERE o.ticket = e.ticket AND o.type = 'reopened' AND o.at <= e.at) AS handling
    FROM events e
    WHERE e.type = 'replied' AND e.data ? 'text' AND e.at < $2
      AND e.ticket IN (SELECT ticket FROM events WHERE type = 'replied' AND at >= $1 AND at < $2)
), f AS (
    SELECT DISTINCT ON (ticket, handling) id, ticket, at, unit FROM r ORDER BY ticket, handling, at, id
), j AS (
    SELECT coalesce(f.unit, t.unit) AS unit,
           EXISTS (SELECT 1 FROM events v WHERE v.type = 'reviewed' AND v.data->>'of' = f.id
                   AND v.data->>'outcome' = 'returned')
           AND NOT EXISTS (SELECT 1 FROM events d WHERE d.type = 'review_decided'
                           AND d.data->>'of' = f.id AND d.data->>'decision' IN ('pass', 'accept'))
           AS sent_back
    FROM f LEFT JOIN tickets t ON t.ticket = f.ticket
    WHERE f.at >= $1
)
SELECT GROUPING(unit) AS total, unit, count(*) FILTER (WHERE NOT sent_back) AS num, count(*) AS den
FROM j GROUP BY GROUPING SETS ((unit), ())
"""

# the one ordered pass (lag) over the replies and re-openings, before the refresh kept the first
# replies (stats_first_replies, migration 024)
PREV_FIRST_PASS = """
WITH r AS (
    SELECT e.id, e.ticket, e.at, e.type, e.data->>'unit' AS unit,
           lag(e.type) OVER (PARTITION BY e.ticket ORDER BY e.at, e.type <> 'reopened', e.id) AS before
    FROM events e
    WHERE ((e.type = 'replied' AND e.data ? 'text') OR e.type = 'reopened') AND e.at < $2
      AND e.ticket IN (SELECT ticket FROM events WHERE type = 'replied' AND at >= $1 AND at < $2)
), j AS (
    SELECT coalesce(f.unit, t.unit) AS unit,
           EXISTS (SELECT 1 FROM events v WHERE v.type = 'reviewed' AND v.data->>'of' = f.id
                   AND v.data->>'outcome' = 'returned')
           AND NOT EXISTS (SELECT 1 FROM events d WHERE d.type = 'review_decided'
                           AND d.data->>'of' = f.id AND d.data->>'decision' IN ('pass', 'accept'))
           AS sent_back
    FROM r f LEFT JOIN tickets t ON t.ticket = f.ticket
    WHERE f.type = 'replied' AND f.before IS DISTINCT FROM 'replied' AND f.at >= $1
)
SELECT GROUPING(unit) AS total, unit, count(*) FILTER (WHERE NOT sent_back) AS num, count(*) AS den
FROM j GROUP BY GROUPING SETS ((unit), ())
"""

OLD_QUEUE = """
SELECT v.id, v.ticket, v.at, v.data AS review, e.type AS kind, e.data AS original, t.unit
FROM events v
JOIN events e ON e.id = v.data->>'of'
LEFT JOIN tickets t ON t.ticket = v.ticket
WHERE v.type = 'reviewed' AND v.data->>'outcome' = 'returned'
  AND NOT EXISTS (SELECT 1 FROM events d WHERE d.type = 'review_decided'
                  AND d.data->>'of' = v.data->>'of' AND d.at >= v.at)
ORDER BY v.at DESC, v.id
LIMIT $1
"""

# the rows matters.group linked before MATTER_LINKS found the caller and address links itself
PREV_MATTER_ROWS = """
WITH linkable AS (
    SELECT ticket FROM (
        SELECT ticket, (created_at - lag(created_at) OVER k < $3::interval
                        OR lead(created_at) OVER k - created_at < $3::interval) AS near
        FROM stats_tickets
        WHERE caller_hash <> '' AND created_at >= $1::timestamptz - interval '30 days' AND created_at < $2
        WINDOW k AS (PARTITION BY caller_hash, category ORDER BY created_at)
    ) c WHERE near
    UNION
    SELECT ticket FROM (
        SELECT ticket, (created_at - lag(created_at) OVER k < $3::interval
                        OR lead(created_at) OVER k - created_at < $3::interval) AS near
        FROM stats_tickets
        WHERE address_key <> '' AND created_at >= $1::timestamptz - interval '30 days' AND created_at < $2
        WINDOW k AS (PARTITION BY address_key ORDER BY created_at)
    ) a WHERE near
)
SELECT s.ticket, s.created_at, s.category, s.caller_hash, s.address_key, g.key AS grid, g.summary_key
FROM stats_tickets s JOIN matter_keys g ON g.ticket = s.ticket AND g.kind = 'grid'
WHERE s.created_at >= $1::timestamptz - interval '30 days' AND s.created_at < $2
UNION ALL
SELECT s.ticket, s.created_at, s.category, s.caller_hash, s.address_key, NULL, NULL
FROM stats_tickets s
WHERE s.created_at >= $1::timestamptz - interval '30 days' AND s.created_at < $2
  AND s.ticket IN (SELECT ticket FROM linkable)
  AND NOT EXISTS (SELECT 1 FROM matter_keys g WHERE g.ticket = s.ticket AND g.kind = 'grid')
"""

OLD_MATTER_ROWS = """
SELECT s.ticket, s.created_at, s.category, s.caller_hash, s.address_key, g.key AS grid, g.summary_key
FROM stats_tickets s LEFT JOIN matter_keys g ON g.ticket = s.ticket AND g.kind = 'grid'
WHERE s.created_at >= $1::timestamptz - interval '30 days' AND s.created_at < $2
"""


# --- the earlier matters.group, verbatim but for names: the reference ---------------------------


@dataclass(frozen=True)
class OldRow:
    ticket: str
    created_at: datetime
    category: str | None
    caller_hash: str | None
    address_key: str | None
    grid: str | None = None
    summary_key: str | None = None


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _chain(rows: Sequence[OldRow], uf: _Union, window: timedelta) -> bool:
    linked = False
    ordered = sorted(rows, key=lambda r: (r.created_at, r.ticket))
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if cur.created_at - prev.created_at < window:
            uf.union(prev.ticket, cur.ticket)
            linked = True
    return linked


def old_group(rows: Iterable[OldRow], window: timedelta = mt.WINDOW) -> list[mt.Matter]:
    rows = list(rows)
    uf = _Union()
    for r in rows:
        uf.find(r.ticket)
    kinds_of: dict[str, set[str]] = {}
    keyed: dict[tuple[str, object], list[OldRow]] = {}
    for r in rows:
        if r.caller_hash:
            keyed.setdefault(("caller", (r.caller_hash, r.category)), []).append(r)
        if r.address_key:
            keyed.setdefault(("address", r.address_key), []).append(r)
    for (kind, _), members in keyed.items():
        if len(members) > 1 and _chain(members, uf, window):
            for m in members:
                kinds_of.setdefault(m.ticket, set()).add(kind)
    grids: dict[str, list[OldRow]] = {}
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
                if similar(a.summary_key, b.summary_key, 60):
                    uf.union(a.ticket, b.ticket)
                    kinds_of.setdefault(a.ticket, set()).add("summary")
                    kinds_of.setdefault(b.ticket, set()).add("summary")
    components: dict[str, list[OldRow]] = {}
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
            mt.Matter(
                tickets=tuple(m.ticket for m in members),
                kinds=tuple(kinds),
                category=categories[0] if categories else None,
                address=addresses[0] if addresses else None,
                first_at=members[0].created_at,
                last_at=members[-1].created_at,
            )
        )
    return out


# --- random data --------------------------------------------------------------------------------

UNITS = ["U1", "U2", "U3", None]
SUMMARIES = ["小区门口垃圾堆放无人清理", "小区门口垃圾堆放没人清理", "夜间施工噪音扰民", "夜间施工噪声扰民严重",
             "路灯不亮", "下水道堵塞污水外溢"]  # fmt: skip


def _at(rng: random.Random, days: int = 70) -> datetime:
    """An instant from 2026-09-25 on, on a coarse grid (ties happen)."""
    start = datetime(2026, 9, 25, tzinfo=SHANGHAI)
    return start + timedelta(hours=rng.randrange(days * 24 // 6) * 6)


async def _fill(conn, rng: random.Random, n: int = 160) -> None:
    tickets = [f"T{i:04d}" for i in range(n)]
    for t in tickets:
        if rng.random() < 0.7:
            await conn.execute(
                "INSERT INTO tickets (ticket, state, status, unit) VALUES ($1, '{}', 'signed', $2)",
                t, rng.choice(UNITS),
            )  # fmt: skip
        created = _at(rng)
        await conn.execute(
            """INSERT INTO stats_tickets (ticket, created_at, unit, category, caller_hash, address_key)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            t, created if rng.random() < 0.95 else None, rng.choice(UNITS),
            rng.choice(["噪声", "垃圾", None, ""]),
            rng.choice(["c1", "c2", None, ""]) if rng.random() < 0.4 else f"k{rng.randrange(50)}",
            rng.choice(["幸福路1号", "光明路2号", None, ""]) if rng.random() < 0.4 else f"路{rng.randrange(40)}号",
        )  # fmt: skip
        for grid in rng.sample(["G1", "G2"], k=rng.choice([0, 0, 1, 1, 2])):
            await conn.execute(
                """INSERT INTO matter_keys (kind, key, ticket, created_at, summary_key)
                   VALUES ('grid', $1, $2, $3, $4)""",
                grid, t, created, rng.choice(SUMMARIES + [""]),
            )  # fmt: skip
        # events: replies (with or without text), re-openings (some at a reply's instant),
        # reviews and decisions of the replies
        at = _at(rng)
        created_data = {
            k: v
            for k, v in (("channel", rng.choice(["phone", "visit", "grid", None])),
                         ("category", rng.choice(["噪声", "垃圾", None])), ("kind", rng.choice(["complaint", "help"])),
                         ("grid", rng.choice(["G1", "G2", None])))
            if v
        }  # fmt: skip
        await _event(conn, f"{t}-c", t, "created", at, created_data)
        for k in range(rng.choice([0, 1, 1, 2, 3, 4])):
            at += timedelta(hours=rng.choice([0, 6, 30, 200]))
            if rng.random() < 0.3:
                await _event(conn, f"{t}-o{k}", t, "reopened", at, {})
                if rng.random() < 0.5:
                    continue
            eid = f"{t}-p{k}"
            data = {"unit": u} if (u := rng.choice(UNITS)) else {}
            if rng.random() < 0.8:
                data["text"] = "已处理"
            await _event(conn, eid, t, "replied", at, data)
            if rng.random() < 0.5:
                outcome = rng.choice(["returned", "returned", "passed"])
                await _event(conn, f"{t}-v{k}", t, "reviewed", at + timedelta(hours=1),
                             {"of": eid, "kind": "replied", "outcome": outcome})  # fmt: skip
                if outcome == "returned" and rng.random() < 0.5:
                    decision = rng.choice(["pass", "accept", "return"])
                    when = at + timedelta(hours=rng.choice([0, 2, 2]))  # some before the review
                    await _event(conn, f"{t}-d{k}", t, "review_decided", when,
                                 {"of": eid, "decision": decision})  # fmt: skip
        if rng.random() < 0.3:
            await _event(conn, f"{t}-x", t, "closed", at + timedelta(days=1), {})
        # handlings
        for k in range(rng.choice([1, 1, 2])):
            due, replied = _at(rng), _at(rng) if rng.random() < 0.8 else None
            await conn.execute(
                """INSERT INTO stats_handlings (ticket, n, unit, reply_due, replied_at, reply_unit, due_since, prev_due)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                t, k, rng.choice(UNITS), due if rng.random() < 0.9 else None, replied, rng.choice(UNITS),
                _at(rng) if rng.random() < 0.3 else None, _at(rng) if rng.random() < 0.3 else None,
            )  # fmt: skip
        # messages: a step's messages on several channels, some cancelled
        for step in range(rng.choice([0, 1, 2])):
            role = rng.choice(REMINDER_ROLES + ESCALATION_ROLES)
            for channel in rng.sample(["sms", "call", "wecom"], k=rng.choice([1, 2, 3])):
                at = _at(rng)
                await conn.execute(
                    """INSERT INTO outbox (ticket, rule, cycle, step, rep, role, recipient, channel, text,
                                          not_before, created_at, status)
                       VALUES ($1, 'r', 0, $2, $3, $4, 'p', $5, 'x', $6, $6, $7)""",
                    t, step, rng.choice([0, 0, 1]), role, channel, at,
                    rng.choice(["sent", "sent", "failed", "cancelled"]),
                )  # fmt: skip


async def _backfill(conn) -> None:
    """stats_first_replies as migration 024 fills it on a database with data."""
    await conn.execute("DROP TABLE stats_first_replies")
    await conn.execute("DELETE FROM schema_migrations WHERE version = 24")
    assert await migrate(conn) == ["024_first_replies.sql"]


async def _event(conn, eid: str, ticket: str, type_: str, at: datetime, data: dict) -> None:
    await conn.execute(
        "INSERT INTO events (id, ticket, type, at, data) VALUES ($1, $2, $3, $4, $5)",
        eid, ticket, type_, at, data,
    )  # fmt: skip


def _rows(records) -> list[tuple]:
    return sorted((tuple(r) for r in records), key=repr)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_the_reworked_queries_give_what_the_earlier_ones_gave(pool, seed):
    rng = random.Random(seed)
    async with pool.acquire() as conn:
        await _fill(conn, rng)
        await _backfill(conn)
        assert await conn.fetchval("SELECT count(*) FROM events WHERE type = 'replied'") > 50
        pairs = [
            (OLD_RECEIVED, q.RECEIVED, (A, B)),
            (OLD_RECEIVED, q.RECEIVED, (A - timedelta(days=400), A - timedelta(days=399))),  # none
            (OLD_ON_TIME, q.ON_TIME, (A, B, CUT)),
            (OLD_ON_TIME, q.ON_TIME, (A, B, A + timedelta(days=10))),
            (OLD_MESSAGES, q.MESSAGES, (A, B, REMINDER_ROLES)),
            (OLD_MESSAGES, q.MESSAGES, (A, B, ESCALATION_ROLES)),
            (OLD_FIRST_PASS, q.FIRST_PASS, (A, B)),
            (OLD_FIRST_PASS, q.FIRST_PASS, (A + timedelta(days=5), A + timedelta(days=12))),
            (PREV_FIRST_PASS, q.FIRST_PASS, (A, B)),
            (PREV_FIRST_PASS, q.FIRST_PASS, (A - timedelta(days=20), A + timedelta(days=3))),
        ]
        for old, new, args in pairs:
            before, after = _rows(await conn.fetch(old, *args)), _rows(await conn.fetch(new, *args))
            assert after == before
            assert after  # at least the total
        for _old, new, args in pairs:
            if args[0] == A:
                assert any(r[0] == 0 for r in await conn.fetch(new, *args))  # and per-unit rows

        for roles in (REMINDER_ROLES, ESCALATION_ROLES):  # 催办/督办 by unit and by role in order
            rows = await conn.fetch(q.MESSAGES, A, B, roles)
            units = [r["unit"] for r in rows if not r["g_unit"]]
            assert units == sorted(units, key=lambda u: (u is None, u or ""))
            by_role = [r["role"] for r in rows if not r["g_role"]]
            assert by_role == sorted(by_role) and len(units) > 1
        for limit in (5, 200):  # the desk's 待审核 queue: the same reviews, in the same order
            queue = [tuple(r) for r in await conn.fetch(QUEUE, limit)]
            assert queue == [tuple(r) for r in await conn.fetch(OLD_QUEUE, limit)]
            assert 0 < len(queue) <= limit

        everything = [OldRow(*r) for r in await conn.fetch(OLD_MATTER_ROWS, A, B)]
        linkable = [mt.Row(*r) for r in await conn.fetch(PREV_MATTER_ROWS, A, B, mt.WINDOW)]
        links = await conn.fetch(q.MATTER_LINKS, A, B, mt.WINDOW)
        later = await conn.fetch(q.MATTER_LINKS, A + timedelta(days=9), B, mt.WINDOW)
    assert len(linkable) < len(everything)  # the narrower read leaves tickets out
    expected = old_group(everything)
    got = mt.group(linkable)
    assert sorted(got, key=lambda m: m.tickets) == sorted(expected, key=lambda m: m.tickets)
    assert any(len(m.tickets) >= 3 for m in expected) and any(len(m.kinds) > 1 for m in expected)
    # a ticket with two grid keys (two rows) makes a matter
    assert any(len(set(m.tickets)) < len(m.tickets) for m in expected)
    linked_count = mt.linked_tickets(mt.in_period(expected, A), everything, A)
    assert mt.linked_tickets(mt.in_period(got, A), linkable, A) == linked_count
    # the links found in SQL (MATTER_LINKS, matters.linked): the same matters, the same count
    matters, count = mt.linked(links, A)
    by_tickets = sorted(mt.in_period(expected, A), key=lambda m: m.tickets)
    assert sorted(matters, key=lambda m: m.tickets) == by_tickets
    assert count == linked_count
    for least in (3, max(len(m.tickets) for m in matters) + 1):  # smaller ones counted, not shown
        shown = [m for m in matters if len(m.tickets) >= least]
        assert mt.linked(links, A, min_size=least) == (shown, count)
    assert sorted(r["ticket"] for r in links) == sorted(r.ticket for r in linkable)  # the same rows
    order = [(r["created_at"], r["ticket"]) for r in links]
    assert order == sorted(order)
    start = A + timedelta(days=9)  # another period: the window moves, fewer matters
    everything = [r for r in everything if start - timedelta(days=30) <= r.created_at]
    expected = mt.in_period(old_group(everything), start)
    matters, count = mt.linked(later, start)
    assert sorted(matters, key=lambda m: m.tickets) == sorted(expected, key=lambda m: m.tickets)
    assert count == mt.linked_tickets(expected, everything, start)


FIRST_REPLIES = "SELECT event_id, ticket, at, unit FROM stats_first_replies ORDER BY event_id"


@pytest.mark.parametrize("seed", [5, 6, 7])
async def test_first_replies_kept_by_the_migration_and_the_refresh_give_the_earlier_first_pass(pool, seed):
    """答复一次通过率 from stats_first_replies: filled by migration 024 on a database with data,
    derived again by the refresh (all tickets, then a few with new events), it gives what the
    ordered passes over the events gave, for any period."""
    rng = random.Random(seed)
    periods = [(A, B), (A + timedelta(days=5), A + timedelta(days=12)), (A - timedelta(days=31), A),
               (A - timedelta(days=400), A - timedelta(days=399))]  # fmt: skip

    async def same(conn) -> None:
        for args in periods:
            want = _rows(await conn.fetch(OLD_FIRST_PASS, *args))
            assert _rows(await conn.fetch(PREV_FIRST_PASS, *args)) == want
            assert _rows(await conn.fetch(q.FIRST_PASS, *args)) == want

    async with pool.acquire() as conn:
        await _fill(conn, rng)
        await _backfill(conn)  # the migration path
        await same(conn)
        migrated = [tuple(r) for r in await conn.fetch(FIRST_REPLIES)]
        assert len(migrated) > 50
        assert await conn.fetchval("SELECT count(*) FROM stats_refresh") == 0
        await conn.execute("UPDATE events SET received_at = now() - interval '1 hour'")  # past the slack
    policy = runtime().policy
    assert await refresh(pool, policy, batch=37) == 160  # no facts yet: every ticket derived again
    async with pool.acquire() as conn:
        assert [tuple(r) for r in await conn.fetch(FIRST_REPLIES)] == migrated
        await same(conn)
        # new events on a few tickets: a re-opening, replies (one of the same instant), a review
        touched = rng.sample(sorted({r[1] for r in migrated}), 12)
        for k, t in enumerate(touched):
            at = A + timedelta(days=rng.randrange(28), hours=6 * rng.randrange(4))
            if k % 4 == 1:
                await _event(conn, f"{t}-o9", t, "reopened", at, {})
            await _event(conn, f"{t}-p9", t, "replied", at, {"unit": "U2", "text": "已处理"})
            if k % 4 == 3:  # stored after the reply of its instant, its id after the reply's:
                await _event(conn, f"{t}-z9", t, "reopened", at, {})  # still before it
            await _event(conn, f"{t}-p8", t, "replied", at + timedelta(hours=k % 3), {"text": "补充"})
            if k % 3 == 0:
                await _event(conn, f"{t}-v9", t, "reviewed", at + timedelta(hours=1),
                             {"of": f"{t}-p9", "kind": "replied", "outcome": "returned"})  # fmt: skip
    assert await refresh(pool, policy) == 12
    async with pool.acquire() as conn:
        await same(conn)
        refreshed = [tuple(r) for r in await conn.fetch(FIRST_REPLIES)]
        await _backfill(conn)  # what the migration would fill from the same events
        assert [tuple(r) for r in await conn.fetch(FIRST_REPLIES)] == refreshed != migrated


def test_group_keeps_the_order_and_the_kinds_of_the_earlier_one():
    rng = random.Random(7)
    rows = []
    for i in range(400):
        created = _at(rng)
        rows.append((f"T{i:03d}", created, rng.choice(["噪声", None, ""]), rng.choice(["c1", "c2", None]),
                     rng.choice(["幸福路1号", None]), rng.choice(["G1", "G2", None]),
                     rng.choice(SUMMARIES + [None])))  # fmt: skip
    assert mt.group([mt.Row(*r) for r in rows]) == old_group([OldRow(*r) for r in rows])


async def test_matter_links_keep_what_two_grid_keys_did(pool):
    """A ticket with two grid keys was two rows linked to each other in matters.group, which gave
    its caller and its address a link: every ticket of that caller (address) has that kind."""
    day = timedelta(days=1)
    tickets = [  # ticket, created_at, caller, address, grid keys
        ("X1", A + 2 * day, "solo", "东路1号", ["G1", "G2"]),  # two grid keys, nobody near
        ("Y1", A + 50 * day, "solo", "西路2号", []),  # X1's caller, 48 days later
        ("Z1", A + 52 * day, "other", "西路2号", []),  # Y1's address: Y1 and Z1 one matter
        ("W1", A - 40 * day, "w", "东路1号", []),  # X1's address, long before (not read)
        ("V1", A + 20 * day, "v", "南路3号", ["G3"]),  # one grid key, alone
    ]
    async with pool.acquire() as conn:
        for t, at, caller, address, grids in tickets:
            await conn.execute(
                """INSERT INTO stats_tickets (ticket, created_at, unit, category, caller_hash, address_key)
                   VALUES ($1, $2, 'U1', '噪声', $3, $4)""",
                t, at, caller, address,
            )  # fmt: skip
            for grid in grids:
                await conn.execute(
                    """INSERT INTO matter_keys (kind, key, ticket, created_at, summary_key)
                       VALUES ('grid', $1, $2, $3, '路灯不亮')""",
                    grid, t, at,
                )  # fmt: skip
        end = A + 60 * day
        everything = [OldRow(*r) for r in await conn.fetch(OLD_MATTER_ROWS, A, end)]
        links = await conn.fetch(q.MATTER_LINKS, A, end, mt.WINDOW)
    expected = mt.in_period(old_group(everything), A)
    assert sorted(m.tickets for m in expected) == [("X1", "X1"), ("Y1", "Z1")]
    assert {m.tickets: m.kinds for m in expected}[("Y1", "Z1")] == ("address", "caller")
    matters, count = mt.linked(links, A)
    assert sorted(matters, key=lambda m: m.tickets) == sorted(expected, key=lambda m: m.tickets)
    assert count == mt.linked_tickets(expected, everything, A) == 4
