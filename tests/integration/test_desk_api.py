"""GET /api/v1/tickets as docs/api.md describes it: the documented example is the real answer,
keyset pagination walks every ticket once, a bad filter is a 400 that names it."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest

from tests.deskkit import TOKEN, desk_daemon, events, post_events, settled
from tests.helpers import ROOT

AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
SECTION = DOC.split("## The ticket list", 1)[1].split("\n## ", 1)[0]


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


async def test_the_documented_example_is_the_answer(daemon):
    request = re.search(r"```\nGET (\S+)\n", SECTION).group(1)
    example = json.loads(re.search(r"```json\n(.*?)\n```", SECTION, re.S).group(1))
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"http://127.0.0.1:{daemon.port}{request}", headers=AUTH)
        assert resp.status == 200
        assert await resp.json() == example


async def test_keyset_pages_walk_every_ticket_once(daemon):
    base = f"http://127.0.0.1:{daemon.port}/api/v1/tickets"
    seen, after = [], None
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            params = {"limit": "1", **({"after": after} if after else {})}
            body = await (await http.get(base, params=params, headers=AUTH)).json()
            seen += [t["ticket"] for t in body["tickets"]]
            after = body["next"]
            if after is None:
                break
        # newest first: B200 (created 11-25), A100 (11-24), C300 (11-18)
        assert seen == ["B200", "A100", "C300"] and after is None
        urgent = await (await http.get(base, params={"urgent": "true"}, headers=AUTH)).json()
        assert [t["ticket"] for t in urgent["tickets"]] == ["C300"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"view": "late"}, "view"),
        ({"status": "open"}, "status"),
        ({"urgent": "yes"}, "urgent"),
        ({"from": "2026/11/01"}, "from"),
        ({"limit": "ten"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
    ],
)
async def test_a_bad_filter_is_a_400_that_names_it(daemon, query, names):
    async with aiohttp.ClientSession() as http:
        resp = await http.get(
            f"http://127.0.0.1:{daemon.port}/api/v1/tickets", params=query, headers=AUTH
        )
        assert resp.status == 400
        assert (await resp.json())["error"].startswith(f"{names}:")
