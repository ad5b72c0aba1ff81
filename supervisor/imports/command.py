"""Importing an export: read, map, store through Supervisor.ingest_events (the API's path, each
event parsed once, by the contract check that names a bad cell), summarise.

Used by `hotline-supervisor import` and by the desk's upload page. A bad row is reported as
`file:row:column: message` and skipped; with `strict`, nothing is stored unless every row is
good (the file is read twice: once to check, once to store, so memory stays flat).

Rows whose events are all stored already are counted, not checked: their ids are made from a
few cells (`row_ids`) and looked up CHECK_ROWS rows at a time, so importing the same export
again costs reading it and one query per CHECK_ROWS rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from supervisor.core.events import Event
from supervisor.core.privacy import redact
from supervisor.imports.mapping import Mapping, load_mapping
from supervisor.imports.readers import ReadError, Row, read_rows
from supervisor.imports.rows import Header, blank, find_header, row_events, row_ids

T = TypeVar("T")

BATCH_ROWS = 1000
# Rows read before their events' ids are looked up (one query): a re-import's unit of work.
# The first PROBE_ROWS of them are looked up first: when none is stored (a first import), the
# others are not looked up (they are checked, and their events looked up as they are stored).
CHECK_ROWS = 5000
PROBE_ROWS = 200
# Batches stored at once: while one waits on PostgreSQL, the next is read, mapped and planned.
# A batch starts once the one before holds its locks and plans (or is done), so counts that look
# at other tickets (repeat callers, same matter) see every earlier row of the file, as when the
# batches are stored one by one.
IN_FLIGHT = 2
# A batch refused because the database is busy (its lock table full: SQLSTATE 53200, a deadlock
# or a serialization failure: class 40) rolled back whole; it is tried again after these pauses
# (seconds), then the import stops with DatabaseBusy (what is stored stays; run it again).
BUSY_RETRY_S = (0.5, 1.0, 2.0, 4.0, 8.0)
# The collector's young-generation threshold while importing (Python's default: 700), as the daemon
# runs with (server/daemon.py): a 1,000-row batch allocates a few hundred thousand short-lived
# containers that reference counting frees; at 700 the collector ran thousands of times per
# import, a quarter of its CPU, its full passes over a heap that grows with the matter cache.
GC_GEN0_THRESHOLD = 20_000


class DatabaseBusy(Exception):
    """PostgreSQL refused a batch again and again for want of resources (see BUSY_RETRY_S)."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(
            f"数据库繁忙（SQLSTATE {sqlstate}），导入已暂停：已保存的数据保留，请稍后重新导入 "
            f"database busy (SQLSTATE {sqlstate}): what was stored stays; run the import again later"
            " (docs/operations.md: max_locks_per_transaction)"
        )
        self.sqlstate = sqlstate


def _busy(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(
        exc,
        asyncpg.exceptions.InsufficientResourcesError | asyncpg.exceptions.TransactionRollbackError,
    )


async def _patient(call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, tried again after each of BUSY_RETRY_S while the database is busy (each try is
    its own statement or transaction, rolled back whole when refused)."""
    for pause in (*BUSY_RETRY_S, None):
        try:
            return await call()
        except Exception as exc:
            if not _busy(exc):
                raise
            if pause is None:
                raise DatabaseBusy(getattr(exc, "sqlstate", "?")) from exc
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")


@dataclass
class Summary:
    file: str
    rows_read: int = 0
    events_new: int = 0
    events_known: int = 0
    rows_skipped: int = 0
    unknown_units: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    stored: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        units = "、".join(sorted(self.unknown_units)) or "无"
        return [
            f"读取行数 rows read: {self.rows_read}",
            f"新增事件 events new: {self.events_new}",
            f"已有事件 events already known: {self.events_known}",
            f"跳过行数 rows skipped: {self.rows_skipped}",
            f"通讯录中没有的单位 units not in the directory: {units}",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file, "rows_read": self.rows_read, "events_new": self.events_new,
            "events_known": self.events_known, "rows_skipped": self.rows_skipped,
            "unknown_units": sorted(self.unknown_units), "problems": self.problems, "stored": self.stored,
        }  # fmt: skip


@dataclass
class _Batch:
    raw: list[dict[str, Any]]  # the good rows' events as mapped
    parsed: list[Event]  # the same events, as the contract parsed them
    known: set[str] = field(default_factory=set)  # their ids found stored when the rows were read
    unchecked: list[str] = field(default_factory=list)  # ids not looked up then (none, normally)
    units: set[str] = field(default_factory=set)  # named by rows counted as stored, unchecked


def _body(
    rows: Iterator[Row], mapping: Mapping, name: str, summary: Summary
) -> tuple[Header, Iterator[Row]] | None:
    """The header and the non-blank rows below it; None (a problem in the summary) without one."""
    head: list[Row] = []
    for row in rows:
        head.append(row)
        if len(head) >= mapping.header_search_rows:
            break
    header = find_header(head, mapping)
    if header is None:
        tickets = "/".join(mapping.columns.ticket)
        summary.problems.append(
            f"{name}:1:{tickets}: no header row with a ticket column in the first {mapping.header_search_rows} rows"
        )
        return None

    def body() -> Iterator[Row]:
        for number, cells in itertools.chain((r for r in head if r[0] > header.row), rows):
            if not blank(cells):
                yield number, cells

    return header, body()


async def _batches(
    rows: Iterator[Row], mapping: Mapping, name: str, summary: Summary, pool: Any
) -> AsyncGenerator[_Batch, None]:
    """Events of the good rows, a batch of rows at a time; problems go into the summary.

    The rows are read CHECK_ROWS at a time and their events' ids (`row_ids`, from a few cells)
    looked up at once: a row whose events are all stored already is counted and not checked
    further (a re-import reads the file and asks the database, little more). The others are
    checked and parsed (`row_events`, which names a bad cell)."""
    found = _body(rows, mapping, name, summary)
    if found is None:
        return
    header, body = found
    batch = _Batch([], [])
    count = 0
    while chunk := list(itertools.islice(body, CHECK_ROWS)):
        units_of = [set[str]() for _ in chunk]
        ids_of: list[list[str] | None] = []
        missing: set[str] = set()  # looked up and not stored
        stored = False
        for part in (chunk[:PROBE_ROWS], chunk[PROBE_ROWS:]):
            if part and (stored or not ids_of):
                more = [row_ids(c, header, mapping, units_of[len(ids_of) + i])
                        for i, (_, c) in enumerate(part)]  # fmt: skip
                asked = [i for ids in more if ids for i in ids]
                gone = await _patient(functools.partial(_missing, pool, asked))
                stored = stored or len(gone) < len(set(asked))
                missing |= gone
                ids_of += more
        ids_of += [None] * (len(chunk) - len(ids_of))  # checked and looked up in full
        for (number, cells), ids, units in zip(chunk, ids_of, units_of, strict=True):
            summary.rows_read += 1
            if ids is not None and not any(i in missing for i in ids):
                summary.events_known += len(ids)
                batch.units |= units
                continue
            events, problems = row_events(number, cells, header, mapping, batch.parsed)
            if problems:
                summary.rows_skipped += 1
                summary.problems.extend(p.where(name) for p in problems)
                continue
            batch.raw.extend(events)
            for e in events:
                if ids is None or e["id"] not in ids:
                    batch.unchecked.append(e["id"])
                elif e["id"] not in missing:
                    batch.known.add(e["id"])
            count += 1
            if count >= BATCH_ROWS:
                yield batch
                batch, count = _Batch([], []), 0
    if batch.raw or batch.units:
        yield batch


async def _known_of(pool: Any, batch: _Batch) -> set[str]:
    """The batch's event ids that are stored: those found when its rows were read, and any
    that were not looked up then."""
    if not batch.unchecked:
        return batch.known
    return batch.known | await _patient(lambda: _known(pool, batch.unchecked))


async def import_file(
    sup: Any,
    path: Path | str,
    mapping: Mapping,
    *,
    dry_run: bool = False,
    strict: bool = False,
    data: bytes | None = None,
    name: str | None = None,
) -> Summary:
    """Import one export. `sup` is a supervisor.application.Supervisor on a PgStore."""
    with _fewer_collections():
        return await _import_file(sup, path, mapping, dry_run, strict, data, name)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """The collector's young generation at GC_GEN0_THRESHOLD at least, for the import's
    duration (the threshold is the process's: a daemon's, already as high, stays)."""
    before = gc.get_threshold()
    if before[0] >= GC_GEN0_THRESHOLD:
        yield
        return
    gc.set_threshold(GC_GEN0_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        if gc.get_threshold()[0] == GC_GEN0_THRESHOLD:  # unless someone changed it meanwhile
            gc.set_threshold(*before)


async def _import_file(
    sup: Any,
    path: Path | str,
    mapping: Mapping,
    dry_run: bool,
    strict: bool,
    data: bytes | None,
    name: str | None,
) -> Summary:
    name = name or str(path)
    summary = Summary(file=name)
    units = set(sup.runtime.directory.model.units)
    pool = sup.store.pool

    def rows() -> Iterator[Row]:
        return read_rows(path, mapping.sheet, data)

    if strict or dry_run:
        async for b in _batches(rows(), mapping, name, summary, pool):
            summary.unknown_units |= (_units(b.raw) | b.units) - units
            known = await _known_of(pool, b)
            summary.events_known += len(known)
            summary.events_new += len(b.raw) - len(known)
        if dry_run:
            return summary
        if summary.problems:  # strict: nothing stored, so nothing new
            summary.events_new = summary.events_known = 0
            return summary
        summary = Summary(file=name)
    key = sup.runtime.caller_key

    async def store(b: _Batch, planning: asyncio.Event) -> None:
        # what is stored already is not sent through the rules again (a re-import is cheap);
        # the ingest still refuses anything stored meanwhile as a duplicate
        known = await _known_of(pool, b)
        summary.events_known += len(known)
        fresh = [e for e in b.parsed if e.id not in known]
        if fresh:
            # Supervisor.ingest's own validation (parse, then redact the caller), with the parse
            # row_events already did: each event is parsed once
            batch = [redact(e, key) for e in fresh]
            out = await _patient(
                lambda: sup.ingest_events(batch, planning=planning.set, retry=_patient)
            )
            summary.events_new += len(out.accepted)
            summary.events_known += len(out.duplicates)

    pending: set[asyncio.Task[None]] = set()
    last: tuple[asyncio.Task[None], asyncio.Event] | None = None
    try:
        async with contextlib.aclosing(_batches(rows(), mapping, name, summary, pool)) as batches:
            async for b in batches:
                summary.unknown_units |= (_units(b.raw) | b.units) - units
                if last is not None:
                    await _planning_or_done(*last)
                planning = asyncio.Event()
                task = asyncio.create_task(store(b, planning))
                last = (task, planning)
                pending.add(task)
                if len(pending) >= IN_FLIGHT:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()  # a failed batch stops the import (what is stored stays)
        if pending:
            await asyncio.gather(*pending)
        pending = set()
    finally:
        for task in pending:
            task.cancel()
    summary.stored = True
    return summary


async def _planning_or_done(task: asyncio.Task[None], planning: asyncio.Event) -> None:
    """Until the batch plans (its locks are held: a later batch about the same callers or
    matters waits for it to commit) or is done (with nothing to plan, or failed)."""
    if task.done() or planning.is_set():
        return
    waiter = asyncio.create_task(planning.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


def _units(batch: list[dict[str, Any]]) -> set[str]:
    out = set()
    for e in batch:
        if e.get("unit"):
            out.add(e["unit"])
        out.update(e.get("co_units", ()))
    return out


async def _missing(pool: Any, ids: list[str]) -> set[str]:
    """Those of `ids` not stored (a re-import's answer is short: nothing to decode)."""
    if not ids:
        return set()
    async with pool.acquire() as conn:
        return {r[0] for r in await conn.fetch(
            "SELECT i FROM unnest($1::text[]) AS i WHERE NOT EXISTS (SELECT FROM events WHERE id = i)",
            ids,
        )}  # fmt: skip


async def _known(pool: Any, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    async with pool.acquire() as conn:
        return {
            r["id"]
            for r in await conn.fetch("SELECT id FROM events WHERE id = ANY($1::text[])", ids)
        }


def run(args: Any, loaded: Any, out: Callable[[str], None] = print) -> int:
    """The CLI verb: exit 0 when every row was good, 1 otherwise (or when nothing could be read)."""
    import os

    from supervisor.application import Supervisor, runtime_from
    from supervisor.config.settings import caller_key
    from supervisor.config.yamlconf import ConfigInvalid
    from supervisor.core.clock import SystemClock
    from supervisor.storage.db import database
    from supervisor.storage.pg import PgStore

    mapping_path = Path(args.mapping) if args.mapping else Path(args.config) / "import.yaml"
    try:
        mapping = load_mapping(mapping_path)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{mapping_path}: {exc.strerror}", file=sys.stderr)
        return 1
    key = caller_key(loaded.settings)

    async def go() -> Summary:
        s = loaded.settings
        url = os.environ.get(s.database.url_env) or None
        async with database(url, Path(s.database.embedded_dir)) as pool:
            sup = Supervisor(PgStore(pool), runtime_from(loaded, key), SystemClock())
            return await import_file(
                sup, args.file, mapping, dry_run=args.dry_run, strict=args.strict
            )

    try:
        summary = asyncio.run(go())
    except (ReadError, OSError, DatabaseBusy) as exc:
        print(exc, file=sys.stderr)
        return 1
    for line in summary.problems:
        print(line, file=sys.stderr)
    if args.dry_run:
        out("试运行，未保存 dry run, nothing stored")
    elif not summary.stored:
        out("有错误行，--strict 模式下未保存任何事件 (strict: nothing stored)")
    for line in summary.lines():
        out(line)
    return 0 if summary.ok else 1

def add_parser(sub: Any, func: Any) -> None:
    """The `import` verb of the command line."""
    p = sub.add_parser("import", help="store a platform export (.xlsx, .xls, .csv) as events")
    p.add_argument("file")
    p.add_argument("--mapping", help="the column mapping (default: import.yaml in the config folder)")
    p.add_argument("--dry-run", action="store_true", help="check and count, store nothing")
    p.add_argument("--strict", action="store_true", help="store nothing unless every row is good")
    p.set_defaults(func=func)
