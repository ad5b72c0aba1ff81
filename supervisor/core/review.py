"""Reply review (答复审核, DOMAIN.md): a unit's reply, return (退单) or extension request (延期) is
passed or sent back (退回) with every reason. Pure: the text, what the ticket knows and the office's
checks in; findings out. No I/O: other tickets' replies and the caller's number test come in as
arguments.

Each check has a kind (what it looks at), a Chinese name, a message telling the unit what to add
or fix, and its words or patterns (config: the `review:` section of the rule files, see
rules/review.yaml and docs/rules.md). Kinds:
- require: the text must contain one of the words or match one of the patterns (the elements of a
  reply, the 四核实 checklist, a 退单's legal basis and the unit that should handle it, ...);
- forbid: the text must not contain them, unless it also contains one of `unless` (pushing away
  without a reason or a referral: "不归我单位管", "无法处理" with no 原因 and no 建议);
- min_length: fewer than `min_chars` characters or fewer than `min_lines` sentences;
- caller_number: the caller's own number written in the text (matched by its keyed hash);
- phone_format: a number after a phone word (电话, 手机...) that is no phone number;
- dates: a date before the dispatch or after the event's own time (a promised date, after one
  of the `unless` words such as 承诺 or 预计, may lie ahead);
- resolved_claim: "已解决" while a commitment is open or the last callback said unresolved;
- other_unit: another unit's name at the head or foot (落款) of the text;
- near_identical: the same text as another ticket's reply (rapidfuzz ratio >= `similarity`);
- before_deadline: the event came after the reply deadline (a 延期 request must come before);
- extension_date: a 延期 request whose new date (its `until`) is no later than the reply deadline
  it would move, or than the request itself (the date is the event's field, not its text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from rapidfuzz import fuzz, process

from supervisor.vocabulary import ZONE
from supervisor.vocabulary.review import Check, ReviewConfig

PASSED = "passed"
RETURNED = "returned"
# near_identical compares texts of at least this many characters (shorter ones say too little)
NEAR_IDENTICAL_MIN_CHARS = 20


@dataclass(frozen=True)
class Subject:
    """What the review sees of one event and its ticket."""

    event: str  # replied | returned | extension_requested
    text: str
    at: datetime
    unit: str | None = None
    unit_names: tuple[str, ...] = ()  # the unit's own id and names
    other_units: tuple[str, ...] = ()  # every other unit's names (the directory's)
    dispatched_at: datetime | None = None
    reply_by: datetime | None = None
    until: datetime | None = None  # a 延期 request's new date
    commitment_open: bool = False
    unresolved: bool = False  # the last callback said not resolved
    caller_hash: str | None = None
    others: Sequence[str] = ()  # recent replies of other tickets, for near_identical
    hash_number: Callable[[str], str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Finding:
    check: str
    name: str
    message: str
    spans: tuple[tuple[int, int], ...] = ()  # where in the text, for highlighting

    def line(self) -> str:
        return f"{self.name}：{self.message}"


_compiled: dict[int, tuple[Check, re.Pattern[str] | None, re.Pattern[str] | None]] = {}


def _patterns(check: Check) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    hit = _compiled.get(id(check))
    if hit is None or hit[0] is not check:
        if len(_compiled) > 512:
            _compiled.clear()
        hit = _compiled[id(check)] = (check, check.compiled(), check.compiled_unless())
    return hit[1], hit[2]


MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
LANDLINE = re.compile(r"(?<!\d)(?:0\d{2,3}-?)?[2-9]\d{6,7}(?!\d)")
_PHONE_AFTER = re.compile(
    r"(?:电话|手机|联系方式|联系号码|tel|Tel)[：:\s号码为是]*([0-9][0-9\- ]{3,18}[0-9])"
)
_DATE = re.compile(
    r"(?:(?P<y>20\d\d)\s*[年\-/.]\s*)?(?P<m>1[0-2]|0?[1-9])\s*[月\-/.]\s*(?P<d>3[01]|[12]\d|0?[1-9])\s*[日号]?"
)
_SENTENCE = re.compile(r"[。！？!?；;\n]+")


def _valid_phone(number: str) -> bool:
    digits = re.sub(r"[\s\-]", "", number)
    return bool(MOBILE.fullmatch(digits) or LANDLINE.fullmatch(digits) or digits in ("12345",))


def _dates(text: str, at: datetime) -> list[tuple[date, re.Match[str]]]:
    out = []
    for m in _DATE.finditer(text):
        if m["y"] is None and not re.search(r"[月]", m.group(0)):
            continue  # "3.5" or "5-1" alone is not a date; without a year only 月…日 is
        year = int(m["y"]) if m["y"] else at.astimezone(ZONE).year
        try:
            out.append((date(year, int(m["m"]), int(m["d"])), m))
        except ValueError:
            continue
    return out


def _run(check: Check, s: Subject, text: str) -> tuple[tuple[int, int], ...] | None:
    """None: the check holds; else the spans of the text that break it (maybe none)."""
    pat, unless = _patterns(check)
    kind = check.kind
    if kind == "require":
        return None if pat is not None and pat.search(text) else ()
    if kind == "forbid":
        if pat is None:
            return None
        spans = tuple(m.span() for m in pat.finditer(text))
        if not spans or (unless is not None and unless.search(text)):
            return None
        return spans
    if kind == "min_length":
        body = text.strip()
        sentences = [x for x in _SENTENCE.split(body) if x.strip()]
        short = len(body) < check.min_chars or len(sentences) < check.min_lines
        return () if short else None
    if kind == "caller_number":
        if not s.caller_hash or s.hash_number is None:
            return None
        spans = tuple(
            m.span() for m in MOBILE.finditer(text) if s.hash_number(m.group(0)) == s.caller_hash
        )
        return spans or None
    if kind == "phone_format":
        spans = tuple(
            m.span(1) for m in _PHONE_AFTER.finditer(text) if not _valid_phone(m.group(1))
        )
        return spans or None
    if kind == "dates":
        bad = []
        start = s.dispatched_at.astimezone(ZONE).date() if s.dispatched_at else None
        own = s.at.astimezone(ZONE).date()
        for day, m in _dates(text, s.at):
            if start is not None and day < start:
                bad.append(m.span())
            elif day > own:
                before = text[max(0, m.start() - 8) : m.start()]
                if unless is None or not unless.search(before):
                    bad.append(m.span())
        return tuple(bad) or None
    if kind == "resolved_claim":
        if pat is None or not (s.commitment_open or s.unresolved):
            return None
        spans = tuple(m.span() for m in pat.finditer(text))
        return spans or None
    if kind == "other_unit":
        own_names = {n for n in s.unit_names if n}
        head, foot = text[: check.edge_chars], text[-check.edge_chars :]
        base = len(text) - len(foot)
        found: list[tuple[int, int]] = []
        for name in s.other_units:
            if not name or name in own_names or any(name in o for o in own_names):
                continue
            i = head.find(name)
            if i >= 0:
                found.append((i, i + len(name)))
                continue
            j = foot.find(name)
            if j >= 0:
                found.append((base + j, base + j + len(name)))
        return tuple(found) or None
    if kind == "near_identical":
        body = text.strip()
        if len(body) < NEAR_IDENTICAL_MIN_CHARS or not s.others:
            return None
        hit = process.extractOne(body, s.others, scorer=fuzz.ratio, score_cutoff=check.similarity)
        return () if hit is not None else None
    if kind == "before_deadline":
        return () if s.reply_by is not None and s.at > s.reply_by else None
    if kind == "extension_date":
        if s.until is None:
            return ()
        late = s.until <= s.at or (s.reply_by is not None and s.until <= s.reply_by)
        return () if late else None
    raise ValueError(f"unknown review check kind {kind!r}")


def review(s: Subject, config: ReviewConfig) -> tuple[Finding, ...]:
    """Every finding of the checks that apply to the event; () passes."""
    text = s.text or ""
    out = []
    for check in config.checks:
        if s.event not in check.events:
            continue
        spans = _run(check, s, text)
        if spans is not None:
            out.append(Finding(check.id, check.name, check.message, spans))
    return tuple(out)


def reply_text(data: dict) -> str | None:
    """The text an event offers for review, or None when it carries none at all: a reply's text
    (not its `result`, a short outcome some feeds send alone), its handler and contact; a
    return's or an extension's reason."""
    parts = []
    for key in ("text", "reason"):
        value = data.get(key)
        if isinstance(value, str):
            parts.append(value)
            break
    if data.get("handler"):
        parts.append(f"承办人：{data['handler']}")
    if data.get("contact"):
        parts.append(f"联系电话：{data['contact']}")
    return "\n".join(parts) if parts else None


def highlight(text: str, findings: Sequence[Finding]) -> list[tuple[str, bool]]:
    """The text cut into (piece, flagged) for the desk, flagged where a finding points."""
    marks = sorted({sp for f in findings for sp in f.spans if sp[0] < sp[1]})
    out: list[tuple[str, bool]] = []
    pos = 0
    for a, b in marks:
        if a < pos:
            a = pos
        if a >= b:
            continue
        if a > pos:
            out.append((text[pos:a], False))
        out.append((text[a:b], True))
        pos = b
    if pos < len(text):
        out.append((text[pos:], False))
    return out
