"""`hotline-supervisor user add NAME --role ROLE [--unit UNIT]`: an account of the desk."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from supervisor.config.yamlconf import ConfigInvalid
from supervisor.desk.users import ROLES, add_user


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
    add.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from standard input (first line) instead of prompting",
    )  # fmt: skip
    add.set_defaults(func=func)


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 (password): ")
    if getpass.getpass("再输入一次 (again): ") != first:
        print("the two passwords differ; nothing written", file=sys.stderr)
        return None
    return first


def user_add(args: argparse.Namespace) -> int:
    path = Path(args.config) / "users.yaml"
    password = _password(args)
    if password is None:
        return 1
    try:
        add_user(path, args.name, args.role, args.unit, password, args.display_name, args.grid)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"]) or "user"
            print(f"{where}: {err['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 1
    except (ValueError, ConfigInvalid) as exc:
        print(exc, file=sys.stderr)
        return 1
    scope = f", unit {args.unit}" if args.unit else ""
    print(f"user {args.name} added to {path} (role {args.role}{scope})")
    return 0
