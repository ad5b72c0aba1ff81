"""The Aliyun and Tencent Cloud SMS notifiers with their official SDKs against loopback fakes of
the providers' HTTP APIs: what is sent, how every kind of answer is classified, reconciliation,
and how the registry and settings choose them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from notifiers.aliyun_sms import AliyunSmsNotifier
from notifiers.base import Notifier, Outgoing
from notifiers.registry import build_notifiers, close_all, missing_settings
from notifiers.tencent_sms import TencentSmsNotifier
from notifiers.twilio_voice import TwilioVoiceNotifier
from supervisor.config.notifier_settings import (
    AliyunSmsSettings,
    NotifierSettings,
    TencentSmsSettings,
)
from tests.fakes import fake_aliyun, fake_tencent
from tests.fakes.fake_aliyun import FakeAliyun
from tests.fakes.fake_tencent import FakeTencent

TO = "+8613800000001"
PARAMS = {
    "template": "sign_reminder",
    "aliyun": {
        "code": "SMS_480000001",
        "sign_name": "某某街道办事处",
        "params": {"ticket": "2026112500123", "category": "市容环境", "deadline": "11月25日 14:30"},
    },
    "tencent": {
        "code": "2000001",
        "sign_name": "某某街道办事处",
        "params": ["2026112500123", "市容环境", "11月25日 14:30"],
    },
}


def sms(key: str = "outbox:1", params: dict | None = PARAMS) -> Outgoing:
    return Outgoing(
        key=key, channel="sms", to=TO, text="【12345催办】工单2026112500123…", params=params
    )


def free_endpoint() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
async def aliyun() -> AsyncIterator[tuple[FakeAliyun, AliyunSmsNotifier]]:
    async with FakeAliyun() as fake:
        settings = AliyunSmsSettings(endpoint=fake.endpoint, protocol="http", timeout_s=1)
        yield fake, AliyunSmsNotifier(fake_aliyun.KEY_ID, fake_aliyun.KEY_SECRET, settings)


@pytest.fixture
async def tencent() -> AsyncIterator[tuple[FakeTencent, TencentSmsNotifier]]:
    async with FakeTencent() as fake:
        settings = TencentSmsSettings(
            sdk_app_id=fake_tencent.APP_ID, endpoint=fake.endpoint, protocol="http", timeout_s=1
        )
        notifier = TencentSmsNotifier(fake_tencent.SECRET_ID, fake_tencent.SECRET_KEY, settings)
        yield fake, notifier
        await notifier.close()


# -- Aliyun -------------------------------------------------------------------------------------


async def test_aliyun_sends_the_registered_template_with_its_parameters(aliyun) -> None:
    fake, notifier = aliyun
    assert isinstance(notifier, Notifier)

    result = await notifier.send(sms())

    assert result.outcome == "sent"
    [m] = fake.messages
    assert result.provider_id == m["BizId"]
    assert m["PhoneNumbers"] == "13800000001"  # Aliyun takes mainland numbers without +86
    assert (m["SignName"], m["TemplateCode"]) == ("某某街道办事处", "SMS_480000001")
    assert m["TemplateParam"] == PARAMS["aliyun"]["params"]
    assert m["OutId"] == "outbox:1"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", "limited"),  # per-number frequency control: not sent
        ("throttle", "retry"),  # 400 Throttling.User with x-acs-retry-after
        ("isv.MOBILE_NUMBER_ILLEGAL", "failed"),
        ("isv.SMS_TEMPLATE_ILLEGAL", "failed"),
        ("isv.AMOUNT_NOT_ENOUGH", "failed"),
        ("http-400", "failed"),
        ("isp.SYSTEM_ERROR", "unknown"),
        ("http-500", "unknown"),
        ("http-503", "unknown"),
        ("500-after-accept", "unknown"),
        ("hang", "unknown"),  # read time-out: the request went out
    ],
)
async def test_aliyun_answers_are_classified(aliyun, answer: str, outcome: str) -> None:
    fake, notifier = aliyun
    fake.script(answer)

    result = await notifier.send(sms())

    assert result.outcome == outcome, result
    assert result.error and "13800000001" not in result.error
    if answer == "throttle":
        assert result.retry_after_s == 2.0
    if answer == "isv.BUSINESS_LIMIT_CONTROL":  # "触发小时级流控Permits:5": wait the hour out
        assert result.retry_after_s == 3600.0


async def test_aliyun_refused_connection_is_safe_to_retry() -> None:
    settings = AliyunSmsSettings(endpoint=free_endpoint(), protocol="http", timeout_s=1)
    notifier = AliyunSmsNotifier(fake_aliyun.KEY_ID, fake_aliyun.KEY_SECRET, settings)

    result = await notifier.send(sms())

    assert (result.outcome, result.error) == ("retry", "aliyun ClientConnectorError")


async def test_aliyun_wrong_secret_is_permanent(aliyun) -> None:
    fake, _ = aliyun
    settings = AliyunSmsSettings(endpoint=fake.endpoint, protocol="http", timeout_s=1)
    notifier = AliyunSmsNotifier(fake_aliyun.KEY_ID, "wrong-secret", settings)

    result = await notifier.send(sms())

    assert result.outcome == "failed" and "SignatureDoesNotMatch" in (result.error or "")
    assert fake.messages == []


async def test_aliyun_message_without_a_mapping_fails_without_a_request(aliyun) -> None:
    fake, notifier = aliyun

    result = await notifier.send(sms(params=None))

    assert result.outcome == "failed" and "no registered template" in (result.error or "")
    assert fake.requests == []


async def test_aliyun_reconciles_by_out_id(aliyun) -> None:
    fake, notifier = aliyun
    fake.script("500-after-accept")
    assert (await notifier.send(sms("outbox:7"))).outcome == "unknown"
    since = datetime.now(UTC) - timedelta(seconds=5)

    assert await notifier.find_sent(sms("outbox:7"), since) == "out:outbox:7"
    assert await notifier.find_sent(sms("outbox:8"), since) is None
    assert await notifier.find_sent(sms("outbox:7"), since, frozenset({"out:outbox:7"})) is None


async def test_aliyun_reconcile_raises_when_it_cannot_ask() -> None:
    settings = AliyunSmsSettings(endpoint=free_endpoint(), protocol="http", timeout_s=1)
    notifier = AliyunSmsNotifier(fake_aliyun.KEY_ID, fake_aliyun.KEY_SECRET, settings)

    with pytest.raises(Exception):  # noqa: B017 (any error: a None would mean "not sent")
        await notifier.find_sent(sms(), datetime.now(UTC))


# -- Tencent ------------------------------------------------------------------------------------


async def test_tencent_sends_the_registered_template_with_its_parameters(tencent) -> None:
    fake, notifier = tencent
    assert isinstance(notifier, Notifier)

    result = await notifier.send(sms())

    assert result.outcome == "sent"
    [m] = fake.messages
    assert result.provider_id == m["SerialNo"]
    assert m["PhoneNumber"] == TO and m["SmsSdkAppId"] == fake_tencent.APP_ID
    assert (m["SignName"], m["TemplateId"]) == ("某某街道办事处", "2000001")
    assert m["TemplateParamSet"] == PARAMS["tencent"]["params"]
    assert m["SessionContext"] == "outbox:1"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ("RequestLimitExceeded", "retry"),
        ("status:LimitExceeded.PhoneNumberThirtySecondLimit", "limited"),
        ("status:LimitExceeded.PhoneNumberOneHourLimit", "limited"),
        ("status:LimitExceeded.PhoneNumberDailyLimit", "limited"),
        ("status:LimitExceeded.PhoneNumberSameContentDailyLimit", "limited"),
        ("LimitExceeded.DeliveryFrequencyLimit", "limited"),  # the frequency policy: retried
        ("LimitExceeded.PhoneNumberCountLimit", "failed"),  # >200 numbers in one request
        ("LimitExceeded.AppDailyLimit", "failed"),  # the application's own daily cap
        ("status:InvalidParameterValue.IncorrectPhoneNumber", "failed"),
        ("FailedOperation.TemplateIncorrectOrUnapproved", "failed"),
        ("FailedOperation.InsufficientBalanceInSmsPackage", "failed"),
        ("AuthFailure.SecretIdNotFound", "failed"),
        ("InternalError.RequestTimeException", "failed"),  # our clock: refused, not sent
        ("InternalError.Timeout", "unknown"),
        ("InternalError.SendAndRecvFail", "unknown"),
        ("http-502", "unknown"),
        ("500-after-accept", "unknown"),
        ("hang", "unknown"),
    ],
)
async def test_tencent_answers_are_classified(tencent, answer: str, outcome: str) -> None:
    fake, notifier = tencent
    fake.script(answer)

    result = await notifier.send(sms())

    assert result.outcome == outcome, result
    assert result.error and "13800000001" not in result.error


async def test_tencent_refused_connection_is_safe_to_retry() -> None:
    settings = TencentSmsSettings(
        sdk_app_id=fake_tencent.APP_ID, endpoint=free_endpoint(), protocol="http", timeout_s=1
    )
    notifier = TencentSmsNotifier(fake_tencent.SECRET_ID, fake_tencent.SECRET_KEY, settings)
    try:
        result = await notifier.send(sms())
    finally:
        await notifier.close()

    assert (result.outcome, result.error) == ("retry", "tencent ConnectionError")


async def test_tencent_wrong_secret_is_permanent(tencent) -> None:
    fake, _ = tencent
    settings = TencentSmsSettings(
        sdk_app_id=fake_tencent.APP_ID, endpoint=fake.endpoint, protocol="http"
    )
    notifier = TencentSmsNotifier(fake_tencent.SECRET_ID, "wrong", settings)
    try:
        result = await notifier.send(sms())
    finally:
        await notifier.close()

    assert result.outcome == "failed" and "AuthFailure.SignatureFailure" in (result.error or "")
    assert fake.messages == []


async def test_tencent_reconciles_by_session_context(tencent) -> None:
    fake, notifier = tencent
    fake.script("500-after-accept")
    assert (await notifier.send(sms("outbox:7"))).outcome == "unknown"
    since = datetime.now(UTC) - timedelta(seconds=5)
    serial = fake.messages[0]["SerialNo"]

    assert await notifier.find_sent(sms("outbox:7"), since) == serial
    assert await notifier.find_sent(sms("outbox:8"), since) is None
    assert await notifier.find_sent(sms("outbox:7"), since, frozenset({serial})) is None


async def test_tencent_message_without_a_mapping_fails_without_a_request(tencent) -> None:
    fake, notifier = tencent

    result = await notifier.send(sms(params={"template": "digest"}))

    assert result.outcome == "failed" and "digest" in (result.error or "")
    assert fake.actions == []


# -- registry and settings ----------------------------------------------------------------------


async def test_registry_gives_sms_to_the_domestic_provider_and_keeps_twilio_voice() -> None:
    settings = NotifierSettings.model_validate(
        {
            "twilio": {"from_number": "+8610000000000", "base_url": "http://127.0.0.1:9"},
            "aliyun": {"endpoint": "127.0.0.1:9", "protocol": "http"},
        }
    )
    env = {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "t",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
    }
    chosen = build_notifiers(settings, env)
    try:
        assert isinstance(chosen["sms"], AliyunSmsNotifier)
        assert isinstance(chosen["voice"], TwilioVoiceNotifier)
    finally:
        await close_all(chosen)


async def test_registry_builds_tencent() -> None:
    settings = NotifierSettings.model_validate({"tencent": {"sdk_app_id": "1400000001"}})
    chosen = build_notifiers(
        settings, {"TENCENTCLOUD_SECRET_ID": "id", "TENCENTCLOUD_SECRET_KEY": "key"}
    )
    try:
        assert isinstance(chosen["sms"], TencentSmsNotifier)
        assert chosen["voice"].name == "console"
    finally:
        await close_all(chosen)


def test_missing_credentials_are_named() -> None:
    settings = NotifierSettings.model_validate(
        {"aliyun": {"callback_token_env": "ALIYUN_HOOK_TOKEN"}}
    )
    problems = missing_settings(settings, {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id"})
    assert problems == [
        "aliyun: ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set (named by notifiers.aliyun.access_key_secret_env)",
        "aliyun: ALIYUN_HOOK_TOKEN is not set (named by notifiers.aliyun.callback_token_env)",
    ]
    with pytest.raises(ValueError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        build_notifiers(settings, {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id"})


def test_aliyun_and_tencent_together_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="aliyun or tencent, not both"):
        NotifierSettings.model_validate({"aliyun": {}, "tencent": {"sdk_app_id": "1400000001"}})
    with pytest.raises(pydantic.ValidationError, match="sdk_app_id"):
        NotifierSettings.model_validate({"tencent": {"sdk_app_id": "abc"}})


def test_provider_messages_lose_anything_like_a_phone_number() -> None:
    from notifiers.aliyun_sms import outcome_for_code as aliyun_outcome
    from notifiers.tencent_sms import outcome_for_code as tencent_outcome

    a = aliyun_outcome("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号 13800000001")
    t = tencent_outcome("InvalidParameterValue.IncorrectPhoneNumber", "+86 138-0000-0001 错误")
    assert a.error == "aliyun isv.MOBILE_NUMBER_ILLEGAL: 非法手机号 <number>"
    assert t.error == "tencent InvalidParameterValue.IncorrectPhoneNumber: <number> 错误"
