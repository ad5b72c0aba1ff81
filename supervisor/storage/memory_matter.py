"""The same-matter half of MemoryStore: the index PgStore keeps in matter_keys (pg_matter.py), in a
dict. The matching itself is pure (supervisor/core/matter.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from supervisor.core.events import Event
from supervisor.core.matter import Candidate, MatterKey, MatterSpec, matches
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
        keys, in time order, so a batch's earlier tickets are candidates for its later ones."""
        for ev in sorted((e for e in events if e.type == "created"), key=lambda e: e.at):
            keys = matter.keys(ev.data)
            if not keys:
                continue
            found = self.matter_candidates(keys, ev.at - matter.horizon, ev.at)
            counts.setdefault(ev.id, {}).update(matter.fields(ev.ticket, ev.at, ev.data, found))
            me = matter.candidate(ev.ticket, ev.at, ev.data)
            for k in keys:
                self.matter_index.setdefault((k.kind, k.key), []).append(me)

    def matter_candidates(
        self, keys: Iterable[MatterKey], lo: datetime, hi: datetime
    ) -> list[Candidate]:
        """Tickets stored under any of `keys`, created in (lo, hi]: the index lookup."""
        out: dict[str, Candidate] = {}
        for k in keys:
            for c in self.matter_index.get((k.kind, k.key), []):
                if lo < c.at <= hi:
                    out.setdefault(c.ticket, c)
        return list(out.values())

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
        found = self.matter_candidates(matter.keys(data), me.created_at - matter.horizon, hi)
        same = matches(ticket, me.address, me.summary, found, matter.config)
        rows = [LinkedTicket(c.ticket, c.at, c.caller) for c in same]
        rows.append(LinkedTicket(ticket, me.created_at, me.caller_hash))
        return sorted(rows, key=lambda r: (r.created_at, r.ticket))

    async def matter_links(self, ticket: str, matter: MatterSpec) -> list[str]:
        """The other tickets about the same matter, before and after it (ticket view)."""
        rows = self.matter_linked(ticket, matter, both_ways=True)
        return [r.ticket for r in rows if r.ticket != ticket]
