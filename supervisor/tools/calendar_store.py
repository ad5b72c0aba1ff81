"""The notices as stored in config/calendar.yaml: merge previews, differences, the package's
word for its years, `calendar show`'s rows, and the YAML text rewritten. Pure (the CLI and the
desk read and write the file).

A year's days are "listed days": date -> True (a day off) / False (a 调休 working day); any
other day works Monday to Friday. A notice is merged into what is stored for its year (its dates
replace the same dates, nothing else moves) unless `replace` starts the year again. For a year
chinese_calendar covers, the package decides working time; what a notice says is kept and
compared, never used, unless the office adds an override (with its source) on purpose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import chinese_calendar

from supervisor.config.settings import CalendarFile, ImportedNotice
from supervisor.config.yamlconf import ConfigError, Located
from supervisor.core.workcal import WorkCalendar, package_covers
from supervisor.tools.calendar_notice import WEEKDAY_NAMES, Notice, md

PACKAGE = "内置官方日历数据"


def window(year: int) -> tuple[date, date]:
    """The days a year's notice speaks for: its 元旦 may start in late December of the year
    before, and late December of `year` belongs to the next year's notice."""
    return date(year - 1, 12, 25), date(year, 12, 25)


def package_days(year: int) -> dict[date, bool] | None:
    """The package's listed days for `year`'s notice (weekday days off, working weekends, in
    the window), or None when the package does not cover the year."""
    lo, hi = window(year)
    if not (package_covers(lo.year) and package_covers(year)):
        return None
    out = {d: True for d in chinese_calendar.holidays if lo <= d < hi and d.weekday() < 5}
    out.update({d: False for d in chinese_calendar.workdays if lo <= d < hi})
    return dict(sorted(out.items()))


def working(days: dict[date, bool], d: date) -> bool:
    off = days.get(d)
    return d.weekday() < 5 if off is None else not off


def weekday(d: date) -> str:
    return f"星期{WEEKDAY_NAMES[d.weekday()]}"


@dataclass(frozen=True)
class Change:
    day: date
    before: bool  # working before
    after: bool

    def text(self) -> str:
        if not self.after:
            return (
                f"新增放假 {md(self.day)}"
                if self.day.weekday() < 5
                else f"{md(self.day)}（{weekday(self.day)}）改为休息"
            )
        if self.day.weekday() >= 5:
            return f"新增调休上班 {md(self.day)}（{weekday(self.day)}）"
        return f"{md(self.day)}（{weekday(self.day)}）改为上班"


def changes(before: dict[date, bool], after: dict[date, bool]) -> list[Change]:
    """The days whose working status differs (a Sunday newly listed as off is no change)."""
    out = []
    for d in sorted(set(before) | set(after)):
        b, a = working(before, d), working(after, d)
        if a != b:
            out.append(Change(d, b, a))
    return out


def changes_text(found: list[Change]) -> str:
    """ "新增放假 1月31日；2月1日（星期六）改为休息": runs of new days off are grouped."""
    parts: list[str] = []
    run: list[date] = []

    def flush() -> None:
        if run:
            parts.append("新增放假 " + "、".join(md(d) for d in run))
            run.clear()

    for c in found:
        if not c.after and c.day.weekday() < 5:
            run.append(c.day)
            continue
        flush()
        parts.append(c.text())
    flush()
    return "；".join(parts) if parts else "没有变化"


@dataclass
class Plan:
    """What an import would do, before anything is written."""

    notice: Notice
    year: int
    replace: bool
    before: dict[date, bool]
    after: dict[date, bool]
    entry: ImportedNotice
    changes: list[Change]
    package: dict[date, bool] | None  # the package's days, when it covers the year
    disagree: list[Change] = field(default_factory=list)  # after vs the package

    def lines(self) -> list[str]:
        out = [self.notice.describe()]
        if self.replace:
            out.append(
                f"重新开始 {self.year} 年（--replace），与已存安排相比：{changes_text(self.changes)}"
            )
        elif not self.before:
            out.append(f"{self.year} 年尚无已存安排：全部为新增")
        else:
            out.append(f"与已存 {self.year} 年安排相比：{changes_text(self.changes)}")
        if self.package is not None:
            if self.disagree:
                out.append(
                    f"注意：{self.year} 年以 chinese_calendar 为准，通知读出的安排与之不同："
                    f"{disagreement_text(self.disagree)}（不会改变工作日；如本单位确需调整，用 "
                    "calendar override 注明来源）"
                )
            else:
                out.append(f"{self.year} 年以 chinese_calendar 为准；通知与之一致。")
        return out


def disagreement_text(found: list[Change]) -> str:
    """Changes from the package's days to a notice's: each date with both words."""
    word = {True: "上班", False: "休息"}
    return "；".join(
        f"{md(c.day)}（{weekday(c.day)}）通知为{word[c.after]}、chinese_calendar 为{word[c.before]}"
        for c in found
    )


def plan_import(cal: CalendarFile, notice: Notice, *, replace: bool, today: date) -> Plan:
    year = notice.year
    stored = {} if replace else cal.imported_days(year)
    package = package_days(year)
    base = stored
    if not base and notice.kind == "supplement":  # a supplement needs the year it changes
        base = package or {}
    after = notice.apply(base)
    if notice.kind == "annual":
        own = notice.apply({})
    else:  # what the supplement changed, extensions resolved against the year
        own = {d: v for d, v in after.items() if base.get(d) != v}
    entry = ImportedNotice(
        notice=notice.title,
        kind=notice.kind,
        imported=today,
        days_off=[d for d, off in own.items() if off],
        workdays=[d for d, off in own.items() if not off],
    )
    before = base if notice.kind == "supplement" else stored
    plan = Plan(notice, year, replace, before, after, entry, changes(before, after), package)
    if package is not None:
        plan.disagree = changes(package, after)
    return plan


def imports_after(cal: CalendarFile, plan: Plan) -> dict[int, list[ImportedNotice]]:
    imports = {y: list(v) for y, v in cal.imports.items()}
    if plan.replace or plan.year not in imports:
        imports[plan.year] = []
    imports[plan.year].append(plan.entry)
    return dict(sorted(imports.items()))


# --- calendar show ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRow:
    day: date
    off: bool  # a weekday off; else a weekend worked
    source: str

    def public(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "weekday": weekday(self.day),
                "kind": "放假" if self.off else "调休上班", "source": self.source}  # fmt: skip

    def line(self) -> str:
        kind = "放假    " if self.off else "调休上班"
        return f"{self.day.isoformat()} {weekday(self.day)} {kind} {self.source}"


def year_rows(cal: CalendarFile, calendar: WorkCalendar, year: int) -> list[DayRow]:
    """The year's weekdays off and weekends worked, as the working-time calendar has them, each
    with where it came from: an override, the package, or the notice that listed it."""
    overrides = {o.day: o for o in cal.overrides}
    legacy = set(cal.extra_holidays) | set(cal.extra_workdays)
    listed_by: dict[date, str] = {}
    for y in (year, year + 1):  # next year's notice may list late December
        for entry in cal.imports.get(y, []):
            for d in (*entry.days_off, *entry.workdays):
                listed_by[d] = entry.notice
    rows = []
    d = date(year, 1, 1)
    while d.year == year:
        weekend = d.weekday() >= 5
        try:
            works = calendar.is_workday(d)
        except Exception:  # a year without data under missing_year: error
            works = not weekend
        if works == weekend:
            if d in overrides:
                source = f"本单位调整：{overrides[d].source}"
            elif d in legacy:
                source = "本单位调整：calendar.yaml extra_holidays/extra_workdays（未注明来源）"
            elif package_covers(year):
                source = PACKAGE
            elif d in listed_by:
                source = f"导入：{listed_by[d]}"
            else:
                source = "法定节假日（无官方调休数据）"
            rows.append(DayRow(d, not works, source))
        d += timedelta(days=1)
    return rows


# --- check -----------------------------------------------------------------------------------


def package_problems(cal: CalendarFile, located: Located | None) -> list[ConfigError]:
    """Imported years the package covers whose stored days disagree with it (a misread or a
    partial notice), and old-style extra_holidays/extra_workdays that silently beat it; with
    the dates, at the file's line."""
    file = located.file if located else "calendar.yaml"

    def err(path: tuple[Any, ...], message: str) -> ConfigError:
        if located is not None:
            return located.error(path, message)
        return ConfigError(file, None, ".".join(map(str, path)), message)

    out = []
    for year, entries in sorted(cal.imports.items()):
        lo, hi = date(year - 1, 12, 1), date(year, 12, 31)
        for i, entry in enumerate(entries):
            stray = sorted(d for d in (*entry.days_off, *entry.workdays) if not lo <= d <= hi)
            if stray:
                out.append(err(("imports", year, i), f"{', '.join(d.isoformat() for d in stray)} "
                               f"不在 {year} 年的通知范围内（{lo.isoformat()} 至 {hi.isoformat()}）"))  # fmt: skip
        package = package_days(year)
        if package is None:
            continue
        stored = cal.imported_days(year)
        if not any(e.kind == "annual" for e in entries):  # supplements alone: their dates only
            package = {d: v for d, v in package.items() if d in stored}
        found = changes(package, stored)
        if found:
            out.append(err(("imports", year), f"与 chinese_calendar 不一致（以 chinese_calendar 为准）："
                           f"{disagreement_text(found)}；请核对通知，或用 calendar import --replace 重新导入"))  # fmt: skip
    for key, off in (("extra_holidays", True), ("extra_workdays", False)):
        for i, d in enumerate(getattr(cal, key)):
            if not package_covers(d.year) or chinese_calendar.is_workday(d) == (not off):
                continue
            pkg = "上班" if chinese_calendar.is_workday(d) else "休息"
            out.append(err((key, i), f"{d.isoformat()} 覆盖了 chinese_calendar（其为{pkg}日）却未"
                           "注明来源：如为本单位有意调整，请移到 overrides 并写明 source"))  # fmt: skip
    return out


# --- writing calendar.yaml -------------------------------------------------------------------


def _dates(days: list[date]) -> str:
    return "[" + ", ".join(d.isoformat() for d in days) + "]"


def imports_yaml(imports: dict[int, list[ImportedNotice]]) -> str:
    if not imports:
        return "{}"
    lines = [""]
    for year, entries in imports.items():
        lines.append(f"  {year}:")
        for e in entries:
            lines.append(f"    - notice: {json.dumps(e.notice, ensure_ascii=False)}")
            lines.append(f"      kind: {e.kind}")
            if e.imported is not None:
                lines.append(f"      imported: {e.imported.isoformat()}")
            lines.append(f"      days_off: {_dates(e.days_off)}")
            lines.append(f"      workdays: {_dates(e.workdays)}")
    return "\n".join(lines)


def overrides_yaml(cal: CalendarFile) -> str:
    if not cal.overrides:
        return "[]"
    return "\n" + "\n".join(
        f"  - {{day: {o.day.isoformat()}, kind: {o.kind}, source: {json.dumps(o.source, ensure_ascii=False)}}}"
        for o in sorted(cal.overrides, key=lambda o: o.day)
    )


def replace_key(text: str, key: str, value: str) -> str:
    """`key`'s value in a YAML text replaced (a flow value, or a block on the lines below),
    everything else (comments, other keys) kept as it was; the key is added when missing."""
    lines = text.splitlines()
    out: list[str] = []
    i, found = 0, False
    first, *more = value.splitlines() if value else [""]
    while i < len(lines):
        line = lines[i]
        if line.startswith(f"{key}:"):
            found = True
            m = re.search(r"\s+#.*$", line)
            comment = m.group(0).strip() if m and "[" not in line[m.start() :] else ""
            i += 1
            opened = line.count("[") - line.count("]")
            while i < len(lines) and (
                opened > 0 or (lines[i].startswith((" ", "-", "\t")) and lines[i].strip())
            ):
                opened += lines[i].count("[") - lines[i].count("]")
                i += 1
            head = f"{key}: {first}".rstrip() if first else f"{key}:"
            out.append(head + (f"  {comment}" if comment and not more else ""))
            out.extend(more)
            continue
        out.append(line)
        i += 1
    if not found:
        out += [f"{key}: {first}".rstrip() if first else f"{key}:", *more]
    return "\n".join(out) + "\n"
