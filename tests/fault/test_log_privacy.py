"""Issue 9, defect 5: contacts' phone numbers never reach the logs.

A fault-style run: the daemon (a separate process, JSON logs) against a fake Twilio that loses
the answer to the first post of every message and call ("500 after accept"), so every send is
reconciled through Twilio's list endpoints (`To=+86...` in the query the SDK logs at INFO). Then
the daemon's whole log output is searched for every contact's number in config/contacts.yaml,
in every form (E.164, national, URL-encoded): none may appear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import yaml
from aiohttp import web

from supervisor.config.contacts import normalise_phone
from supervisor.server.logs import mask_phones
from tests.fakes.fake_twilio import FakeTwilio
from tests.fault.conftest import (
    SID,
    TOKEN,
    UNITS,
    DaemonProc,
    daemon_env,
    ingest,
    make_config,
    urgent_ticket_events,
    wait_for,
)
from tests.helpers import CONFIG


class LosingFake(FakeTwilio):
    """Accepts every first post but loses the answer; later posts are accepted normally."""

    def __init__(self) -> None:
        super().__init__(SID, TOKEN)
        self.seen: set[tuple[str, str]] = set()

    def _lose_first(self, to: str, what: str) -> None:
        if (to, what) not in self.seen:
            self.seen.add((to, what))
            self.script("500-after-accept")

    async def _create_message(self, request: web.Request) -> web.Response:
        form = await request.post()
        self._lose_first(str(form.get("To")), str(form.get("Body")))
        return await super()._create_message(request)

    async def _create_call(self, request: web.Request) -> web.Response:
        form = await request.post()
        self._lose_first(str(form.get("To")), str(form.get("Twiml")))
        return await super()._create_call(request)


def contact_numbers() -> list[str]:
    people = yaml.safe_load((CONFIG / "contacts.yaml").read_text(encoding="utf-8"))["people"]
    out = []
    for p in people.values():
        if p.get("phone"):
            e164 = normalise_phone(p["phone"])
            out.append(e164.removeprefix("+86"))  # contained in +86..., %2B86... and 86...
    return out


def test_the_mask_covers_the_forms_libraries_write():
    line = "GET /Messages.json?To=%2B8613800138011&x=1 {'To': '+8613800138012'} 13800138013"
    masked = mask_phones(line)
    assert not any(n in masked for n in ("13800138011", "13800138012", "13800138013"))
    assert "138****8011" in masked


async def test_no_contact_number_in_the_logs_of_a_reconciling_run(tmp_path, pg_url):
    async with LosingFake() as fake:
        cfg = make_config(tmp_path, twilio_url=fake.base_url)
        now = datetime.now(UTC)
        tickets = len(UNITS)
        events = []
        for i in range(tickets):  # one ticket per unit: every liaison and head is written to
            events += urgent_ticket_events(f"2030{i:07d}", now - timedelta(minutes=10), now + timedelta(seconds=3))
        await ingest(pg_url, cfg, events)
        conn = await asyncpg.connect(pg_url)
        daemon = DaemonProc(cfg, daemon_env(pg_url), tmp_path / "daemon.log")
        try:
            await daemon.started()

            async def settled() -> bool:
                return await conn.fetchval(
                    "SELECT count(*) FILTER (WHERE status IN ('pending', 'sending')) = 0 AND count(*) >= $1 FROM outbox",
                    3 * tickets,
                )

            await wait_for(settled, 180, "every reminder to be settled", interval=0.5)
            assert daemon.terminate() == 0, daemon.text()[-3000:]
            log = daemon.text()
        finally:
            daemon.close()
            await conn.close()
        lists = [r for r in fake.requests if r.method == "GET"]

    assert lists, "the run made no reconciliation list calls: it tests nothing"
    assert any("To" in r.query for r in lists)
    assert log.count("\n") > 5
    leaked = [n for n in contact_numbers() if n in log]
    assert not leaked, f"contact numbers in the logs: {len(leaked)}"
