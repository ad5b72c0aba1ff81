"""fire_due queues its messages as one JSON array of rows (INSERT_OUTBOX_ROWS_MARK_TIMERS) where
other callers send INSERT_OUTBOX's sixteen arrays: both must store the very same rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from supervisor.engine.firing import Notification
from supervisor.storage.pg import PgStore
from supervisor.storage.pg_outbox import _outbox_rows

AT = datetime(2026, 11, 23, 1, 30, 0, 123456, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")


def _note(i: int, **more: Any) -> Notification:
    values: dict[str, Any] = dict(
        at=AT, ticket="T1", rule="sign-off", cycle=1, step=i, rep=0, role="liaison",
        to="wang-qiang", name="王强", address="+8613800138011", channel="sms",
        text=f"【12345催办】第{i}条", urgent=False, note=None, params=None,
    )  # fmt: skip
    values.update(more)
    return Notification(**values)


NOTES = [
    _note(0),
    _note(1, to=None, name=None, address=None, channel="console", urgent=True, note="no contact"),
    _note(2, text='引号"\\反斜杠\n换行\t\u2028 😀 <&>', params={"a": "x", "b": [1, 2.5, None, True]}),
    _note(3, params={"call": {"n": 2, "items": ["签收", "答复"]}, "voice": "您好", "z": 1e-7,
                     "big": 10**15, "zz": {}, "y": [], "nan": float("nan")}),  # fmt: skip
    _note(4, at=AT.astimezone(SH), rep=2, cycle=3, params={"x": ""}),
    _note(5, channel="voice", params={"短": "长" * 300}),
]
COLUMNS = (
    "rule, cycle, step, rep, role, recipient, name, address, channel, text, urgent, note, "
    "not_before, created_at, status, params::text, group_id"
)


async def _stored(pool: asyncpg.Pool, ticket: str) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT {COLUMNS} FROM outbox WHERE ticket = $1 ORDER BY id", ticket)
    return [tuple(r) for r in rows]


async def test_rows_and_arrays_store_the_same(pool: asyncpg.Pool) -> None:
    store = PgStore(pool)
    rows = [replace(n, ticket="A") for n in NOTES]
    arrays = [replace(n, ticket="B") for n in NOTES]
    assert _outbox_rows(rows, [n.at + timedelta(minutes=5) for n in rows]) is not None
    async with pool.acquire() as conn, conn.transaction():
        await store._insert_outbox(conn, rows, None, None, (AT, [], [], []))  # the rows
        await store._insert_outbox(conn, arrays, None, None)  # the arrays
        # a row that exists already keeps what it was queued with, in both forms
        await store._insert_outbox(conn, [replace(rows[0], text="x")], None, None, (AT, [], [], []))
    a, b = await _stored(pool, "A"), await _stored(pool, "B")
    assert len(a) == len(NOTES) and a == b
    assert [r[2] for r in a] == [n.step for n in NOTES]  # in the notes' order


async def test_the_timers_are_marked_with_the_rows(pool: asyncpg.Pool) -> None:
    store = PgStore(pool)
    async with pool.acquire() as conn:
        ids = [
            await conn.fetchval(
                "INSERT INTO timers (ticket, rule, cycle, step, rep, due_at) "
                "VALUES ('T9', 'sign-off', 1, $1, 0, $2) RETURNING id", step, AT,
            )  # fmt: skip
            for step in (0, 1)
        ]
        async with conn.transaction():
            marks = (AT, ids, ["fired", "superseded"], [1.5, 0.25])
            await store._insert_outbox(conn, NOTES[:2], None, None, marks)
        got = await conn.fetch("SELECT status, fired_at, late_s FROM timers ORDER BY id")
    assert [tuple(r) for r in got] == [("fired", AT, 1.5), ("superseded", AT, 0.25)]


def test_what_the_rows_cannot_say_goes_as_arrays() -> None:
    naive = datetime(2026, 11, 23, 9, 30)
    ok = [AT]
    assert _outbox_rows([_note(0)], ok) is not None
    assert _outbox_rows([_note(0, at=naive)], ok) is None
    assert _outbox_rows([_note(0)], [naive]) is None
    assert _outbox_rows([_note(0, params={"when": AT})], ok) is None  # json.dumps decides
    assert _outbox_rows([_note(0, params={1: "x"})], ok) is None  # a key that is no string
    assert _outbox_rows([_note(0, params={"n": 2**70})], ok) is None
    assert _outbox_rows([_note(0, text="a\x00b")], ok) is None
    assert _outbox_rows([_note(0, params={"t": "a\x00b"})], ok) is None

    class Text(str):
        pass

    assert _outbox_rows([_note(0, text=Text("x"))], ok) is None
