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
from supervisor.storage.db import create_pool
from supervisor.storage.pg import PgStore
from supervisor.vocabulary.review import ReviewConfig

NAMES = ["王强", "赵刚", "孙丽", "周军", "吴芳", "郑伟", "冯雪", "陈磊", "何燕", "吕斌", "施娜", "孔涛"]
MEASURES = [
    "已责令当事人立即整改，并约谈相关负责人，明确整改时限", "已会同社区和物业现场协调，督促物业安排人员处置",
    "已安排执法人员依法查处，当场下达责令改正通知书", "已组织维修人员进场维修，更换损坏部件并试运行正常",
    "已联系清运单位加派车辆，完成清理并加强日常巡查", "已劝导当事人规范经营，并在周边张贴告知书",
]  # fmt: skip
FOLLOW = ["后续将加强日常巡查，防止问题反弹", "已建立台账，纳入网格日常巡查内容", "将于一周后组织复查",
          "已告知诉求人如再发生可直接联系社区", "已要求物业每日清扫并做好记录"]  # fmt: skip


def good(e: dict, k: int, about: str) -> str:
    """A reply that passes every check, written for its own ticket (replies differ as real ones do)."""
    day = datetime.fromisoformat(e["at"]).astimezone(SH)
    d, name = f"{day.month}月{day.day}日", NAMES[k % len(NAMES)]
    return (f"经核实，{d}{8 + k % 9}时{k * 7 % 60}分我单位工作人员到现场查看，诉求人反映的{about}情况属实。"
            f"{MEASURES[k // 12 % len(MEASURES)]}，现已处理完毕，{FOLLOW[k // 72 % len(FOLLOW)]}。"
            f"{d}下午电话联系诉求人告知办理结果，诉求人表示满意。"
            f"承办人：{name}，联系电话0571-8765{k % 10000:04d}。")  # fmt: skip


def stream(n: int, bad_share: float) -> list[dict]:
    """Every reply with a text; one in 1/bad_share is a one-liner the review sends back."""
    evs = event_stream(n, datetime(2026, 11, 2, 9, tzinfo=SH), prefix="RV")
    every = round(1 / bad_share) if bad_share else 0  # 0: every reply passes
    k = 0
    about = {}
    for e in evs:
        if e["type"] == "created":
            about[e["ticket"]] = f"{e['address']}{e['summary']}"
        if e["type"] == "replied":
            bad = every and k % every == 0
            e["text"] = "已处理。" if bad else good(e, k, about.get(e["ticket"], ""))
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
        spent = [0.0]
        inner = sup.reviewer.review_ticket

        def timed(*a, **kw):  # the review's own time, inside the ingest: robust to machine load
            t = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                spent[0] += time.perf_counter() - t

        sup.reviewer.review_ticket = timed  # type: ignore[method-assign]
        t0 = time.perf_counter()
        for i in range(0, len(events), 500):
            await sup.ingest(events[i : i + 500])
        dt = time.perf_counter() - t0
        async with pool.acquire() as conn:
            reviewed = await conn.fetchval("SELECT count(*) FROM events WHERE type = 'reviewed'")
        assert review or reviewed == 0, reviewed
        if review:
            print(f"  sent back: {reviewed} of {sum(e['type'] == 'replied' for e in events)} replies; "
                  f"the review itself: {spent[0]:.2f} s of {dt:.2f} s ingest ({spent[0] / dt:.1%})")
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
