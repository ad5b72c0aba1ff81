"""The desk over HTTP on a whole daemon and real PostgreSQL: sign-in, CSRF, limits, roles,
the overview, the list with filters and keyset pages, a ticket, acknowledgements, the audit."""

from __future__ import annotations

import aiohttp
import pytest

from tests.deskkit import (
    PASSWORD,
    TOKEN,
    csrf_of,
    desk_daemon,
    events,
    post_events,
    settled,
    sign_in,
)


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as d:
        await post_events(d.port, events())
        await settled(d)
        yield d


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_sign_in_audit_and_pages(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        assert (await http.get(f"{base}/", allow_redirects=False)).status == 302
        assert (await http.get(f"{base}/tickets.json")).status == 401
        assert await sign_in(http, base, "zhang-min", "wrong password") == 401
        assert await sign_in(http, base, "zhang-min") == 302
        for path in (
            "/",
            "/tickets",
            "/tickets/A100",
            "/units",
            "/messages",
            "/rules",
            "/calendar",
        ):
            resp = await http.get(base + path)
            assert resp.status == 200, path
            html = await resp.text()
            assert "热线督办台" in html and "13812345678" not in html
            twin = await http.get(base + (path.rstrip("/") or "/overview") + ".json")
            assert twin.status == 200 and twin.content_type == "application/json", path
            assert "13812345678" not in await twin.text()
    async with daemon.pool.acquire() as conn:
        rows = await conn.fetch("SELECT actor, action FROM desk_audit ORDER BY id")
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("zhang-min", "sign_in_failed"),
        ("zhang-min", "sign_in"),
    ]


async def test_overview_counts_and_twin(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "zhang-min")
        data = await (await http.get(f"{base}/overview.json")).json()
    units = {u["unit"]: u for u in data["units"]}
    assert units["城管执法中队"]["overdue"] == 1  # A100, sign-off overdue
    assert units["城管执法中队"]["due_today"] == 1  # C300, 16:00
    assert units["城管执法中队"]["escalations"] == 1  # A100's head was called
    assert units["市场监管所"]["awaiting"] == 1 and units["市场监管所"]["overdue"] == 0
    assert data["totals"]["awaiting"] == 2


async def test_units_page_names_the_worst_unit_of_the_week(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "li-hua")
        data = await (await http.get(f"{base}/units.json")).json()
        html = await (await http.get(f"{base}/units")).text()
    worst = data["units"][0]
    assert worst["unit"] == "城管执法中队" and worst["missed_sign_week"] == 1  # A100, due 09:30
    assert worst["messages_month"] == 4  # A100: liaison, head SMS, head call; C300: liaison
    assert worst["escalations_week"] == 2 and worst["open"] == 2
    assert "本周最差：<b>城管执法中队</b>" in html


async def test_list_filters_and_keyset_pages(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "zhang-min")

        async def ids(query: str) -> list[str]:
            body = await (await http.get(f"{base}/tickets.json?{query}")).json()
            return [t["ticket"] for t in body["tickets"]]

        assert await ids("") == ["B200", "A100", "C300"]  # newest first
        assert await ids("view=overdue") == ["A100"]
        assert await ids("view=due_today") == ["C300"]
        assert await ids("unit=市场监管所") == ["B200"]
        assert await ids("urgent=true") == ["C300"]
        assert await ids("category=市容环境&status=signed") == ["C300"]
        assert await ids("q=幸福路") == ["A100", "C300"]
        assert await ids("q=B2") == ["B200"]
        assert await ids("from=2026-11-24&to=2026-11-24") == ["A100"]
        first = await (await http.get(f"{base}/tickets.json?limit=2")).json()
        assert [t["ticket"] for t in first["tickets"]] == ["B200", "A100"] and first["next"]
        second = await (await http.get(f"{base}/tickets.json?limit=2&after={first['next']}")).json()
        assert [t["ticket"] for t in second["tickets"]] == ["C300"] and second["next"] is None
        a100 = next(t for t in first["tickets"] if t["ticket"] == "A100")
        assert a100["deadline"]["overdue"] and a100["deadline"]["text"].startswith("已超期")
        assert a100["caller_masked"] == "138****5678"
        assert (await http.get(f"{base}/tickets.json?view=nope")).status == 400


async def test_api_tickets_needs_the_bearer_token(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{base}/api/v1/tickets")).status == 401
        resp = await http.get(
            f"{base}/api/v1/tickets?view=overdue", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        body = await resp.json()
    assert [t["ticket"] for t in body["tickets"]] == ["A100"] and body["next"] is None


async def test_unit_users_see_their_unit_only(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "sun-li")
        body = await (await http.get(f"{base}/tickets.json?unit=城管执法中队")).json()
        assert [t["ticket"] for t in body["tickets"]] == ["B200"]  # the unit filter is theirs
        assert (await http.get(f"{base}/tickets/A100")).status == 404
        assert (await http.get(f"{base}/tickets/A100.json")).status == 404
        overview = await (await http.get(f"{base}/overview.json")).json()
        assert [u["unit"] for u in overview["units"]] == ["市场监管所"]


async def test_post_without_csrf_is_refused(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "zhang-min")
        resp = await http.post(f"{base}/tickets/A100/ack", data={"rule": "sign-off", "cycle": "1"})
        assert resp.status == 403
        resp = await http.post(
            f"{base}/tickets/A100/ack", data={"rule": "sign-off", "cycle": "1", "csrf": "forged"}
        )
        assert resp.status == 403
    async with daemon.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT status FROM ladders WHERE ticket = 'A100' AND rule = 'sign-off'"
            )
            == "active"
        )
    async with session() as http:  # the sign-in form too
        resp = await http.post(f"{base}/signin", data={"login": "zhang-min", "password": PASSWORD})
        assert resp.status == 403


async def test_failed_sign_ins_are_rate_limited(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        for _ in range(5):
            assert await sign_in(http, base, "li-hua", "wrong password") == 401
        assert await sign_in(http, base, "li-hua") == 429  # the right password, too late
    async with daemon.pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM desk_audit WHERE action = 'sign_in_locked'")
            == 1
        )
        assert await conn.fetchval(
            "SELECT count(*) FROM desk_audit WHERE action = 'account_locked' AND actor = 'li-hua'"
        ) == 1


async def test_liaison_ack_ends_only_the_liaisons_steps_supervisor_ends_the_ladder(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "wang-qiang")
        page = await (await http.get(f"{base}/tickets/A100")).text()
        assert 'data-ack="sign-off"' in page
        resp = await http.post(f"{base}/tickets/A100/ack", allow_redirects=False,
                               data={"rule": "sign-off", "cycle": "1", "csrf": csrf_of(page)})  # fmt: skip
        assert resp.status == 303
    async with daemon.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT status FROM ladders WHERE ticket = 'A100' AND rule = 'sign-off'"
            )
            == "active"
        )
        audit = await conn.fetchrow(
            "SELECT actor, role, steps FROM desk_audit WHERE action = 'ack'"
        )
        assert dict(audit) == {"actor": "wang-qiang", "role": "liaison", "steps": [0]}
    async with session() as http:
        await sign_in(http, base, "zhang-min")
        page = await (await http.get(f"{base}/tickets/A100")).text()
        resp = await http.post(
            f"{base}/tickets/A100/ack",
            data={"rule": "sign-off", "cycle": "1", "csrf": csrf_of(page)},
        )
        html = await resp.text()
        assert (
            resp.status == 200
            and "已确认，本条督办结束" in html
            and "已由张敏（街道热线专员）" in html
        )
        detail = await (await http.get(f"{base}/tickets/A100.json")).json()
    assert all(m["ack"] for m in detail["messages"] if m["rule"] == "sign-off")
    async with daemon.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, acked_by FROM ladders WHERE ticket = 'A100' AND rule = 'sign-off'"
        )
        assert dict(row) == {"status": "acked", "acked_by": "zhang-min (supervisor)"}
        assert (
            await conn.fetchval("SELECT count(*) FROM acks WHERE ticket = 'A100' AND via = 'desk'")
            == 2
        )


async def test_a_head_ends_the_liaison_and_head_steps_not_the_supervisors(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        await sign_in(http, base, "sun-li")  # another unit: the ladder does not exist for them
        page = await (await http.get(f"{base}/tickets")).text()
        resp = await http.post(
            f"{base}/tickets/A100/ack",
            data={"rule": "sign-off", "cycle": "1", "csrf": csrf_of(page)},
        )
        assert resp.status == 404
    async with session() as http:
        await sign_in(http, base, "zhao-gang")
        page = await (await http.get(f"{base}/tickets/A100")).text()
        resp = await http.post(
            f"{base}/tickets/A100/ack",
            data={"rule": "sign-off", "cycle": "1", "csrf": csrf_of(page)},
        )
        assert resp.status == 200 and "上级督办继续" in await resp.text()
        detail = await (await http.get(f"{base}/tickets/A100.json")).json()
    ladder = next(x for x in detail["ladders"] if x["rule"] == "sign-off")
    assert ladder["status"] == "active" and ladder["next"]["roles"] == ["街道热线专员"]
    assert {m["role"]: m["ack"]["by"] for m in detail["messages"] if m["rule"] == "sign-off"} == {
        "liaison": "zhao-gang", "head": "zhao-gang"}  # fmt: skip
    assert "caller_hash" not in str(detail)
    async with daemon.pool.acquire() as conn:
        assert await conn.fetchval("SELECT steps FROM desk_audit WHERE action = 'ack'") == [0, 1]
        assert await conn.fetchval(
            "SELECT status FROM timers WHERE ticket = 'A100' AND rule = 'sign-off' AND step = 2") == "pending"  # fmt: skip


async def test_rules_page_shows_the_last_reload_and_its_errors(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    assert await daemon.reload("测试") is False  # the test's config folder holds only users.yaml
    async with session() as http:
        await sign_in(http, base, "zhang-min")
        data = await (await http.get(f"{base}/rules.json")).json()
        html = await (await http.get(f"{base}/rules")).text()
    assert data["last_reload"]["ok"] is False and data["last_reload"]["errors"]
    assert "被拒绝，仍使用原规则" in html and data["last_reload"]["errors"][0] in html.replace(
        "&#39;", "'"
    )
    sign_off = next(r for r in data["rules"] if r["id"] == "sign-off")
    assert sign_off["pending_timers"] == 4  # A100: the supervisor (10:30); B200: all three
    assert [s["when"] for s in sign_off["steps"]] == [
        "签收时限前30个工作分钟",
        "签收时限到达时",
        "签收时限后1个工作小时",
    ]
