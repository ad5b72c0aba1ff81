"""`hotline-supervisor user …`: the desk's accounts.

user add NAME --role ROLE [--unit UNIT] [--temporary]   an account in config/users.yaml
user passwd NAME [--temporary]                          a new password (supersedes the desk's)
user unlock NAME                                        lift a sign-in lock (audited)
user end-sessions NAME | --all                          sign out everywhere (audited)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from supervisor.config.yamlconf import ConfigInvalid
from supervisor.desk.users import ROLES, add_user, set_password


def add_user_parser(sub: Any, func: Callable[[argparse.Namespace], int]) -> None:
    p = sub.add_parser("user", help="accounts of the desk (config/users.yaml)")
    verbs = p.add_subparsers(dest="user_command", required=True)
    add = verbs.add_parser("add", help="add an account (argon2 hash written to users.yaml)")
    add.add_argument("name", help="the sign-in name: letters, digits, '.', '_' or '-'")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--unit", help="the unit (as tickets name it): required for head and liaison")
    add.add_argument(
        "--grid",
        action="append",
        help="a grid member's grid (repeat for several): required for grid",
    )
    add.add_argument("--display-name", help="the name shown on the pages, e.g. 张敏")
    add.add_argument("--phone", help="mobile number for the sign-in code by SMS (+86…)")
    add.add_argument(
        "--temporary", action="store_true",
        help="a temporary password: the user must change it at the first sign-in",
    )  # fmt: skip
    add.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from standard input (first line) instead of prompting",
    )  # fmt: skip
    add.set_defaults(func=func)
    pw = verbs.add_parser("passwd", help="set a new password in users.yaml")
    pw.add_argument("name")
    pw.add_argument("--temporary", action="store_true", help="changed at the next sign-in")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(func=user_passwd)
    un = verbs.add_parser("unlock", help="lift the sign-in lock of an account (audited)")
    un.add_argument("name")
    un.set_defaults(func=user_unlock)
    end = verbs.add_parser("end-sessions", help="end the desk sessions of an account, or all")
    end.add_argument("name", nargs="?")
    end.add_argument("--all", action="store_true", help="every session of every account")
    end.set_defaults(func=user_end_sessions)


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 (password): ")
    if getpass.getpass("再输入一次 (again): ") != first:
        print("the two passwords differ; nothing written", file=sys.stderr)
        return None
    return first


def _settings_and_units(args: argparse.Namespace) -> tuple[Any, list[str] | None]:
    """The desk's security settings and the directory's units (None if contacts.yaml is
    unreadable: `check` reports that)."""
    from supervisor.config.contacts import load_directory
    from supervisor.config.settings import Settings
    from supervisor.config.yamlconf import load_model

    cfg = Path(args.config)
    settings = load_model(Settings, cfg / "settings.yaml") if (cfg / "settings.yaml").exists() \
        else Settings()  # fmt: skip
    try:
        units = list(load_directory(cfg / "contacts.yaml").model.units)
    except (ConfigInvalid, OSError):
        units = None
    return settings, units


def user_add(args: argparse.Namespace) -> int:
    path = Path(args.config) / "users.yaml"
    try:
        settings, units = _settings_and_units(args)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.unit and units is not None and args.unit not in units:
        from supervisor.desk.users import unknown_unit

        print(f"--unit: {unknown_unit(args.unit, units)}; nothing written", file=sys.stderr)
        return 1
    password = _password(args)
    if password is None:
        return 1
    sec = settings.desk.security
    try:
        add_user(path, args.name, args.role, args.unit, password, args.display_name,
                 temporary=args.temporary, grids=args.grid, units=units, phone=args.phone,
                 min_length=sec.password_min_length, min_classes=sec.password_classes)  # fmt: skip
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"]) or "user"
            print(f"{where}: {err['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 1
    except (ValueError, ConfigInvalid) as exc:
        print(exc, file=sys.stderr)
        return 1
    scope = f", unit {args.unit}" if args.unit else ""
    temp = "; the password must be changed at the first sign-in" if args.temporary else ""
    print(f"user {args.name} added to {path} (role {args.role}{scope}){temp}")
    return 0


def user_passwd(args: argparse.Namespace) -> int:
    path = Path(args.config) / "users.yaml"
    settings, _ = _settings_and_units(args)
    password = _password(args)
    if password is None:
        return 1
    sec = settings.desk.security
    try:
        set_password(path, args.name, password, temporary=args.temporary,
                     min_length=sec.password_min_length, min_classes=sec.password_classes)  # fmt: skip
    except (ValueError, ConfigInvalid) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"password of {args.name} set in {path}; their desk sessions end at the next request")
    return 0


async def _with_desk_db(args: argparse.Namespace, work: Callable[[Any, Any], Any]) -> Any:
    from supervisor.storage.db import database

    settings, _ = _settings_and_units(args)
    s = settings.database
    async with database(os.environ.get(s.url_env) or None, Path(s.embedded_dir)) as pool:
        return await work(pool, settings.desk.security)


async def _audit(pool: Any, action: str, **detail: Any) -> None:
    await pool.execute(
        "INSERT INTO desk_audit (at, actor, action, remote, detail) VALUES ($1, $2, $3, $4, $5)",
        datetime.now(UTC), f"cli:{getpass.getuser()}", action, "local", detail,
    )  # fmt: skip


def user_unlock(args: argparse.Namespace) -> int:
    from supervisor.desk.throttle import Throttle

    async def work(pool: Any, sec: Any) -> bool:
        done = await Throttle(pool, sec).unlock(args.name)
        if done:
            await _audit(pool, "account_unlocked", account=args.name)
        return bool(done)

    if asyncio.run(_with_desk_db(args, work)):
        print(f"{args.name} unlocked")
        return 0
    print(f"{args.name} was not locked", file=sys.stderr)
    return 1


def user_end_sessions(args: argparse.Namespace) -> int:
    from supervisor.desk.sessions import SessionStore

    if bool(args.name) == bool(args.all):
        print("give one account name, or --all", file=sys.stderr)
        return 2

    async def work(pool: Any, sec: Any) -> int:
        store = SessionStore(pool, sec)
        n = await (store.end_all() if args.all else store.end_login(args.name))
        await _audit(pool, "sessions_ended", account="*" if args.all else args.name, count=n)
        return int(n)

    n = asyncio.run(_with_desk_db(args, work))
    print(f"{n} session(s) ended")
    return 0
