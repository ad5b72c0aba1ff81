"""The desk's sign-in defences in a real Chromium (Debian's, driven by Playwright) against a
whole daemon on real PostgreSQL: sessions ended by sign-out, idle time and a password change;
safe `next=`; no framing; TOTP and SMS (fake Aliyun) two-factor sign-in; a lock lifted by a
supervisor. Screenshots in var/screenshots/ (signin-code, enrol, audit, accounts)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import pyotp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from supervisor.config.notifier_settings import AliyunSmsSettings
from supervisor.desk.users import add_user
from tests.browser.test_desk_browser import CHROMIUM, DESKTOP, PHONE, shot
from tests.deskkit import PASSWORD, desk_daemon
from tests.fakes import fake_aliyun
from tests.fakes.fake_aliyun import FakeAliyun


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--lang=zh-CN"])
        yield b
        await b.close()


async def new_page(browser: Browser, viewport=DESKTOP) -> Page:
    return await (await browser.new_context(viewport=viewport, locale="zh-CN")).new_page()


async def sign_in(page: Page, base: str, login: str, password: str = PASSWORD,
                  path: str = "/") -> None:  # fmt: skip
    await page.goto(f"{base}{path}")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", password)
    await page.click("form[action='/signin'] button[type=submit]")


async def test_sessions_end_on_sign_out_and_password_change(pg_url, tmp_path, browser):
    # the default idle time (30 minutes): under load a step can take seconds, and a short idle
    # time would end these sessions before sign-out or the password change did
    async with desk_daemon(pg_url, tmp_path) as d:
        base = f"http://127.0.0.1:{d.port}"
        page = await new_page(browser)
        await sign_in(page, base, "zhang-min")
        await expect(page.locator("h1")).to_contain_text("总览")
        cookies = await page.context.cookies()
        await page.click("form[action='/signout'] button")
        await expect(page).to_have_url(f"{base}/signin")
        # the old cookie, put back: refused
        await page.context.add_cookies(cookies)
        await page.goto(f"{base}/tickets")
        await expect(page).to_have_url(re.compile(r"/signin\?next="))
        # a password change signs the account out on another device (another browser context)
        one, two = await new_page(browser), await new_page(browser, PHONE)
        for p in (one, two):
            await sign_in(p, base, "wang-qiang")
            await expect(p.locator("h1")).to_contain_text("总览")
        await one.click("header a.who")
        await one.click("a[href='/account/password']")
        await one.fill("input[name=current]", PASSWORD)
        await one.fill("input[name=new]", "Fresh-Pass-2027")
        await one.fill("input[name=again]", "Fresh-Pass-2027")
        await one.click("form[action='/account/password'] button")
        await expect(one.locator("p.ok")).to_contain_text("密码已修改")
        await two.goto(f"{base}/tickets")
        await expect(two).to_have_url(re.compile(r"/signin\?next=/tickets"))


async def test_a_session_ends_after_its_idle_time(pg_url, tmp_path, browser):
    async with desk_daemon(pg_url, tmp_path, security={"idle_timeout_s": 4}) as d:
        base = f"http://127.0.0.1:{d.port}"
        page = await new_page(browser)
        await sign_in(page, base, "zhang-min")
        await expect(page.locator("h1")).to_contain_text("总览")
        await asyncio.sleep(4.5)  # four seconds without a request
        await page.goto(f"{base}/units")
        await expect(page).to_have_url(re.compile(r"/signin\?next=/units"))


@pytest.mark.parametrize("nxt", ["/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example",
                                 "//evil.example", "/%5Cevil.example", "/\\evil.example"])  # fmt: skip
async def test_next_values_pointing_away_land_on_the_desk(pg_url, tmp_path, browser, nxt):
    async with desk_daemon(pg_url, tmp_path) as d:
        base = f"http://127.0.0.1:{d.port}"
        page = await new_page(browser)
        await sign_in(page, base, "sun-li", path=f"/signin?next={nxt}")
        await expect(page.locator("h1")).to_contain_text("总览")
        assert page.url == f"{base}/"


async def test_a_framed_desk_is_refused(pg_url, tmp_path, browser):
    async with desk_daemon(pg_url, tmp_path) as d:
        base = f"http://127.0.0.1:{d.port}"
        page = await new_page(browser)
        await sign_in(page, base, "zhang-min")
        await expect(page.locator("h1")).to_contain_text("总览")
        evil = web.Application()

        async def framing(_: web.Request) -> web.Response:
            html = f'<!doctype html><h1>抽奖</h1><iframe id="f" src="{base}/tickets/A100"></iframe>'
            return web.Response(text=html, content_type="text/html")

        evil.router.add_get("/", framing)
        runner = web.AppRunner(evil)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            await page.goto(f"http://127.0.0.1:{port}/")
            await expect(page.locator("h1")).to_have_text("抽奖")
            await page.wait_for_timeout(1000)
            frame = page.frame_locator("#f")
            assert await frame.locator("text=确认收到").count() == 0
            assert await frame.locator("text=工单").count() == 0
        finally:
            await runner.cleanup()


async def test_totp_enrolment_and_sign_in(pg_url, tmp_path, browser):
    async with desk_daemon(pg_url, tmp_path, security={"two_factor_roles": ["supervisor", "leader"]}) as d:
        base = f"http://127.0.0.1:{d.port}"
        page = await new_page(browser)
        await sign_in(page, base, "zhang-min", path="/tickets")
        await expect(page.locator("h1")).to_have_text("绑定身份验证器")
        await expect(page.locator("figure.qr svg")).to_be_visible()
        await shot(page, "enrol-totp")
        secret = (await page.locator("code.secret").inner_text()).replace(" ", "")
        await page.fill("input[name=code]", pyotp.TOTP(secret).now())
        await page.click("form[action='/account/2fa'] button")
        await expect(page.locator("ol.codes li")).to_have_count(10)
        await page.click("a.button")
        await expect(page).to_have_url(f"{base}/tickets")
        await page.click("form[action='/signout'] button")
        # again: password, then the next code of the authenticator
        await sign_in(page, base, "zhang-min")
        await expect(page.locator("h1")).to_have_text("两步验证")
        await shot(page, "signin-code")
        await page.fill("form.code input[name=code]", "000000")
        await page.click("form.code button")
        await expect(page.locator(".error")).to_contain_text("验证码错误")
        totp = pyotp.TOTP(secret)
        await page.fill("form.code input[name=code]", totp.at(int(time.time()) + 30))  # not the one used
        await page.click("form.code button")
        await expect(page.locator("h1")).to_contain_text("总览")


async def test_sms_code_sign_in_through_the_fake_aliyun(pg_url, tmp_path, browser):
    async with FakeAliyun() as fake:
        notifiers = {"aliyun": AliyunSmsSettings(endpoint=fake.endpoint, protocol="http", timeout_s=2)}
        security = {"two_factor_roles": ["leader"],
                    "sms": {"template_code": "SMS_900001", "sign_name": "某某街道办事处"}}  # fmt: skip
        env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": fake_aliyun.KEY_ID,
               "ALIBABA_CLOUD_ACCESS_KEY_SECRET": fake_aliyun.KEY_SECRET}  # fmt: skip
        from tests.helpers import loaded

        base_settings = loaded().settings
        async with desk_daemon(pg_url, tmp_path, security=security, env_extra=env, settings_update={
            "notifiers": base_settings.notifiers.model_copy(update=notifiers)}) as d:  # fmt: skip
            add_user(d.loaded.config_dir / "users.yaml", "he-ping", "leader", None,
                     "Leader-pass-135", phone="+8613800138000")  # fmt: skip
            base = f"http://127.0.0.1:{d.port}"
            page = await new_page(browser, PHONE)
            await sign_in(page, base, "he-ping", "Leader-pass-135")
            await expect(page.locator("h1")).to_have_text("两步验证")
            await page.click("form[action='/signin/sms'] button")
            await expect(page.locator("p.ok")).to_contain_text("138****8000")
            [sent] = fake.messages
            assert sent["TemplateCode"] == "SMS_900001" and sent["PhoneNumbers"].endswith("13800138000")
            await page.fill("form.code input[name=code]", sent["TemplateParam"]["code"])
            await page.click("form.code:has(input[value=sms]) button")
            await expect(page.locator("h1")).to_contain_text("总览")
            async with d.pool.acquire() as conn:
                rows = await conn.fetch("SELECT action, detail FROM desk_audit WHERE actor = 'he-ping' ORDER BY id")
            assert [r["action"] for r in rows] == ["sign_in", "sms_code_sent", "two_factor_ok"]
            assert "13800138000" not in str([dict(r) for r in rows])


async def test_a_locked_account_is_unlocked_by_a_supervisor(pg_url, tmp_path, browser):
    async with desk_daemon(pg_url, tmp_path) as d:
        base = f"http://127.0.0.1:{d.port}"
        liaison = await new_page(browser)
        for _ in range(5):
            await sign_in(liaison, base, "sun-li", "wrong-password")
            await expect(liaison.locator(".error")).to_be_visible()
        await sign_in(liaison, base, "sun-li")
        await expect(liaison.locator(".error")).to_contain_text("已锁定")
        await shot(liaison, "signin-locked")
        boss = await new_page(browser)
        await sign_in(boss, base, "zhang-min")
        await boss.click("nav a[href='/accounts']")
        row = boss.locator("tr[data-login='sun-li']")
        await expect(row).to_contain_text("已锁定")
        await shot(boss, "accounts")
        await row.locator("form[action='/accounts/unlock'] button").click()
        await expect(boss.locator("p.ok")).to_contain_text("已解锁账号 sun-li")
        await sign_in(liaison, base, "sun-li")
        await expect(liaison.locator("h1")).to_contain_text("总览")
        await boss.click("nav a[href='/audit']")
        await expect(boss.locator("table.audit")).to_contain_text("账号解锁")
        await expect(boss.locator("table.audit")).to_contain_text("账号锁定")
        await shot(boss, "audit")


async def test_no_page_breaks_the_content_security_policy(pg_url, tmp_path, browser):
    async with desk_daemon(pg_url, tmp_path) as d:
        base = f"http://127.0.0.1:{d.port}"
        page = await new_page(browser)
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        await sign_in(page, base, "zhang-min")
        await expect(page.locator("h1")).to_contain_text("总览")
        for path in ("/", "/tickets", "/units", "/messages", "/rules", "/calendar", "/stats",
                     "/import", "/audit", "/accounts", "/account", "/account/2fa", "/no-such-page"):  # fmt: skip
            await page.goto(f"{base}{path}")
            await page.wait_for_load_state("networkidle")
        await page.goto(f"{base}/stats")
        color = await page.evaluate("getComputedStyle(document.querySelector('.report th')).backgroundColor")
        assert color == "rgb(232, 238, 246)"  # the stylesheet that replaced the inline <style>
        assert violations == []
