"""The scheduled monthly report (report kind `monthly_stats`): on the first working day of each
month, the leader and the supervisor get last month's four headline rates by SMS, and the full
report is kept as var/reports/YYYY-MM.xlsx for the desk to list and download.

Once per period across daemons, like the other periodic reports: the report_runs key is taken
in the transaction that writes the messages, so a failed run can be retried.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from supervisor.core.clock import SHANGHAI
from supervisor.engine.firing import Notification
from supervisor.engine.reports import _notifications
from supervisor.policy.rulebook import Report
from supervisor.stats.command import REPORTS_DIR, keep
from supervisor.stats.monthly import monthly_report, previous_month
from supervisor.stats.render import rate_text
from supervisor.storage import queries as q


def message_context(report: dict[str, Any]) -> dict[str, Any]:
    """What the monthly_stats template shows: the month and the four headline rates as text."""
    first = report["period"]["from"]
    stats = {
        "month": f"{int(first[:4])}年{int(first[5:7])}月",
        "received": report["received"]["total"],
        "closed": report["closed"],
        "sign_off": rate_text(report["sign_off_on_time"]),
        "on_time": rate_text(report["on_time_replies"]),
        "satisfaction": rate_text(report["satisfaction"]),
        "resolution": rate_text(report["resolution"]),
    }
    return {"stats": stats, "rule": "monthly-stats", "step": 0}


def notifications(
    cfg: Report, at: datetime, report: dict[str, Any], runtime: Any
) -> list[Notification]:
    """Pure: one message per recipient of the report's roles."""
    return _notifications(cfg, at, "-", None, message_context(report), runtime)


async def run_monthly(
    store: Any, cfg: Report, period: int | str, at: datetime, runtime: Any, folder: Path = REPORTS_DIR
) -> list[Notification] | None:
    """Run one month's report once across daemons: keep the file, send the headline SMS."""
    pool: asyncpg.Pool = store.pool
    month = previous_month(at.astimezone(SHANGHAI))
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(q.CLAIM_REPORT_RUN, cfg.id, str(period)):
            return None
        await keep(pool, runtime.policy, month, at, folder)
        report = await monthly_report(pool, month, at, with_trend=False)
        notes = notifications(cfg, at, report, runtime)
        if notes:
            await store._insert_outbox(conn, notes, getattr(runtime, "delivery", None))
        return notes
