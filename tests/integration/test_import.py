"""Importing the platform's exports on PostgreSQL: a realistic .xlsx round-trips into the same
ticket states as the equivalent JSONL events; re-imports store nothing twice; bad rows."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import xlsxwriter

from supervisor.application import Supervisor
from supervisor.cli import main
from supervisor.core.clock import VirtualClock
from supervisor.imports.command import import_file
from supervisor.imports.mapping import load_mapping
from supervisor.storage.pg import PgStore
from tests.helpers import CONFIG, runtime, sh

MAPPING = load_mapping(CONFIG / "import.yaml")
HEADERS = ["序号", "工单编号", "受理时间", "来源渠道", "诉求类型", "问题分类", "是否紧急", "来电号码",
           "事发地址", "所属网格", "诉求内容", "承办单位", "协办单位", "派单时间", "签收时间", "签收时限",
           "办结时限", "回复时间", "回复内容", "回访时间", "回访结果", "是否解决", "重办次数", "结案时间"]  # fmt: skip
EXCEL_EPOCH = datetime(1899, 12, 30)


def serial(at: datetime) -> float:
    """An Excel serial number (days since 1899-12-30) of a Beijing wall-clock time."""
    return (at.replace(tzinfo=None) - EXCEL_EPOCH).total_seconds() / 86400


def tickets() -> list[dict]:
    """Three tickets with everything an export shows; times as datetimes (Beijing)."""
    return [
        dict(no="001", created=sh(2026, 11, 16, 9), channel="电话", kind="投诉", category="市容环境", urgent="否",
             caller="13812345678", address="幸福路88号", grid="G01", summary="占道经营", unit="城管执法中队",
             co="市场监管所、物业管理办公室", dispatched=sh(2026, 11, 16, 9, 5), signed=sh(2026, 11, 16, 9, 30),
             sign_by=sh(2026, 11, 16, 11, 5), reply_by=sh(2026, 11, 23, 9, 5), replied=sh(2026, 11, 18, 10),
             result="已清理", visited=sh(2026, 11, 19, 15), satisfaction="满意", resolved="是",
             closed=sh(2026, 11, 20, 9)),
        dict(no="002", created=sh(2026, 11, 17, 14, 20), channel="微信", kind="咨询", category="市场监管",
             urgent="否", caller="13900001111", address="和平街1号", grid="G02", summary="价格咨询",
             unit="市场监管所", co="", dispatched=sh(2026, 11, 17, 14, 30), signed=sh(2026, 11, 17, 15),
             sign_by=None, reply_by=None, replied=sh(2026, 11, 19, 10), result="已答复",
             visited=sh(2026, 11, 20, 10), satisfaction="不满意", resolved="否", closed=None),
        dict(no="003", created=sh(2026, 11, 18, 20, 15), channel="省平台", kind="求助", category="公共卫生",
             urgent="是", caller=None, address=None, grid="G01", summary="井盖缺失", unit="城管执法中队",
             co="", dispatched=sh(2026, 11, 18, 20, 20), signed=None, sign_by=None, reply_by=None,
             replied=None, result=None, visited=None, satisfaction=None, resolved=None, closed=None),
    ]  # fmt: skip


def jsonl_events(prefix: str) -> list[dict]:
    """The same tickets as the API would receive them."""
    kinds = {"投诉": "complaint", "咨询": "consultation", "求助": "help"}
    channels = {"电话": "phone", "微信": "wechat", "省平台": "provincial"}
    sats = {"满意": "satisfied", "不满意": "dissatisfied"}
    out = []
    for t in tickets():
        tid = prefix + t["no"]

        def ev(etype, at, tid=tid, **f):
            out.append({"id": f"{tid}-{etype}", "ticket": tid, "type": etype, "at": at.isoformat(),
                        **{k: v for k, v in f.items() if v not in (None, [])}})  # fmt: skip

        ev(
            "created",
            t["created"],
            channel=channels[t["channel"]],
            kind=kinds[t["kind"]],
            category=t["category"],
            urgent=t["urgent"] == "是",
            caller=t["caller"],
            address=t["address"],
            grid=t["grid"],
            summary=t["summary"],
        )
        ev(
            "dispatched",
            t["dispatched"],
            unit=t["unit"],
            co_units=[u for u in t["co"].split("、") if u],
            sign_by=t["sign_by"] and t["sign_by"].isoformat(),
            reply_by=t["reply_by"] and t["reply_by"].isoformat(),
        )
        if t["signed"]:
            ev("signed", t["signed"], unit=t["unit"])
        if t["replied"]:
            ev("replied", t["replied"], unit=t["unit"], text=t["result"])  # 回复内容: the reply's text
        if t["visited"]:
            ev(
                "visited",
                t["visited"],
                satisfaction=sats[t["satisfaction"]],
                resolved=t["resolved"] == "是",
            )
        if t["closed"]:
            ev("closed", t["closed"])
    return out  # fmt: skip


def write_export(path, prefix: str, rows: list[dict] | None = None) -> None:
    """An .xlsx as the platform makes it: two merged title rows above the header, dates as date
    cells, as Excel serial numbers and as text without seconds, a unit name padded with a
    full-width space, and an empty (formatted) trailing row."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("工单列表")
    bold = wb.add_format({"bold": True, "align": "center"})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    ws.merge_range(0, 0, 0, len(HEADERS) - 1, "某某街道12345热线工单明细", bold)
    ws.merge_range(1, 0, 1, len(HEADERS) - 1, "导出时间：2026年11月30日", bold)
    ws.write_row(2, 0, HEADERS, bold)
    for i, t in enumerate(rows or tickets()):
        r = 3 + i
        cells = [i + 1, prefix + t["no"], None, t["channel"], t["kind"], t["category"], t["urgent"], t["caller"],
                 t["address"], t["grid"], t["summary"], None, t["co"], None, None, None, None, None,
                 t["result"], None, t["satisfaction"], t["resolved"], 0, None]  # fmt: skip
        # a unit name with a full-width space inside, as some exports pad it
        cells[11] = t["unit"][:2] + "\u3000" + t["unit"][2:] if i == 0 else t["unit"]
        for c, value in enumerate(cells):
            if value not in (None, ""):
                ws.write(r, c, value)
        times = {2: "created", 13: "dispatched", 14: "signed", 15: "sign_by", 16: "reply_by", 17: "replied",
                 19: "visited", 23: "closed"}  # fmt: skip
        for c, key in times.items():
            at = t[key]
            if at is None:
                continue
            style = (c + i) % 3
            if style == 0:
                ws.write_datetime(r, c, at.replace(tzinfo=None), date_fmt)
            elif style == 1:
                ws.write_number(r, c, serial(at))
            else:
                ws.write_string(r, c, at.strftime("%Y/%m/%d %H:%M"))
    ws.write_blank(3 + len(rows or tickets()), 0, None, date_fmt)  # the empty trailing row
    wb.close()


def _state(s: dict) -> dict:
    # review_of: the id of the reviewed reply, which names its source (import or jsonl)
    return {k: v for k, v in s.items() if k not in ("ticket", "review_of")}


async def test_the_reply_text_column_is_the_reviewed_text(pool, tmp_path):
    """回复内容 maps to the reply's text: "已清理" alone is reviewed and sent back (答复审核)."""
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 30, 12)))
    path = tmp_path / "工单导出.xlsx"
    write_export(path, "R")
    await import_file(sup, path, MAPPING)
    rows = await pool.fetch(
        "SELECT data FROM events WHERE ticket = 'R001' AND type IN ('replied', 'reviewed') ORDER BY type"
    )
    replied, reviewed = (json.loads(r["data"]) if isinstance(r["data"], str) else r["data"] for r in rows)
    assert replied["text"] == "已清理" and "result" not in replied
    assert reviewed["outcome"] == "returned" and "too-short" in reviewed["checks"]


async def test_export_round_trips_into_the_same_states_as_jsonl(pool, tmp_path):
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 30, 12)))
    path = tmp_path / "工单导出.xlsx"
    write_export(path, "X")
    summary = await import_file(sup, path, MAPPING)
    assert summary.problems == [] and summary.rows_read == 3 and summary.rows_skipped == 0
    assert summary.events_new == 6 + 5 + 2 and summary.events_known == 0
    assert summary.unknown_units == set()
    await sup.ingest(jsonl_events("J"))
    async with pool.acquire() as conn:
        states = {
            r["ticket"]: r["state"] for r in await conn.fetch("SELECT ticket, state FROM tickets")
        }
        ladders = await conn.fetch(
            "SELECT ticket, rule, cycle, anchor_at FROM ladders ORDER BY rule, cycle"
        )
    for no in ("001", "002", "003"):
        assert _state(states["X" + no]) == _state(states["J" + no]), no
    assert states["X001"]["unit"] == "城管执法中队" and states["X001"]["co_units"] == [
        "市场监管所",
        "物业管理办公室",
    ]
    assert states["X001"]["caller_masked"] == "138****5678" and "13812345678" not in str(states)
    assert states["X003"]["urgent"] is True and states["X003"]["status"] == "dispatched"
    # the same ladders too: the rules saw the same tickets
    by: dict[str, set] = {}
    for r in ladders:
        by.setdefault(r["ticket"], set()).add((r["rule"], r["cycle"], r["anchor_at"]))
    assert by["X003"]  # the urgent, unsigned ticket has its sign-off ladder
    for no in ("001", "002", "003"):
        assert by.get("X" + no) == by.get("J" + no), no
    # importing the same file again stores nothing
    again = await import_file(sup, path, MAPPING)
    assert (again.events_new, again.events_known, again.rows_read) == (0, 13, 3)
    # a later export overlapping it: ticket 002 re-handled and visited again, 003 now signed
    rows = tickets()
    rows[1]["replied"], rows[1]["visited"], rows[1]["satisfaction"] = (
        sh(2026, 11, 25, 10),
        sh(2026, 11, 26, 10),
        "满意",
    )
    rows[2]["signed"] = sh(2026, 11, 18, 20, 40)
    later = tmp_path / "later.xlsx"
    write_export(later, "X", rows)
    out = await import_file(sup, later, MAPPING)
    assert (out.events_new, out.events_known) == (3, 11)  # a reply, a callback, a signature


async def test_bad_rows_are_named_and_skipped_and_strict_stores_nothing(pool, tmp_path):
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 30, 12)))
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["工单编号", "受理时间", "诉求类型", "承办单位", "派单时间", "回访时间", "回访结果"]
        )
        w.writerow(["C1", "2026-11-16 09:00", "投诉", "城管执法中队", "2026-11-16 09:05", "", ""])
        w.writerow(["C2", "昨天", "投诉", "城管执法中队", "", "", ""])
        w.writerow(
            [
                "C3",
                "2026-11-16 09:00",
                "抱怨",
                "未知单位",
                "2026-11-16 09:05",
                "2026-11-20 10:00",
                "很好",
            ]
        )
        w.writerow(["C4", "2026-11-16 09:00", "投诉", "新成立的办公室", "2026-11-16 09:05", "", ""])
        w.writerow(["", "", "", "", "", "", ""])
    strict = await import_file(sup, path, MAPPING, strict=True)
    assert not strict.stored and strict.events_new == 0
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 0
    summary = await import_file(sup, path, MAPPING)
    name = str(path)
    assert summary.problems == [
        f"{name}:3:受理时间: '昨天' is not a time in any of the date_formats of the mapping",
        f"{name}:4:诉求类型: '抱怨' is not in values.kind of the mapping (known: 投诉、求助、咨询、建议、表扬)",
        f"{name}:4:回访结果: '很好' is not in values.satisfaction of the mapping (known: 满意、非常满意、基本满意、不满意、非常不满意)",
    ]
    assert (summary.rows_read, summary.rows_skipped, summary.events_new) == (4, 2, 4)
    assert summary.unknown_units == {"新成立的办公室"}
    dry = await import_file(sup, path, MAPPING, dry_run=True)
    assert (dry.events_new, dry.events_known, dry.stored) == (0, 4, False)


def test_cli_imports_a_few_thousand_rows_once(pg_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("HOTLINE_CALLER_KEY", "test-key")
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "工单编号",
                "受理时间",
                "来源渠道",
                "诉求类型",
                "诉求归口",
                "承办单位",
                "派单时间",
                "签收时间",
                "回复时间",
            ]
        )
        for i in range(3000):
            day = 2 + i % 20
            w.writerow([f"B{i:05d}", f"2026-11-{day:02d} 09:00", "电话", "投诉", "市容环境", "城管执法中队",
                        f"2026-11-{day:02d} 09:10", f"2026-11-{day:02d} 09:40",
                        f"2026-11-{day + 2:02d} 10:00" if i % 2 else ""])  # fmt: skip
    args = ["--config", str(CONFIG), "import", str(path)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "读取行数 rows read: 3000" in first and "新增事件 events new: 10500" in first
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "新增事件 events new: 0" in second and "已有事件 events already known: 10500" in second
    import asyncio

    import asyncpg

    async def counts() -> tuple[int, int]:
        conn = await asyncpg.connect(pg_url)
        try:
            return (await conn.fetchval("SELECT count(*) FROM events"),
                    await conn.fetchval("SELECT count(DISTINCT ticket) FROM events"))  # fmt: skip
        finally:
            await conn.close()

    assert asyncio.run(counts()) == (10500, 3000)
    # a bad row: named on stderr, skipped, the rest stored, exit status 1; --strict stores nothing
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "工单编号,受理时间\nB90001,2026-11-16 09:00\nB90002,16/11/2026\n", encoding="utf-8"
    )
    assert main([*args[:-1], str(bad), "--strict"]) == 1
    assert "未保存任何事件" in capsys.readouterr().out and asyncio.run(counts())[0] == 10500
    assert main([*args[:-1], str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:3:受理时间: '16/11/2026' is not a time" in captured.err
    assert "跳过行数 rows skipped: 1" in captured.out and asyncio.run(counts())[0] == 10501


def _to_xls(path, outdir) -> None:
    import subprocess

    profile = f"-env:UserInstallation=file://{outdir / 'lo-profile'}"
    subprocess.run(
        ["/usr/bin/soffice", profile, "--headless", "--convert-to", "xls", "--outdir", str(outdir), str(path)],
        check=True, capture_output=True, timeout=240,
    )  # fmt: skip


async def test_an_old_xls_export_imports_like_the_xlsx(pool, tmp_path):
    import asyncio

    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 30, 12)))
    xlsx = tmp_path / "export.xlsx"
    write_export(xlsx, "L")
    await asyncio.to_thread(_to_xls, xlsx, tmp_path)
    summary = await import_file(sup, tmp_path / "export.xls", MAPPING)
    assert (summary.problems, summary.rows_read, summary.events_new) == ([], 3, 13)
    await sup.ingest(jsonl_events("J"))
    async with pool.acquire() as conn:
        states = {
            r["ticket"]: r["state"] for r in await conn.fetch("SELECT ticket, state FROM tickets")
        }
    for no in ("001", "002", "003"):
        assert _state(states["L" + no]) == _state(states["J" + no]), no


async def test_a_reimport_counts_known_rows_unchecked_and_still_names_the_bad_ones(
    pool, tmp_path, monkeypatch
):
    """Rows whose events are all stored are counted from their ids (looked up a few rows at a
    time here); a row never stored is checked as before, so its bad cell is named again."""
    from supervisor.imports import command

    monkeypatch.setattr(command, "CHECK_ROWS", 2)
    monkeypatch.setattr(command, "PROBE_ROWS", 1)  # the rest of a chunk looked up if one is stored
    monkeypatch.setattr(command, "BATCH_ROWS", 1)
    sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 30, 12)))
    path = tmp_path / "export.csv"
    good = [["C1", "2026-11-16 09:00", "投诉", "城管执法中队", "2026-11-16 09:05", "2026-11-20 10:00", "满意"],
            ["C2", "2026-11-16 10:00", "求助", "新成立的办公室", "2026-11-16 10:05", "", ""],
            ["C3", "2026-11-16 11:00", "投诉", "城管执法中队", "", "", ""]]  # fmt: skip
    bad = ["C4", "2026-11-16 12:00", "抱怨", "城管执法中队", "2026-11-16 12:05", "", ""]
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["工单编号", "受理时间", "诉求类型", "承办单位", "派单时间", "回访时间", "回访结果"])
        w.writerows([good[0], bad, good[1], good[2]])
    first = await import_file(sup, path, MAPPING)
    assert (first.rows_read, first.rows_skipped, first.events_new, first.events_known) == (4, 1, 6, 0)
    calls = []
    row_events = command.row_events

    def counted(number, *args, **kwargs):
        calls.append(number)
        return row_events(number, *args, **kwargs)

    monkeypatch.setattr(command, "row_events", counted)
    again = await import_file(sup, path, MAPPING)
    assert again.problems == first.problems and len(again.problems) == 1
    assert (again.rows_read, again.rows_skipped, again.events_new, again.events_known) == (4, 1, 0, 6)
    assert calls == [3]  # only the bad row was checked again
    assert again.unknown_units == first.unknown_units == {"新成立的办公室"}
    # the next export repeats the rows and adds C2 called back (one new event)
    with path.open("a", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerow(good[1][:4] + ["2026-11-16 10:05", "2026-11-21 10:00", "不满意"])
    calls.clear()
    later = await import_file(sup, path, MAPPING)
    assert (later.rows_read, later.events_new, later.events_known) == (5, 1, 8)
    assert calls == [3, 6]
    # a chunk whose first row is new is checked in full: the stored row after it is still counted once
    mixed = tmp_path / "mixed.csv"
    with mixed.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["工单编号", "受理时间", "诉求类型", "承办单位", "派单时间", "回访时间", "回访结果"])
        w.writerows([["C5", "2026-11-16 13:00", "投诉", "城管执法中队", "", "", ""], good[0]])
    calls.clear()
    out = await import_file(sup, mixed, MAPPING)
    assert (out.rows_read, out.events_new, out.events_known, calls) == (2, 1, 3, [2, 3])


async def test_batches_in_flight_count_other_tickets_as_one_at_a_time(pool, tmp_path, monkeypatch):
    """Two batches stored at once: the later starts once the earlier plans, so repeat callers and
    same matter count every earlier row of the file, as one batch at a time does (before, the
    later batch could take its locks first and neither counted the other)."""
    from datetime import timedelta

    from supervisor.imports import command

    first = tickets()[0]
    rows = [
        {**first, "no": f"{i:03d}", **{k: first[k] + timedelta(hours=2 * i) for k in
           ("created", "dispatched", "signed", "sign_by", "reply_by", "replied", "visited", "closed")}}
        for i in range(12)
    ]  # fmt: skip
    monkeypatch.setattr(command, "BATCH_ROWS", 1)
    got = {}
    for prefix, in_flight, n in (("BS", 1, 1), ("BT", 2, 2)):
        monkeypatch.setattr(command, "IN_FLIGHT", in_flight)
        sup = Supervisor(PgStore(pool), runtime(), VirtualClock(sh(2026, 11, 30, 12)))
        path = tmp_path / f"{prefix}.xlsx"
        own = [{**r, "caller": f"138123456{n}{i % 5}", "address": f"幸福路8{n}号"}
               for i, r in enumerate(rows)]  # fmt: skip
        write_export(path, prefix, own)
        assert (await import_file(sup, path, MAPPING)).events_new > 0
        async with pool.acquire() as conn:
            got[prefix] = sorted(
                (r["ticket"][2:], r["rule"], r["cycle"], r["anchor_at"], r["status"])
                for r in await conn.fetch(
                    "SELECT * FROM ladders WHERE ticket LIKE $1", prefix + "%"
                )
            )
    assert got["BT"] == got["BS"]
    assert {r[1] for r in got["BS"]} >= {"repeat-caller", "same-matter", "group-complaint"}
