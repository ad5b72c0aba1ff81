"""Ingest with 答复审核 (reply review) on and off: events/s through Supervisor.ingest on
PostgreSQL, the same stream, fresh databases, runs interleaved (off, on, off, on...) so that a
shared, loaded machine slows both alike. Target: review on within 10 % of review off.

Every reply carries a text; a share of them (--bad-share, default 0.2) are one-liners sent back,
which adds a `reviewed` event, a second ingest round and a 退回 SMS timer each, so the figure
includes the review's whole cost.

    python bench/b_review.py [--tickets 1500] [--rounds 3] [--bad-share 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from datetime import datetime

from common import SH, create_db, drop_all, event_stream, runtime

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.core.review import ReviewConfig
from supervisor.storage.db import create_pool
from supervisor.storage.pg import PgStore

GOOD = ("经核实，{d}我单位工作人员到现场查看，诉求人反映的问题属实，已责令整改，现已整改完毕。"
        "{d}下午电话联系诉求人告知结果，诉求人表示满意。承办人：王强，联系电话0571-87654321。")  # fmt: skip


def stream(n: int, bad_share: float) -> list[dict]:
    """Every reply with a text; one in 1/bad_share is a one-liner the review sends back."""
    evs = event_stream(n, datetime(2026, 11, 2, 9, tzinfo=SH), prefix="RV")
    every = round(1 / bad_share) if bad_share else 0
    k = 0
    for e in evs:
        if e["type"] == "replied":
            day = datetime.fromisoformat(e["at"]).astimezone(SH)
            bad = every and k % every == 0
            e["text"] = "已处理。" if bad else GOOD.format(d=f"{day.month}月{day.day}日") + f"（{k}）"
            k += 1
    return evs


async def one(events: list[dict], review: bool) -> float:
    _, url = await create_db("review")
    pool = await create_pool(url, min_size=2, max_size=4)
    try:
        rt = runtime()
        if not review:
            rt = dataclasses.replace(rt, policy=dataclasses.replace(rt.policy, review=ReviewConfig()))
        sup = Supervisor(PgStore(pool), rt, VirtualClock(datetime(2026, 12, 31, tzinfo=SH)))
        t0 = time.perf_counter()
        for i in range(0, len(events), 500):
            await sup.ingest(events[i : i + 500])
        dt = time.perf_counter() - t0
        async with pool.acquire() as conn:
            reviewed = await conn.fetchval("SELECT count(*) FROM events WHERE type = 'reviewed'")
        assert (reviewed > 0) == review, reviewed
        return len(events) / dt
    finally:
        await pool.close()


async def main(n: int, rounds: int, bad_share: float) -> None:
    events = stream(n, bad_share)
    off, on = [], []
    try:
        for _ in range(rounds):
            off.append(await one(events, False))
            on.append(await one(events, True))
    finally:
        await drop_all()
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"events: {len(events)} ({n} tickets, every reply with text, {bad_share:.0%} sent back)")
    print("review off, events/s:", " ".join(f"{x:.0f}" for x in off), f"median {m_off:.0f}")
    print("review on,  events/s:", " ".join(f"{x:.0f}" for x in on), f"median {m_on:.0f}")
    print(f"on/off: {m_on / m_off:.3f} (target >= 0.90)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bad-share", type=float, default=0.2, help="share of replies sent back")
    args = ap.parse_args()
    asyncio.run(main(args.tickets, args.rounds, args.bad_share))
