"""A call acknowledged with a key (issue 19): the whole daemon, the real twilio SDK, the fake
Twilio, the real rules and contacts.

Ticket A100's sign-off ladder: the liaison's SMS is refused (400), so the liaison is called
instead (their contact takes voice); at the deadline the head gets an SMS and a call. Each call's
TwiML is a <Gather numDigits="1"> around its own script. Pressing 2 reads it again; the liaison's
1 ends only the liaison's part (the rank rule, as for an SMS reply); the head's 1 ends the head's,
the supervisor's step still goes; the key and what it did show on 工单详情."""

from __future__ import annotations

import html
import re
import shutil
from dataclasses import replace

import aiohttp
from yarl import URL

from supervisor.server.daemon import Daemon
from tests.deskkit import NOW as DEADLINE_PASSED
from tests.deskkit import (
    START,
    ShiftedClock,
    _sent,
    events,
    post_events,
    sign_in,
    until,
    without_two_factor,
    write_users,
)
from tests.deskkit import (
    TOKEN as API_TOKEN,
)
from tests.fakes.fake_twilio import FakeTwilio, sign
from tests.helpers import CONFIG, loaded

SID, TOKEN = "AC" + "0" * 32, "call-token"
LIAISON, HEAD = "+8613800138011", "+8613800138012"  # contacts.yaml: 王强, 赵刚 (城管执法中队)


async def _daemon(pg_url: str, tmp_path, fake: FakeTwilio) -> Daemon:
    base = loaded()
    s = base.settings
    twilio = {"from_number": "+8610000000000", "base_url": fake.base_url}
    s = s.model_copy(update={
        "http": s.http.model_copy(update={"port": 0}),
        "privacy": s.privacy.model_copy(update={"caller_key_file": str(tmp_path / "caller.key")}),
        "delivery": s.delivery.model_copy(update={"group_window_s": 0, "quiet_hours": None}),
        "ingest": s.ingest.model_copy(update={"future_tolerance_s": 3600}),
        "notifiers": s.notifiers.model_validate({"twilio": twilio}),
    })  # fmt: skip
    cfg = tmp_path / "config"
    cfg.mkdir()
    write_users(cfg)
    shutil.copy(CONFIG / "import.yaml", cfg / "import.yaml")
    env = {"DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": API_TOKEN, "HOTLINE_DESK_KEY": "k",
           "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}  # fmt: skip
    s = without_two_factor(s)
    daemon = Daemon(replace(base, settings=s, config_dir=cfg), env=env, clock=ShiftedClock(START))
    await daemon.start()
    # the public URL of our key webhook (the port is known only now)
    daemon._notifiers["voice"]._settings.gather_url = (  # type: ignore[attr-defined]
        f"http://127.0.0.1:{daemon.port}/twilio/gather"
    )
    return daemon


def _action(twiml: str) -> str:
    actions = {html.unescape(a) for a in re.findall(r'<Gather action="([^"]+)"', twiml)}
    assert len(actions) == 1, twiml
    return actions.pop()


async def press(http: aiohttp.ClientSession, action: str, digits: str, to: str) -> str:
    form = {"AccountSid": SID, "CallSid": "CA" + "e" * 32, "To": to, "Digits": digits}
    # encoded=True: posted to the URL exactly as Twilio has it (the signature covers it)
    resp = await http.post(URL(action, encoded=True), data=form,
                           headers={"X-Twilio-Signature": sign(action, form, TOKEN)})  # fmt: skip
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def test_a_call_is_acknowledged_with_a_key_under_the_rank_rule(pg_url, tmp_path) -> None:
    async with FakeTwilio(SID, TOKEN) as fake:
        fake.script("400")  # the liaison's SMS (the first post): an invalid number
        daemon = await _daemon(pg_url, tmp_path, fake)
        try:
            await post_events(daemon.port, events()[:2])  # A100 only
            await until(_called(fake, LIAISON), "the liaison called instead of the SMS")
            assert isinstance(daemon.clock, ShiftedClock)
            daemon.clock.set(DEADLINE_PASSED)
            daemon.wake_scheduler.set()
            await until(lambda: _sent(daemon, 2), "the head's SMS and call sent")
            await until(_called(fake, HEAD), "the head called")
            liaison_call = next(c for c in fake.calls if c["to"] == LIAISON)
            head_call = next(c for c in fake.calls if c["to"] == HEAD)

            # the TwiML: one key, read twice, the call's own script (not the SMS)
            twiml = head_call["twiml"]
            assert twiml.count('numDigits="1"') == 2 and 'method="POST"' in twiml
            assert "城管执法中队尾号" in twiml and "按1确认收到，按2重听" in twiml
            assert "【" not in twiml and "A100" not in twiml
            # the liaison's fallback call reads the call script rendered for it, not the SMS
            assert "您好，这里是幺二三四五热线督办。" in liaison_call["twiml"]
            assert "【" not in liaison_call["twiml"]

            async with aiohttp.ClientSession() as http:
                # 2: read again, with the key prompt
                again = await press(http, _action(twiml), "2", HEAD)
                assert "<Gather" in again and "城管执法中队尾号" in again
                # a forged key changes nothing
                forged = await http.post(URL(_action(twiml), encoded=True), data={"Digits": "1"},
                                         headers={"X-Twilio-Signature": "forged"})  # fmt: skip
                assert forged.status == 403
                assert await _ladder(daemon) == "active"

                # the liaison's 1: ends the liaison's part only
                said = await press(http, _action(liaison_call["twiml"]), "1", LIAISON)
                assert "更高一级的督办不受影响" in said
                assert await _ladder(daemon) == "active"
                assert await _step(daemon, 2) == "pending"  # the supervisor's escalation

                # the head's 1: the head's part ends; the supervisor's step still goes
                said = await press(http, _action(twiml), "1", HEAD)
                assert "已确认收到" in said and "<Gather" not in said
                assert await _ladder(daemon) == "active"
                assert await _step(daemon, 2) == "pending"
                acks = await daemon.pool.fetch("SELECT by_whom, via FROM acks ORDER BY at")
                assert [(a["by_whom"], a["via"]) for a in acks] == [
                    ("wang-qiang", "voice"), ("zhao-gang", "voice")
                ]
                rows = await daemon.pool.fetch(
                    "SELECT role, channel, keypress, keypress_result FROM outbox "
                    "WHERE ticket = 'A100' AND channel = 'voice' ORDER BY id"
                )
                assert [(r["role"], r["keypress"], r["keypress_result"]) for r in rows] == [
                    ("liaison", "1", "已确认（本级）"), ("head", "1", "已确认（本级）")
                ]

            # 工单详情 shows the key and what it did
            base = f"http://127.0.0.1:{daemon.port}"
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as desk:
                assert await sign_in(desk, base, "zhang-min") in (302, 303)
                page = await (await desk.get(f"{base}/tickets/A100")).text()
                assert page.count("通话按键1：已确认（本级）") == 2, page
        finally:
            await daemon.stop()


def _called(fake: FakeTwilio, to: str):
    async def probe() -> bool:
        return any(c["to"] == to for c in fake.calls)

    return probe


async def _ladder(daemon: Daemon) -> str:
    return await daemon.pool.fetchval(
        "SELECT status FROM ladders WHERE ticket = 'A100' AND rule = 'sign-off'"
    )


async def _step(daemon: Daemon, step: int) -> str:
    return await daemon.pool.fetchval(
        "SELECT status FROM timers WHERE ticket = 'A100' AND rule = 'sign-off' AND step = $1",
        step,
    )
