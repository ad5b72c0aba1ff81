"""`hotline-supervisor report monthly`: the period from the arguments, facts refreshed, the report
computed and written in the chosen format. Also what the desk and the scheduler call to keep
each month's report as a file (var/reports/YYYY-MM.xlsx)."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from supervisor.core.clock import SHANGHAI
from supervisor.core.inputs import bounded_date, bounded_month
from supervisor.engine.policy import Policy
from supervisor.stats.monthly import Period, monthly_report, parse_month, previous_month
from supervisor.stats.refresh import refresh

FORMATS = ("xlsx", "html", "json", "csv")
REPORTS_DIR = Path("var/reports")


def period_from(month: str | None, first: str | None, last: str | None, now: datetime) -> Period:
    """--month, or --from/--to (inclusive dates), else the previous month in Beijing time."""
    if first or last:
        if month:
            raise ValueError("give --month or --from/--to, not both")
        if not (first and last):
            raise ValueError("--from and --to go together")
        p = Period(bounded_date("from", first), bounded_date("to", last))
        if p.last < p.first:
            raise ValueError("--to is before --from")
        return p
    return parse_month(str(bounded_month("month", month))[:7]) if month else previous_month(now)


def render(report: dict[str, Any], fmt: str) -> bytes:
    if fmt == "xlsx":
        from supervisor.stats.xlsx import write_xlsx

        return write_xlsx(report)
    if fmt == "html":
        from supervisor.stats.html import render_html

        return render_html(report).encode()
    from supervisor.stats.render import to_csv, to_json

    return (to_json(report) if fmt == "json" else to_csv(report)).encode()


async def build(
    pool: asyncpg.Pool, policy: Policy, period: Period, now: datetime
) -> dict[str, Any]:
    """Refresh the facts, then compute the report."""
    await refresh(pool, policy)
    return await monthly_report(pool, period, now)


async def keep(
    pool: asyncpg.Pool, policy: Policy, period: Period, now: datetime, folder: Path = REPORTS_DIR
) -> Path:
    """Write the period's report as an xlsx file in `folder` (atomically); returns its path."""
    import asyncio

    report = await build(pool, policy, period, now)
    return await asyncio.to_thread(_write, folder, f"{period.label}.xlsx", render(report, "xlsx"))


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    tmp = path.with_name(name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def kept(folder: Path = REPORTS_DIR) -> list[Path]:
    """The kept monthly files, newest month first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.glob("*.xlsx") if p.is_file()), reverse=True)


def run(args: Any, loaded: Any) -> int:
    """The CLI verb; `loaded` is config.load_all's result."""
    import asyncio

    from supervisor.storage.db import database

    now = datetime.now(SHANGHAI)
    try:
        period = period_from(args.month, args.date_from, args.date_to, now)
    except ValueError as exc:
        print(f"report monthly: {exc}", file=sys.stderr)
        return 2
    fmt = args.format or (Path(args.output).suffix.lstrip(".") if args.output else "xlsx")
    if fmt not in FORMATS:
        print(
            f"report monthly: unknown format {fmt!r} (one of: {', '.join(FORMATS)})",
            file=sys.stderr,
        )
        return 2

    async def go() -> bytes:
        s = loaded.settings
        url = os.environ.get(s.database.url_env) or None
        async with database(url, Path(s.database.embedded_dir)) as pool:
            return render(await build(pool, loaded.policy, period, now), fmt)

    data = asyncio.run(go())
    out = args.output or f"report-{period.label}.{fmt}"
    if out == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(out).write_bytes(data)
        print(f"{period.first} to {period.last}: written to {out}", file=sys.stderr)
    return 0

def add_parser(sub: Any, func: Any) -> None:
    """The `report monthly` verb of the command line."""
    p = sub.add_parser("report", help="reports (monthly statistics)")
    rsub = p.add_subparsers(dest="report", required=True)
    p = rsub.add_parser("monthly", help="the monthly statistics and unit assessment")
    p.add_argument("--month", help="YYYY-MM (default: the previous month, Beijing time)")
    p.add_argument("--from", dest="date_from", help="first day YYYY-MM-DD (with --to)")
    p.add_argument("--to", dest="date_to", help="last day YYYY-MM-DD, included")
    p.add_argument("--format", choices=("xlsx", "html", "json", "csv"), help="default: from -o, else xlsx")
    p.add_argument("-o", "--output", help="file to write (- for stdout; default report-PERIOD.FORMAT)")
    p.set_defaults(func=func)
