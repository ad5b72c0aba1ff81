"""The daemon's health (/healthz): the database, degraded providers, warnings, calendar gaps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.server.daemon import Daemon


async def health(daemon: Daemon) -> tuple[bool, dict[str, Any]]:
    """Healthy while the database answers; degraded providers, config warnings and calendar
    gaps are reported beside it."""
    info: dict[str, Any] = {
        "worker": daemon.worker_id,
        "matcher": daemon.supervisor.runtime.policy.matcher.name,
    }
    outages = daemon.dispatcher.outages()
    if outages:  # still serving; messages on these providers wait or fall back
        info["degraded"] = {p: f"down since {t.isoformat()}" for p, t in outages.items()}
    if daemon.loaded.warnings:
        info["warnings"] = daemon.loaded.warnings
    year = daemon.clock.now().year
    gaps = daemon.loaded.calendar.uncovered_years(range(year, year + 2))
    if gaps:  # healthy, but deadlines in these years skip only the statutory holidays
        info["calendar"] = {
            "years_without_data": gaps,
            "assumed": "Monday-Friday minus statutory holidays; 调休 unknown",
        }
    try:
        await daemon.store.ping()
    except Exception as exc:  # any failure means "not healthy", with the reason
        info["database"] = f"unreachable: {type(exc).__name__}"
        return False, info
    info["database"] = "ok"
    return True, info
