"""The desk's accounts: config/users.yaml (argon2 hashes), loaded strictly, and `user add`.

    users:
      zhang-min: {role: supervisor, name: 张敏, password_hash: "$argon2id$..."}
      wang-qiang: {role: liaison, unit: 城管执法中队, password_hash: "$argon2id$..."}

supervisor and leader see every ticket; head and liaison see their unit's only (`unit` required).
A password is never stored or logged: only its argon2 hash is written.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from supervisor.config.yamlconf import ConfigError, ConfigInvalid, load_model, load_yaml
from supervisor.desk.passwords import problems as password_problems

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
    # set by `user add --temporary`: the password must be changed at the first sign-in
    must_change: bool = False
    phone: str | None = None  # for the sign-in code by SMS (E.164, e.g. "+8613800138000")

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
    phone: str | None = None
    must_change: bool = False
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
        login: (
            User(login, u.role, u.unit, u.name or login, u.phone, u.must_change, tuple(u.grids)),
            u.password_hash,
        )
        for login, u in parsed.users.items()
    }


def check_users(path: Path, units: Collection[str] | None = None) -> list[ConfigError]:
    """For `check`: the problems of users.yaml (none when it is absent); with `units` (the
    contact directory's), a unit not in it is one, naming the near matches."""
    try:
        users = load_users(path)
    except ConfigInvalid as exc:
        return exc.errors
    if units is None or not users:
        return []
    located = load_yaml(path)
    return [
        located.error(("users", login, "unit"), unknown_unit(user.unit, units))
        for login, (user, _) in users.items()
        if user.unit is not None and user.unit not in units
    ]


def unknown_unit(unit: str, units: Collection[str]) -> str:
    near = difflib.get_close_matches(unit, list(units), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    return f"unit {unit!r} is not in the contact directory (contacts.yaml units){hint}"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(users: dict[str, tuple[User, str]], login: str, password: str) -> User | None:
    entry = users.get(login)
    ok = verify_hash(entry[1] if entry else None, password)
    return entry[0] if entry and ok else None


def verify_hash(password_hash: str | None, password: str) -> bool:
    """argon2 check; an unknown account (None) costs as long as a wrong password."""
    try:
        _HASHER.verify(password_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
        return False  # (a lone surrogate is no one's password)
    return password_hash is not None


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
    *,
    temporary: bool = False,
    units: Collection[str] | None = None,
    min_length: int = 10,
    min_classes: int = 3,
    phone: str | None = None,
    grids: list[str] | None = None,
) -> None:
    """Append an account to users.yaml (created when missing), keeping the file's comments.
    Refuses a name already there, a weak password, a unit not in `units` (when given) and
    anything `check` would refuse. `temporary`: changed at the first sign-in."""
    if not NAME_RE.match(login):
        raise ValueError(f"{login!r}: a user name is letters, digits, '.', '_' or '-'")
    weak = password_problems(password, login, min_length, min_classes)
    if weak:
        raise ValueError("password refused: " + "；".join(weak))
    if unit is not None and units is not None and unit not in units:
        raise ValueError(unknown_unit(unit, units))
    entry = UserModel(role=role, unit=unit, name=name, password_hash=hash_password(password),  # type: ignore[arg-type]
                      must_change=temporary, phone=phone, grids=grids or [])  # fmt: skip
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
    if entry.phone:
        fields.append(f"phone: {_quote(entry.phone)}")
    if entry.grids:
        fields.append(f"grids: [{', '.join(_quote(g) for g in entry.grids)}]")
    fields.append(f'password_hash: "{entry.password_hash}"')
    if entry.must_change:
        fields.append("must_change: true")
    text += f"  {login}: {{{', '.join(fields)}}}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    load_users(path)  # what was written must load


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_password(
    path: Path, login: str, password: str, *, temporary: bool = False,
    min_length: int = 10, min_classes: int = 3,
) -> None:  # fmt: skip
    """`user passwd`: a new hash for an existing account in users.yaml (its other fields and the
    file's comments kept). A password set on the desk is superseded by it."""
    users = load_users(path)
    if login not in users:
        raise ValueError(f"{path}: no user {login!r}")
    weak = password_problems(password, login, min_length, min_classes)
    if weak:
        raise ValueError("password refused: " + "；".join(weak))
    old, new = users[login][1], hash_password(password)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if old in line]
    if len(at) != 1 or not lines[at[0]].rstrip().endswith("}"):
        raise ValueError(f"{path}: {login!r} is not one `{{...}}` line; edit it by hand")
    line = re.sub(r",\s*must_change:\s*\w+", "", lines[at[0]].replace(old, new))
    if temporary:
        line = line.rstrip()[:-1].rstrip() + ", must_change: true}\n"
    lines[at[0]] = line
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)
    load_users(path)
