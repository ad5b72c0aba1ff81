"""`hotline-supervisor calendar import|show|override`: the State Council's notices and the
office's own days, in config/calendar.yaml (see docs/calendar.md).

    calendar import NOTICE.txt [--year Y] [--dry-run] [--yes] [--replace] [--force]
    calendar show YEAR
    calendar override 2027-10-09 holiday --source "区政府通知（2027年9月20日）" [--remove]

An import is a merge: it shows what changes against what is stored and asks before writing
(or --yes); --replace starts the year again. The file is written whole or not at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from supervisor.config.settings import CalendarFile, Override
from supervisor.config.yamlconf import ConfigInvalid, Located, load_yaml, validate
from supervisor.core.workcal import WorkCalendar, package_covers
from supervisor.tools import calendar_store as store
from supervisor.tools.calendar_notice import NoticeError, parse_notice


def today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def read_calendar(path: Path) -> tuple[CalendarFile, Located | None, str]:
    """The file as a model, where its keys are, and its text ("" when there is none)."""
    if not path.exists():
        return CalendarFile(), None, ""
    located = load_yaml(path)
    return validate(CalendarFile, located), located, path.read_text(encoding="utf-8")


def write_calendar(path: Path, edit: Callable[[CalendarFile, str], str]) -> CalendarFile:
    """Rewrite calendar.yaml with `edit(model, text)`; the result is loaded and checked (the
    WorkCalendar built) before it replaces the file, so a broken file is never left behind.
    Raises ConfigInvalid (or ValueError) and leaves the file as it was."""
    cal, _, old = read_calendar(path)
    new = edit(cal, old)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(new, encoding="utf-8")
    try:
        checked = validate(CalendarFile, load_yaml(tmp))
        WorkCalendar(checked.to_config())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return checked


@dataclass
class Preview:
    """An import worked out, for the CLI and the desk: the plan, or why it is refused."""

    plan: store.Plan | None
    problems: list[str]
    error: str | None = None
    unchanged: bool = False

    def lines(self) -> list[str]:
        if self.error:
            return [self.error]
        assert self.plan is not None
        out = self.plan.lines()
        out += [f"注意：{p}" for p in self.problems]
        if self.unchanged:
            out.append("与已存安排相同：无需写入")
        return out


def preview(path: Path, text: str, year: int | None, *, replace: bool) -> Preview:
    try:
        notice = parse_notice(text, year)
        cal, _, _ = read_calendar(path)
    except NoticeError as exc:
        return Preview(None, [], str(exc))
    except ConfigInvalid as exc:
        return Preview(None, [], f"calendar.yaml 有误，请先修正：{exc}")
    plan = store.plan_import(cal, notice, replace=replace, today=today())
    unchanged = not replace and bool(cal.imports.get(notice.year)) and not plan.changes
    return Preview(plan, notice.problems(), unchanged=unchanged)


def apply_import(path: Path, plan: store.Plan) -> CalendarFile:
    def edit(cal: CalendarFile, text: str) -> str:
        return store.replace_key(
            text, "imports", store.imports_yaml(store.imports_after(cal, plan))
        )

    return write_calendar(path, edit)


def import_notice(args: Any) -> int:
    path = Path(args.config) / "calendar.yaml"
    try:
        text = (
            sys.stdin.read()
            if args.notice == "-"
            else Path(args.notice).read_text(encoding="utf-8")
        )
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.notice}: {exc}", file=sys.stderr)
        return 1
    p = preview(path, text, args.year, replace=args.replace)
    if p.error or p.plan is None:
        print(f"{args.notice}: {p.error}", file=sys.stderr)
        return 1
    plan = p.plan
    print("\n".join(plan.lines()))
    for problem in p.problems:
        print(f"注意：{problem}", file=sys.stderr)
    if p.problems and not args.force:
        print("未写入：请核对通知原文（或用 --force 仍然写入）", file=sys.stderr)
        return 1
    if p.problems and package_covers(plan.year):
        print(
            f"--force：通知照原样记录；{plan.year} 年的工作日仍以 chinese_calendar 为准",
            file=sys.stderr,
        )
    if p.unchanged:
        print("与已存安排相同：未写入")
        return 0
    if args.dry_run:
        return 0
    if not args.yes:
        if not sys.stdin.isatty() or args.notice == "-":
            print(f"未写入 {path}：确认无误后加 --yes 写入", file=sys.stderr)
            return 1
        if input(f"写入 {path}？[y/N] ").strip().lower() not in ("y", "yes", "是"):
            return 1
    try:
        apply_import(path, plan)
    except (ConfigInvalid, ValueError) as exc:
        print(f"未写入 {path}：{exc}", file=sys.stderr)
        return 1
    e = plan.entry
    print(f"已写入 {path}：{plan.year} 年 {len(e.days_off)} 天放假、{len(e.workdays)} 个调休上班日"
          f"（{store.changes_text(plan.changes)}）")  # fmt: skip
    return 0


def check_calendar(path: Path) -> list[Any]:
    """`check`: stored notices that disagree with the package, old overrides without a source
    (file:line). Read errors are load_all's to report."""
    try:
        cal, located, _ = read_calendar(path)
    except ConfigInvalid:
        return []
    return store.package_problems(cal, located)


@dataclass
class YearView:
    """A year as stored: what decides it, its weekdays off and weekends worked with their
    source, and the stored notices' disagreements with the package. `calendar show` prints it;
    the desk's 日历 page shows the same."""

    year: int
    authority: str
    rows: list[store.DayRow]
    notes: list[str]

    def lines(self) -> list[str]:
        out = [f"{self.year} 年放假（周一至周五）与调休上班（周末），依据：{self.authority}"]
        return out + [r.line() for r in self.rows] + [f"注意：{n}" for n in self.notes]


def year_view(path: Path, year: int) -> YearView:
    cal, located, _ = read_calendar(path)
    calendar = WorkCalendar(cal.to_config())
    if package_covers(year):
        authority = "内置官方日历数据（本单位调整除外）"
    elif year in cal.imports:
        authority = "导入的国务院通知：" + "；".join(e.notice for e in cal.imports[year])
    elif year in cal.covered_years:
        authority = "本单位日历设置（calendar.yaml）"
    else:
        authority = (
            "无官方数据（"
            + (
                "按周一至周五上班、法定节假日休息"
                if cal.missing_year == "weekdays"
                else "该年时限无法计算"
            )
            + "）"
        )
    notes = [
        f"{Path(err.file).name}:{err.line}: {err.key}: {err.message}"
        for err in store.package_problems(cal, located)
        if err.key == f"imports.{year}" or err.message.startswith(str(year))
    ]
    return YearView(year, authority, store.year_rows(cal, calendar, year), notes)


def show_lines(path: Path, year: int) -> list[str]:
    return year_view(path, year).lines()


def show(args: Any) -> int:
    try:
        lines = show_lines(Path(args.config) / "calendar.yaml", args.year)
    except (ConfigInvalid, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def override(args: Any) -> int:
    path = Path(args.config) / "calendar.yaml"
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        print(f"日期应为 YYYY-MM-DD：{args.day}", file=sys.stderr)
        return 1
    if not args.remove and not (args.source or "").strip():
        print("--source：请写明依据（谁决定的、哪份文件）", file=sys.stderr)
        return 1

    def edit(cal: CalendarFile, text: str) -> str:
        kept = [o for o in cal.overrides if o.day != day]
        if not args.remove:
            kept.append(Override(day=day, kind=args.kind, source=args.source.strip()))
        return store.replace_key(
            text, "overrides", store.overrides_yaml(cal.model_copy(update={"overrides": kept}))
        )

    try:
        write_calendar(path, edit)
    except (ConfigInvalid, ValueError) as exc:
        print(f"未写入 {path}：{exc}", file=sys.stderr)
        return 1
    print(
        f"已写入 {path}：{day.isoformat()} "
        + (
            "的本单位调整已删除"
            if args.remove
            else f"为{'休息' if args.kind == 'holiday' else '上班'}日（{args.source.strip()}）"
        )
    )
    return 0


def run(args: Any) -> int:
    return {"import": import_notice, "show": show, "override": override}[args.calendar_command](
        args
    )


def add_parser(sub: Any, func: Any) -> None:
    """The `calendar` verbs of the command line."""
    p = sub.add_parser("calendar", help="the working-time calendar")
    cal = p.add_subparsers(dest="calendar_command", required=True)
    p = cal.add_parser(
        "import", help="merge a State Council holiday notice into config/calendar.yaml"
    )
    p.add_argument("notice", help="the notice's text (UTF-8), as published; - reads stdin")
    p.add_argument("--year", type=int, help="the year, when the text does not name it")
    p.add_argument("--dry-run", action="store_true", help="only show what was understood")
    p.add_argument("--yes", action="store_true", help="write without asking")
    p.add_argument("--replace", action="store_true", help="start the year again (no merge)")
    p.add_argument(
        "--force",
        action="store_true",
        help="record the notice even if it disagrees with itself (never overrides the package)",
    )
    p.set_defaults(func=func)
    p = cal.add_parser("show", help="a year's days off and working weekends, and their source")
    p.add_argument("year", type=int)
    p.set_defaults(func=func)
    p = cal.add_parser("override", help="the office decides a day itself, with its source")
    p.add_argument("day", help="YYYY-MM-DD")
    p.add_argument("kind", choices=("holiday", "workday"), nargs="?", default="holiday")
    p.add_argument("--source", help="who decided it and where it is written")
    p.add_argument("--remove", action="store_true", help="drop the office's decision for the day")
    p.set_defaults(func=func)
