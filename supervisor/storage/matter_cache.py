"""The window's matter keys kept in memory per process, so that an ingest batch does not re-read and
decode every candidate of its keys (about 30 rows per event on a city's stream).

Exact with several daemons on one database. Each row of matter_keys carries the id of the
transaction that wrote it (`xid`, migration 020). A key's entry remembers `since`, the oldest
transaction still running when the key was last read (`pg_snapshot_xmin`); asked again, it reads
only the key's rows written by transactions from that one on (index matter_keys_since). A
transaction older than `since` had finished by the last read, so its rows were read then or
before; rows of one still running are read next time. The batch holds the advisory locks of its
keys (MATTER_LOCK_KEYS) before it asks, so every writer of those keys has committed and is seen.
Only the batch's own keys are read: other daemons' batches about other keys cost nothing here.

A key's entry holds every stored row of that key created in (floor, ceiling], plus whatever
arrived since. It answers "the most recent `limit` rows created in (lo, hi]" when that answer lies
wholly inside what it holds; otherwise the key is read from the table again (a batch of events
from long ago, a busy key trimmed). Rows the window has left behind (created before the asking
batch's window) are dropped. Bounded: at most MAX_ROWS rows, least recently used keys go.

A key's rows are also kept grouped as same-matter matching groups them (core.matter's `build`),
made when a batch first matches against the key and then kept in step with the rows (what is
added, what is dropped), so a batch does not regroup its keys' candidates (about 90 per grid on a
city's stream, every grid touched by every batch). A batch is handed the group only when the
cache's answer is every row it holds up to the batch's last ticket (rows after that are no
window's); match_batch copies what its own tickets join, so a batch that rolls back leaves the
group as it was, and its rows, once committed, come back with the next catch-up like any other.

Not seen: rows deleted while the daemon runs (only the offline demo-data tool deletes any).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta

import asyncpg

from supervisor.core.matter import Built, Candidate, MatterKey, build
from supervisor.storage import queries as q

MAX_ROWS = 200_000
# a key loaded for a batch holds rows created up to this far after the batch (future-dated events)
_CEILING = timedelta(days=3650)


def _order(c: Candidate) -> tuple[datetime, str]:
    return c.at, c.ticket


class _Entry:
    __slots__ = ("kind", "floor", "ceiling", "rows", "ats", "tickets", "since", "built")

    def __init__(
        self, kind: str, floor: datetime, ceiling: datetime, rows: Iterable[Candidate], since: str
    ) -> None:
        self.kind = kind
        self.built: Built | None = None  # the rows grouped (core.matter's build), once asked
        self.since = since  # xid8 (text): rows of transactions from this one on are read again
        self.floor = floor
        self.ceiling = ceiling
        self.rows = sorted((c for c in rows if c.at > floor), key=_order)
        self.ats = [c.at for c in self.rows]
        self.tickets = {c.ticket for c in self.rows}

    def add(self, c: Candidate) -> bool:
        if c.at <= self.floor or c.ticket in self.tickets:
            return False
        i = bisect_right(self.rows, _order(c), key=_order)
        self.rows.insert(i, c)
        self.ats.insert(i, c.at)
        self.tickets.add(c.ticket)
        if self.built is not None:
            self.built.add(c)
        return True

    def grouped(self) -> Built:
        if self.built is None:
            self.built = build(self.kind, self.rows)
        return self.built

    def _forget(self, drop: int) -> None:
        """Drop the `drop` oldest rows (every row created up to some time, ties together)."""
        gone = self.rows[:drop]
        for c in gone:
            self.tickets.discard(c.ticket)
        if self.built is not None:
            self.built.forget(gone)
        del self.rows[:drop], self.ats[:drop]

    def answer(self, lo: datetime, hi: datetime, limit: int) -> list[Candidate] | None:
        """The most recent `limit` rows created in (lo, hi], or None when they may lie outside."""
        if hi > self.ceiling:
            return None
        j = bisect_right(self.ats, hi)
        if self.floor <= lo:
            i = bisect_right(self.ats, lo)
            return self.rows[max(i, j - limit) : j]
        if j >= limit:  # the `limit` most recent up to hi are all above the floor (> lo)
            return self.rows[j - limit : j]
        return None

    def forget_until(self, lo: datetime) -> int:
        """Drop the rows created at or before `lo` (older than any window a batch at lo asks);
        returns how many went. A later batch from before then reads the key again."""
        if lo <= self.floor:
            return 0
        drop = bisect_right(self.ats, lo)
        self._forget(drop)
        self.floor = lo
        return drop

    def trim(self, keep: int) -> int:
        """Drop the oldest rows beyond `keep` (the floor rises); returns how many went."""
        drop = len(self.rows) - keep
        if drop <= 0:
            return 0
        self.floor = self.ats[drop - 1]
        while drop < len(self.rows) and self.ats[drop] <= self.floor:  # ties go together
            drop += 1
        self._forget(drop)
        return drop


class MatterCache:
    """One per PgStore (so per process and database)."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self.entries: OrderedDict[MatterKey, _Entry] = OrderedDict()
        self.by_name: dict[tuple[str, str], _Entry] = {}  # the same entries by (kind, key)
        self.rows = 0
        self.loads = self.hits = 0  # keys read from the table / answered from memory
        self.limit = 500  # max_candidates, as last asked

    async def lookup(
        self,
        conn: asyncpg.Connection,
        keys: Iterable[MatterKey],
        lo: datetime,
        hi: datetime,
        limit: int,
    ) -> dict[MatterKey, list[Candidate]]:
        """What pg_matter.lookup returns, from memory where it can. Call with the keys' advisory
        locks held, inside the transaction."""
        found, _ = await self.lookup_grouped(conn, keys, lo, hi, limit, grouped=False)
        return found

    async def lookup_grouped(
        self,
        conn: asyncpg.Connection,
        keys: Iterable[MatterKey],
        lo: datetime,
        hi: datetime,
        limit: int,
        grouped: bool = True,
    ) -> tuple[dict[MatterKey, list[Candidate]], dict[MatterKey, tuple[Built, set[str]]]]:
        """`lookup`'s answer in two parts: keys whose answer is every row held up to `hi` come
        grouped (core.matter's `built`: not to be changed), with their tickets; the others as
        rows (what `lookup` gives)."""
        from supervisor.storage.pg_matter import lookup

        keys = sorted(set(keys), key=lambda k: (k.kind, k.key))
        self.limit = limit
        xmin = await self._catch_up(conn, [k for k in keys if k in self.entries])
        out: dict[MatterKey, list[Candidate]] = {}
        built: dict[MatterKey, tuple[Built, set[str]]] = {}
        missing = []
        for k in keys:
            e = self.entries.get(k)
            got = e.answer(lo, hi, limit) if e is not None else None
            if e is None or got is None:
                missing.append(k)
            else:
                self.hits += 1
                self.entries.move_to_end(k)
                self.rows -= e.forget_until(lo)  # what the window has left behind
                if grouped and got and len(got) == bisect_right(e.ats, hi):
                    built[k] = (e.grouped(), e.tickets)  # every row held up to hi
                elif got:
                    out[k] = got
        if missing:
            self.loads += len(missing)
            loaded = await lookup(conn, missing, lo, hi + _CEILING, limit)
            for k in missing:
                rows = loaded.get(k, [])
                floor = lo if len(rows) < limit else min(c.at for c in rows)
                e = _Entry(k.kind, floor, hi + _CEILING, rows, xmin)
                got = e.answer(lo, hi, limit)
                if got is None:  # later rows fill the limit (events from long ago): not kept
                    self._drop(k)
                    direct = await lookup(conn, [k], lo, hi, limit)
                    got = direct.get(k, [])
                else:
                    self._put(k, e)
                if got:
                    out[k] = got
        return out, built

    async def _catch_up(self, conn: asyncpg.Connection, held: list[MatterKey]) -> str:
        """Read, for the held keys, the rows written since each last read; returns the oldest
        transaction still running (the `since` of what is read now)."""
        if not held:
            return str(await conn.fetchval(q.MATTER_XMIN))
        entries = [self.entries[k] for k in held]
        rows = await conn.fetch(
            q.MATTER_SINCE,
            [k.kind for k in held], [k.key for k in held], [e.since for e in entries],
        )  # fmt: skip
        xmin = rows[0]["xmin"]
        for e in entries:
            e.since = xmin
        by_name = self.by_name
        for r in rows:
            if r["ticket"] is None:  # a key with nothing new
                continue
            e = by_name[(r["kind"], r["key"])]
            if e.add(
                Candidate(
                    r["ticket"],
                    r["created_at"],
                    r["caller_hash"],
                    r["address_key"],
                    r["summary_key"],
                )
            ):
                self.rows += 1
                if len(e.rows) > 8 * self.limit:  # a very busy key: keep its most recent rows
                    self.rows -= e.trim(4 * self.limit)
        self._bound()
        return xmin

    def _put(self, k: MatterKey, e: _Entry) -> None:
        self._drop(k)
        self.entries[k] = e
        self.by_name[(k.kind, k.key)] = e
        self.rows += len(e.rows)
        self._bound()

    def _drop(self, k: MatterKey) -> None:
        old = self.entries.pop(k, None)
        if old is not None:
            self.rows -= len(old.rows)
            del self.by_name[(k.kind, k.key)]

    def _bound(self) -> None:
        while self.rows > self.max_rows and self.entries:
            k, old = self.entries.popitem(last=False)
            self.rows -= len(old.rows)
            del self.by_name[(k.kind, k.key)]
