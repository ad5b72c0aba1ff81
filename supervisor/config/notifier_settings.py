"""The `notifiers:` section of the configuration.

Secrets are never in the file: the file names the environment variables that hold them
(`*_env`), so the YAML can be committed and reviewed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_E164 = r"^\+[1-9]\d{6,14}$"


class _Strict(BaseModel):
    # A misspelt key must be an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class TwilioSettings(_Strict):
    account_sid_env: str = "TWILIO_ACCOUNT_SID"
    auth_token_env: str = "TWILIO_AUTH_TOKEN"
    from_number: str | None = Field(None, pattern=_E164)
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    base_url: str | None = None  # e.g. http://127.0.0.1:PORT for the fake server (tests, demo)
    timeout_s: float = Field(10, gt=0)
    # Twilio drops a message still queued after this long: a stale reminder is worse than none.
    # 1..36000 is Twilio's documented range; None leaves Twilio's default (4 hours).
    validity_period_s: int | None = Field(3600, ge=1, le=36000)
    status_callback_url: str | None = None  # public URL of our /twilio/status webhook
    # Calls: read in Mandarin. `voice` is Twilio's <Say voice>: an Amazon Polly or Google voice
    # ("Polly.Zhiyu", "Google.cmn-CN-Standard-A") or None for Twilio's default for the language.
    # A voice and a language that do not match make Twilio fail the <Say>: without
    # `voice_language`, a Polly or Google voice is given "cmn-CN" (Mandarin, as those voices name
    # it) and Twilio's default voice "zh-CN".
    voice: str | None = "Polly.Zhiyu"
    voice_language: str | None = None

    @property
    def say_language(self) -> str:
        if self.voice_language:
            return self.voice_language
        return "cmn-CN" if self.voice and self.voice.startswith(("Polly.", "Google.")) else "zh-CN"
    # Public URL of our /twilio/gather webhook: a call then asks for a key (1 acknowledges, 2
    # repeats) and Twilio posts it there. None (Twilio cannot reach us): the call is read twice
    # and asks for no key; the SMS carries the acknowledgement.
    gather_url: str | None = None
    gather_timeout_s: int = Field(6, ge=1, le=30)  # seconds of silence that end a reading

    @model_validator(mode="after")
    def _needs_a_sender(self) -> TwilioSettings:
        if self.from_number is None and self.messaging_service_sid is None:
            raise ValueError("twilio needs from_number or messaging_service_sid")
        return self


class WeComSettings(_Strict):
    webhook_url_env: str = "WECOM_WEBHOOK_URL"
    timeout_s: float = Field(10, gt=0)
    # markdown: heading and lists (notifiers/markdown.py); urgent messages stay text to @all
    format: Literal["text", "markdown"] = "text"


class DingTalkSettings(_Strict):
    webhook_url_env: str = "DINGTALK_WEBHOOK_URL"
    # Named -> signed mode, and the variable must then be set (a signed robot rejects unsigned
    # posts, so silently sending unsigned would only fail later). None -> unsigned mode.
    secret_env: str | None = None
    timeout_s: float = Field(10, gt=0)
    format: Literal["text", "markdown"] = "text"  # markdown: heading and lists


class AliyunSmsSettings(_Strict):
    """Aliyun SMS (阿里云短信, dysmsapi 2017-05-25). Templates and sign name: sms_templates.yaml."""

    access_key_id_env: str = "ALIBABA_CLOUD_ACCESS_KEY_ID"
    access_key_secret_env: str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
    endpoint: str = "dysmsapi.aliyuncs.com"  # host[:port]; 127.0.0.1:PORT for the fake
    protocol: Literal["https", "http"] = "https"
    timeout_s: float = Field(10, gt=0)
    # Secret part of our receipt and reply URLs (/providers/aliyun/{token}/...): Aliyun signs
    # neither push, so the URL itself is the credential. None: the webhooks are not served.
    callback_token_env: str | None = None


class TencentSmsSettings(_Strict):
    """Tencent Cloud SMS (腾讯云短信, API 2021-01-11). Templates and sign name: sms_templates.yaml."""

    secret_id_env: str = "TENCENTCLOUD_SECRET_ID"
    secret_key_env: str = "TENCENTCLOUD_SECRET_KEY"
    sdk_app_id: str = Field(pattern=r"^\d+$")  # SmsSdkAppId, from the console
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"  # host[:port]; 127.0.0.1:PORT for the fake
    protocol: Literal["https", "http"] = "https"
    timeout_s: float = Field(10, gt=0)
    callback_token_env: str | None = None  # as for aliyun: /providers/tencent/{token}/...


class ConsoleSettings(_Strict):
    pass


class NotifierSettings(_Strict):
    twilio: TwilioSettings | None = None  # absent: sms and voice go to the console
    wecom: WeComSettings | None = None  # absent: wecom goes to the console
    dingtalk: DingTalkSettings | None = None  # absent: dingtalk goes to the console
    # Template-only SMS providers, at most one of them. Either takes the sms channel; a Twilio
    # configured as well then keeps only voice.
    aliyun: AliyunSmsSettings | None = None
    tencent: TencentSmsSettings | None = None
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @model_validator(mode="after")
    def _one_template_provider(self) -> NotifierSettings:
        if self.aliyun is not None and self.tencent is not None:
            raise ValueError("configure aliyun or tencent, not both: one sends the SMS")
        return self

    def template_sms(self) -> tuple[str, ...]:
        """The configured providers that send only registered templates."""
        return tuple(n for n in ("aliyun", "tencent") if getattr(self, n) is not None)


def missing_settings(settings: NotifierSettings, env: Mapping[str, str]) -> list[str]:
    """What a configured notifier lacks, as messages for a human; empty when all is set."""
    wanted: list[tuple[str, str, str | None]] = []  # (notifier, setting key, env var name)
    if settings.twilio is not None:
        wanted += [
            ("twilio", "account_sid_env", settings.twilio.account_sid_env),
            ("twilio", "auth_token_env", settings.twilio.auth_token_env),
        ]
    if settings.wecom is not None:
        wanted.append(("wecom", "webhook_url_env", settings.wecom.webhook_url_env))
    if settings.dingtalk is not None:
        wanted.append(("dingtalk", "webhook_url_env", settings.dingtalk.webhook_url_env))
        wanted.append(("dingtalk", "secret_env", settings.dingtalk.secret_env))
    if settings.aliyun is not None:
        wanted += [
            ("aliyun", "access_key_id_env", settings.aliyun.access_key_id_env),
            ("aliyun", "access_key_secret_env", settings.aliyun.access_key_secret_env),
            ("aliyun", "callback_token_env", settings.aliyun.callback_token_env),
        ]
    if settings.tencent is not None:
        wanted += [
            ("tencent", "secret_id_env", settings.tencent.secret_id_env),
            ("tencent", "secret_key_env", settings.tencent.secret_key_env),
            ("tencent", "callback_token_env", settings.tencent.callback_token_env),
        ]
    return [
        f"{section}: {var} is not set (named by notifiers.{section}.{key})"
        for section, key, var in wanted
        if var is not None and not env.get(var)
    ]
