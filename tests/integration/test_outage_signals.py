"""A provider outage, as the daemon shows it: /healthz "degraded", hotline_provider_down in
/metrics, and a notice to the supervisor and the leader on a channel that still works (the
console: SMS and calls both go through the Twilio that is down); all back to normal when the
provider returns."""

from __future__ import annotations

from supervisor.config.fallback import told
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.core.clock import VirtualClock
from supervisor.delivery.breaker import OUTAGE_RULE
from supervisor.server.daemon import Daemon
from tests.fakes.fake_twilio import FakeTwilio
from tests.helpers import sh
from tests.integration.test_daemon import TOKEN, _get, make_loaded

SID = "AC" + "0" * 32


async def test_an_outage_shows_on_healthz_metrics_and_to_the_supervisors(tmp_path, pg_url):
    async with FakeTwilio(SID, "test-token") as fake:
        notifiers = NotifierSettings.model_validate(
            {"twilio": {"from_number": "+8610000000000", "base_url": fake.base_url}}
        )
        env = {
            "DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": TOKEN,
            "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "test-token",
        }  # fmt: skip
        daemon = Daemon(
            make_loaded(tmp_path, notifiers=notifiers), env=env,
            clock=VirtualClock(sh(2026, 11, 25, 10, 0)),
        )  # fmt: skip
        await daemon.start()
        try:
            status, health = await _get(daemon.port, "/healthz", auth=False)
            assert status == 200 and health["status"] == "ok" and "degraded" not in health

            breaker = daemon.dispatcher.breaker("twilio")
            for _ in range(daemon.loaded.settings.delivery.breaker_threshold):
                await daemon.dispatcher._provider_failed(breaker)
            status, health = await _get(daemon.port, "/healthz", auth=False)
            assert status == 200 and health["status"] == "degraded"
            assert set(health["degraded"]) == {"twilio"}
            _, metrics = await _get(daemon.port, "/metrics", auth=False)
            assert 'hotline_provider_down{provider="twilio"} 1.0' in metrics
            supervisors = told(daemon.supervisor.runtime.directory)  # supervisor and leader
            notices = await daemon.pool.fetch(
                "SELECT recipient, channel, text, step FROM outbox WHERE rule = $1", OUTAGE_RULE
            )
            assert {n["recipient"] for n in notices} == {r.person for r in supervisors}
            assert {n["channel"] for n in notices} == {"console"}
            assert all("暂时无法发送" in n["text"] for n in notices)

            await daemon.dispatcher._provider_up(breaker)
            status, health = await _get(daemon.port, "/healthz", auth=False)
            assert status == 200 and health["status"] == "ok"
            _, metrics = await _get(daemon.port, "/metrics", auth=False)
            assert 'hotline_provider_down{provider="twilio"} 0.0' in metrics
            back = await daemon.pool.fetch(
                "SELECT text FROM outbox WHERE rule = $1 AND step = 1", OUTAGE_RULE
            )
            assert len(back) == len(supervisors) and all("已恢复" in b["text"] for b in back)
        finally:
            await daemon.stop()
