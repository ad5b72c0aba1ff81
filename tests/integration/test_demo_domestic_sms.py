"""The demo's events through the whole daemon with Aliyun or Tencent Cloud SMS configured: the
fake of the provider receives every SMS the daemon sends, each with the registered template code
of the rule's template and the parameters rendered for that ticket and person."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from supervisor.config.notifier_settings import NotifierSettings
from supervisor.server.daemon import Daemon
from supervisor.tools.demo import run_demo
from tests.fakes import fake_aliyun, fake_tencent
from tests.fakes.fake_aliyun import FakeAliyun
from tests.fakes.fake_tencent import FakeTencent
from tests.helpers import CONFIG, loaded

SIGN = "某某街道办事处"
# Steps of the demo that are due whatever the time of day: urgent tickets (natural time) and
# steps anchored on an event.
ALWAYS_SENT = {"sign_overdue", "sign_reminder", "dispute", "dissatisfied_again"}
QUIESCENT = """
SELECT (SELECT count(*) FROM timers WHERE status = 'pending' AND due_at <= now())
     + (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending') AND not_before <= now())
"""


def daemon_for(tmp_path, pg_url: str, notifiers: dict[str, Any], env: dict[str, str]) -> Daemon:
    base = loaded()
    s = base.settings
    s = s.model_copy(update={
        "http": s.http.model_copy(update={"port": 0}),
        "privacy": s.privacy.model_copy(update={"caller_key_file": str(tmp_path / "caller.key")}),
        # every message goes at once, alone: what the fake receives does not depend on the hour
        "delivery": s.delivery.model_copy(update={"quiet_hours": None, "group_window_s": 0}),
        "notifiers": NotifierSettings.model_validate(notifiers),
    })  # fmt: skip
    return Daemon(replace(base, settings=s), env={"DATABASE_URL": pg_url, **env})


async def run_the_demo(daemon: Daemon) -> list[dict[str, Any]]:
    """Start the daemon, run the demo, wait until nothing due is left; the sent SMS rows."""
    await daemon.start()
    try:
        await run_demo(daemon)
        for _ in range(600):  # a bound so a broken daemon fails the test instead of hanging it
            if await daemon.pool.fetchval(QUIESCENT) == 0:
                break
            await asyncio.sleep(0.1)
        rows = await daemon.pool.fetch(
            "SELECT id, ticket, rule, address, params, provider_id, status FROM outbox WHERE channel = 'sms' ORDER BY id"
        )
    finally:
        await daemon.stop()
    assert rows and all(r["status"] == "sent" for r in rows), [dict(r) for r in rows]
    return [dict(r) for r in rows]


@pytest.fixture
async def aliyun() -> AsyncIterator[FakeAliyun]:
    async with FakeAliyun() as fake:
        yield fake


@pytest.fixture
async def tencent() -> AsyncIterator[FakeTencent]:
    async with FakeTencent() as fake:
        yield fake


def check_dispute(rows: list[dict[str, Any]], params_of) -> None:
    [dispute] = [r for r in rows if r["params"]["template"] == "dispute"]
    assert dispute["ticket"].startswith("DEMO") and dispute["ticket"].endswith("D")
    assert params_of(dispute) == {
        "ticket": dispute["ticket"], "category": "市场管理", "count": "3",
        "returned": "市场监管所、城管执法中队",
    }  # fmt: skip


async def test_the_aliyun_fake_receives_the_demo_sms(tmp_path, pg_url, aliyun) -> None:
    daemon = daemon_for(
        tmp_path, pg_url, {"aliyun": {"endpoint": aliyun.endpoint, "protocol": "http"}},
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": fake_aliyun.KEY_ID,
         "ALIBABA_CLOUD_ACCESS_KEY_SECRET": fake_aliyun.KEY_SECRET},
    )  # fmt: skip
    rows = await run_the_demo(daemon)

    received = {m["OutId"]: m for m in aliyun.messages}
    assert len(aliyun.messages) == len(received) == len(rows)  # each SMS once
    for r in rows:
        m = received[f"outbox:{r['id']}"]
        assert m["TemplateCode"] == _code("aliyun", r["params"]["template"])
        assert m["TemplateParam"] == r["params"]["aliyun"]["params"]
        assert m["SignName"] == SIGN
        assert m["PhoneNumbers"] == r["address"].removeprefix("+86")
        assert r["provider_id"] == m["BizId"]
    assert ALWAYS_SENT <= {r["params"]["template"] for r in rows}
    check_dispute(rows, lambda r: received[f"outbox:{r['id']}"]["TemplateParam"])


async def test_the_tencent_fake_receives_the_demo_sms(tmp_path, pg_url, tencent) -> None:
    daemon = daemon_for(
        tmp_path, pg_url,
        {"tencent": {"sdk_app_id": fake_tencent.APP_ID, "endpoint": tencent.endpoint, "protocol": "http"}},
        {"TENCENTCLOUD_SECRET_ID": fake_tencent.SECRET_ID, "TENCENTCLOUD_SECRET_KEY": fake_tencent.SECRET_KEY},
    )  # fmt: skip
    rows = await run_the_demo(daemon)

    received = {m["SessionContext"]: m for m in tencent.messages}
    assert len(tencent.messages) == len(received) == len(rows)
    for r in rows:
        m = received[f"outbox:{r['id']}"]
        assert m["TemplateId"] == _code("tencent", r["params"]["template"])
        assert m["TemplateParamSet"] == r["params"]["tencent"]["params"]
        assert (m["SignName"], m["SmsSdkAppId"]) == (SIGN, fake_tencent.APP_ID)
        assert m["PhoneNumber"] == r["address"]
        assert r["provider_id"] == m["SerialNo"]
    assert ALWAYS_SENT <= {r["params"]["template"] for r in rows}
    names = ("ticket", "category", "count", "returned")
    check_dispute(
        rows,
        lambda r: dict(zip(names, received[f"outbox:{r['id']}"]["TemplateParamSet"], strict=True)),
    )


def _code(provider: str, template: str) -> str:
    """The code config/sms_templates.yaml gives `template` for `provider`."""
    import yaml

    data = yaml.safe_load((CONFIG / "sms_templates.yaml").read_text(encoding="utf-8"))
    return str(data[provider]["templates"][template]["code"])
