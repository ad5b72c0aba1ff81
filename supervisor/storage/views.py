"""Read queries of the desk and of GET /api/v1/tickets (PostgreSQL): one query per view, so a
page and its JSON twin cannot disagree. `unit` arguments scope a unit user to their unit."""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from supervisor.core.clock import SHANGHAI

# tickets a unit is working on (its deadlines run)
HANDLING = ("dispatched", "signed", "reopened")
# a message that chased someone above the liaison: an escalation (督办) once it went out
ESCALATION_ROLES = ("head", "supervisor", "leader")
VIEWS = ("awaiting", "due_today", "overdue", "escalated")
SORT_KEY = "coalesce(t.created_at, '-infinity'::timestamptz)"

# matches the partial index outbox_escalated (migration 009)
ESCALATION_SENT = """EXISTS (SELECT 1 FROM outbox o WHERE o.ticket = l.ticket AND o.rule = l.rule
  AND o.cycle = l.cycle AND o.role IN ('head', 'supervisor', 'leader') AND o.status IN ('sent', 'sending'))"""
ESCALATED = f"""EXISTS (SELECT 1 FROM ladders l WHERE l.ticket = t.ticket AND l.status = 'active'
  AND {ESCALATION_SENT})"""


_SCOPE = re.compile(r"\((\$\d+)::text IS NULL OR ([\w.]+) = \1\)")


def scoped(sql: str, unit: str | None) -> str:
    """`($n::text IS NULL OR x.unit = $n)` made plain for the case at hand, so that a prepared
    statement's generic plan is not one plan for both (it was twice as slow for the overview)."""
    return _SCOPE.sub(r"(\1::text IS NULL)" if unit is None else r"(\2 = \1)", sql)


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Today in Beijing: [00:00, next 00:00)."""
    local = now.astimezone(SHANGHAI)
    start = datetime.combine(local.date(), datetime.min.time(), tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def week_start(now: datetime) -> datetime:
    start, _ = day_bounds(now)
    return start - timedelta(days=start.weekday())


def month_start(now: datetime) -> datetime:
    start, _ = day_bounds(now)
    return start.replace(day=1)


# --- 总览 -------------------------------------------------------------------------------------

OVERVIEW_TICKETS = f"""
SELECT d.unit,
  count(*) FILTER (WHERE d.status = 'dispatched') AS awaiting,
  count(*) FILTER (WHERE d.reply_by >= $1 AND d.reply_by < $2) AS due_today,
  count(*) FILTER (WHERE d.reply_by < $1 OR (d.status = 'dispatched' AND d.sign_by < $1)) AS overdue
FROM desk_deadlines d
WHERE d.status = ANY('{{{",".join(HANDLING)}}}'::text[]) AND ($3::text IS NULL OR d.unit = $3)
GROUP BY d.unit
"""
OVERVIEW_ESCALATIONS = f"""
SELECT d.unit, count(*) AS escalations FROM ladders l JOIN desk_deadlines d ON d.ticket = l.ticket
WHERE l.status = 'active' AND d.status <> 'closed' AND ($1::text IS NULL OR d.unit = $1)
  AND {ESCALATION_SENT}
GROUP BY d.unit
"""
OVERVIEW_FAILED = """
SELECT t.unit, count(*) AS failed FROM outbox o LEFT JOIN tickets t ON t.ticket = o.ticket
WHERE o.status = 'failed' AND o.created_at >= $1 AND ($2::text IS NULL OR t.unit = $2)
GROUP BY t.unit
"""
COUNTS = ("awaiting", "due_today", "overdue", "escalations", "failed")


async def overview(
    pool: asyncpg.Pool, now: datetime, unit: str | None, units: list[str]
) -> dict[str, Any]:
    """Counts now, per unit (every unit of the directory is listed, also with zeros). The three
    queries run at once, each on its own pooled connection."""
    _, day_end = day_bounds(now)
    failed_since = now - timedelta(days=7)
    rows: dict[str | None, dict[str, int]] = {}

    def row(u: str | None) -> dict[str, int]:
        return rows.setdefault(u, dict.fromkeys(COUNTS, 0))

    for u in units:
        if unit is None or u == unit:
            row(u)
    counts, escalations, failed = await asyncio.gather(
        pool.fetch(scoped(OVERVIEW_TICKETS, unit), now, day_end, unit),
        pool.fetch(scoped(OVERVIEW_ESCALATIONS, unit), unit),
        pool.fetch(scoped(OVERVIEW_FAILED, unit), failed_since, unit),
    )
    for r in counts:
        row(r["unit"]).update(
            awaiting=r["awaiting"], due_today=r["due_today"], overdue=r["overdue"]
        )
    for r in escalations:
        row(r["unit"])["escalations"] = r["escalations"]
    for r in failed:
        row(r["unit"])["failed"] = r["failed"]
    per_unit: list[dict[str, Any]] = [
        {"unit": u, **c}
        for u, c in sorted(rows.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    ]
    totals = {k: sum(r[k] for r in per_unit) for k in COUNTS}
    return {"at": now.astimezone(SHANGHAI).isoformat(), "units": per_unit, "totals": totals,
            "failed_since": failed_since.astimezone(SHANGHAI).isoformat()}  # fmt: skip


# --- 工单 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFilter:
    status: str | None = None
    unit: str | None = None
    category: str | None = None
    urgent: bool | None = None
    view: str | None = None  # awaiting | due_today | overdue | escalated
    created_from: date | None = None  # Beijing dates, inclusive
    created_to: date | None = None
    q: str | None = None  # ticket number (or its start) or part of the address
    after: str | None = None  # keyset cursor from the previous page
    limit: int = 50


def encode_cursor(created_at: datetime | None, ticket: str) -> str:
    key = created_at.isoformat() if created_at else "-"
    return base64.urlsafe_b64encode(f"{key}|{ticket}".encode()).decode().rstrip("=")


NO_TIME = datetime.min.replace(tzinfo=SHANGHAI)  # a cursor's "-": a ticket without a time


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError on a cursor that is not ours."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    key, ticket = raw.split("|", 1)
    at = NO_TIME if key == "-" else datetime.fromisoformat(key)
    if at.tzinfo is None:
        raise ValueError("cursor without a time zone")
    return at, ticket


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def ticket_query(f: TicketFilter, now: datetime) -> tuple[str, list[Any]]:
    """The SQL and arguments of one page of the list (one row more than the limit: is there a
    next page)."""
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.status:
        where.append(f"t.status = {arg(f.status)}")
    if f.unit:
        where.append(f"t.unit = {arg(f.unit)}")
    if f.category:
        where.append(f"t.category = {arg(f.category)}")
    if f.urgent is not None:
        where.append(f"coalesce((t.state->>'urgent')::boolean, false) = {arg(f.urgent)}")
    if f.created_from:
        start = datetime.combine(f.created_from, datetime.min.time(), tzinfo=SHANGHAI)
        where.append(f"t.created_at >= {arg(start)}")
    if f.created_to:
        end = datetime.combine(f.created_to, datetime.min.time(), tzinfo=SHANGHAI)
        where.append(f"t.created_at < {arg(end + timedelta(days=1))}")
    if f.q:
        q = f.q.strip()
        where.append(
            f"(t.ticket = {arg(q)} OR t.ticket LIKE {arg(_like(q) + '%')} "
            f"OR t.state->>'address' LIKE {arg('%' + _like(q) + '%')})"
        )
    # the views read the desk's copy of the status, as the overview's counts do
    handling = f"d.status = ANY('{{{','.join(HANDLING)}}}'::text[])"
    if f.view == "awaiting":
        where.append("d.status = 'dispatched'")
    elif f.view == "due_today":
        _, end = day_bounds(now)
        where.append(f"{handling} AND d.reply_by >= {arg(now)} AND d.reply_by < {arg(end)}")
    elif f.view == "overdue":
        n = arg(now)
        where.append(
            f"{handling} AND (d.reply_by < {n} OR (d.status = 'dispatched' AND d.sign_by < {n}))"
        )
    elif f.view == "escalated":
        where.append(ESCALATED)
    if f.after:
        at, ticket = decode_cursor(f.after)
        where.append(f"({SORT_KEY}, t.ticket) < ({arg(at)}, {arg(ticket)})")
    sql = f"""
SELECT t.ticket, t.status, t.unit, t.category, t.created_at, t.state->>'kind' AS kind,
       coalesce((t.state->>'urgent')::boolean, false) AS urgent, t.state->>'address' AS address,
       t.state->>'caller_masked' AS caller_masked, t.state->>'summary' AS summary,
       t.state->>'signed_at' AS signed_at, t.state->>'replied_at' AS replied_at,
       t.state->>'channel' AS channel, d.sign_by, d.reply_by
FROM tickets t LEFT JOIN desk_deadlines d ON d.ticket = t.ticket
{"WHERE " + " AND ".join(where) if where else ""}
ORDER BY {SORT_KEY} DESC, t.ticket DESC
LIMIT {arg(f.limit + 1)}"""
    return sql, args


async def tickets(conn: asyncpg.Connection, f: TicketFilter, now: datetime) -> dict[str, Any]:
    sql, args = ticket_query(f, now)
    rows = [dict(r) for r in await conn.fetch(sql, *args)]
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    nxt = encode_cursor(rows[-1]["created_at"], rows[-1]["ticket"]) if more and rows else None
    return {"tickets": rows, "next": nxt}


async def filter_choices(conn: asyncpg.Connection, unit: str | None) -> dict[str, list[str]]:
    """Categories and units seen, for the filter menus (small: a few dozen values)."""
    cats = await conn.fetch(
        scoped(
            "SELECT DISTINCT category FROM tickets WHERE category IS NOT NULL "
            "AND ($1::text IS NULL OR unit = $1) AND status <> 'closed' ORDER BY 1",
            unit,
        ),
        unit,
    )
    return {"categories": [r["category"] for r in cats]}


# --- 工单详情 ---------------------------------------------------------------------------------


async def ticket_detail(conn: asyncpg.Connection, ticket: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        """SELECT t.ticket, t.state, t.status, t.unit, t.caller_hash, t.category, t.created_at,
                  d.sign_by, d.reply_by, d.commitment_due
           FROM tickets t LEFT JOIN desk_deadlines d ON d.ticket = t.ticket WHERE t.ticket = $1""",
        ticket,
    )
    if row is None:
        return None
    out: dict[str, Any] = dict(row)
    out["events"] = [dict(r) for r in await conn.fetch(
        "SELECT id, type, at, data FROM events WHERE ticket = $1 ORDER BY at, seq", ticket)]  # fmt: skip
    out["ladders"] = [dict(r) for r in await conn.fetch(
        "SELECT rule, cycle, anchor_at, status, reason, acked_by, acked_at, opened_at FROM ladders "
        "WHERE ticket = $1 ORDER BY opened_at, rule, cycle", ticket)]  # fmt: skip
    out["timers"] = [dict(r) for r in await conn.fetch(
        "SELECT rule, cycle, step, rep, due_at, status, fired_at FROM timers WHERE ticket = $1 "
        "ORDER BY due_at, step, rep", ticket)]  # fmt: skip
    out["messages"] = [dict(r) for r in await conn.fetch(
        """SELECT id, rule, cycle, step, rep, role, recipient, name, channel, text, status, attempts,
                  last_error, note, created_at, not_before, sent_at, delivery_status, delivered_at,
                  keypress, keypress_result, keypress_at
           FROM outbox WHERE ticket = $1 ORDER BY id""", ticket)]  # fmt: skip
    out["acks"] = [dict(r) for r in await conn.fetch(
        "SELECT rule, cycle, by_whom, via, at FROM acks WHERE ticket = $1 ORDER BY at", ticket)]  # fmt: skip
    out["desk_acks"] = [dict(r) for r in await conn.fetch(
        "SELECT rule, cycle, steps, actor, at FROM desk_audit WHERE ticket = $1 AND action = 'ack' "
        "ORDER BY at", ticket)]  # fmt: skip
    out["linked"] = []
    if row["caller_hash"]:
        out["linked"] = [dict(r) for r in await conn.fetch(
            """SELECT ticket, status, unit, created_at FROM tickets WHERE caller_hash = $1
               AND category IS NOT DISTINCT FROM $2 AND ticket <> $3 ORDER BY created_at""",
            row["caller_hash"], row["category"], ticket)]  # fmt: skip
    return out


# --- 单位 -------------------------------------------------------------------------------------

UNITS = f"""
SELECT d.unit,
  count(*) FILTER (WHERE d.status <> 'closed') AS open,
  count(*) FILTER (WHERE d.status = ANY('{{{",".join(HANDLING)}}}'::text[])
                   AND (d.reply_by < $1 OR (d.status = 'dispatched' AND d.sign_by < $1))) AS overdue,
  count(*) FILTER (WHERE d.reply_by >= $2 AND d.reply_by < $1
                   AND coalesce(d.replied_at > d.reply_by, true)) AS missed_reply_week,
  count(*) FILTER (WHERE d.sign_by >= $2 AND d.sign_by < $1
                   AND coalesce(d.signed_at > d.sign_by, true)) AS missed_sign_week
FROM desk_deadlines d
WHERE d.unit IS NOT NULL AND ($3::text IS NULL OR d.unit = $3)
GROUP BY d.unit
"""
# the unit from the desk's narrow table; from tickets only for the rare ticket not in it any more
UNIT_MESSAGES = """
SELECT m.unit,
  count(*) FILTER (WHERE m.created_at >= $1 AND m.role IN ('liaison', 'head')) AS messages_month,
  count(*) FILTER (WHERE m.created_at >= $2 AND m.role IN ('liaison', 'head')) AS messages_week,
  count(*) FILTER (WHERE m.created_at >= $2 AND m.role = ANY('{head,supervisor,leader}'::text[])) AS escalations_week
FROM (SELECT coalesce(d.unit, (SELECT t.unit FROM tickets t WHERE t.ticket = o.ticket)) AS unit,
             o.created_at, o.role
      FROM outbox o LEFT JOIN desk_deadlines d ON d.ticket = o.ticket
      WHERE o.created_at >= least($1::timestamptz, $2::timestamptz) AND o.status IN ('sent', 'sending', 'failed')) AS m
WHERE m.unit IS NOT NULL AND ($3::text IS NULL OR m.unit = $3)
GROUP BY m.unit
"""
UNIT_KEYS = ("open", "overdue", "missed_reply_week", "missed_sign_week",
             "messages_month", "messages_week", "escalations_week")  # fmt: skip


async def units(
    conn: asyncpg.Connection, now: datetime, unit: str | None, known: list[str]
) -> list[dict[str, Any]]:
    """Per unit, worst first: deadlines missed this week (reply and sign-off), then overdue now."""
    week, month = week_start(now), month_start(now)
    rows: dict[str, dict[str, int]] = {
        u: dict.fromkeys(UNIT_KEYS, 0) for u in known if unit is None or u == unit
    }
    for r in await conn.fetch(scoped(UNITS, unit), now, week, unit):
        rows.setdefault(r["unit"], dict.fromkeys(UNIT_KEYS, 0)).update(
            {k: r[k] for k in UNIT_KEYS[:4]}
        )
    for r in await conn.fetch(scoped(UNIT_MESSAGES, unit), month, week, unit):
        rows.setdefault(r["unit"], dict.fromkeys(UNIT_KEYS, 0)).update(
            {k: r[k] for k in UNIT_KEYS[4:]}
        )
    out: list[dict[str, Any]] = [{"unit": u, **c, "missed_week": c["missed_reply_week"] + c["missed_sign_week"]}
           for u, c in rows.items()]  # fmt: skip
    out.sort(key=lambda r: (-r["missed_week"], -r["overdue"], -r["escalations_week"], r["unit"]))
    return out


# --- 消息 -------------------------------------------------------------------------------------

MESSAGE_STATUSES = ("pending", "sending", "sent", "failed", "cancelled", "retried")


async def messages(
    conn: asyncpg.Connection, status: str | None, unit: str | None, before: int | None, limit: int
) -> dict[str, Any]:
    where: list[str] = ["($1::text IS NULL OR t.unit = $1)"]
    args: list[Any] = [unit]
    if status == "retried":
        where.append("o.attempts > 1")
    elif status:
        args.append(status)
        where.append(f"o.status = ${len(args)}")
    if before:
        args.append(before)
        where.append(f"o.id < ${len(args)}")
    args.append(limit + 1)
    rows = [dict(r) for r in await conn.fetch(
        f"""SELECT o.id, o.ticket, o.rule, o.step, o.role, o.recipient, o.name, o.channel, o.text,
                   o.status, o.attempts, o.last_error, o.created_at, o.not_before, o.sent_at,
                   o.delivery_status, t.unit
            FROM outbox o LEFT JOIN tickets t ON t.ticket = o.ticket
            WHERE {scoped(" AND ".join(where), unit)} ORDER BY o.id DESC LIMIT ${len(args)}""", *args)]  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    counts = {r["status"]: r["n"] for r in await conn.fetch(scoped(
        """SELECT o.status, count(*) AS n FROM outbox o LEFT JOIN tickets t ON t.ticket = o.ticket
           WHERE ($1::text IS NULL OR t.unit = $1) GROUP BY o.status""", unit), unit)}  # fmt: skip
    counts["retried"] = await conn.fetchval(scoped(
        """SELECT count(*) FROM outbox o LEFT JOIN tickets t ON t.ticket = o.ticket
           WHERE o.attempts > 1 AND ($1::text IS NULL OR t.unit = $1)""", unit), unit)  # fmt: skip
    return {"messages": rows, "counts": counts, "next": rows[-1]["id"] if more and rows else None}


# --- 规则 -------------------------------------------------------------------------------------


async def pending_timers_per_rule(conn: asyncpg.Connection) -> dict[str, int]:
    return {r["rule"]: r["n"] for r in await conn.fetch(
        "SELECT rule, count(*) AS n FROM timers WHERE status = 'pending' GROUP BY rule")}  # fmt: skip
