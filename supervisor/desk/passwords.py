"""Password rules of the desk (口令复杂度): pure. Length, character classes, not the login name,
not a common password (data/common-passwords.txt, compared case-insensitively)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def common_passwords() -> frozenset[str]:
    text = (resources.files("supervisor.desk") / "data" / "common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def classes(password: str) -> int:
    """How many of lower case, upper case, digits and other characters the password uses."""
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def problems(password: str, login: str, min_length: int = 10, min_classes: int = 3) -> list[str]:
    """Why the password is refused (in Chinese, for the desk and the CLI); [] when it is fine."""
    out = []
    if any(not c.isprintable() for c in password):
        return ["密码不能包含控制字符或无效字符"]
    if len(password) < min_length:
        out.append(f"密码至少 {min_length} 个字符")
    if classes(password) < min_classes:
        out.append(f"密码须包含小写字母、大写字母、数字、符号中的至少 {min_classes} 类")
    low = password.lower()
    if login and (low == login.lower() or login.lower() in low):
        out.append("密码不能包含用户名")
    if low in common_passwords() or low.rstrip("!@#.") in common_passwords():
        out.append("密码过于常见，请换一个")
    return out
