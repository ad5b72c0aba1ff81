"""Shared pieces of the benchmarks: bench databases, the shipped configuration, realistic events,
and synthetic rows (built from one real planned ticket) bulk-loaded with COPY.

Every database made here is named bench_<purpose>_<random> and dropped by `drop_db` / at exit.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SH = ZoneInfo("Asia/Shanghai")
CREATED_DBS: list[str] = []


def with_db(url: str, db: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + db, p.query, p.fragment))


async def create_db(purpose: str, migrate_it: bool = True) -> tuple[str, str]:
    """A fresh database of our own (bench_<purpose>_<hex>), migrated. Returns (name, url)."""
    from supervisor.storage.db import migrate

    name = f"bench_{purpose}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    CREATED_DBS.append(name)
    url = with_db(ADMIN_URL, name)
    if migrate_it:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    return name, url


async def drop_db(name: str) -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    if name in CREATED_DBS:
        CREATED_DBS.remove(name)


async def drop_all() -> None:
    for name in list(CREATED_DBS):
        try:
            await drop_db(name)
        except Exception as exc:  # report, go on dropping the others
            print(f"could not drop {name}: {exc}", file=sys.stderr)


class Analyzer:
    """Stands in for autovacuum's ANALYZE while a benchmark writes (`async with Analyzer(url):`).

    The PostgreSQL server this suite was run on has `autovacuum = off`: tables written from empty
    then never get statistics, and the core's `ticket = ANY($1)` lookups (prepared by asyncpg,
    generic plan) become sequential scans that compare every row with every array element: the
    ingest slows down linearly with the table (98 ms per batch for LOAD_LADDERS at 30,000 ladders,
    0.3 ms after one ANALYZE). A server with autovacuum on (the default) analyzes by itself."""

    def __init__(self, url: str, every_s: float = 10.0) -> None:
        self.url, self.every_s, self.runs = url, every_s, 0

    async def _loop(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            while True:
                await asyncio.sleep(self.every_s)
                await conn.execute("ANALYZE tickets, events, ladders, timers")
                self.runs += 1
        finally:
            await conn.close()

    async def __aenter__(self):
        self.autovacuum = await _show(self.url, "autovacuum")
        self.task = asyncio.create_task(self._loop()) if self.autovacuum != "on" else None
        return self

    async def __aexit__(self, *exc):
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass


async def _show(url: str, setting: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(f"SHOW {setting}")
    finally:
        await conn.close()


def loaded():
    """The shipped configuration; BENCH_MATCHER=python|durable_rules overrides settings' matcher
    (the policy is rebuilt from the same rule files with that matcher)."""
    import dataclasses

    from supervisor.config.settings import load_all

    ld = load_all(ROOT / "config", env={})
    want = os.environ.get("BENCH_MATCHER")
    if want and want != ld.policy.matcher.name:
        from supervisor.engine.policy import load_policy
        from supervisor.policy.rulebook import rule_files

        rules_dir = (ROOT / "config" / ld.settings.rules_dir).resolve()
        policy = load_policy(rule_files(rules_dir), ld.calendar, templates=ld.templates, matcher=want)
        ld = dataclasses.replace(ld, policy=policy)
    return ld


def runtime(key: bytes = b"bench-key"):
    from supervisor.application import runtime_from

    return runtime_from(loaded(), key)


UNITS = ["城管执法中队", "市场监管所", "社区卫生服务中心", "物业管理办公室", "住房保障科", "生态环境所"]
CATEGORIES = ["市容环境", "市场监管", "公共卫生", "物业管理", "住房保障", "环境污染"]
KINDS = ["complaint", "complaint", "complaint", "help", "consultation", "suggestion"]


STREETS = ["幸福路", "光明路", "和平里", "建设大街", "人民路", "解放路", "新华街", "朝阳路"]
PROBLEMS = [
    "占道经营，影响通行，请尽快处理", "夜间施工噪音扰民", "小区楼道堆放杂物存在消防隐患", "路灯不亮，夜间出行不便",
    "餐馆油烟直排，影响居民生活", "共享单车乱停放堵塞人行道", "小区电梯经常故障困人", "垃圾清运不及时，气味难闻",
    "物业费收取不合理", "自来水水压低，高层用水困难", "下水道堵塞污水外溢", "违规搭建彩钢板房",
    "广场舞音量过大扰民", "流浪犬伤人隐患", "井盖缺失存在安全隐患", "商铺噪音扰民影响休息",
]  # fmt: skip


def place(i: int) -> dict[str, str]:
    """Where ticket i is and what it says: 400 grids, 4,000 addresses (a few far busier than the
    rest), 16 problems each written a few ways; a city-scale stream, where same-matter groups are
    small. BENCH_STREAM=grid12 gives the stream before 2026-12-01: one summary in 12 grids, so each
    grid is one matter of thousands of tickets (see BENCHMARKS.md)."""
    if os.environ.get("BENCH_STREAM") == "grid12":  # the stream before 2026-12-01, for comparison
        return {"address": f"幸福路{i % 300}号", "grid": f"G{i % 12:02d}",
                "summary": "占道经营，影响通行，请尽快处理"}  # fmt: skip
    busy = i % 10 == 0  # one ticket in ten is at one of 40 busy addresses
    n = (i // 10 * 7) % 40 if busy else (i * 7919) % 4000
    street = STREETS[n % len(STREETS)]
    problem = PROBLEMS[(i * 13 + n) % len(PROBLEMS)]
    return {
        "address": f"{street}{n}号{(i % 6) + 1}栋",
        "grid": f"G{n % 400:03d}",
        "summary": problem if i % 3 else f"{street}{n}号附近{problem}",
    }


def ticket_events(i: int, start: datetime, prefix: str = "B") -> list[dict[str, Any]]:
    """A realistic life of one ticket: created, dispatched, signed, contacted, replied, visited."""
    t = f"{prefix}{i:08d}"
    u = i % len(UNITS)
    at = start
    caller = f"139{(i * 7919) % 100_000_000:08d}"  # a few callers repeat
    out = [
        {"id": f"{t}-1", "ticket": t, "type": "created", "at": at.isoformat(), "channel": "phone", "category": CATEGORIES[u],
         "kind": KINDS[i % len(KINDS)], "urgent": i % 17 == 0, "caller": caller, **place(i)},
        {"id": f"{t}-2", "ticket": t, "type": "dispatched", "at": (at + timedelta(minutes=5)).isoformat(), "unit": UNITS[u]},
        {"id": f"{t}-3", "ticket": t, "type": "signed", "at": (at + timedelta(minutes=40)).isoformat(), "unit": UNITS[u], "by": "wang-qiang"},
        {"id": f"{t}-4", "ticket": t, "type": "contacted", "at": (at + timedelta(hours=3)).isoformat(), "unit": UNITS[u], "phase": "before"},
        {"id": f"{t}-5", "ticket": t, "type": "replied", "at": (at + timedelta(days=1)).isoformat(), "unit": UNITS[u], "result": "已处理，现场已清理"},
        {"id": f"{t}-6", "ticket": t, "type": "visited", "at": (at + timedelta(days=2)).isoformat(),
         "satisfaction": "satisfied" if i % 9 else "dissatisfied", "resolved": bool(i % 9)},
    ]  # fmt: skip
    return out


def event_stream(n_tickets: int, start: datetime, prefix: str = "B") -> list[dict[str, Any]]:
    """Events of n tickets as a hotline would send them: tickets open one after another (every
    20 s), each one's later events arrive interleaved with other tickets' earlier ones."""
    evs = []
    for i in range(n_tickets):
        evs.extend(ticket_events(i, start + timedelta(seconds=20 * i), prefix))
    evs.sort(key=lambda e: e["at"])
    return evs


# --- synthetic rows from one real ticket --------------------------------------------------------


def template_ticket(status: str = "dispatched") -> dict[str, Any]:
    """One ticket planned by the real core (created + dispatched [+ signed]): its events, state,
    ladders and timer offsets, used as the pattern for bulk-loaded rows."""
    from supervisor.core.events import parse_event
    from supervisor.core.privacy import redact
    from supervisor.engine.planner import plan

    rt = runtime()
    start = datetime(2026, 11, 23, 9, 0, tzinfo=SH)
    raws = ticket_events(1, start, "X")[: 3 if status == "signed" else 2]
    events = [redact(parse_event(r), rt.caller_key) for r in raws]
    p = plan("X00000000", events, [], rt.policy)
    return {"events": events, "plan": p, "start": start}


def copy_text(v: Any) -> str:
    if v is None:
        return None  # type: ignore[return-value]
    return v


async def copy_rows(conn: asyncpg.Connection, table: str, columns: list[str], rows, chunk: int = 200_000) -> int:
    """COPY rows (an iterable of tuples) into table, in chunks."""
    n = 0
    buf: list[tuple] = []
    for r in rows:
        buf.append(r)
        if len(buf) >= chunk:
            await conn.copy_records_to_table(table, records=buf, columns=columns)
            n += len(buf)
            buf = []
    if buf:
        await conn.copy_records_to_table(table, records=buf, columns=columns)
        n += len(buf)
    return n


def now_utc() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


class GcMeter:
    """The collector's passes per generation and its CPU seconds while started."""

    def __init__(self) -> None:
        self.passes = [0, 0, 0]
        self.cpu_s = 0.0
        self._since = 0.0  # when the running pass started (CPU clock)

    def _on(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.passes[info["generation"]] += 1
            self._since = time.process_time()
        else:
            self.cpu_s += time.process_time() - self._since

    def start(self) -> GcMeter:
        gc.callbacks.append(self._on)
        return self

    def stop(self) -> None:
        gc.callbacks.remove(self._on)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0


def jdump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def run(coro):
    return asyncio.run(coro)
