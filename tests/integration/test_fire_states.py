"""fire_due reads the firing tickets' states in jsonb's binary form (LOAD_STATES: jsonb_send, a
version byte and the UTF-8 text) and decodes them with jsoncodec.loads_jsonb: the states must be exactly those the jsonb
column gives through the pool's codec (values and their types: an integer past 64 bits stays an
int, a float a float; non-ASCII, escapes and keys of no field as before)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from supervisor.core.state import TicketState, initial_state
from supervisor.storage import queries as q
from supervisor.storage.jsoncodec import loads, loads_jsonb, state_text

SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 11, 23, 9, 5, 0, 123456, tzinfo=SH)


def _texts() -> dict[str, str]:
    base = replace(
        initial_state("T0"),
        status="signed", created_at=AT, unit="城管执法中队", address='幸福路3号"2栋"\\后门',
        summary="噪音\n扰民\t\u2028 😀 <&>", co_units=("市场监管所", "街道办"), dispatch_count=2,
        signed_at=AT + timedelta(minutes=35), history=("11月23日派城管执法中队",),
    )  # fmt: skip
    plain = json.loads(state_text(base))
    return {
        "T0": state_text(base),
        # what an older or newer version may have stored, or a hand edit
        "T1": json.dumps({**plain, "ticket": "T1", "dispatch_count": 2**70}, ensure_ascii=False),
        "T2": json.dumps({**plain, "ticket": "T2", "return_count": 1.5, "x": 1e-7}),
        "T3": json.dumps({**plain, "ticket": "T3", "later_field": {"n": 2**64, "m": [1, 2.5]}}),
        "T4": json.dumps({"ticket": "T4", "status": "new", "history": ["a", 3, None]}),
        "T5": json.dumps({**plain, "ticket": "T5", "event_count": -(2**63) - 1}),
    }


def _exact(state: TicketState) -> list[tuple[str, str, str]]:
    """Every field with its value's type and repr, in the instance dict's order."""
    return [(k, type(v).__name__, repr(v)) for k, v in state.__dict__.items()]


async def test_states_read_as_bytes_are_those_of_the_jsonb_codec(pool: asyncpg.Pool) -> None:
    texts = _texts()
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO tickets (ticket, state, status) VALUES ($1, $2::text::jsonb, 'open')",
            list(texts.items()),
        )
        tickets = sorted(texts)
        via_codec = {
            r["ticket"]: TicketState.from_json(r["state"])
            for r in await conn.fetch(
                "SELECT ticket, state FROM tickets WHERE ticket = ANY($1::text[])", tickets
            )
        }
        rows = await conn.fetch(q.LOAD_STATES, tickets)
    assert all(type(r["state"]) is bytes for r in rows)
    via_bytes = {r["ticket"]: TicketState.from_json(loads_jsonb(r["state"])) for r in rows}
    assert sorted(via_bytes) == tickets
    for t in tickets:
        assert _exact(via_bytes[t]) == _exact(via_codec[t]), t
    # the cases above do reach the slow paths
    assert type(via_bytes["T1"].dispatch_count) is int
    assert type(via_bytes["T2"].return_count) is float
    assert type(via_bytes["T5"].event_count) is int


def _value(rnd: random.Random, depth: int = 0) -> object:
    """A random JSON value, heavy on what decides the float check: numbers of every size near
    the 64-bit edges, fractions, digits and dots inside strings."""
    k = rnd.randrange(12 if depth < 3 else 8)
    if k == 0:
        return rnd.choice([None, True, False])
    if k == 1:
        edge = rnd.choice([2**63, 2**64, 10**18, 10**19, 10**20, 2**53])
        return rnd.choice([1, -1]) * (edge + rnd.randrange(-3, 4))
    if k == 2:
        return rnd.randrange(-(10 ** rnd.randrange(1, 25)), 10 ** rnd.randrange(1, 25))
    if k == 3:
        return rnd.choice([0.5, -0.0, 1e-7, 1e300, 2.5e-300, 123456789.125, rnd.random()])
    if k == 4:
        return "".join(rnd.choice("0123456789.") for _ in range(rnd.randrange(0, 30)))
    if k == 5:
        return "".join(rnd.choice('ab号。.1"\\\n😀é') for _ in range(rnd.randrange(0, 12)))
    if k in (6, 7):
        return rnd.randrange(-1000, 1000)
    if k in (8, 9):
        return [_value(rnd, depth + 1) for _ in range(rnd.randrange(0, 4))]
    return {
        f"k{i}{rnd.choice(['', '.', '1' * 20])}": _value(rnd, depth + 1)
        for i in range(rnd.randrange(0, 4))
    }


async def test_loads_jsonb_reads_what_the_codec_reads(pool: asyncpg.Pool) -> None:
    rnd = random.Random(22)
    values = [_value(rnd) for _ in range(3000)]
    texts = [json.dumps(v, ensure_ascii=False) for v in values]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT v::jsonb AS j, jsonb_send(v::jsonb) AS b"
            " FROM unnest($1::text[]) WITH ORDINALITY AS x(v, i) ORDER BY i",
            texts,
        )
    assert len(rows) == len(values)
    fast = 0
    for r in rows:
        # repr tells 1 from 1.0 and True, and keeps the order of keys
        assert repr(loads_jsonb(r["b"])) == repr(r["j"]) == repr(loads(r["b"][1:]))
        fast += b"." not in r["b"]
    assert 300 < fast < len(rows) - 300  # both ways were taken
    with pytest.raises(ValueError):
        loads_jsonb(b'{"a": 1}')  # no version byte: not jsonb_send's
