"""The monthly report as data: runs the aggregates of queries.py for a period and assembles the
JSON object that every rendering (xlsx, html, csv, json) and the desk's 统计 page show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from supervisor.core.clock import SHANGHAI
from supervisor.stats import queries as q

REMINDER_ROLES = ["liaison", "head"]  # 催办: to the handling unit
ESCALATION_ROLES = ["supervisor", "leader"]  # 督办: to the street
RATE_KEYS = (
    "sign_off_on_time",
    "on_time_replies",
    "satisfaction",
    "satisfaction_strict",
    "resolution",
)
HEADLINE = ("sign_off_on_time", "on_time_replies", "satisfaction", "resolution")
UNKNOWN = "未填写"  # a breakdown value the ticket did not give


@dataclass(frozen=True)
class Period:
    first: date  # first day, Beijing time
    last: date  # last day, inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=SHANGHAI)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=SHANGHAI)

    @property
    def label(self) -> str:
        if (
            self.first.day == 1
            and (self.last + timedelta(days=1)).day == 1
            and self.first.month == self.last.month
        ):
            return f"{self.first:%Y-%m}"
        return f"{self.first}_{self.last}"

    def previous(self) -> Period:
        """The month before (for a month), else the span of the same length just before."""
        if self.label == f"{self.first:%Y-%m}":
            return month(_shift(self.first, -1))
        span = self.last - self.first
        return Period(self.first - span - timedelta(days=1), self.first - timedelta(days=1))


def _shift(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month(d: date) -> Period:
    first = d.replace(day=1)
    return Period(first, _shift(first, 1) - timedelta(days=1))


def parse_month(text: str) -> Period:
    """'2026-11' -> November 2026; ValueError names the problem."""
    try:
        year, mon = (int(x) for x in text.split("-"))
        return month(date(year, mon, 1))
    except ValueError:
        raise ValueError(f"{text!r} is not a month (YYYY-MM)") from None


def previous_month(now: datetime) -> Period:
    """The default period: the calendar month before `now`'s, in Beijing time."""
    return month(_shift(now.astimezone(SHANGHAI).date().replace(day=1), -1))


def rate(num: int, den: int) -> dict[str, Any]:
    return {"num": num, "den": den, "rate": round(num / den, 4) if den else None}


def _score(row: dict[str, Any]) -> float | None:
    """A unit's assessment score: the mean of its headline rates that have a denominator."""
    rates = [row[k]["num"] / row[k]["den"] for k in HEADLINE if row[k]["den"]]
    return round(sum(rates) / len(rates), 4) if rates else None


def _name(value: str | None) -> str:
    return value if value else UNKNOWN


async def figures(conn: asyncpg.Connection, p: Period, now: datetime) -> dict[str, Any]:
    """Every figure of one period, with per-unit rows (unranked)."""
    a, b = p.start, p.end
    cut = min(b, now)
    out: dict[str, Any] = {"period": {"from": p.first.isoformat(), "to": p.last.isoformat()}}
    units: dict[str, dict[str, Any]] = {}

    def unit_row(name: str | None) -> dict[str, Any]:
        key = _name(name)
        if key not in units:
            units[key] = {"unit": key, **{k: rate(0, 0) for k in RATE_KEYS}, "dispatches": 0, "replies": 0,
                          "returns": 0, "disputes": 0, "overdue_now": 0, "reminders": 0, "escalations": 0}  # fmt: skip
        return units[key]

    received: dict[str, Any] = {
        "total": 0,
        "by_category": {},
        "by_channel": {},
        "by_kind": {},
        "by_grid": {},
    }
    for r in await conn.fetch(q.RECEIVED, a, b):
        if r["g_cat"] and r["g_ch"] and r["g_kind"] and r["g_grid"]:
            received["total"] = r["n"]
        elif not r["g_cat"]:
            received["by_category"][_name(r["category"])] = r["n"]
        elif not r["g_ch"]:
            received["by_channel"][_name(r["channel"])] = r["n"]
        elif not r["g_kind"]:
            received["by_kind"][_name(r["kind"])] = r["n"]
        else:
            received["by_grid"][_name(r["grid"])] = r["n"]
    for key in ("by_category", "by_channel", "by_kind", "by_grid"):
        received[key] = dict(sorted(received[key].items(), key=lambda kv: (-kv[1], kv[0])))
    out["received"] = received

    out["sign_off_on_time"] = rate(0, 0)
    for r in await conn.fetch(q.SIGN_OFF, a, b, cut):
        if r["total"]:
            out["sign_off_on_time"] = rate(r["num"], r["den"])
        else:
            unit_row(r["unit"])["sign_off_on_time"] = rate(r["num"], r["den"])
    for r in await conn.fetch(q.DISPATCHES, a, b):
        unit_row(r["unit"])["dispatches"] = r["n"]

    out["closed"], out["on_time_replies"] = 0, rate(0, 0)
    for r in await conn.fetch(q.ON_TIME, a, b, cut):
        if r["total"]:
            out["closed"], out["on_time_replies"] = r["replies"], rate(r["num"], r["den"])
        else:
            row = unit_row(r["unit"])
            row["on_time_replies"], row["replies"] = rate(r["num"], r["den"]), r["replies"]

    for key in ("satisfaction", "satisfaction_strict", "resolution"):
        out[key] = rate(0, 0)
    for r in await conn.fetch(q.CALLBACKS, a, b):
        target = out if r["total"] else unit_row(r["unit"])
        target["satisfaction"] = rate(r["satisfied"], r["den"])
        target["satisfaction_strict"] = rate(r["satisfied_strict"], r["den"])
        target["resolution"] = rate(r["resolved"], r["den"])

    out["rehandled"] = await conn.fetchval(q.REHANDLED, a, b)
    out["handled_3_times"] = await conn.fetchval(q.HANDLED_3, a, b)

    matters = [
        {"key": r["key"], "category": r["category"], "address": r["address"],
         "tickets": list(r["tickets"]), "count": len(r["tickets"])}
        for r in await conn.fetch(q.MATTERS_3PLUS, a, b)
    ]  # fmt: skip
    matters.sort(key=lambda m: (-m["count"], m["tickets"][0]))
    out["repeats"] = {
        "tickets": await conn.fetchval(q.REPEAT_TICKETS, a, b),
        "matters_3plus": matters,
    }

    disputes: dict[str, Any] = {"tickets": 0, "returns_by_unit": {}}
    for r in await conn.fetch(q.DISPUTES, a, b):
        if r["total"]:
            disputes["tickets"] = r["n"]
        else:
            unit_row(r["unit"])["disputes"] = r["n"]
    for r in await conn.fetch(q.RETURNS, a, b):
        disputes["returns_by_unit"][_name(r["unit"])] = r["n"]
        unit_row(r["unit"])["returns"] = r["n"]
    disputes["returns_by_unit"] = dict(
        sorted(disputes["returns_by_unit"].items(), key=lambda kv: (-kv[1], kv[0]))
    )
    out["disputes"] = disputes

    for key, roles in (("reminders", REMINDER_ROLES), ("escalations", ESCALATION_ROLES)):
        msgs: dict[str, Any] = {"total": 0, "by_unit": {}, "by_role": {}}
        for r in await conn.fetch(q.MESSAGES, a, b, roles):
            if r["g_unit"] and r["g_role"]:
                msgs["total"] = r["n"]
            elif not r["g_unit"]:
                msgs["by_unit"][_name(r["unit"])] = r["n"]
                unit_row(r["unit"])[key] = r["n"]
            else:
                msgs["by_role"][r["role"]] = r["n"]
        out[key] = msgs
    ack = await conn.fetchrow(q.ACKS, a, b, ESCALATION_ROLES)
    out["escalations"]["acknowledged"] = ack["acknowledged"]
    median = ack["median"]
    out["escalations"]["median_ack_minutes"] = (
        round(float(median), 1) if median is not None else None
    )

    c = await conn.fetchrow(q.COMMITMENTS, a, b, cut)
    out["commitments"] = {"made": c["made"], "kept": c["kept"], "broken": c["broken"]}

    for r in await conn.fetch(q.OVERDUE_NOW, now):
        unit_row(r["unit"])["overdue_now"] = r["n"]
    out["units"] = list(units.values())
    return out


def rank(
    units: list[dict[str, Any]], previous: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Units ranked by score (highest first; units without a score last, by name), each with its
    rank and the change from the previous period's score and rank."""
    before = {u["unit"]: u for u in previous or []}
    for u in units:
        u["score"] = _score(u)
    ranked = sorted(units, key=lambda u: (u["score"] is None, -(u["score"] or 0), u["unit"]))
    for i, u in enumerate(ranked, 1):
        u["rank"] = i
        old = before.get(u["unit"])
        old_score = old.get("score") if old else None
        u["change"] = {
            "score": round(u["score"] - old_score, 4) if u["score"] is not None and old_score is not None else None,
            "rank": old["rank"] - i if old and old.get("rank") else None,
        }  # fmt: skip
    return ranked


async def trend(
    conn: asyncpg.Connection, p: Period, now: datetime, months: int = 12
) -> list[dict[str, Any]]:
    """The headline figures of the `months` months ending with the period's month."""
    out = []
    first = p.first.replace(day=1)
    for i in range(months - 1, -1, -1):
        m = month(_shift(first, -i))
        a, b = m.start, m.end
        cut = min(b, now)
        row: dict[str, Any] = {"month": m.label}
        row["received"] = await conn.fetchval(
            "SELECT count(*) FROM events WHERE type = 'created' AND at >= $1 AND at < $2", a, b
        )
        row["sign_off_on_time"] = next(
            (
                rate(r["num"], r["den"])
                for r in await conn.fetch(q.SIGN_OFF, a, b, cut)
                if r["total"]
            ),
            rate(0, 0),
        )
        on_time = [r for r in await conn.fetch(q.ON_TIME, a, b, cut) if r["total"]]
        row["closed"] = on_time[0]["replies"] if on_time else 0
        row["on_time_replies"] = (
            rate(on_time[0]["num"], on_time[0]["den"]) if on_time else rate(0, 0)
        )
        cb = [r for r in await conn.fetch(q.CALLBACKS, a, b) if r["total"]]
        row["satisfaction"] = rate(cb[0]["satisfied"], cb[0]["den"]) if cb else rate(0, 0)
        row["resolution"] = rate(cb[0]["resolved"], cb[0]["den"]) if cb else rate(0, 0)
        out.append(row)
    return out


async def monthly_report(
    pool: asyncpg.Pool, p: Period, now: datetime, *, with_trend: bool = True
) -> dict[str, Any]:
    """The whole report of a period: figures, ranked units with change, 12-month trend."""
    async with pool.acquire() as conn:
        current = await figures(conn, p, now)
        before = await figures(conn, p.previous(), now)
        before["units"] = rank(before["units"], None)
        current["units"] = rank(current["units"], before["units"])
        current["previous"] = {k: before[k] for k in HEADLINE}
        current["trend"] = await trend(conn, p, now) if with_trend else []
    current["generated_at"] = now.astimezone(SHANGHAI).isoformat(timespec="seconds")
    return current
