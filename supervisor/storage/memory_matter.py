"""The same-matter half of MemoryStore: the index PgStore keeps in matter_keys (pg_matter.py), in a
dict. The matching itself is pure (supervisor/core/matter.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from supervisor.core.events import Event
from supervisor.core.matter import (
    Candidate,
    MatterKey,
    MatterSpec,
    NewTicket,
    match_batch,
    matches,
)
from supervisor.core.state import TicketState
from supervisor.storage.base import LinkedTicket


class MemoryMatter:
    states: dict[str, TicketState]

    def _init_matter(self) -> None:
        # (kind, key) -> the tickets stored under it, as candidates
        self.matter_index: dict[tuple[str, str], list[Candidate]] = {}

    def _match_created(
        self, events: Sequence[Event], matter: MatterSpec, counts: dict[str, dict[str, int]]
    ) -> None:
        """Adds the same-matter counts of the new `created` events to `counts` and stores their
        keys: the same `match_batch` as PgStore's, over the dict instead of table matter_keys."""
        created = [NewTicket(e.id, e.ticket, e.at, e.data) for e in events if e.type == "created"]
        keys = {k for e in created for k in matter.keys(e.data)}
        if not keys:
            return
        lo = min(e.at for e in created) - matter.horizon
        hi = max(e.at for e in created)
        found = self.matter_lookup(keys, lo, hi, matter.config.max_candidates)
        fields, rows = match_batch(matter, created, found)
        for eid, f in fields.items():
            counts.setdefault(eid, {}).update(f)
        for k, c in rows:
            self.matter_index.setdefault((k.kind, k.key), []).append(c)

    def matter_lookup(
        self, keys: Iterable[MatterKey], lo: datetime, hi: datetime, limit: int
    ) -> dict[MatterKey, list[Candidate]]:
        """Per key, the tickets stored under it created in (lo, hi], at most `limit` (the most
        recent): the index lookup."""
        out: dict[MatterKey, list[Candidate]] = {}
        for k in keys:
            rows = [c for c in self.matter_index.get((k.kind, k.key), []) if lo < c.at <= hi]
            rows.sort(key=lambda c: c.at, reverse=True)
            if rows:
                out[k] = rows[:limit]
        return out

    def matter_linked(
        self, ticket: str, matter: MatterSpec, *, both_ways: bool = False
    ) -> list[LinkedTicket]:
        """The tickets about the same matter as `ticket` within the horizon before it (and after
        it, `both_ways`, for the ticket view), this one included, oldest first."""
        me = self.states.get(ticket)
        if me is None or me.created_at is None:
            return []
        data = {"address": me.address, "grid": me.grid, "summary": me.summary}
        hi = me.created_at + (matter.horizon if both_ways else timedelta(0))
        found = self.matter_lookup(
            matter.keys(data), me.created_at - matter.horizon, hi, matter.config.max_candidates
        )
        pool = (c for cs in found.values() for c in cs)
        same = matches(ticket, me.address, me.summary, pool, matter.config)
        rows = [LinkedTicket(c.ticket, c.at, c.caller) for c in same]
        rows.append(LinkedTicket(ticket, me.created_at, me.caller_hash))
        return sorted(rows, key=lambda r: (r.created_at, r.ticket))

    async def matter_links(self, ticket: str, matter: MatterSpec) -> list[str]:
        """The other tickets about the same matter, before and after it (ticket view)."""
        rows = self.matter_linked(ticket, matter, both_ways=True)
        return [r.ticket for r in rows if r.ticket != ticket]
