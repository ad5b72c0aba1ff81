"""The desk against an attacker (issue 18, part A): sessions the server ends, sign-in limits
that cannot be raced and do not lock out the innocent, safe redirects, security headers on every
answer, error pages, the audit trail (append-only, pruned, exported formula-safe), accounts."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta

import aiohttp
import asyncpg
import pytest

from supervisor.desk.users import add_user
from tests.deskkit import PASSWORD, csrf_of, desk_daemon, sign_in

HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@pytest.fixture
async def daemon(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path, security={"idle_timeout_s": 3}) as d:
        yield d


async def test_a_signed_out_or_idle_session_reads_nothing(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        assert await sign_in(http, base, "zhang-min") == 302
        old = {c.key: c.value for c in http.cookie_jar}
        page = await (await http.get(f"{base}/tickets")).text()
        token = csrf_of(page)
        resp = await http.post(f"{base}/signout", data={"csrf": token}, allow_redirects=False)
        assert resp.status == 302
    async with aiohttp.ClientSession(cookies=old) as replay:  # the old cookie, replayed
        assert (await replay.get(f"{base}/tickets.json")).status == 401
        resp = await replay.get(f"{base}/tickets/A100", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/signin")
        resp = await replay.post(f"{base}/tickets/A100/ack", allow_redirects=False,
                                 data={"rule": "sign-off", "cycle": "1", "csrf": token})  # fmt: skip
        assert resp.status == 302 and resp.headers["Location"].startswith("/signin")
    async with daemon.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM desk_audit WHERE action = 'ack'") == 0
        assert await conn.fetchval("SELECT count(*) FROM desk_sessions") == 0
    # idle: a request within the timeout keeps the session; 3 s without one ends it
    async with session() as http:
        assert await sign_in(http, base, "li-hua") == 302
        for _ in range(3):
            await asyncio.sleep(1.2)
            assert (await http.get(f"{base}/tickets.json")).status == 200
        await asyncio.sleep(3.3)
        assert (await http.get(f"{base}/tickets.json")).status == 401
    async with daemon.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT actor, detail FROM desk_audit WHERE action = 'session_ended'")
        assert row["actor"] == "li-hua" and row["detail"]["reason"] == "idle"


async def test_forty_parallel_wrong_passwords_count_at_most_the_limit(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    limit = daemon.loaded.settings.desk.security.lock_after
    async with session() as http, session() as other:
        token = csrf_of(await (await http.get(f"{base}/signin")).text())
        other_token = csrf_of(await (await other.get(f"{base}/signin")).text())
        answered = asyncio.Event()
        statuses: list[int] = []

        async def attempt(password: str, jar: aiohttp.ClientSession, csrf: str, login: str) -> int:
            resp = await jar.post(f"{base}/signin", allow_redirects=False, data={
                "login": login, "password": password, "csrf": csrf, "next": "/"})  # fmt: skip
            statuses.append(resp.status)
            if len([s for s in statuses if s in (401, 429)]) >= limit:
                answered.set()
            return resp.status

        async def right_one_after_the_lock() -> int:
            await answered.wait()
            return await attempt(PASSWORD, http, token, "li-hua")

        async def someone_else() -> int:  # another account, same address, same moment
            await answered.wait()
            return await attempt(PASSWORD, other, other_token, "zhang-min")

        wrong = [attempt(f"wrong-{i}", http, token, "li-hua") for i in range(40)]
        *results, right, innocent = await asyncio.gather(
            *wrong, right_one_after_the_lock(), someone_else()
        )
    assert right == 429  # the right password, refused while locked
    assert innocent == 302  # never refused for someone else's failures
    assert results.count(401) + results.count(429) == 40 and 302 not in results
    async with daemon.pool.acquire() as conn:
        failed = await conn.fetchval(
            "SELECT count(*) FROM desk_audit WHERE action = 'sign_in_failed' AND actor = 'li-hua'"
        )
        assert failed <= limit
        counter = await conn.fetchrow(
            "SELECT failures, locked_until FROM desk_signin_counters WHERE key = 'u:li-hua'"
        )
        assert counter["failures"] == limit and counter["locked_until"] is not None
        assert await conn.fetchval(
            "SELECT count(*) FROM desk_audit WHERE action = 'account_locked'"
        ) == 1
    # a supervisor sees the lock and lifts it; then the right password works
    async with session() as http:
        locked = await (await http.get(f"{base}/accounts.json")).json()  # not signed in
        assert "accounts" not in locked
        assert await sign_in(http, base, "zhang-min") == 302
        data = await (await http.get(f"{base}/accounts.json")).json()
        assert [a["login"] for a in data["accounts"] if a["locked_until"]] == ["li-hua"]
        token = csrf_of(await (await http.get(f"{base}/accounts")).text())
        resp = await http.post(f"{base}/accounts/unlock", data={"login": "li-hua", "csrf": token},
                               allow_redirects=False)  # fmt: skip
        assert resp.status == 303
    async with session() as http:
        assert await sign_in(http, base, "li-hua") == 302
    async with daemon.pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM desk_audit WHERE action = 'account_unlocked' AND actor = 'zhang-min'"
        ) == 1


async def test_an_address_past_its_limit_slows_failures_only(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path, security={"address_limit": 3, "address_delay_s": 0.2}) as d:
        base = f"http://127.0.0.1:{d.port}"
        async with session() as http:
            statuses = [await sign_in(http, base, f"nobody-{i}", "x") for i in range(5)]
            assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
            assert await sign_in(http, base, "sun-li") == 302  # never failed: let in


@pytest.mark.parametrize("nxt", ["/\t/evil.example", "/\n/evil.example", "/\r/evil.example",
                                 "//evil.example", "/\\evil.example", "/%09/evil.example",
                                 "https://evil.example/", "/%2F/evil.example"])  # fmt: skip
async def test_sign_in_never_sends_anyone_to_another_site(daemon, nxt):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        token = csrf_of(await (await http.get(f"{base}/signin", params={"next": nxt})).text())
        resp = await http.post(f"{base}/signin", allow_redirects=False, data={
            "login": "sun-li", "password": PASSWORD, "csrf": token, "next": nxt})  # fmt: skip
        assert resp.status == 302 and resp.headers["Location"] == "/"
        token = csrf_of(await (await http.get(f"{base}/signin")).text())
        resp = await http.post(f"{base}/signin", allow_redirects=False, data={
            "login": "sun-li", "password": PASSWORD, "csrf": token, "next": "/tickets?view=overdue"})  # fmt: skip
        assert resp.headers["Location"] == "/tickets?view=overdue"


async def test_every_answer_has_the_security_headers_and_errors_have_pages(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        answers = {
            "/signin": await http.get(f"{base}/signin"),
            "/static/desk/desk.css": await http.get(f"{base}/static/desk/desk.css"),
            "/healthz": await http.get(f"{base}/healthz"),
            "/api/v1/openapi.json": await http.get(f"{base}/api/v1/openapi.json"),
            "/api/v1/tickets/A1": await http.get(f"{base}/api/v1/tickets/A1"),
            "/no-such-page": await http.get(f"{base}/no-such-page"),
            "/tickets.json": await http.get(f"{base}/tickets.json"),
            "PUT /signin": await http.put(f"{base}/signin"),
        }
        for where, resp in answers.items():
            for name, value in HEADERS.items():
                assert resp.headers.get(name) == value, (where, name)
            csp = resp.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, where
            assert "unsafe-inline" not in csp
            server = resp.headers.get("Server", "")
            assert "aiohttp" not in server and "Python" not in server, where
        page = answers["/no-such-page"]
        assert page.status == 404 and page.content_type == "text/html"
        text = await page.text()
        assert "页面不存在" in text and 'href="/"' in text and "12345热线督办台" in text
        assert answers["PUT /signin"].status == 405 and "不支持" in await answers["PUT /signin"].text()
        assert answers["/tickets.json"].status == 401
        assert "error" in await answers["/tickets.json"].json()
        assert (await http.get(f"{base}/no-such.json")).content_type == "application/json"
        # the stylesheets the CSP now needs instead of inline <style>
        css = await http.get(f"{base}/desk-css/report_style.css")
        assert css.status == 200 and css.content_type == "text/css" and "<style>" not in await css.text()
        # no ?msg= notice from the query string
        assert await sign_in(http, base, "zhang-min") == 302
        text = await (await http.get(f"{base}/tickets/A100", params={"msg": "伪造的通知"})).text()
        assert "伪造的通知" not in text
        cookie = next(c for c in http.cookie_jar if c.key == "hs_desk")
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]


async def test_secure_cookie_behind_a_proxy_that_says_https(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path, security={"trust_proxy": True}) as d:
        base = f"http://127.0.0.1:{d.port}"
        async with session() as http:
            page = await http.get(f"{base}/signin", headers={"X-Forwarded-Proto": "https"})
            token = csrf_of(await page.text())
            assert page.cookies["hs_pre"]["secure"]
            pre = f"hs_pre={page.cookies['hs_pre'].value}"  # a Secure cookie: by hand over http
            resp = await http.post(f"{base}/signin", allow_redirects=False,
                                   headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.9.8.7",
                                            "Cookie": pre},
                                   data={"login": "sun-li", "password": PASSWORD, "csrf": token, "next": "/"})  # fmt: skip
            assert resp.status == 302
            assert "Secure" in resp.headers.getall("Set-Cookie")[0]
        async with d.pool.acquire() as conn:
            assert await conn.fetchval(
                "SELECT remote FROM desk_audit WHERE action = 'sign_in' AND actor = 'sun-li'"
            ) == "10.9.8.7"


async def test_password_change_ends_the_other_sessions_and_a_temporary_one_must_change(
    daemon, tmp_path
):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as a, session() as b:
        assert await sign_in(a, base, "wang-qiang") == 302
        assert await sign_in(b, base, "wang-qiang") == 302
        token = csrf_of(await (await a.get(f"{base}/account/password")).text())
        weak = await a.post(f"{base}/account/password", data={
            "csrf": token, "current": PASSWORD, "new": "password123", "again": "password123"})  # fmt: skip
        assert weak.status == 422 and "常见" in await weak.text()
        resp = await a.post(f"{base}/account/password", allow_redirects=False, data={
            "csrf": token, "current": PASSWORD, "new": "Nuevo-Pass-2026", "again": "Nuevo-Pass-2026"})  # fmt: skip
        assert resp.status == 302
        assert (await a.get(f"{base}/tickets.json")).status == 200  # this tab goes on
        assert "密码已修改" in await (await a.get(f"{base}/tickets")).text()
        assert (await b.get(f"{base}/tickets.json")).status == 401  # the other one is out
    async with session() as c:
        assert await sign_in(c, base, "wang-qiang") == 401
        assert await sign_in(c, base, "wang-qiang", "Nuevo-Pass-2026") == 302
    # an account made with a temporary password goes to the password page first
    add_user(daemon.loaded.config_dir / "users.yaml", "zhou-yu", "liaison", "市场监管所",
             "Temp-pass-4321", temporary=True)  # fmt: skip
    async with session() as d:
        token = csrf_of(await (await d.get(f"{base}/signin")).text())
        resp = await d.post(f"{base}/signin", allow_redirects=False, data={
            "login": "zhou-yu", "password": "Temp-pass-4321", "csrf": token, "next": "/tickets"})  # fmt: skip
        assert resp.headers["Location"] == "/account/password"
        resp = await d.get(f"{base}/tickets", allow_redirects=False)
        assert resp.headers["Location"] == "/account/password"
        assert (await d.get(f"{base}/tickets.json")).status == 401
        token = csrf_of(await (await d.get(f"{base}/account/password")).text())
        resp = await d.post(f"{base}/account/password", allow_redirects=False, data={
            "csrf": token, "current": "Temp-pass-4321", "new": "Own-pass-98765", "again": "Own-pass-98765"})  # fmt: skip
        assert resp.headers["Location"] == "/tickets"
        assert (await d.get(f"{base}/tickets.json")).status == 200
    async with daemon.pool.acquire() as conn:
        actions = [r["action"] for r in await conn.fetch(
            "SELECT action FROM desk_audit WHERE actor IN ('wang-qiang', 'zhou-yu') ORDER BY id")]  # fmt: skip
        assert actions.count("password_changed") == 2


async def test_audit_page_export_append_only_and_pruning(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        assert await sign_in(http, base, '=HYPERLINK("http://evil.example","x")', "bad") == 401
        assert await sign_in(http, base, "wang-qiang") == 302
        assert (await http.get(f"{base}/audit")).status == 403  # a liaison
    async with session() as http:
        assert await sign_in(http, base, "li-hua") == 302
        page = await (await http.get(f"{base}/audit", params={"action": "sign_in_failed"})).text()
        assert "HYPERLINK" in page and "登录失败" in page and "wang-qiang" not in page
        rows = (await (await http.get(f"{base}/audit.json", params={"actor": "wang-qiang"})).json())["rows"]
        assert [r["action"] for r in rows] == ["sign_in"] and rows[0]["remote"] == "127.0.0.1"
        assert (await http.get(f"{base}/audit", params={"from": "0001-01-01"})).status == 400
        assert (await http.get(f"{base}/audit", params={"action": "drop"})).status == 400
        text = (await (await http.get(f"{base}/audit/export.csv")).read()).decode("utf-8-sig")
        cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
        assert any(c.startswith("'=HYPERLINK") for c in cells)
        assert not any(c.startswith("=") for c in cells)
        xlsx = await (await http.get(f"{base}/audit/export.xlsx")).read()
        from python_calamine import CalamineWorkbook

        sheet = CalamineWorkbook.from_filelike(io.BytesIO(xlsx)).get_sheet_by_name("审计").to_python()
        assert any(isinstance(c, str) and c.startswith("=HYPERLINK") for row in sheet for c in row)
    async with daemon.pool.acquire() as conn:
        for sql in ("UPDATE desk_audit SET actor = 'someone else'", "DELETE FROM desk_audit",
                    "TRUNCATE desk_audit"):  # fmt: skip
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute(sql)
        old = daemon.clock.now() - timedelta(days=181)
        await conn.execute("INSERT INTO desk_audit (at, actor, action) VALUES ($1, 'old', 'sign_in')", old)
        await conn.execute("INSERT INTO desk_audit (at, actor, action) VALUES ($1, 'kept', 'sign_in')",
                           old + timedelta(days=2))  # fmt: skip
    from supervisor.desk.auditlog import prune

    assert await prune(daemon.desk) == 1
    async with daemon.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM desk_audit WHERE actor IN ('old', 'kept')") == 1


async def test_users_yaml_edit_applies_without_reload_or_replan(daemon, caplog):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        assert await sign_in(http, base, "sun-li") == 302
        add_user(daemon.loaded.config_dir / "users.yaml", "qian-feng", "head", "市场监管所",
                 "Head-pass-2468")  # fmt: skip
        for _ in range(2):  # the watcher's turn (2 s); a request between keeps the session alive
            await asyncio.sleep(1.3)
            assert (await http.get(f"{base}/tickets.json")).status == 200
        assert daemon.last_reload is None  # no reload, so no re-plan and no "restart" warning
        assert not any("restart" in r.getMessage() for r in caplog.records)
        assert (await http.get(f"{base}/tickets.json")).status == 200  # others stay signed in
        from supervisor.desk.users import set_password

        set_password(daemon.loaded.config_dir / "users.yaml", "sun-li", "Reset-by-admin-77")
        assert (await http.get(f"{base}/tickets.json")).status == 401  # their session ends
    async with session() as http:
        assert await sign_in(http, base, "qian-feng", "Head-pass-2468") == 302
    async with daemon.pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM desk_audit WHERE action = 'user_added' AND detail->>'account' = 'qian-feng'"
        ) == 1
        assert await conn.fetchval(
            "SELECT detail->>'reason' FROM desk_audit WHERE action = 'session_ended' AND actor = 'sun-li'"
        ) == "account removed or changed"


async def test_a_nul_in_the_sign_in_form_is_a_failed_sign_in_with_its_audit_row(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as http:
        # refused at the edge (a NUL in a form field is a 400 naming it), and still audited
        assert await sign_in(http, base, "a\x00b", "x\x00y") == 400
    async with daemon.pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT actor FROM desk_audit WHERE action = 'sign_in_failed'"
        ) == "a\\u0000b"


async def test_user_unlock_and_end_sessions_from_the_command_line(pg_url, tmp_path, monkeypatch):
    import shutil

    from supervisor import cli
    from tests.helpers import CONFIG, ROOT

    shutil.copytree(CONFIG, tmp_path / "config")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    cfg = str(tmp_path / "config")
    monkeypatch.setenv("DATABASE_URL", pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "INSERT INTO desk_signin_counters VALUES ('u:li', now(), 5, now() + interval '10 min')"
        )
        await conn.execute(
            """INSERT INTO desk_sessions (id_hash, login, csrf, fingerprint, created_at, seen_at,
               expires_at) VALUES ('h1', 'li', 'c', 'f', now(), now(), now() + interval '1 h'),
               ('h2', 'wang', 'c', 'f', now(), now(), now() + interval '1 h')"""
        )
        assert await asyncio.to_thread(cli.main, ["--config", cfg, "user", "unlock", "li"]) == 0
        assert await asyncio.to_thread(cli.main, ["--config", cfg, "user", "unlock", "li"]) == 1
        assert await conn.fetchval("SELECT locked_until FROM desk_signin_counters") is None
        assert await asyncio.to_thread(cli.main, ["--config", cfg, "user", "end-sessions", "li"]) == 0
        assert await conn.fetchval("SELECT array_agg(login) FROM desk_sessions") == ["wang"]
        assert await asyncio.to_thread(cli.main, ["--config", cfg, "user", "end-sessions", "--all"]) == 0
        assert await conn.fetchval("SELECT count(*) FROM desk_sessions") == 0
        rows = await conn.fetch(
            "SELECT action, remote, detail->>'account' AS account FROM desk_audit ORDER BY id"
        )
        assert [(r["action"], r["account"]) for r in rows] == [
            ("account_unlocked", "li"), ("sessions_ended", "li"), ("sessions_ended", "*")]  # fmt: skip
        assert {r["remote"] for r in rows} == {"local"}
    finally:
        await conn.close()


async def test_a_supervisor_ends_every_other_session_at_once(daemon):
    base = f"http://127.0.0.1:{daemon.port}"
    async with session() as boss, session() as a, session() as b:
        for http, login in ((boss, "zhang-min"), (a, "wang-qiang"), (b, "li-hua")):
            assert await sign_in(http, base, login) == 302
        assert (await a.get(f"{base}/accounts")).status == 403  # not for a liaison
        token = csrf_of(await (await boss.get(f"{base}/accounts")).text())
        resp = await boss.post(f"{base}/accounts/end-sessions", data={"csrf": token},
                               allow_redirects=False)  # fmt: skip
        assert resp.status == 303
        assert (await a.get(f"{base}/tickets.json")).status == 401
        assert (await b.get(f"{base}/tickets.json")).status == 401
        assert (await boss.get(f"{base}/tickets.json")).status == 200
        assert "已结束其他全部 2 个登录会话" in await (await boss.get(f"{base}/accounts")).text()
