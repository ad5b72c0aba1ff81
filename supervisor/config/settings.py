"""config/settings.yaml and config/calendar.yaml: the office's settings, strictly validated.

Secrets never live in these files: they name the environment variables that hold them.
`load_all` loads every file (settings, calendar, contacts, templates, rules) and reports every
problem at once, each as `file:line: key: message`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from supervisor.config.contacts import Directory, load_directory
from supervisor.config.delivery import DeliverySettings
from supervisor.config.desk_security import DeskSettings
from supervisor.config.notifier_settings import NotifierSettings, missing_settings
from supervisor.config.sms_templates import FILE_NAME as SMS_FILE
from supervisor.config.sms_templates import load_sms_templates
from supervisor.config.templates import Templates, load_templates
from supervisor.config.yamlconf import (
    ConfigError,
    ConfigInvalid,
    Located,
    load_model,
    load_yaml,
    validate,
)
from supervisor.core.workcal import CalendarConfig, WorkCalendar
from supervisor.engine.policy import Policy, load_policy
from supervisor.policy.rulebook import rule_files

HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Model):
    url_env: str = "DATABASE_URL"  # unset or empty: the embedded PostgreSQL
    embedded_dir: str = "var/pgdata"  # relative to the working directory
    pool_size: Annotated[int, Field(ge=2, le=100)] = 10


class HttpSettings(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8345
    tokens_env: str = "HOTLINE_API_TOKENS"  # comma-separated bearer tokens
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    max_batch: Annotated[int, Field(ge=1)] = 5_000
    public_url: str | None = None  # how Twilio reaches us, for signature checks
    # The role an API token acknowledges as when its name is not a contact id (core.acks):
    # "supervisor" ends everything but the leader's steps.
    token_role: Literal["liaison", "head", "supervisor", "leader"] = "supervisor"


class IngestSettings(_Model):
    # An event stamped further ahead of the clock than this is refused (API and `ingest`).
    future_tolerance_s: Annotated[int, Field(ge=0, le=30 * 86_400)] = 300


class ReloadSettings(_Model):
    # A rules edit is applied by hot reload only if the rule tests (rules/tests) pass.
    require_tests: bool = True


class PrivacySettings(_Model):
    caller_key_env: str = "HOTLINE_CALLER_KEY"
    # With the variable unset, a random key is made once and kept in this file (mode 0600).
    caller_key_file: str = "var/caller.key"


class SchedulerSettings(_Model):
    batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    catch_up_grace_s: Annotated[int, Field(ge=0)] = 300
    max_sleep_s: Annotated[float, Field(gt=0)] = 30.0


class Settings(_Model):
    rules_dir: str = "../rules"  # relative to the config folder
    matcher: Literal["durable_rules", "python"] = "durable_rules"
    database: DatabaseSettings = DatabaseSettings()
    http: HttpSettings = HttpSettings()
    privacy: PrivacySettings = PrivacySettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    ingest: IngestSettings = IngestSettings()
    reload: ReloadSettings = ReloadSettings()
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    notifiers: NotifierSettings = Field(default_factory=NotifierSettings)
    desk: DeskSettings = DeskSettings()  # sign-in, sessions, audit (config/desk_security.py)
    log_format: Literal["json", "text"] = "json"


class ImportedNotice(_Model):
    """One State Council notice as imported (`calendar import`): the days it listed, for its year.
    A year's days are its notices applied in order (a supplement on top of the annual one)."""

    notice: Annotated[str, Field(min_length=1)]  # the title, or what stood for it
    kind: Literal["annual", "supplement"] = "annual"
    imported: date | None = None
    days_off: list[date] = []
    workdays: list[date] = []


class Override(_Model):
    """The office deciding a day itself, on purpose: it beats the package and every notice."""

    day: date
    kind: Literal["holiday", "workday"]
    source: Annotated[str, Field(min_length=1)]  # who decided, where it is written


class CalendarFile(_Model):
    office_hours: Annotated[list[tuple[HHMM, HHMM]], Field(min_length=1)] = [
        ("09:00", "12:00"),
        ("13:30", "17:30"),
    ]
    # A year chinese-calendar has no data for: "error" refuses to compute deadlines in it;
    # "weekdays" counts Monday-Friday and says so loudly (check, start-up, /healthz).
    missing_year: Literal["error", "weekdays"] = "weekdays"
    extra_holidays: list[date] = []
    extra_workdays: list[date] = []
    covered_years: list[int] = []  # years this file lists in full (holidays and 调休 days)
    # Since issue 20: notices as imported, by the year they announce (apart from overrides), and
    # the office's own days, each with its source. extra_holidays / extra_workdays (written by
    # the importer before) still work and count as overrides without a source.
    imports: dict[int, list[ImportedNotice]] = {}
    overrides: list[Override] = []

    def imported_days(self, year: int | None = None) -> dict[date, bool]:
        """date -> True (off) / False (调休 working day): the notices of `year` (or of every
        year, in year order) applied in the order they were imported."""
        out: dict[date, bool] = {}
        for y in sorted(self.imports):
            if year is not None and y != year:
                continue
            for entry in self.imports[y]:
                out.update({d: True for d in entry.days_off})
                out.update({d: False for d in entry.workdays})
        return out

    def to_config(self) -> CalendarConfig:
        imported = self.imported_days()
        return CalendarConfig(
            office_hours=tuple(
                (time.fromisoformat(a), time.fromisoformat(b)) for a, b in self.office_hours
            ),
            extra_workdays=frozenset(self.extra_workdays)
            | {o.day for o in self.overrides if o.kind == "workday"},
            extra_holidays=frozenset(self.extra_holidays)
            | {o.day for o in self.overrides if o.kind == "holiday"},
            covered_years=frozenset(self.covered_years) | frozenset(self.imports),
            missing_year=self.missing_year,
            imported_holidays=frozenset(d for d, off in imported.items() if off),
            imported_workdays=frozenset(d for d, off in imported.items() if not off),
        )


@dataclass
class Loaded:
    settings: Settings
    calendar: WorkCalendar
    directory: Directory
    templates: Templates
    policy: Policy
    config_dir: Path
    warnings: list[str] = field(default_factory=list)


def load_all(
    config_dir: Path, *, env: Mapping[str, str] | None = None, years: range | None = None
) -> Loaded:
    """Load and check everything; raises ConfigInvalid with every error found."""
    env = os.environ if env is None else env
    errors: list[ConfigError] = []
    warnings: list[str] = []
    settings_path = config_dir / "settings.yaml"
    located = _collect(errors, lambda: load_yaml(settings_path))
    settings = (
        _collect(errors, lambda: validate(Settings, located)) if located is not None else None
    ) or Settings()
    if located is not None:
        errors.extend(reconcile_problems(settings, located))
    cal_file = (
        _collect(errors, lambda: load_model(CalendarFile, config_dir / "calendar.yaml"))
        or CalendarFile()
    )
    calendar = None
    try:
        calendar = WorkCalendar(cal_file.to_config())
    except ValueError as exc:
        errors.append(ConfigError(str(config_dir / "calendar.yaml"), None, None, str(exc)))
        calendar = WorkCalendar()
    directory = _collect(errors, lambda: load_directory(config_dir / "contacts.yaml"))
    templates = _collect(errors, lambda: load_templates(config_dir / "templates.yaml"))
    if templates is not None:
        errors.extend(templates.check())
    sms_mapped = _sms_templates(config_dir, settings, templates, errors)
    rules_dir = (config_dir / settings.rules_dir).resolve()
    policy = _collect(
        errors,
        lambda: load_policy(
            rule_files(rules_dir),
            calendar,
            templates=templates,
            matcher=settings.matcher,
            sms_mapped=sms_mapped,
        ),
    )
    if directory is not None:
        warnings.extend(f"contacts: {gap}" for gap in directory.gaps())
        lone = _single_provider(directory, settings)
        if lone:
            warnings.append(lone)
    for problem in missing_settings(settings.notifiers, env):
        errors.append(ConfigError(str(config_dir / "settings.yaml"), None, "notifiers", problem))
    for year in calendar.uncovered_years(years or _years_ahead()):
        msg = (
            f"calendar: no official holiday data for {year} (chinese-calendar has none yet); "
            f"import the State Council's notice for {year} (the desk's 日历 page, or "
            "`hotline-supervisor calendar import`) once it is published"
        )
        if cal_file.missing_year == "error":
            warnings.append(
                msg + "; deadlines in that year cannot be computed (missing_year: error)"
            )
        else:
            warnings.append(
                msg + "; until then its working days are Monday-Friday minus the statutory "
                "holidays, without the 调休 swaps (missing_year: weekdays)"
            )
    if errors:
        raise ConfigInvalid(errors)
    assert directory is not None and templates is not None and policy is not None
    return Loaded(settings, calendar, directory, templates, policy, config_dir, warnings)


def _single_provider(directory: Directory, settings: Settings) -> str | None:
    """An outage of the one provider all of the supervisors' and leaders' channels use would
    reach none of them (delivery/outage.py): say so while there is time to add a fallback."""
    from supervisor.config.fallback import channel_providers, single_provider_warning

    return single_provider_warning(directory, channel_providers(settings.notifiers))


def reconcile_problems(settings: Settings, located: Located) -> list[ConfigError]:
    """A send may take up to its provider's timeout_s; reconciling it sooner finds nothing yet
    and sends it again (docs/RELIABILITY.md: a duplicate). So reconcile_after_s must be longer
    than every configured provider's timeout."""
    wait = settings.delivery.reconcile_after_s
    out = []
    for name in type(settings.notifiers).model_fields:
        provider = getattr(settings.notifiers, name)
        timeout = getattr(provider, "timeout_s", None)
        if isinstance(timeout, int | float) and wait <= timeout:
            out.append(
                located.error(
                    ("delivery", "reconcile_after_s"),
                    f"{wait:g} s is not longer than notifiers.{name}.timeout_s ({timeout:g} s): "
                    "a send still waiting for its answer would be reconciled too early and sent "
                    f"twice; make it longer than {timeout:g} s (default 60)",
                )
            )
    return out


def _sms_templates(
    config_dir: Path, settings: Settings, templates: Templates | None, errors: list[ConfigError]
) -> dict[str, frozenset[str]]:
    """Load config/sms_templates.yaml when it exists (attached to `templates`: fired steps store
    the providers' parameters) and return, for each configured template-only provider, the
    templates it maps. A configured provider needs the file."""
    path = config_dir / SMS_FILE
    configured = settings.notifiers.template_sms()
    if not path.exists():
        for provider in configured:
            errors.append(
                ConfigError(str(path), None, None, f"notifiers.{provider} is configured: "
                            f"map every template sent by sms to its registered template here")
            )  # fmt: skip
        return dict.fromkeys(configured, frozenset())
    mapping = _collect(errors, lambda: load_sms_templates(path))
    if mapping is None:
        return {}
    if templates is not None:
        errors.extend(mapping.check(frozenset(templates.names)))
        templates.sms = mapping
    for provider in configured:
        if provider not in mapping.providers:
            errors.append(
                ConfigError(str(path), None, provider, f"notifiers.{provider} is configured "
                            "but this file has no mapping for it")
            )  # fmt: skip
    return {
        p: frozenset(n for n in (templates.names if templates else ()) if mapping.has(p, n))
        for p in configured
    }


def _years_ahead() -> range:
    this = date.today().year
    return range(this, this + 2)


def _collect(errors: list[ConfigError], load):
    try:
        return load()
    except ConfigInvalid as exc:
        errors.extend(exc.errors)
        return None


def caller_key(settings: Settings, env: Mapping[str, str] | None = None) -> bytes:
    env = os.environ if env is None else env
    value = env.get(settings.privacy.caller_key_env)
    if value:
        return value.encode()
    path = Path(settings.privacy.caller_key_file)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def api_tokens(settings: Settings, env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return [t.strip() for t in env.get(settings.http.tokens_env, "").split(",") if t.strip()]


DEFAULT_TOKEN_NAME = "api"


def named_api_tokens(
    settings: Settings, env: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(name, token) pairs from `name:token,...`; a bare token (no colon) is named "api"."""
    out = []
    for item in api_tokens(settings, env):
        name, sep, token = item.partition(":")
        if sep and name.strip() and token.strip():
            out.append((name.strip(), token.strip()))
        else:
            out.append((DEFAULT_TOKEN_NAME, item))
    return out


__all__ = [
    "named_api_tokens",
    "Settings",
    "CalendarFile",
    "Loaded",
    "load_all",
    "caller_key",
    "api_tokens",
    "ConfigInvalid",
]
