"""Issue 23: an outage reaches people who can act. Twilio carries every SMS and call and goes
down (connections refused); a WeCom robot is configured as the fallback. The supervisor and the
leader are both told on the robot, the desk shows a banner to everyone signed in, and it goes
when Twilio is back. Without any fallback, `check` warns that an outage would reach nobody.

The daemon is the real one (in-process, real PostgreSQL, its own loops on a real clock shifted
to a Wednesday morning); Twilio is the fake on 127.0.0.1, the robot a small server there too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from supervisor.config.notifier_settings import NotifierSettings
from supervisor.delivery.outage import OUTAGE_RULE
from supervisor.server.daemon import Daemon
from tests.deskkit import NOW, TOKEN, ShiftedClock, sign_in, until, without_two_factor, write_users
from tests.fakes.fake_twilio import FakeTwilio
from tests.helpers import CONFIG, ROOT, loaded

SID = "AC" + "0" * 32
SECRET = "test-token"


class FakeRobot:
    """A WeCom group robot: records each message, answers errcode 0."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def __aenter__(self) -> FakeRobot:
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=robot-key"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def texts(self) -> list[str]:
        return [str(m.get("text", {}).get("content", "")) for m in self.received]


@pytest.fixture
async def world(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[Daemon, FakeTwilio, FakeRobot]]:
    async with FakeTwilio(SID, SECRET) as fake, FakeRobot() as robot:
        base = loaded()
        s = base.settings
        notifiers = NotifierSettings.model_validate({
            "twilio": {"from_number": "+8610000000000", "base_url": fake.base_url},
            "wecom": {"webhook_url_env": "WECOM_WEBHOOK_URL"},
        })  # fmt: skip
        s = s.model_copy(update={
            "http": s.http.model_copy(update={"port": 0}),
            "privacy": s.privacy.model_copy(update={"caller_key_file": str(tmp_path / "caller.key")}),
            "notifiers": notifiers,
            "delivery": s.delivery.model_copy(update={"group_window_s": 0}),
        })  # fmt: skip
        s = without_two_factor(s)
        cfg = tmp_path / "config"
        cfg.mkdir()
        write_users(cfg)
        env = {"DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": TOKEN, "HOTLINE_DESK_KEY": "k",
               "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": SECRET,
               "WECOM_WEBHOOK_URL": robot.url}  # fmt: skip
        daemon = Daemon(replace(base, settings=s, config_dir=cfg), env=env, clock=ShiftedClock(NOW))
        await daemon.start()
        try:
            yield daemon, fake, robot
        finally:
            await daemon.stop()


async def banner_for(port: int, login: str) -> bool:
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await sign_in(http, base, login) in (302, 303)
        page = await (await http.get(f"{base}/")).text()
    return 'class="outage"' in page and "无法发送" in page


async def test_an_outage_is_told_on_the_robot_and_shown_on_the_desk(world) -> None:
    daemon, fake, robot = world
    threshold = daemon.loaded.settings.delivery.breaker_threshold
    await fake.go_away()  # Twilio refuses connections
    now = daemon.clock.now()
    for i in range(threshold + 2):  # urgent reminders to a liaison: they fail, the breaker opens
        await daemon.pool.execute(
            """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, address, channel,
                                   text, urgent, not_before, created_at)
               VALUES ($1, 'sign-off', 1, 0, 'liaison', 'wang-qiang', '+8613800138011', 'sms',
                       $2, true, $3, $3)""",
            f"T{i}", f"工单T{i}请签收", now - timedelta(seconds=1),
        )  # fmt: skip
    daemon.wake_dispatcher.set()

    async def told_on_the_robot() -> bool:
        texts = robot.texts()
        return any("张敏" in t for t in texts) and any("李华" in t for t in texts)

    await until(told_on_the_robot, "the supervisor and the leader told on the robot", tries=300)
    down = [t for t in robot.texts() if "暂时无法发送" in t]
    assert len(down) == 2 and any("张敏" in t for t in down) and any("李华" in t for t in down)
    notices = await daemon.pool.fetch(
        "SELECT recipient, role, channel, status FROM outbox WHERE rule = $1", OUTAGE_RULE
    )
    assert {(n["recipient"], n["role"], n["channel"]) for n in notices} == {
        ("zhang-min", "supervisor", "wecom"),
        ("li-hua", "leader", "wecom"),
    }  # not on SMS or calls: Twilio carries both

    async def recorded_sent() -> bool:  # the robot answers before the row is marked sent
        rows = await daemon.pool.fetch("SELECT status FROM outbox WHERE rule = $1", OUTAGE_RULE)
        return all(r["status"] == "sent" for r in rows)

    await until(recorded_sent, "the outage notices recorded as sent", tries=300)
    # the desk: a banner for everyone signed in, the supervisor as a liaison
    assert daemon.outages.keys() == {"twilio"}
    assert await banner_for(daemon.port, "zhang-min")
    assert await banner_for(daemon.port, "wang-qiang")
    # nothing given up meanwhile: the reminders wait for Twilio
    assert (
        await daemon.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE ticket LIKE 'T%' AND status = 'failed'"
        )
        == 0
    )

    await fake.come_back()
    breaker = daemon.dispatcher.breaker("twilio")
    await daemon.dispatcher._provider_up(breaker)  # the next probe's success, without the wait
    assert daemon.outages == {}
    assert not await banner_for(daemon.port, "zhang-min")


def test_check_warns_when_an_outage_would_reach_nobody(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    shutil.copytree(CONFIG, cfg)
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    settings = cfg / "settings.yaml"
    text = settings.read_text(encoding="utf-8")
    twilio = 'notifiers:\n  console: {}\n  twilio:\n    from_number: "+8610000000000"\n'
    settings.write_text(text.replace("notifiers:\n  console: {}\n", twilio), encoding="utf-8")
    env = {**os.environ, "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": SECRET}

    def check() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(cfg), "check"],
                              capture_output=True, text=True, timeout=120, env=env)  # fmt: skip

    proc = check()
    assert proc.returncode == 0, proc.stderr
    warning = next(ln for ln in proc.stdout.splitlines() if "outage notice" in ln)
    assert warning.startswith("warning: ") and "张敏、李华" in warning and "on twilio" in warning
    # with a robot as the fallback, no warning
    robot = twilio + "  wecom: {webhook_url_env: WECOM_WEBHOOK_URL}\n"
    settings.write_text(text.replace("notifiers:\n  console: {}\n", robot), encoding="utf-8")
    env["WECOM_WEBHOOK_URL"] = "http://127.0.0.1:9/cgi-bin/webhook/send?key=x"
    proc = check()
    assert proc.returncode == 0, proc.stderr
    assert "outage notice" not in proc.stdout
