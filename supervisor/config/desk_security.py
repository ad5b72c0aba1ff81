"""settings.yaml `desk.security`: sessions, sign-in limits, two-factor and password rules of the
desk (督办台). Defaults follow 等保 2.0 level 3 (docs/security.md says which setting answers which
requirement); every key is checked like the rest of settings.yaml (file:line: key: message)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Seconds = Annotated[int, Field(ge=1, le=366 * 86_400)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmsCodeSettings(_Model):
    """The one-time sign-in code by SMS, through the SMS provider configured under `notifiers`
    (Twilio, Aliyun or Tencent; never the console). Aliyun and Tencent send only registered
    templates: name the template registered for the code (its one parameter: the code)."""

    template_code: str | None = None  # Aliyun "SMS_…" / Tencent template id; its one param: code
    sign_name: str | None = None
    valid_s: Annotated[int, Field(ge=60, le=900)] = 300


class DeskSecurity(_Model):
    # Sessions: ended after this long without a request, and this long after sign-in at most.
    idle_timeout_s: Seconds = 1800
    absolute_lifetime_s: Seconds = 12 * 3600
    # Secure cookies: "auto" when the request came by HTTPS (or, with trust_proxy, the proxy's
    # X-Forwarded-Proto says https); "always" behind any TLS terminator; "never" for plain tests.
    secure_cookie: Literal["auto", "always", "never"] = "auto"
    trust_proxy: bool = False  # believe X-Forwarded-Proto / X-Forwarded-For (nginx in front)
    same_site: Literal["Lax", "Strict"] = "Lax"
    # Sign-in limits: an account is locked for lock_s after lock_after failures within window_s;
    # an address past address_limit failures within window_s has its *failing* attempts slowed
    # (address_delay_s, answered 429); a correct password is never refused for the address.
    lock_after: Annotated[int, Field(ge=1, le=100)] = 5
    window_s: Seconds = 900
    lock_s: Seconds = 900
    address_limit: Annotated[int, Field(ge=1, le=100_000)] = 30
    address_delay_s: Annotated[float, Field(ge=0, le=30)] = 2.0
    # Two-factor sign-in: required for these roles (TOTP, SMS, or a recovery code).
    two_factor_roles: list[Literal["supervisor", "leader", "head", "liaison"]] = [
        "supervisor",
        "leader",
    ]
    two_factor_methods: list[Literal["totp", "sms"]] = ["totp", "sms"]
    sms: SmsCodeSettings = SmsCodeSettings()
    # Passwords: length, how many of the four classes (lower, upper, digit, other), max age
    # in days (0: no forced change).
    password_min_length: Annotated[int, Field(ge=8, le=128)] = 10
    password_classes: Annotated[int, Field(ge=1, le=4)] = 3
    password_max_age_days: Annotated[int, Field(ge=0, le=3650)] = 0
    # Audit rows kept this many days at least (the Cybersecurity Law: six months); pruned daily.
    audit_retention_days: Annotated[int, Field(ge=180, le=36_500)] = 180


class DeskSettings(_Model):
    security: DeskSecurity = DeskSecurity()
