"""The contact directory (config/contacts.yaml): who plays each role for a unit, the street, a grid.

Roles: `liaison` (the unit's 联络员), `head` (the unit's 负责人), `supervisor` (the street's hotline
supervisor), `leader` (the street's leader in charge), `grid` (the 网格员 of the ticket's grid).

A reminder is never dropped because a role has no contact: `Directory.resolve` sends it to the
street supervisors instead and says why (`Recipient.fallback_reason`). Only when the street has no
supervisor either does it return [], and then the caller must report the message as undeliverable.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from supervisor import vocabulary
from supervisor.config.yamlconf import ConfigError, ConfigInvalid, Located, load_yaml, validate
from supervisor.core.privacy import mask

ROLES = vocabulary.ROLES
PHONE_REGION = "CN"  # numbers written without +86 are mainland numbers

Channel = Literal["sms", "voice", "wecom", "dingtalk", "console"]
PersonId = Annotated[str, Field(pattern=r"^\S+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def normalise_phone(raw: str | int) -> str:
    """E.164 ("+8613800138001"), or ValueError."""
    text = str(raw).strip()  # an unquoted number in YAML arrives as an int
    try:
        number = phonenumbers.parse(text, PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError(f"'{text}' is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"'{text}' is not a valid phone number") from None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Person(_Model):
    name: Annotated[str, Field(min_length=1)]
    phone: str | None = None
    channels: tuple[Channel, ...] = ("sms",)

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or not isinstance(value, str | int) or isinstance(value, bool):
            return value
        try:
            return normalise_phone(value)
        except ValueError as exc:
            who = info.data.get("name")
            raise ValueError(f"{exc} (for {who})" if who else str(exc)) from None

    @model_validator(mode="after")
    def _phone_for_phone_channels(self) -> Person:
        # sms and voice need a number; wecom, dingtalk and console address people otherwise
        needing = [c for c in self.channels if c in ("sms", "voice")]
        if needing and self.phone is None:
            raise ValueError(f"{self.name} has channel {', '.join(needing)} but no phone")
        return self


class Unit(_Model):
    name: str | None = None  # display name; the unit id when absent
    liaison: list[PersonId] = []
    head: list[PersonId] = []


class Street(_Model):
    name: str | None = None
    supervisor: list[PersonId] = []
    leader: list[PersonId] = []


class DirectoryModel(_Model):
    people: dict[PersonId, Person]
    street: Street = Street()
    units: dict[str, Unit] = {}
    grids: dict[str, list[PersonId]] = {}


def references(model: DirectoryModel) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every person id the directory refers to, with its path in the YAML."""
    for role in ("supervisor", "leader"):
        for i, pid in enumerate(getattr(model.street, role)):
            yield ("street", role, i), pid
    for uid, unit in model.units.items():
        for role in ("liaison", "head"):
            for i, pid in enumerate(getattr(unit, role)):
                yield ("units", uid, role, i), pid
    for gid, members in model.grids.items():
        for i, pid in enumerate(members):
            yield ("grids", gid, i), pid


def unknown_references(model: DirectoryModel) -> list[tuple[tuple[Any, ...], str]]:
    """(path, message) for every reference to a person not under `people`."""
    problems = []
    for path, pid in references(model):
        if pid not in model.people:
            guess = difflib.get_close_matches(pid, list(model.people), n=1)
            hint = f"; did you mean '{guess[0]}'?" if guess else ""
            problems.append((path, f"unknown person '{pid}' (not under people:){hint}"))
    return problems


@dataclass(frozen=True)
class Recipient:
    person: str | None
    name: str
    role: str  # the role asked for, also when a supervisor stands in for it
    phone: str | None  # E.164
    channels: tuple[str, ...]
    fallback_reason: str | None = None  # set when this recipient stands in for a missing role


_RESOLVED_MAX = 4_096  # Directory.resolve's answers kept (cleared when full)


class Directory:
    """Who to send to, built from a validated DirectoryModel."""

    def __init__(self, model: DirectoryModel) -> None:
        problems = unknown_references(model)
        if problems:  # load_directory reports these with lines; this guards hand-built models
            raise ValueError("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in problems))
        self.model = model
        # (role, unit, grid) -> what `resolve` gives (the model is frozen; a new directory is a
        # new Directory): a fired step asks the same few questions again and again
        self._resolved: dict[tuple[str, str | None, str | None], tuple[Recipient, ...]] = {}

    def person(self, pid: str) -> Person:
        return self.model.people[pid]

    def unit_name(self, unit: str) -> str:
        known = self.model.units.get(unit)
        return known.name if known and known.name else unit

    def _recipients(self, pids: list[str], role: str, reason: str | None = None) -> list[Recipient]:
        out = []
        for pid in dict.fromkeys(pids):  # the same person listed twice gets one message
            p = self.model.people[pid]
            out.append(Recipient(pid, p.name, role, p.phone, p.channels, reason))
        return out

    def _people_for(self, role: str, unit: str | None, grid: str | None) -> tuple[list[str], str]:
        """The role's person ids, and the words for why there are none."""
        if role in ("liaison", "head"):
            if not unit:
                return [], f"no unit given for the {role}"
            if unit not in self.model.units:
                return [], f"unit '{unit}' is not in the contact directory"
            return getattr(self.model.units[unit], role), f"no {role} for unit '{unit}'"
        if role in ("supervisor", "leader"):
            return getattr(self.model.street, role), f"no street {role} in the contact directory"
        if role == "grid":
            if not grid:
                return [], "the ticket has no grid"
            if grid not in self.model.grids:
                return [], f"grid '{grid}' is not in the contact directory"
            return self.model.grids[grid], f"no member for grid '{grid}'"
        raise ValueError(f"unknown role '{role}' (not one of: {', '.join(ROLES)})")

    def resolve(
        self, role: str, *, unit: str | None = None, grid: str | None = None
    ) -> list[Recipient]:
        """The people to tell for `role`. A role without contacts falls back to the supervisors,
        with `fallback_reason` set; [] only when the street has no supervisor at all (the caller
        must then report the message as undeliverable, never drop it quietly)."""
        key = (role, unit, grid)
        found = self._resolved.get(key)
        if found is None:
            found = tuple(self._resolve(role, unit, grid))
            if len(self._resolved) >= _RESOLVED_MAX:
                self._resolved.clear()
            self._resolved[key] = found
        return list(found)

    def _resolve(self, role: str, unit: str | None, grid: str | None) -> list[Recipient]:
        pids, why_none = self._people_for(role, unit, grid)
        if pids:
            return self._recipients(pids, role)
        if role == "supervisor":
            return []
        reason = f"{why_none}; sent to the supervisor instead"
        return self._recipients(self.model.street.supervisor, role, reason)

    def gaps(self) -> list[str]:
        """What is missing, in words, for `check`: every gap here means fallbacks at run time."""
        out = []
        if not self.model.street.supervisor:
            out.append(
                "the street has no supervisor: messages for missing roles cannot be delivered"
            )
        if not self.model.street.leader:
            out.append("the street has no leader")
        for uid, unit in self.model.units.items():
            for role in ("liaison", "head"):
                if not getattr(unit, role):
                    out.append(f"unit '{uid}' has no {role}")
        for gid, members in self.model.grids.items():
            if not members:
                out.append(f"grid '{gid}' has no member")
        return out


def load_directory(path: Path | str, text: str | None = None) -> Directory:
    """Load and check config/contacts.yaml; ConfigInvalid lists every problem with its line."""
    located: Located = load_yaml(path, text)
    model = validate(DirectoryModel, located)
    errors: list[ConfigError] = [located.error(p, m) for p, m in unknown_references(model)]
    if errors:
        raise ConfigInvalid(errors)
    return Directory(model)


def mask_phone(e164: str) -> str:
    """ "+8613812341234" -> "138****1234", for display: the same mask as callers' numbers."""
    return mask(e164)
