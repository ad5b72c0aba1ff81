"""Reading the State Council's holiday notices as they are published (see docs/calendar.md).

Two kinds of notice:

* the annual one, 国务院办公厅关于YYYY年部分节假日安排的通知: numbered items
  "一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。";
* supplementary ones that change a year already announced: 调整…假期安排 (2019's labour day),
  延长…假期 (2020's Spring Festival, "延长2020年春节假期至2月2日"), one-off commemorations
  (2015's 9月3日). They are applied on top of the year's days (see `apply`), never instead.

The text may come from gov.cn (title over two lines, the site's header and footer), from a news
copy (spaces, half-width punctuation, a lead paragraph), or be the body alone; whitespace means
nothing in Chinese, so it is removed before reading, and the year is taken from the title, else
from the body ("现将2016年元旦、春节…"). Pure: no I/O. The CLI (calendar_cli) and the desk call it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from supervisor.errors import InputError

WEEKDAY_NAMES = "一二三四五六日"
MAX_RUN = 15  # days in one range: the longest published is 9 (2026's Spring Festival)
FESTIVALS = ("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节")

_TITLE = re.compile(r"国务院(?:办公厅)?关于(.{2,80}?)的通知")
_ITEM = re.compile(r"(?:^|(?<=[。：:；;]))([一二三四五六七八九十]{1,3})、")
# a news summary without the numbers: "元旦：…。春节：…" or "——元旦：…"
_NAMED_ITEM = re.compile(
    r"(?:^|(?<=[。;；]))(?:——|—|-)?(?=(?:元旦|春节|清明节|劳动节|端午节|中秋节|国庆节)"
    r"(?:、(?:中秋节|国庆节))?[：:])"
)
_NAME = re.compile(r"^([^：:，,。、]{1,4}(?:节|旦)(?:、[^：:，,。、]{1,4}节)*)[：:]")
_PAREN = re.compile(r"[(]([^()]*)[)]")
_WEEKDAY = re.compile(r"(?:星期|周|礼拜)([一二三四五六日天])")
_DATE = re.compile(r"(?:(\d{4})年)?(?:(\d{1,2})月)?(\d{1,2})日(?:§([a-g_]))?")
_RANGE_GAP = ("至", "到", "-", "—", "–", "~", "－")
_TOTAL = re.compile(r"(?:共|放假)(\d+)天")
_OFF = re.compile(r"放假|调休|补休|休息|休假")
_EXTEND = re.compile(r"延长(?:\d{4}年)?(\S{0,6}?)假期至")
_YEARS = (
    re.compile(r"现将(?:调整|延长)?(\d{4})年"),
    re.compile(r"(\d{4})年(?:元旦|春节|清明节|劳动节|端午节|中秋节|国庆节|部分节假日|节假日)"),
    re.compile(r"(\d{4})年\d{1,2}月\d{1,2}日(?:全国)?放假"),
)

Kind = Literal["annual", "supplement"]


class NoticeError(InputError):
    """The text does not read as a holiday notice."""


@dataclass
class Festival:
    name: str
    days_off: list[date] = field(default_factory=list)
    workdays: list[date] = field(default_factory=list)
    stated_total: int | None = None  # 共N天 / 放假N天, when the notice says it
    with_weekend: bool = False  # "与周末连休"
    extend_to: date | None = None  # "延长…假期至X日": the days up to X join the festival
    problems: list[str] = field(default_factory=list)  # weekday mismatches, unreadable parts


@dataclass
class Notice:
    year: int
    title: str
    kind: Kind
    festivals: list[Festival]
    year_from: str = "标题"  # where the year was read: 标题 | 正文 | 指定

    @property
    def days_off(self) -> list[date]:
        return sorted({d for f in self.festivals for d in f.days_off})

    @property
    def workdays(self) -> list[date]:
        return sorted({d for f in self.festivals for d in f.workdays})

    def problems(self) -> list[str]:
        """Where the notice disagrees with itself or with the calendar (a misread, or a typo);
        any problem refuses the import."""
        out = []
        for f in self.festivals:
            out += [f"{f.name}: {p}" for p in f.problems]
            if f.extend_to is not None:
                continue
            if f.stated_total is not None and f.stated_total != len(f.days_off):
                out.append(f"{f.name}: 通知写共{f.stated_total}天，读出{len(f.days_off)}天")
            if not f.days_off and not f.workdays:
                out.append(f"{f.name}: 没有读出放假日期")
            if f.with_weekend and not any(
                (d + timedelta(days=s)).weekday() >= 5 for d in f.days_off for s in (-1, 1)
            ):
                out.append(f"{f.name}: 写“与周末连休”，但{_list(f.days_off)}不挨着周末")
            for d in f.workdays:
                if d.weekday() < 5:
                    out.append(
                        f"{f.name}: {md(d)}（星期{WEEKDAY_NAMES[d.weekday()]}）不是周末，不能是调休上班日"
                    )
            both = set(f.days_off) & set(f.workdays)
            if both:
                out.append(f"{f.name}: {_list(sorted(both))} 既放假又上班")
        return out

    def describe(self) -> str:
        """What was understood, in the notice's own terms, for the user to check."""
        what = "补充通知" if self.kind == "supplement" else "年度通知"
        lines = [f"{self.year}年节假日安排（{what}：{self.title}）："]
        for f in self.festivals:
            if f.extend_to is not None:
                lines.append(f"  {f.name}：假期延长至 {md(f.extend_to)}")
                continue
            off = _span(f.days_off)
            work = "、".join(md(d) for d in f.workdays)
            lines.append(
                f"  {f.name}：放假 {off}（{len(f.days_off)}天）"
                + (f"；{work} 上班" if work else "")
            )
        if self.kind == "annual":
            lines.append(f"共 {len(self.days_off)} 天放假，{len(self.workdays)} 个调休上班日。")
        return "\n".join(lines)

    def apply(self, base: dict[date, bool]) -> dict[date, bool]:
        """The year's listed days (date -> True when off, False when a 调休 working day) after
        this notice: its days replace the same dates in `base`; an extension adds the days after
        the festival's last listed day off up to its end. A supplement never removes a day it
        does not name, so it is applied on top of the year, never instead of it."""
        out = dict(base)
        for f in self.festivals:
            if f.extend_to is not None:
                before = [d for d, off in out.items() if off and d < f.extend_to]
                start = max(before) + timedelta(days=1) if before else f.extend_to
                d = start
                while d <= f.extend_to:
                    out[d] = True
                    d += timedelta(days=1)
        for f in self.festivals:
            for d in f.days_off:
                out[d] = True
            for d in f.workdays:
                out[d] = False
        return dict(sorted(out.items()))


def md(d: date) -> str:
    return f"{d.month}月{d.day}日"


def _list(days: list[date]) -> str:
    return "、".join(md(d) for d in days)


def _span(days: list[date]) -> str:
    if not days:
        return "（无）"
    if len(days) == 1:
        return md(days[0])
    if (days[-1] - days[0]).days + 1 != len(days):  # not one run of days: list them
        return _list(days)
    return f"{md(days[0])}至{md(days[-1])}"


# --- reading ---------------------------------------------------------------------------------


# Copies through a big5 gateway are in traditional characters: the ones the reader looks for.
_TRADITIONAL = str.maketrans(
    "國務辦廳關於節勞動慶調補與週現將長紀勵農曆歷體禮連經區門處報規確過為間發號電屬機構",
    "国务办厅关于节劳动庆调补与周现将长纪励农历历体礼连经区门处报规确过为间发号电属机构",
)


def normalize(text: str) -> str:
    """Full-width to half-width (NFKC), traditional characters the reader needs to simplified,
    then no whitespace at all: a copy's spaces, indents and line breaks (also inside a sentence
    or a title) carry no meaning in a Chinese notice."""
    text = unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).replace("\u3000", "")
    text = text.replace("【", "(").replace("】", ")")
    return re.sub(r"\s+", "", text)


def parse_notice(text: str, year: int | None = None) -> Notice:
    """The notice's festivals. `year` when the text does not name it (e.g. only the items)."""
    flat = normalize(text)
    if not flat:
        raise NoticeError("通知为空")
    m = _TITLE.search(flat)
    title = m[0] if m else ""
    year_from = "指定"
    if year is None:
        year, year_from = _find_year(flat, m[1] if m else "")
    kind = _kind(title, flat)
    if not title:
        title = f"（无标题）{year}年{'补充通知' if kind == 'supplement' else '部分节假日安排'}"
    region = _region(flat)
    default_name = _title_festival(title, flat) if kind == "supplement" else ""
    festivals = []
    for name, body in _items(region):
        f = _festival(name or default_name or "放假安排", body, year)
        if f is not None:
            festivals.append(f)
    if not festivals:
        raise NoticeError("没有读到放假条目（如“一、元旦：1月1日放假……”）")
    return Notice(year, title, kind, _merge_same(festivals), year_from)


def _find_year(flat: str, title: str) -> tuple[int, str]:
    m = re.search(r"(\d{4})年", title)
    if m:
        return int(m[1]), "标题"
    for pattern in _YEARS:
        m = pattern.search(flat)
        if m:
            return int(m[1]), "正文"
    raise NoticeError(
        "通知中没有找到年份（标题“国务院办公厅关于2027年部分节假日安排的通知”或正文"
        "“现将2027年元旦、春节……”）：请用 --year 指定"
    )


def _kind(title: str, flat: str) -> Kind:
    if title:
        return "annual" if "部分节假日安排" in title else "supplement"
    head = flat[: flat.find("如下")] if "如下" in flat else flat[:200]
    if re.search(r"调整|延长|纪念日", head):
        return "supplement"
    return "annual"


def _title_festival(title: str, flat: str) -> str:
    for name in FESTIVALS:
        if name in title:
            return name
    if "纪念日" in title or "纪念日" in flat[:400]:
        return "纪念日"
    return ""


def _region(flat: str) -> str:
    """The arrangement itself: after "通知如下" / "特作如下调休" when the text has it (a news
    copy's lead paragraph and a site's header come before it)."""
    m = re.search(r"如下(?:调休)?[。:：]?", flat)
    return flat[m.end() :] if m else flat


def _items(region: str) -> list[tuple[str, str]]:
    """(festival name or "", body) per numbered item; one unnamed item when none is numbered.
    A body ends at its first sentence without a date (the closing paragraph, the signature)."""
    marks = list(_ITEM.finditer(region)) or list(_NAMED_ITEM.finditer(region))
    chunks = (
        [
            region[a.end() : b.start() if b else len(region)]
            for a, b in zip(marks, [*marks[1:], None], strict=True)
        ]
        if marks
        else [region]
    )
    out = []
    for chunk in chunks:
        name = ""
        m = _NAME.match(chunk)
        if m:
            name, chunk = m[1], chunk[m.end() :]
        sentences: list[str] = []
        for sentence in re.split(r"(?<=。)", chunk):
            if not sentences or _DATE.search(_mark_weekdays(sentence)[0]) or "延长" in sentence:
                sentences.append(sentence)
            else:
                break
        out.append((name, "".join(sentences)))
    return out


def _mark_weekdays(text: str) -> tuple[str, list[str]]:
    """A bracket right after a date ("1月1日（周四）", "（农历除夕、周二）") becomes a one-letter
    weekday mark on the date; other brackets ("除夕（2月9日）", "（农历正月初九…）" not after a
    date) are dropped, so their dates and commas are not read as part of the arrangement."""
    problems: list[str] = []

    def repl(m: re.Match[str]) -> str:
        if m.start() > 0 and text[m.start() - 1] == "日":
            w = _WEEKDAY.search(m[1])
            if w is None:
                return "§_"
            return "§" + "abcdefgg"["一二三四五六日天".index(w[1])]
        return ""

    return _PAREN.sub(repl, text), problems


def _festival(name: str, body: str, year: int) -> Festival | None:
    body, _ = _mark_weekdays(body)
    f = Festival(name)
    total = _TOTAL.search(body)
    f.stated_total = int(total[1]) if total else None
    f.with_weekend = "与周末连休" in body
    new_year = name.startswith("元旦")
    for sentence in re.split(r"[。;；]", body):
        if not sentence or "鼓励" in sentence:
            continue  # "鼓励各单位…安排职工在除夕休息" is advice, not a day off
        clauses = [c for c in re.split(r"[,，]", sentence) if c]
        kinds = [_clause_kind(c) for c in clauses]
        if not any(kinds):
            continue  # no 放假, no 上班: a signature's date, a lead's date, not an arrangement
        for i, clause in enumerate(clauses):
            kind = kinds[i]
            if kind == "extend":
                m = _EXTEND.search(clause)
                days = _dates(clause[m.end() :] if m else clause, year, new_year, f)
                if days:
                    f.extend_to = days[-1]
                    if m and m[1]:
                        f.name = m[1]
                continue
            days = _dates(clause, year, new_year, f)
            if not days or kind == "ignore":
                continue
            if kind is None:  # "1月31日、2月1日，2月2日放假": the sentence's next (else last) verb
                kind = next((k for k in kinds[i:] if k in ("off", "work")), None) or next(
                    (k for k in reversed(kinds[:i]) if k in ("off", "work")), None
                )
            if kind == "work":
                f.workdays += days
            elif kind == "off":
                f.days_off += days
            else:
                f.problems.append(f"读不懂“{clause.replace('§', '')}”：没有“放假”或“上班”")
    if not (f.days_off or f.workdays or f.extend_to or f.problems):
        return None
    f.days_off = sorted(set(f.days_off))
    f.workdays = sorted(set(f.workdays))
    return f


def _clause_kind(clause: str) -> str | None:
    if "延长" in clause and "至" in clause:
        return "extend"
    if "正常上班" in clause:
        return "ignore"  # "2月3日（星期一）起正常上班": the ordinary week resumes
    if "上班" in clause:
        return "work"
    if _OFF.search(clause):
        return "off"
    return None


def _dates(clause: str, year: int, new_year: bool, f: Festival) -> list[date]:
    """Every date of a clause, ranges expanded; "至" joins two dates into a range; a date
    without a year is in the notice's year (a December one in 元旦's item: the year before);
    a date without a month takes the previous date's month (and year)."""
    tokens = list(_DATE.finditer(clause))
    out: list[date] = []
    prev: date | None = None
    range_start: date | None = None
    for i, t in enumerate(tokens):
        y = int(t[1]) if t[1] else None
        mo = int(t[2]) if t[2] else None
        if mo is None:
            if prev is None:
                f.problems.append(f"日期“{t[3]}日”缺少月份")
                continue
            mo = prev.month
            y = y or prev.year
        if y is None:
            y = prev.year if prev is not None and range_start is not None else year
            if range_start is None and new_year and mo == 12:
                y = year - 1
        try:
            d = date(y, mo, int(t[3]))
        except ValueError:
            f.problems.append(f"没有这一天：{y}年{mo}月{t[3]}日")
            continue
        if range_start is not None and d < range_start and not t[1]:
            if range_start.month == 12 and d.month == 1:  # 12月31日至1月2日: across the year
                d = d.replace(year=d.year + 1)
        if t[4] and t[4] != "_":
            said = "abcdefg".index(t[4])
            if said != d.weekday():
                f.problems.append(
                    f"{md(d)}写作星期{WEEKDAY_NAMES[said]}，实为星期{WEEKDAY_NAMES[d.weekday()]}"
                )
        if range_start is not None:
            if d < range_start:
                f.problems.append(f"{md(range_start)}至{md(d)}：结束早于开始")
            elif (d - range_start).days >= MAX_RUN:
                f.problems.append(
                    f"{md(range_start)}至{md(d)}：连续放假超过{MAX_RUN}天，不像是通知"
                )
            else:
                out += [range_start + timedelta(days=k) for k in range((d - range_start).days + 1)]
            range_start = None
        else:
            gap = clause[t.end() : tokens[i + 1].start()] if i + 1 < len(tokens) else ""
            if gap in _RANGE_GAP:
                range_start = d
            else:
                out.append(d)
        prev = d
    return out


def _merge_same(festivals: list[Festival]) -> list[Festival]:
    """A name met twice (a copy repeating an item) is one festival."""
    seen: dict[str, Festival] = {}
    out = []
    for f in festivals:
        old = seen.get(f.name)
        if old is None or old.extend_to or f.extend_to:
            seen[f.name] = f
            out.append(f)
            continue
        old.days_off = sorted(set(old.days_off) | set(f.days_off))
        old.workdays = sorted(set(old.workdays) | set(f.workdays))
        old.problems += f.problems
    return out
