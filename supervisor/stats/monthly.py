"""The monthly report as data: runs the aggregates of queries.py for a period and assembles the
JSON object that every rendering (xlsx, html, csv, json) and the desk's 统计 page show."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from supervisor.core.clock import SHANGHAI
from supervisor.stats import matters as mt
from supervisor.stats import queries as q

REMINDER_ROLES = ["liaison", "head"]  # 催办: to the handling unit
ESCALATION_ROLES = ["supervisor", "leader"]  # 督办: to the street
RATE_KEYS = (
    "sign_off_on_time",
    "on_time_replies",
    "satisfaction",
    "satisfaction_strict",
    "resolution",
    "first_pass",  # 答复一次通过率 (答复审核)
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


def _received(rows: list[Any]) -> dict[str, Any]:
    """受理量: the total and its breakdowns (RECEIVED's grouping sets)."""
    received: dict[str, Any] = {
        "total": 0,
        "by_category": {},
        "by_channel": {},
        "by_kind": {},
        "by_grid": {},
    }
    for r in rows:
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
    return received


def _repeats(records: list[Any], start: datetime) -> dict[str, Any]:
    """重复诉求 (tickets of the period in a matter) and the matters of three tickets or more."""
    groups, tickets = mt.linked(records, start, min_size=3)
    words = {kinds: ("+".join(kinds), mt.link_words(kinds)) for kinds in {m.kinds for m in groups}}
    matters: list[dict[str, Any]] = [
        {"key": words[m.kinds][0], "link": words[m.kinds][1], "category": m.category, "address": m.address,
         "tickets": list(m.tickets), "count": len(m.tickets)}
        for m in groups if len(m.tickets) >= 3
    ]  # fmt: skip
    matters.sort(key=lambda m: (-m["count"], m["tickets"][0]))
    return {"tickets": tickets, "matters_3plus": matters}


async def _fetch(pool: asyncpg.Pool, jobs: dict[str, tuple[Any, ...]]) -> dict[str, list[Any]]:
    """Run named queries (sql, *args) concurrently, each on a connection of the pool.

    Without JIT: the aggregates over a million rows have plan costs high enough for PostgreSQL to
    compile them, which took 1-4 s per query (more than running them) and gains nothing here."""

    async def one(sql: str, *args: Any) -> list[Any]:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute("SET LOCAL jit = off")
            return await conn.fetch(sql, *args)

    results = await asyncio.gather(*(one(*job) for job in jobs.values()))
    return dict(zip(jobs, results, strict=True))


async def figures(
    pool: asyncpg.Pool,
    p: Period,
    now: datetime,
    *,
    full: bool = True,
    fetched: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Every figure of one period, with per-unit rows (unranked). The queries run concurrently.

    full=False (the period before, which the report compares with): the headline rates, 受理量's
    total and the per-unit rows only (every unit that has a row, for the ranks), without the
    breakdowns, 重复诉求, 督办 acknowledgements, commitments, review reasons and own demands."""
    a, b = p.start, p.end
    cut = min(b, now)
    jobs: dict[str, tuple[Any, ...]] = {
        "sign_off": (q.SIGN_OFF, a, b, cut), "on_time": (q.ON_TIME, a, b, cut), "callbacks": (q.CALLBACKS, a, b),
        "disputes": (q.DISPUTES, a, b), "returns": (q.RETURNS, a, b),
        "reminders": (q.MESSAGES, a, b, REMINDER_ROLES), "escalations": (q.MESSAGES, a, b, ESCALATION_ROLES),
        "overdue": (q.OVERDUE_NOW, now), "first_pass": (q.FIRST_PASS, a, b),
    }  # fmt: skip
    if full:
        jobs |= {
            "received": (q.RECEIVED, a, b), "rehandled": (q.REHANDLED, a, b), "handled_3": (q.HANDLED_3, a, b),
            "acks": (q.ACKS, a, b, ESCALATION_ROLES),
            "commitments": (q.COMMITMENTS, a, b, cut), "review_returns": (q.REVIEW_RETURNS, a, b),
            "own": (q.OWN_DEMANDS, a, b),
        }  # fmt: skip
    else:
        jobs["received_total"] = (q.RECEIVED_TOTAL, a, b)
    queried = asyncio.Event()

    async def matters() -> dict[str, Any]:
        try:
            rows = (await _fetch(pool, {"matters": (q.MATTER_LINKS, a, b, mt.WINDOW)}))["matters"]
        finally:  # failed, it raises where it is awaited
            queried.set()
        return await asyncio.to_thread(_repeats, rows, a)  # while the other queries run

    # the matters first: the longest query (it takes the pool's first connection), then its
    # Python part in a thread while the database answers the others
    repeats = asyncio.ensure_future(matters()) if full else None
    try:
        res = await _fetch(pool, jobs)
        if repeats is not None:
            await queried.wait()
    except BaseException:
        if repeats is not None:
            repeats.cancel()
        raise
    if fetched is not None:  # the queries are done (others may use the database meanwhile)
        fetched()
    out: dict[str, Any] = {"period": {"from": p.first.isoformat(), "to": p.last.isoformat()}}
    units: dict[str, dict[str, Any]] = {}

    def unit_row(name: str | None) -> dict[str, Any]:
        key = _name(name)
        if key not in units:
            units[key] = {"unit": key, **{k: rate(0, 0) for k in RATE_KEYS}, "dispatches": 0, "replies": 0,
                          "returns": 0, "disputes": 0, "overdue_now": 0, "reminders": 0, "escalations": 0}  # fmt: skip
        return units[key]

    if full:
        out["received"] = _received(res["received"])
    else:
        out["received"] = {"total": res["received_total"][0][0]}

    out["sign_off_on_time"] = rate(0, 0)
    for r in res["sign_off"]:
        if r["total"]:
            out["sign_off_on_time"] = rate(r["num"], r["den"])
        else:
            row = unit_row(r["unit"])
            row["sign_off_on_time"], row["dispatches"] = rate(r["num"], r["den"]), r["dispatches"]

    out["closed"], out["on_time_replies"] = 0, rate(0, 0)
    for r in res["on_time"]:
        if r["total"]:
            out["closed"], out["on_time_replies"] = r["replies"], rate(r["num"], r["den"])
        else:
            row = unit_row(r["unit"])
            row["on_time_replies"], row["replies"] = rate(r["num"], r["den"]), r["replies"]

    for key in ("satisfaction", "satisfaction_strict", "resolution"):
        out[key] = rate(0, 0)
    for r in res["callbacks"]:
        target = out if r["total"] else unit_row(r["unit"])
        target["satisfaction"] = rate(r["satisfied"], r["den"])
        target["satisfaction_strict"] = rate(r["satisfied_strict"], r["den"])
        target["resolution"] = rate(r["resolved"], r["den"])

    if full:
        out["rehandled"] = res["rehandled"][0][0]
        out["handled_3_times"] = res["handled_3"][0][0]
        assert repeats is not None
        out["repeats"] = await repeats

    disputes: dict[str, Any] = {"tickets": 0, "returns_by_unit": {}}
    for r in res["disputes"]:
        if r["total"]:
            disputes["tickets"] = r["n"]
        else:
            unit_row(r["unit"])["disputes"] = r["n"]
    for r in res["returns"]:
        disputes["returns_by_unit"][_name(r["unit"])] = r["n"]
        unit_row(r["unit"])["returns"] = r["n"]
    disputes["returns_by_unit"] = dict(
        sorted(disputes["returns_by_unit"].items(), key=lambda kv: (-kv[1], kv[0]))
    )
    out["disputes"] = disputes

    for key in ("reminders", "escalations"):
        msgs: dict[str, Any] = {"total": 0, "by_unit": {}, "by_role": {}}
        for r in res[key]:
            if r["g_unit"] and r["g_role"]:
                msgs["total"] = r["n"]
            elif not r["g_unit"]:
                msgs["by_unit"][_name(r["unit"])] = r["n"]
                unit_row(r["unit"])[key] = r["n"]
            else:
                msgs["by_role"][r["role"]] = r["n"]
        out[key] = msgs
    if full:
        ack = res["acks"][0]
        out["escalations"]["acknowledged"] = ack["acknowledged"]
        median = ack["median"]
        out["escalations"]["median_ack_minutes"] = (
            round(float(median), 1) if median is not None else None
        )
        c = res["commitments"][0]
        out["commitments"] = {"made": c["made"], "kept": c["kept"], "broken": c["broken"]}

    for r in res["overdue"]:
        unit_row(r["unit"])["overdue_now"] = r["n"]

    out["first_pass"] = rate(0, 0)
    for r in res["first_pass"]:
        target = out if r["total"] else unit_row(r["unit"])
        target["first_pass"] = rate(r["num"], r["den"])
    if full:
        returns = {r["reason"]: r["n"] for r in res["review_returns"]}
        out["review"] = {"returns_by_reason": returns}
        registered = sum(r["registered"] for r in res["own"])
        solved = sum(r["solved"] for r in res["own"])
        out["own_demands"] = {
            "registered": registered, "solved": solved, "rate": rate(solved, registered),
            "by_channel": {r["channel"]: r["registered"] for r in res["own"]},
        }  # fmt: skip
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


def _headline(res: dict[str, list[Any]], label: str) -> dict[str, Any]:
    row: dict[str, Any] = {"month": label, "received": res["received"][0][0]}
    sign = [r for r in res["sign_off"] if r["total"]]
    row["sign_off_on_time"] = rate(sign[0]["num"], sign[0]["den"]) if sign else rate(0, 0)
    on_time = [r for r in res["on_time"] if r["total"]]
    row["closed"] = on_time[0]["replies"] if on_time else 0
    row["on_time_replies"] = rate(on_time[0]["num"], on_time[0]["den"]) if on_time else rate(0, 0)
    cb = [r for r in res["callbacks"] if r["total"]]
    row["satisfaction"] = rate(cb[0]["satisfied"], cb[0]["den"]) if cb else rate(0, 0)
    row["resolution"] = rate(cb[0]["resolved"], cb[0]["den"]) if cb else rate(0, 0)
    return row


def _headline_of(fig: dict[str, Any], label: str) -> dict[str, Any]:
    """The row _headline makes, from a period's figures (the same queries' results)."""
    return {
        "month": label,
        "received": fig["received"]["total"],
        "sign_off_on_time": dict(fig["sign_off_on_time"]),
        "closed": fig["closed"],
        "on_time_replies": dict(fig["on_time_replies"]),
        "satisfaction": dict(fig["satisfaction"]),
        "resolution": dict(fig["resolution"]),
    }


async def trend(
    pool: asyncpg.Pool,
    p: Period,
    now: datetime,
    months: int = 12,
    current: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
    pending: Awaitable[tuple[dict[str, Any], dict[str, Any]]] | None = None,
    ready: asyncio.Event | None = None,
) -> list[dict[str, Any]]:
    """The headline figures of the `months` months ending with the period's month (the last
    one taken from `current` when it is that month's report, the one before from `previous`, the
    figures of the month before, when they are that month's).

    pending: the figures of the period and of the one before while they are being computed
    (current and previous when they come); the other months are queried once `ready` is set
    (their queries done), while the figures' Python part runs."""
    first = p.first.replace(day=1)
    periods = [month(_shift(first, -i)) for i in range(months - 1, -1, -1)]
    ours = [{"from": x.first.isoformat(), "to": x.last.isoformat()} for x in (p, p.previous())]

    async def one(m: Period) -> dict[str, Any]:
        nonlocal current, previous
        if pending is not None and {"from": m.first.isoformat(), "to": m.last.isoformat()} in ours:
            current, previous = await pending
        elif ready is not None:
            await ready.wait()
        if current is not None and current["period"] == {
            "from": m.first.isoformat(),
            "to": m.last.isoformat(),
        }:
            keys = (
                "received",
                "closed",
                "sign_off_on_time",
                "on_time_replies",
                "satisfaction",
                "resolution",
            )
            return {
                "month": m.label,
                **{k: current[k] for k in keys},
                "received": current["received"]["total"],
            }
        if previous is not None and previous["period"] == {
            "from": m.first.isoformat(),
            "to": m.last.isoformat(),
        }:
            return _headline_of(previous, m.label)
        a, b = m.start, m.end
        cut = min(b, now)
        res = await _fetch(pool, {
            "received": (q.RECEIVED_TOTAL, a, b),
            "sign_off": (q.SIGN_OFF, a, b, cut), "on_time": (q.ON_TIME, a, b, cut), "callbacks": (q.CALLBACKS, a, b),
        })  # fmt: skip
        return _headline(res, m.label)

    return list(await asyncio.gather(*(one(m) for m in periods)))


async def monthly_report(
    pool: asyncpg.Pool, p: Period, now: datetime, *, with_trend: bool = True
) -> dict[str, Any]:
    """The whole report of a period: figures, ranked units with change, 12-month trend."""
    ready, left = asyncio.Event(), [2]

    def fetched() -> None:
        left[0] -= 1
        if not left[0]:
            ready.set()

    both = asyncio.gather(
        figures(pool, p, now, fetched=fetched),
        figures(pool, p.previous(), now, full=False, fetched=fetched),
    )
    # the trend's other months are queried when the figures' queries are done, while their
    # Python part (the matters) runs in a thread
    months = (
        asyncio.ensure_future(trend(pool, p, now, pending=both, ready=ready))
        if with_trend
        else None
    )
    try:
        current, before = await both
        months_of = await months if months is not None else []
    finally:
        if months is not None and not months.done():
            months.cancel()
    before["units"] = rank(before["units"], None)
    current["units"] = rank(current["units"], before["units"])
    current["previous"] = {k: before[k] for k in HEADLINE}
    current["trend"] = months_of
    current["generated_at"] = now.astimezone(SHANGHAI).isoformat(timespec="seconds")
    return current
