"""The dispatcher on real PostgreSQL with a template-only provider (Aliyun, official SDK, against
its fake): each message goes alone with the parameters stored on its row, an ambiguous send is
reconciled by OutId instead of being sent twice, and a row without parameters falls back."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from notifiers.aliyun_sms import AliyunSmsNotifier
from notifiers.base import Notifier
from notifiers.console import ConsoleNotifier
from supervisor.config.delivery import DeliverySettings
from supervisor.config.notifier_settings import AliyunSmsSettings
from supervisor.core.clock import VirtualClock
from supervisor.delivery.outbox import Dispatcher
from supervisor.storage.pg import PgStore
from tests.fakes import fake_aliyun
from tests.fakes.fake_aliyun import FakeAliyun

SH = ZoneInfo("Asia/Shanghai")
PHONE = "+8613800000001"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)  # a Wednesday morning: no quiet hours


def params(template: str, code: str, ticket: str) -> dict:
    return {
        "template": template,
        "aliyun": {"code": code, "sign_name": "某某街道办事处", "params": {"ticket": ticket}},
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeAliyun]:
    async with FakeAliyun() as f:
        yield f


@pytest.fixture
def notifiers(fake: FakeAliyun) -> dict[str, Notifier]:
    settings = AliyunSmsSettings(endpoint=fake.endpoint, protocol="http", timeout_s=2)
    console = ConsoleNotifier()
    return {
        "sms": AliyunSmsNotifier(fake_aliyun.KEY_ID, fake_aliyun.KEY_SECRET, settings),
        "voice": console,
    }


def dispatcher(pool: asyncpg.Pool, notifiers, clock: VirtualClock) -> Dispatcher:
    settings = DeliverySettings(group_window_s=60, reconcile_after_s=60)
    return Dispatcher(
        PgStore(pool), notifiers, settings, clock, worker_id="w1", rng=random.Random(1)
    )


async def insert(pool: asyncpg.Pool, ticket: str, p: dict | None, step: int = 0) -> int:
    return await pool.fetchval(
        """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, name, address, channel,
                               text, urgent, not_before, created_at, params)
           VALUES ($1, 'sign-off', 1, $2, 'liaison', 'wang-qiang', '王强', $3, 'sms', $4, false,
                   $5, $5, $6::text::jsonb) RETURNING id""",
        ticket, step, PHONE, f"【12345催办】工单{ticket}请签收。", T0,
        None if p is None else json.dumps(p, ensure_ascii=False),
    )  # fmt: skip


async def test_each_message_goes_alone_with_its_own_template(pool, notifiers, fake) -> None:
    clock = VirtualClock(T0)
    first = await insert(pool, "T1", params("sign_reminder", "SMS_1", "T1"))
    second = await insert(pool, "T2", params("dispute", "SMS_5", "T2"))

    stats = await dispatcher(pool, notifiers, clock).run_once()

    # a Twilio SMS would have carried both as one grouped text; a template cannot
    assert (stats.messages, stats.sent) == (2, 2)
    assert [(m["OutId"], m["TemplateCode"], m["TemplateParam"]) for m in fake.messages] == [
        (f"outbox:{first}", "SMS_1", {"ticket": "T1"}),
        (f"outbox:{second}", "SMS_5", {"ticket": "T2"}),
    ]
    rows = await pool.fetch("SELECT group_id, status, provider_id FROM outbox ORDER BY id")
    assert [(r["group_id"], r["status"]) for r in rows] == [(first, "sent"), (second, "sent")]
    assert [r["provider_id"] for r in rows] == [m["BizId"] for m in fake.messages]


async def test_an_ambiguous_send_is_reconciled_by_out_id_not_resent(pool, notifiers, fake) -> None:
    clock = VirtualClock(T0)
    oid = await insert(pool, "T1", params("sign_reminder", "SMS_1", "T1"))
    fake.script("500-after-accept")
    d = dispatcher(pool, notifiers, clock)

    assert (await d.run_once()).unknown == 1
    clock.advance(timedelta(seconds=61))
    stats = await d.run_once()

    assert stats.reconciled == 1 and stats.sent == 0
    assert len(fake.messages) == 1
    row = await pool.fetchrow("SELECT status, provider_id FROM outbox WHERE id = $1", oid)
    assert (row["status"], row["provider_id"]) == ("sent", f"out:outbox:{oid}")


async def test_a_row_without_parameters_falls_back_to_voice(pool, notifiers, fake) -> None:
    clock = VirtualClock(T0)
    oid = await insert(pool, "T1", None)  # e.g. queued before sms_templates.yaml existed

    stats = await dispatcher(pool, notifiers, clock).run_once()

    assert (stats.failed, stats.fallbacks) == (1, 1)
    assert fake.requests == []
    rows = await pool.fetch("SELECT id, channel, status, last_error FROM outbox ORDER BY id")
    assert (rows[0]["id"], rows[0]["status"]) == (oid, "failed")
    assert "no registered template" in rows[0]["last_error"]
    assert (rows[1]["channel"], rows[1]["status"]) == ("voice", "pending")
