"""Whose turn it is with a ticket, among this process's batches in flight.

Consecutive requests from the platform are about many of the same tickets (a ticket created in
one request is dispatched in the next). A batch locks its tickets for its whole transaction, so
a batch that shares one ticket with the batch before it used to wait for all of that batch
before doing anything: the batches of a process took turns, one core idle while the other
worked. With turns, a batch first stores and plans the tickets no earlier batch of this process
has in flight, while that batch runs, and only then waits for the earlier batches holding the
rest (pg.py `PgStore.ingest`).

A batch enters with its tickets as it starts and leaves when its transaction has ended
(committed or not). Each ticket remembers the last batch that entered with it; a batch waits
only for those earlier holders, so the waits run from later batches to earlier ones and never
in a circle. This is bookkeeping inside one process: other daemons' batches are ordered by
PostgreSQL's locks as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class Turn:
    """One batch's place: its tickets, and the earlier batches holding some of them."""

    __slots__ = ("done", "tickets", "waits_for")

    def __init__(
        self,
        done: asyncio.Future[None],
        tickets: frozenset[str],
        waits_for: dict[str, asyncio.Future[None]],
    ) -> None:
        self.done = done
        self.tickets = tickets
        self.waits_for = waits_for  # ticket -> the earlier batch's `done`, for the held tickets

    @property
    def contended(self) -> frozenset[str]:
        """The tickets an earlier batch of this process has in flight."""
        return frozenset(self.waits_for)

    async def wait(self, limit_s: float | None) -> bool:
        """Until every earlier batch holding one of these tickets has ended (True), or
        `limit_s` seconds (None: no limit) have passed (False). Never cancels them (asyncio.wait, not gather or wait_for,
        leaves the futures alone)."""
        pending = {f for f in self.waits_for.values() if not f.done()}
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=limit_s)
        return not still


class TicketTurns:
    def __init__(self) -> None:
        self._last: dict[str, asyncio.Future[None]] = {}

    def enter(self, tickets: Iterable[str]) -> Turn:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        mine = frozenset(tickets)
        last = self._last
        waits_for = {}
        for t in mine:
            prev = last.get(t)
            if prev is not None and not prev.done():
                waits_for[t] = prev
            last[t] = done
        return Turn(done, mine, waits_for)

    def leave(self, turn: Turn) -> None:
        if not turn.done.done():
            turn.done.set_result(None)
        last = self._last
        for t in turn.tickets:
            if last.get(t) is turn.done:
                del last[t]

    def __len__(self) -> int:
        """Tickets some batch of this process has in flight."""
        return len(self._last)
