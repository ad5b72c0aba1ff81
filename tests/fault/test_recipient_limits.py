"""Issue 19: a per-number limit answer is about one person, not the provider.

Aliyun's isv.BUSINESS_LIMIT_CONTROL and Tencent's LimitExceeded.PhoneNumber*Limit once counted as
provider failures: ten of them to one busy person opened the breaker, /healthz said the provider
was down, and everyone else's SMS was failed without a request and turned into a call. Now the
limited person's messages wait the limit out, the breaker is not touched, everybody else's go,
and the supervisor is told once a day that the person is being limited."""

from __future__ import annotations

import asyncio

import pytest

from supervisor.config.notifier_settings import NotifierSettings
from supervisor.delivery.limits import LIMITED_RULE
from supervisor.server.daemon import Daemon
from tests.fakes import fake_aliyun, fake_tencent
from tests.fakes.fake_aliyun import FakeAliyun
from tests.fakes.fake_tencent import FakeTencent
from tests.helpers import loaded
from tests.integration.test_daemon import TOKEN, _get, make_loaded

BUSY = ("wang-qiang", "+8613800138011")  # the person the provider limits
OTHERS = [("zhao-gang", "+8613800138012"), ("sun-li", "+8613800138021"),
          ("zhou-jun", "+8613800138022"), ("wu-fang", "+8613800138031")]  # fmt: skip
# nothing in flight, the limited person's rows all answered, everybody else's sent
SETTLED = """
SELECT count(*) FILTER (WHERE status = 'sending') = 0
   AND count(*) FILTER (WHERE recipient = $1 AND attempts = 0) = 0
   AND count(*) FILTER (WHERE recipient <> $1 AND status <> 'sent') = 0
FROM outbox WHERE rule = 'sign-off'
"""
PARAMS = {
    "template": "sign_reminder",
    "aliyun": {"code": "SMS_480000001", "sign_name": "某某街道办事处",
               "params": {"ticket": "0123", "category": "市容环境", "deadline": "11月25日14:30"}},
    "tencent": {"code": "2000001", "sign_name": "某某街道办事处",
                "params": ["0123", "市容环境", "11月25日14:30"]},
}  # fmt: skip


async def _queue(pool, n: int, who: tuple[str, str], now) -> None:
    for i in range(n):
        await pool.execute(
            """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, name, address,
                                   channel, text, urgent, not_before, created_at, params)
               VALUES ($1, 'sign-off', 1, 0, 'liaison', $2, $2, $3, 'sms', $4, false, $5, $5, $6)""",
            f"T{who[0]}{i:02d}", who[0], who[1], f"【12345催办】工单T{i}请签收。", now,
            PARAMS,
        )  # fmt: skip


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_twelve_limit_answers_to_one_person_leave_the_provider_healthy(
    tmp_path, pg_url, provider: str
) -> None:
    fake = FakeAliyun() if provider == "aliyun" else FakeTencent()
    async with fake:
        if provider == "aliyun":
            section = {"endpoint": fake.endpoint, "protocol": "http", "timeout_s": 2}
            env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": fake_aliyun.KEY_ID,
                   "ALIBABA_CLOUD_ACCESS_KEY_SECRET": fake_aliyun.KEY_SECRET}  # fmt: skip
            fake.limit(BUSY[1].removeprefix("+86"))
        else:
            section = {"endpoint": fake.endpoint, "protocol": "http", "timeout_s": 2,
                       "sdk_app_id": fake_tencent.APP_ID}  # fmt: skip
            env = {"TENCENTCLOUD_SECRET_ID": fake_tencent.SECRET_ID,
                   "TENCENTCLOUD_SECRET_KEY": fake_tencent.SECRET_KEY}  # fmt: skip
            fake.limit(BUSY[1], "LimitExceeded.PhoneNumberOneHourLimit")
        notifiers = NotifierSettings.model_validate({provider: section})
        env |= {"DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": TOKEN}
        base = loaded().settings.delivery
        # the real clock (the daemon's own dispatch loop sends), no quiet hours, fast sends
        delivery = base.model_copy(update={
            "quiet_hours": None, "rate_per_s": {"sms": 200.0, "voice": 200.0, "console": 200.0},
        })  # fmt: skip
        daemon = Daemon(
            make_loaded(tmp_path, notifiers=notifiers, delivery=delivery), env=env
        )
        clock = daemon.clock
        await daemon.start()
        try:
            threshold = daemon.loaded.settings.delivery.breaker_threshold
            assert threshold < 12  # the burst is more than enough to open the breaker of old
            now = clock.now()
            await _queue(daemon.pool, 12, BUSY, now)
            for who in OTHERS:
                await _queue(daemon.pool, 3, who, now)
            daemon.wake_dispatcher.set()
            for _ in range(300):  # the daemon's dispatch loop sends; at most 30 s
                if await daemon.pool.fetchval(SETTLED, BUSY[0]):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the messages were not settled in 30 s")
            assert sum(fake.limited.values()) == 12  # every one of the burst was answered so
            breaker = daemon.dispatcher.breaker(provider)
            assert breaker.state == "closed" and not breaker.down and breaker.failures == 0
            assert daemon.dispatcher.outages() == {}
            status, health = await _get(daemon.port, "/healthz", auth=False)
            assert status == 200 and health["status"] == "ok" and "degraded" not in health

            rows = await daemon.pool.fetch(
                "SELECT recipient, status, channel, not_before, last_error FROM outbox "
                "WHERE rule = 'sign-off'"
            )
            others = [r for r in rows if r["recipient"] != BUSY[0]]
            assert len(others) == 12 and all(r["status"] == "sent" for r in others), others
            assert all(r["channel"] == "sms" for r in rows)  # nobody was called instead
            busy = [r for r in rows if r["recipient"] == BUSY[0]]
            # the limited person's messages wait the hour out, pending, none given up
            assert len(busy) == 12 and all(r["status"] == "pending" for r in busy), busy
            assert all(r["not_before"] >= now.replace(minute=59) for r in busy)  # an hour on
            assert len(fake.messages) == 12
            # one notice a day per person (a fallback of it, e.g. a call when the provider has
            # no template registered for it, is the same notice)
            notices = await daemon.pool.fetch(
                "SELECT recipient, text FROM outbox WHERE rule = $1 AND note IS NULL", LIMITED_RULE
            )
            supervisors = daemon.supervisor.runtime.directory.resolve("supervisor")
            assert sorted(n["recipient"] for n in notices) == sorted(r.person for r in supervisors)
            assert all("王强" in n["text"] and "138" not in n["text"] for n in notices)
        finally:
            await daemon.stop()
