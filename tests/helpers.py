"""Shared test helpers: the shipped configuration, loaded once, and event builders."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
SH = ZoneInfo("Asia/Shanghai")


@cache
def loaded():
    from supervisor.config.settings import load_all

    return load_all(CONFIG, env={})


def runtime(key: bytes = b"test-key"):
    from supervisor.application import runtime_from

    return runtime_from(loaded(), key)


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def ev(ticket: str, n: int, etype: str, at: datetime | str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"{ticket}-{n}",
        "ticket": ticket,
        "type": etype,
        "at": at if isinstance(at, str) else at.isoformat(),
        **fields,
    }


def every_type(ticket: str = "T1") -> list[dict[str, Any]]:
    """One event of every type of the contract, in a plausible order."""
    return [
        ev(ticket, 1, "created", sh(2026, 11, 23, 9, 0), channel="phone", category="市容环境", kind="complaint", urgent=False,
           caller="13812345678", address="幸福路88号", grid="G01", summary="占道经营"),
        ev(ticket, 2, "dispatched", sh(2026, 11, 23, 9, 5), unit="城管执法中队", co_units=["市场监管所"]),
        ev(ticket, 3, "signed", sh(2026, 11, 23, 9, 30), unit="城管执法中队", by="wang-qiang"),
        ev(ticket, 4, "returned", sh(2026, 11, 23, 9, 40), unit="市场监管所", reason="非本单位职责"),
        ev(ticket, 5, "extension_requested", sh(2026, 11, 24, 10, 0), unit="城管执法中队", until=sh(2026, 12, 4, 17, 0).isoformat(), reason="需协调"),
        ev(ticket, 6, "extension_decided", sh(2026, 11, 24, 11, 0), approved=True, until=sh(2026, 12, 4, 17, 0).isoformat()),
        ev(ticket, 7, "commitment_made", sh(2026, 11, 24, 14, 0), unit="城管执法中队", due="2026-12-03", promise="月底前清理"),
        ev(ticket, 8, "contacted", sh(2026, 11, 24, 15, 0), unit="城管执法中队", phase="before"),
        ev(ticket, 9, "replied", sh(2026, 11, 26, 10, 0), unit="城管执法中队", result="已清理"),
        ev(ticket, 10, "visited", sh(2026, 11, 26, 15, 0), satisfaction="dissatisfied", resolved=False),
        ev(ticket, 11, "reopened", sh(2026, 11, 26, 16, 0), reason="仍有占道"),
        ev(ticket, 12, "contacted", sh(2026, 11, 27, 9, 0), unit="城管执法中队", phase="after"),
        ev(ticket, 13, "closed", sh(2026, 11, 30, 9, 0)),
        ev(ticket, 14, "commitment_kept", sh(2026, 11, 28, 9, 0), unit="城管执法中队", result="已清理完毕"),
        ev(ticket, 15, "reviewed", sh(2026, 11, 26, 10, 1), of=f"{ticket}-9", kind="replied", outcome="returned",
           checks=["contact"], findings=["联系诉求人：请写明何时、以何种方式联系了诉求人"]),
        ev(ticket, 16, "review_decided", sh(2026, 11, 26, 11, 0), of=f"{ticket}-9", decision="accept",
           note="已电话核实", by="zhang-min"),
    ]  # fmt: skip
