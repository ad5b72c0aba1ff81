"""Issue 18: acknowledging twice answers 409 and is recorded once, on the desk and in the API;
parallel repeats too (the ladder row is locked while the earlier acknowledgements are read)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.deskkit import TOKEN, csrf_of, desk_daemon, events, post_events, settled, sign_in

API = {"Authorization": f"Bearer {TOKEN}"}


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


async def _counts(daemon) -> tuple[int, int]:
    async with daemon.pool.acquire() as conn:
        audit = await conn.fetchval("SELECT count(*) FROM desk_audit WHERE action = 'ack'")
        acks = await conn.fetchval("SELECT count(*) FROM acks WHERE ticket = 'A100'")
    return audit, acks


@pytest.mark.parametrize("login", ["wang-qiang", "zhang-min"])  # a partial and a whole ack
async def test_a_second_desk_ack_is_a_409_with_one_audit_row(daemon, login):
    base = f"http://127.0.0.1:{daemon.port}"
    form = {"rule": "sign-off", "cycle": "1"}
    async with session() as http:
        await sign_in(http, base, login)
        csrf = csrf_of(await (await http.get(f"{base}/tickets/A100")).text())
        first = await http.post(f"{base}/tickets/A100/ack", data={**form, "csrf": csrf},
                                allow_redirects=False)  # fmt: skip
        assert first.status == 303
        again = await http.post(f"{base}/tickets/A100/ack", data={**form, "csrf": csrf},
                                allow_redirects=False)  # fmt: skip
        assert again.status == 409 and "已确认" in await again.text()
    assert await _counts(daemon) == (1, 1)


async def test_parallel_desk_acks_record_one(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "wang-qiang")
        csrf = csrf_of(await (await http.get(f"{base}/tickets/A100")).text())
        resps = await asyncio.gather(*(
            http.post(f"{base}/tickets/A100/ack", allow_redirects=False,
                      data={"rule": "sign-off", "cycle": "1", "csrf": csrf})
            for _ in range(6)
        ))  # fmt: skip
        assert sorted(r.status for r in resps) == [303, 409, 409, 409, 409, 409]
    assert await _counts(daemon) == (1, 1)


async def test_a_second_api_ack_is_a_409(daemon):
    url = f"http://127.0.0.1:{daemon.port}/api/v1/tickets/A100/ack"
    async with aiohttp.ClientSession() as http:
        first = await http.post(url, json={"rule": "sign-off"}, headers=API)
        assert first.status == 200, await first.text()
        again = await http.post(url, json={"rule": "sign-off"}, headers=API)
        assert again.status == 409
        assert "already acknowledged" in (await again.json())["error"]
        # a ticket that never had an escalation for that rule is still a 422, not a repeat
        other = await http.post(url, json={"rule": "no-such-rule"}, headers=API)
        assert other.status == 422
    assert (await _counts(daemon))[1] == 1
