"""The Twilio notifiers with the real twilio SDK against the fake Twilio server, plus the
registry and the console notifier."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pydantic
import pytest
from twilio.request_validator import RequestValidator

from notifiers.base import Notifier, Outgoing
from notifiers.console import ConsoleNotifier
from notifiers.registry import NOTIFIERS, build_notifiers, close_all, missing_settings
from notifiers.twilio_client import TwilioClient
from notifiers.twilio_sms import TwilioSmsNotifier
from notifiers.twilio_voice import TwilioVoiceNotifier
from supervisor.config.notifier_settings import NotifierSettings, TwilioSettings
from tests.fakes.fake_twilio import FakeTwilio, sign

SID = "AC" + "0" * 32
TOKEN = "test-token"
FROM = "+8610000000000"
TO = "+8613800000001"


def sms(text: str = "工单 12345-001 即将超时，请尽快处理。", to: str = TO) -> Outgoing:
    return Outgoing(key="outbox:1", channel="sms", to=to, text=text)


def voice(text: str = "紧急：工单超时", to: str = TO) -> Outgoing:
    return Outgoing(key="outbox:2", channel="voice", to=to, text=text, urgent=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(SID, TOKEN) as f:
        yield f


def twilio_settings(base_url: str, **overrides: object) -> TwilioSettings:
    values: dict[str, object] = {
        "from_number": FROM,
        "base_url": base_url,
        "status_callback_url": "https://hotline.example/twilio/status",
    }
    values.update(overrides)
    return TwilioSettings.model_validate(values)


class Pair:
    """An SMS and a voice notifier sharing one client, as the registry builds them."""

    def __init__(self, base_url: str, token: str = TOKEN, **overrides: object) -> None:
        settings = twilio_settings(base_url, **overrides)
        self.client = TwilioClient(SID, token, base_url=base_url, timeout_s=settings.timeout_s)
        self.sms = TwilioSmsNotifier(self.client, settings)
        if settings.from_number is not None:
            self.voice = TwilioVoiceNotifier(self.client, settings)

    async def close(self) -> None:
        await self.sms.close()
        await self.client.close()  # closing twice (sms and voice share it) is a no-op


@pytest.fixture
async def tw(fake: FakeTwilio) -> AsyncIterator[Pair]:
    pair = Pair(fake.base_url)
    yield pair
    await pair.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- sending ------------------------------------------------------------------------------------


async def test_sms_is_sent_with_the_right_fields(fake: FakeTwilio, tw: Pair) -> None:
    result = await tw.sms.send(sms())

    assert result.outcome == "sent"
    assert result.provider_id == fake.messages[0]["sid"]
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34
    [post] = fake.posts()
    assert post.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert post.form["To"] == TO
    assert post.form["From"] == FROM
    assert post.form["Body"] == "工单 12345-001 即将超时，请尽快处理。"
    assert post.form["ValidityPeriod"] == "3600"
    assert post.form["StatusCallback"] == "https://hotline.example/twilio/status?key=outbox%3A1"


async def test_sms_through_a_messaging_service(fake: FakeTwilio) -> None:
    service = "MG" + "1" * 32
    pair = Pair(fake.base_url, from_number=None, messaging_service_sid=service)
    try:
        assert (await pair.sms.send(sms())).outcome == "sent"
    finally:
        await pair.sms.close()
    [post] = fake.posts()
    assert post.form["MessagingServiceSid"] == service
    assert "From" not in post.form


async def test_voice_call_reads_the_escaped_text(fake: FakeTwilio, tw: Pair) -> None:
    result = await tw.voice.send(voice('工单 <A&B> "超时"'))

    assert result.outcome == "sent"
    assert result.provider_id == fake.calls[0]["sid"]
    assert result.provider_id.startswith("CA")
    [post] = fake.posts()
    assert post.path.endswith("/Calls.json")
    assert post.form["To"] == TO and post.form["From"] == FROM
    twiml = post.form["Twiml"]
    assert '<Say language="cmn-CN" voice="Polly.Zhiyu">' in twiml  # Mandarin, by default
    assert "工单 &lt;A&amp;B&gt;" in twiml
    assert "<A&B>" not in twiml
    assert twiml.rstrip().endswith("</Say></Response>")


async def test_concurrent_sends_share_one_client(fake: FakeTwilio, tw: Pair) -> None:
    results = await asyncio.gather(*(tw.sms.send(sms(f"第{i}条")) for i in range(5)))
    assert [r.outcome for r in results] == ["sent"] * 5
    assert {m["body"] for m in fake.messages} == {f"第{i}条" for i in range(5)}


# -- error mapping ------------------------------------------------------------------------------


async def test_429_is_retry_with_retry_after(fake: FakeTwilio, tw: Pair) -> None:
    fake.retry_after = "7"
    fake.script("429")
    result = await tw.sms.send(sms())
    assert result.outcome == "retry"
    assert result.retry_after_s == 7.0
    assert "20429" in result.error
    assert fake.messages == []


async def test_429_without_retry_after(fake: FakeTwilio, tw: Pair) -> None:
    fake.script("429")
    result = await tw.voice.send(voice())
    assert (result.outcome, result.retry_after_s) == ("retry", None)


async def test_400_is_failed(fake: FakeTwilio, tw: Pair) -> None:
    fake.script("400")
    result = await tw.sms.send(sms())
    assert result.outcome == "failed"
    assert "21211" in result.error


async def test_invalid_number_error_does_not_quote_the_number(tw: Pair) -> None:
    result = await tw.sms.send(sms(to="13800000001"))  # not E.164: the fake answers 21211
    assert result.outcome == "failed"
    assert "21211" in result.error
    assert "38000" not in result.error


async def test_500_is_unknown_and_not_retried_by_the_sdk(fake: FakeTwilio, tw: Pair) -> None:
    fake.script("500")
    result = await tw.sms.send(sms())
    assert result.outcome == "unknown"
    assert len(fake.posts()) == 1  # no SDK-level resend of a POST


async def test_500_after_accept_is_reconciled_by_find_sent(fake: FakeTwilio, tw: Pair) -> None:
    since = datetime.now(UTC)
    fake.script("500-after-accept")
    result = await tw.sms.send(sms())

    assert result.outcome == "unknown"
    assert await tw.sms.find_sent(sms(), since) == fake.messages[0]["sid"]
    assert await tw.sms.find_sent(sms("另一条"), since) is None
    assert await tw.sms.find_sent(sms(to="+8613800000002"), since) is None


async def test_find_sent_accepts_a_local_time_zone(fake: FakeTwilio, tw: Pair) -> None:
    await tw.sms.send(sms())
    since = datetime.now(ZoneInfo("Asia/Shanghai"))
    assert await tw.sms.find_sent(sms(), since) == fake.messages[0]["sid"]
    with pytest.raises(ValueError):
        await tw.sms.find_sent(sms(), datetime.now())


async def test_find_sent_ignores_messages_before_since(fake: FakeTwilio, tw: Pair) -> None:
    await tw.sms.send(sms())
    assert await tw.sms.find_sent(sms(), datetime.now(UTC) + timedelta(minutes=5)) is None


async def test_voice_500_after_accept_is_reconciled(fake: FakeTwilio, tw: Pair) -> None:
    since = datetime.now(UTC)
    fake.script("500-after-accept")
    assert (await tw.voice.send(voice())).outcome == "unknown"
    assert await tw.voice.find_sent(voice(), since) == fake.calls[0]["sid"]
    assert await tw.voice.find_sent(voice(to="+8613800000002"), since) is None


async def test_hang_is_unknown_after_the_timeout(fake: FakeTwilio) -> None:
    pair = Pair(fake.base_url, timeout_s=1)
    fake.script("hang")
    started = time.monotonic()
    try:
        result = await pair.sms.send(sms())
    finally:
        await pair.close()
    assert result.outcome == "unknown"
    assert 0.9 < time.monotonic() - started < 3


async def test_stopped_server_is_retry(fake: FakeTwilio) -> None:
    pair = Pair(fake.base_url)
    await fake.stop()
    try:
        assert (await pair.sms.send(sms())).outcome == "retry"
        assert (await pair.voice.send(voice())).outcome == "retry"
    finally:
        await pair.close()


async def test_unused_port_is_retry() -> None:
    pair = Pair(f"http://127.0.0.1:{free_port()}")
    try:
        result = await pair.sms.send(sms())
    finally:
        await pair.close()
    assert result.outcome == "retry"
    assert "ClientConnectorError" in result.error


async def test_wrong_token_is_failed(fake: FakeTwilio) -> None:
    pair = Pair(fake.base_url, token="wrong")
    try:
        result = await pair.sms.send(sms())
    finally:
        await pair.close()
    assert result.outcome == "failed"
    assert "20003" in result.error
    assert fake.messages == []


async def test_edge_and_region_from_the_environment_are_ignored(
    fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "singapore")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    pair = Pair(fake.base_url)
    try:
        assert (await pair.sms.send(sms())).outcome == "sent"
    finally:
        await pair.close()


# -- the fake itself ----------------------------------------------------------------------------


async def test_fake_pages_and_date_filter_work_with_the_sdk(fake: FakeTwilio, tw: Pair) -> None:
    for i in range(7):
        await tw.sms.send(sms(f"第{i}条"))
    rest = tw.client.rest()
    listed = await rest.messages.list_async(to=TO, page_size=3)  # three pages
    assert [m.body for m in listed] == [f"第{i}条" for i in reversed(range(7))]
    assert listed[0].date_created.tzinfo is not None
    # A queued message has no date_sent, so a DateSent filter matches nothing yet.
    since = datetime.now(UTC) - timedelta(hours=1)
    assert await rest.messages.list_async(to=TO, date_sent_after=since) == []
    fake.messages[0]["date_sent"] = datetime.now(UTC)
    [sent] = await rest.messages.list_async(to=TO, date_sent_after=since)
    assert sent.sid == fake.messages[0]["sid"]


async def test_fake_rejects_unknown_scripts() -> None:
    with pytest.raises(ValueError):
        FakeTwilio().script("maybe")


def test_sign_matches_twilios_validator() -> None:
    url = "https://hotline.example/twilio/status?key=outbox%3A1"
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered"}
    signature = sign(url, params, TOKEN)
    assert RequestValidator(TOKEN).validate(url, params, signature)
    assert not RequestValidator("other").validate(url, params, signature)


# -- registry and console -----------------------------------------------------------------------


def test_settings_reject_unknown_keys_and_need_a_sender() -> None:
    with pytest.raises(pydantic.ValidationError):
        NotifierSettings.model_validate({"twilio": {"from_number": FROM, "form_number": FROM}})
    with pytest.raises(pydantic.ValidationError):
        NotifierSettings.model_validate({"twilio": {}})
    with pytest.raises(pydantic.ValidationError):
        NotifierSettings.model_validate({"smtp": {}})


def test_missing_settings_name_the_variables() -> None:
    settings = NotifierSettings.model_validate(
        {
            "twilio": {"from_number": FROM},
            "dingtalk": {"secret_env": "DINGTALK_SECRET"},
        }
    )
    env = {"TWILIO_ACCOUNT_SID": SID, "DINGTALK_WEBHOOK_URL": "http://127.0.0.1:1/robot"}
    assert missing_settings(settings, env) == [
        "twilio: TWILIO_AUTH_TOKEN is not set (named by notifiers.twilio.auth_token_env)",
        "dingtalk: DINGTALK_SECRET is not set (named by notifiers.dingtalk.secret_env)",
    ]
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        build_notifiers(settings, env)


async def test_without_providers_everything_goes_to_the_console() -> None:
    out = io.StringIO()
    chosen = build_notifiers(NotifierSettings(), {}, stream=out)
    assert set(chosen) == {"sms", "voice", "console", "wecom", "dingtalk"}
    assert all(isinstance(n, ConsoleNotifier) for n in chosen.values())
    await chosen["sms"].send(Outgoing("outbox:1", "sms", "王强 +86138****0001", "第一行\n第二行"))
    result = await chosen["voice"].send(Outgoing("outbox:2", "voice", "值班长", "紧急", True))
    assert result.outcome == "sent" and result.provider_id == "console-2"
    assert out.getvalue() == (
        "[SMS → 王强 +86138****0001] 第一行 ⏎ 第二行\n[VOICE! → 值班长] 紧急\n"
    )
    await close_all(chosen)


async def test_registry_builds_twilio_and_robots(fake: FakeTwilio) -> None:
    settings = NotifierSettings.model_validate(
        {
            "twilio": {"from_number": FROM, "base_url": fake.base_url},
            "wecom": {},
            "dingtalk": {},
        }
    )
    env = {
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "WECOM_WEBHOOK_URL": "http://127.0.0.1:1/wecom",
        "DINGTALK_WEBHOOK_URL": "http://127.0.0.1:1/dingtalk",
    }
    assert missing_settings(settings, env) == []
    chosen = build_notifiers(settings, env)
    assert {c: n.name for c, n in chosen.items()} == {
        "sms": "twilio_sms",
        "voice": "twilio_voice",
        "console": "console",
        "wecom": "wecom",
        "dingtalk": "dingtalk",
    }
    assert all(isinstance(n, Notifier) for n in chosen.values())
    assert all(type(n) is NOTIFIERS[n.name] for n in chosen.values())
    assert chosen["sms"].required_settings == ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    assert (await chosen["voice"].send(voice())).outcome == "sent"
    await close_all(chosen)
    assert len(fake.calls) == 1


async def test_messaging_service_only_leaves_voice_on_the_console() -> None:
    settings = NotifierSettings.model_validate(
        {"twilio": {"messaging_service_sid": "MG" + "1" * 32}}
    )
    chosen = build_notifiers(settings, {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN})
    assert chosen["sms"].name == "twilio_sms"
    assert chosen["voice"].name == "console"
    await close_all(chosen)
