"""The desk's accounts: config/users.yaml (argon2 hashes), loaded strictly, and `user add`.

    users:
      zhang-min: {role: supervisor, name: 张敏, password_hash: "$argon2id$..."}
      wang-qiang: {role: liaison, unit: 城管执法中队, password_hash: "$argon2id$..."}

supervisor and leader see every ticket; head and liaison see their unit's only (`unit` required).
A password is never stored or logged: only its argon2 hash is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from supervisor.config.yamlconf import ConfigError, ConfigInvalid, load_model

Role = Literal["supervisor", "leader", "head", "liaison", "grid"]
ROLES: tuple[str, ...] = ("supervisor", "leader", "head", "liaison", "grid")
GRID_ROLE = "grid"  # 网格员: registers demands (登记诉求) and sees their grids' open tickets
UNIT_ROLES = frozenset({"head", "liaison"})
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ROLE_LABELS = {
    "supervisor": "热线专员",
    "leader": "分管领导",
    "head": "单位负责人",
    "liaison": "联络员",
    "grid": "网格员",
}

_HASHER = PasswordHasher()
# A hash to verify against when the name is unknown, so a wrong name costs as long as a wrong
# password and timing does not tell which names exist.
_DUMMY_HASH = _HASHER.hash("no such user")


class UserModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Role
    unit: str | None = None
    name: str | None = None  # shown in the page header and the audit trail
    grids: list[Annotated[str, Field(min_length=1, max_length=200)]] = []  # a grid member's grids
    password_hash: str

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str) -> str:
        if not value.startswith("$argon2"):
            raise ValueError("not an argon2 hash: set passwords with `hotline-supervisor user add`")
        return value

    @model_validator(mode="after")
    def _unit_for_unit_roles(self) -> UserModel:
        if self.role in UNIT_ROLES and not self.unit:
            raise ValueError(f"a {self.role} needs `unit` (the unit as tickets name it)")
        if self.role not in UNIT_ROLES and self.unit:
            raise ValueError(f"a {self.role} sees every unit: remove `unit`")
        if self.role == GRID_ROLE and not self.grids:
            raise ValueError("a grid member needs `grids` (the grids as tickets name them)")
        if self.role != GRID_ROLE and self.grids:
            raise ValueError("only a grid member has `grids`")
        return self


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    users: dict[Annotated[str, Field(pattern=NAME_RE.pattern)], UserModel] = {}


@dataclass(frozen=True)
class User:
    login: str
    role: str
    unit: str | None
    name: str
    grids: tuple[str, ...] = ()  # a grid member's grids (网格员)

    @property
    def sees_all(self) -> bool:
        return self.role not in UNIT_ROLES and self.role != GRID_ROLE

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


def load_users(path: Path) -> dict[str, tuple[User, str]]:
    """login -> (user, hash). A missing file means no accounts (the desk then says how to add
    one); an invalid one raises ConfigInvalid with file:line: key: message errors."""
    if not path.exists():
        return {}
    parsed = load_model(UsersFile, path)
    return {
        login: (User(login, u.role, u.unit, u.name or login, tuple(u.grids)), u.password_hash)
        for login, u in parsed.users.items()
    }


def check_users(path: Path) -> list[ConfigError]:
    """For `check`: the problems of users.yaml (none when it is absent)."""
    try:
        load_users(path)
    except ConfigInvalid as exc:
        return exc.errors
    return []


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(users: dict[str, tuple[User, str]], login: str, password: str) -> User | None:
    entry = users.get(login)
    try:
        _HASHER.verify(entry[1] if entry else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return entry[0] if entry else None


HEADER = """\
# Accounts of the supervisor's desk (the web pages). Add one with
#   hotline-supervisor user add NAME --role supervisor|leader|head|liaison|grid [--unit U] [--grid G]
# Only argon2 hashes are kept here, never a password. head, liaison, grid see their own only.
users:
"""


def add_user(
    path: Path,
    login: str,
    role: str,
    unit: str | None,
    password: str,
    name: str | None = None,
    grids: list[str] | None = None,
) -> None:
    """Append an account to users.yaml (created when missing), keeping the file's comments.
    Refuses a name already there and anything `check` would refuse."""
    if not NAME_RE.match(login):
        raise ValueError(f"{login!r}: a user name is letters, digits, '.', '_' or '-'")
    if len(password) < 8:
        raise ValueError("the password needs at least 8 characters")
    entry = UserModel(
        role=role, unit=unit, name=name, grids=grids or [], password_hash=hash_password(password)
    )  # type: ignore[arg-type]
    users = load_users(path)
    if login in users:
        raise ValueError(f"{path}: user {login!r} exists already")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if not users:
        text = HEADER  # nothing to keep but comments: start from the header
    elif not text.endswith("\n"):
        text += "\n"
    fields = [f"role: {entry.role}"]
    if entry.unit:
        fields.append(f"unit: {_quote(entry.unit)}")
    if entry.name:
        fields.append(f"name: {_quote(entry.name)}")
    if entry.grids:
        fields.append(f"grids: [{', '.join(_quote(g) for g in entry.grids)}]")
    fields.append(f'password_hash: "{entry.password_hash}"')
    text += f"  {login}: {{{', '.join(fields)}}}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    load_users(path)  # what was written must load


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
