"""Reading the State Council's notice on next year's holidays (国务院办公厅关于某年部分节假日安排的通知).

`hotline-supervisor calendar import NOTICE.txt` parses the notice as published, e.g.

    一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。

into the days off and the 调休 working days, shows what it understood, and writes them into
config/calendar.yaml (extra_holidays, extra_workdays, and the year in covered_years). Pure
parsing and text editing here; the CLI does the reading, asking and writing.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from supervisor.errors import InputError

_ITEM = re.compile(r"^\s*[一二三四五六七八九十]+、\s*(?P<name>[^：:]+)[：:](?P<body>.*)$")
_PAREN = re.compile(r"[（(][^）)]*[）)]")
_RANGE = re.compile(r"(?:(\d{1,2})月)?(\d{1,2})日至(?:(\d{1,2})月)?(\d{1,2})日")
_DAY = re.compile(r"(?:(\d{1,2})月)?(\d{1,2})日")
_TOTAL = re.compile(r"共(\d+)天")
_YEAR = re.compile(r"(\d{4})年(?:部分)?节假日")


class NoticeError(InputError):
    """The text does not read as a holiday notice."""


@dataclass
class Festival:
    name: str
    days_off: list[date] = field(default_factory=list)
    workdays: list[date] = field(default_factory=list)
    stated_total: int | None = None  # 共N天, when the notice says it


@dataclass
class Notice:
    year: int
    festivals: list[Festival]

    @property
    def days_off(self) -> list[date]:
        return sorted({d for f in self.festivals for d in f.days_off})

    @property
    def workdays(self) -> list[date]:
        return sorted({d for f in self.festivals for d in f.workdays})

    def problems(self) -> list[str]:
        """Where the notice's own totals disagree with the days read (a misread, or a typo)."""
        out = []
        for f in self.festivals:
            if f.stated_total is not None and f.stated_total != len(f.days_off):
                out.append(f"{f.name}: 通知写共{f.stated_total}天，读出{len(f.days_off)}天")
            if not f.days_off:
                out.append(f"{f.name}: 没有读出放假日期")
        return out

    def describe(self) -> str:
        """What was understood, in the notice's own terms, for the user to check."""
        lines = [f"{self.year}年节假日安排："]
        for f in self.festivals:
            off = _span(f.days_off)
            work = "、".join(_md(d) for d in f.workdays)
            lines.append(
                f"  {f.name}：放假 {off}（{len(f.days_off)}天）"
                + (f"；{work} 上班" if work else "")
            )
        lines.append(f"共 {len(self.days_off)} 天放假，{len(self.workdays)} 个调休上班日。")
        return "\n".join(lines)


def _md(d: date) -> str:
    return f"{d.month}月{d.day}日"


def _span(days: list[date]) -> str:
    if not days:
        return "（无）"
    if len(days) == 1:
        return _md(days[0])
    if (days[-1] - days[0]).days + 1 != len(days):  # not one run of days: list them
        return "、".join(_md(d) for d in days)
    return f"{_md(days[0])}至{_md(days[-1])}"


def parse_notice(text: str, year: int | None = None) -> Notice:
    """The notice's festivals. `year` when the text does not name it (e.g. only the items)."""
    text = unicodedata.normalize("NFKC", text)
    if year is None:
        m = _YEAR.search(text)
        if m is None:
            raise NoticeError("通知中没有找到年份（如“2027年部分节假日安排”）：请用 --year 指定")
        year = int(m.group(1))
    festivals = []
    for raw in text.splitlines():
        m = _ITEM.match(raw)
        if m is None:
            continue
        name = m["name"].strip()
        if "节" not in name and name not in ("元旦", "春节"):
            continue  # e.g. the closing paragraphs numbered in some notices
        festivals.append(_festival(name, m["body"], year))
    if not festivals:
        raise NoticeError("没有读到“一、元旦：……”这样的放假条目")
    return Notice(year, festivals)


def _festival(name: str, body: str, year: int) -> Festival:
    f = Festival(name)
    total = _TOTAL.search(body)
    f.stated_total = int(total.group(1)) if total else None
    for sentence in re.split(r"[。；;]", _PAREN.sub("", body)):
        if not sentence.strip():
            continue
        if "上班" in sentence:
            f.workdays += [_date(year, mo, d, None) for mo, d in _DAY.findall(sentence)]
            continue
        if not re.search(r"放假|补休|休息|休假", sentence):
            continue
        month: int | None = None
        rest = sentence
        for m in _RANGE.finditer(sentence):
            start = _date(year, m[1], m[2], month)
            end = _date(year, m[3] or str(start.month), m[4], start.month)
            if end < start:  # a range into next year (元旦 spanning 12-31) is not published
                raise NoticeError(f"{name}: {m.group(0)} 结束早于开始")
            f.days_off += [start + timedelta(days=i) for i in range((end - start).days + 1)]
            month = end.month
            rest = rest.replace(m.group(0), " ")
        for mo, d in _DAY.findall(rest):
            day = _date(year, mo, d, month)
            month = day.month
            f.days_off.append(day)
    f.days_off = sorted(set(f.days_off))
    f.workdays = sorted(set(f.workdays))
    return f


def _date(year: int, month: str | None, day: str, default_month: int | None) -> date:
    if month:
        m = int(month)
    elif default_month is not None:
        m = default_month
    else:
        raise NoticeError(f"日期“{day}日”缺少月份")
    return date(year, m, int(day))


# --- writing calendar.yaml ------------------------------------------------------------------


def updated_calendar_yaml(text: str, notice: Notice) -> str:
    """calendar.yaml's text with the notice's year replaced in extra_holidays and extra_workdays
    and added to covered_years; everything else (comments, other keys) kept as it was."""
    data = yaml.safe_load(text) or {}
    year = notice.year
    holidays = sorted(
        {d for d in data.get("extra_holidays") or [] if d.year != year} | set(notice.days_off)
    )
    workdays = sorted(
        {d for d in data.get("extra_workdays") or [] if d.year != year} | set(notice.workdays)
    )
    covered = sorted(set(data.get("covered_years") or []) | {year})
    text = _replace_key(text, "extra_holidays", _flow(holidays))
    text = _replace_key(text, "extra_workdays", _flow(workdays))
    return _replace_key(text, "covered_years", _flow(covered))


def _flow(values: list) -> str:
    items = [v.isoformat() if isinstance(v, date) else str(v) for v in values]
    if len(items) <= 6:
        return "[" + ", ".join(items) + "]"
    rows = [", ".join(items[i : i + 6]) for i in range(0, len(items), 6)]
    return "[\n  " + ",\n  ".join(rows) + ",\n]"


def _replace_key(text: str, key: str, value: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    found = False
    while i < len(lines):
        line = lines[i]
        if line.startswith(f"{key}:"):
            found = True
            comment = ""
            m = re.search(r"\s+#.*$", line)
            if m and "[" not in line[m.start() :]:
                comment = m.group(0).strip()
            i += 1
            opened = line.count("[") - line.count("]")
            # skip the old value: a block list (indented or "- " lines) or the rest of a flow list
            while i < len(lines) and (
                opened > 0 or lines[i].startswith((" ", "-", "\t")) and lines[i].strip()
            ):
                opened += lines[i].count("[") - lines[i].count("]")
                i += 1
            first, *more = value.splitlines()
            out.append(f"{key}: {first}" + (f"  {comment}" if comment and not more else ""))
            out.extend(more)
            continue
        out.append(line)
        i += 1
    if not found:
        first, *more = value.splitlines()
        out += [f"{key}: {first}", *more]
    return "\n".join(out) + "\n"


def import_notice(args: Any) -> int:
    """`calendar import NOTICE.txt`: read the notice, show what was understood, then write
    config/calendar.yaml (asking first, unless --yes), never leaving a broken file behind."""
    from supervisor.config.settings import CalendarFile
    from supervisor.config.yamlconf import ConfigInvalid, load_model

    try:
        notice = parse_notice(Path(args.notice).read_text(encoding="utf-8"), args.year)
    except (OSError, UnicodeDecodeError, NoticeError, ValueError) as exc:
        print(f"{args.notice}: {exc}", file=sys.stderr)
        return 1
    print(notice.describe())
    problems = notice.problems()
    for problem in problems:
        print(f"注意：{problem}", file=sys.stderr)
    if problems and not args.force:
        print("未写入：请核对通知原文（或用 --force 仍然写入）", file=sys.stderr)
        return 1
    if args.dry_run:
        return 0
    path = Path(args.config) / "calendar.yaml"
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"未写入 {path}：确认无误后加 --yes 写入", file=sys.stderr)
            return 1
        if input(f"写入 {path}？[y/N] ").strip().lower() not in ("y", "yes", "是"):
            return 1
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(updated_calendar_yaml(old, notice), encoding="utf-8")
    try:
        load_model(CalendarFile, path)
    except ConfigInvalid as exc:  # never leave a broken file behind
        path.write_text(old, encoding="utf-8")
        print(exc, file=sys.stderr)
        return 1
    print(
        f"已写入 {path}：{len(notice.days_off)} 天放假、{len(notice.workdays)} 个调休上班日，"
        f"{notice.year} 列入 covered_years"
    )
    return 0

def add_parser(sub: Any, func: Any) -> None:
    """The `calendar import` verb of the command line."""
    p = sub.add_parser("calendar", help="the working-time calendar")
    cal = p.add_subparsers(dest="calendar_command", required=True)
    p = cal.add_parser(
        "import", help="read the State Council's holiday notice into config/calendar.yaml"
    )
    p.add_argument("notice", help="the notice's text (UTF-8), as published")
    p.add_argument("--year", type=int, help="the year, when the text does not name it")
    p.add_argument("--dry-run", action="store_true", help="only show what was understood")
    p.add_argument("--yes", action="store_true", help="write without asking")
    p.add_argument("--force", action="store_true", help="write even if the totals disagree")
    p.set_defaults(func=func)
