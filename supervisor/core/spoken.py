"""What a phone call says (shared/DOMAIN.md, *Phone calls*): heard once, by someone busy.

A call greets, names the unit and what is late in one sentence, and asks for one key. Numbers are
read as Chinese phone operators read them: 12345 as 幺二三四五, the digit 1 as 幺 in numbers and
ids; a ticket is named by the last four characters of its number (尾号…), never the whole id; no
brackets, list numbers or ellipses are read aloud. Several items for one person make one call that
counts them. The key prompt itself ("按1确认收到，按2重听") is added by the call's TwiML
(notifiers/twilio_voice.py), because only a call that Twilio can post the key back for may ask
for one.

Pure functions: the template filters (config/templates.py), the stand-in note placed after the
greeting (core/firing.py) and the counting call of a group (delivery/outbox.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

HOTLINE = "幺二三四五"
GREETING = f"您好，这里是{HOTLINE}热线督办。"
CLOSING = "详情请查看短信。"
ACK_HINTS = ("请回复1确认。", "回复1确认。", "请回复1确认", "回复1确认")
_SPOKEN_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))
_DIGITS_TABLE = str.maketrans(_SPOKEN_DIGITS)
# an id-like token: more than four digits, with the letters and dashes around them
_LONG_RUN = re.compile(r"[A-Za-z-]*\d{5,}[A-Za-z0-9]*")
_HM = re.compile(r"(\d{1,2}):(\d{2})")
# said as words, never read: brackets of every kind, list marks, ellipses, the SMS tag (the
# marks and ellipses: _DOTS and _MARKS below)
_TAG = re.compile(r"【[^】]*】")
_BRACKETED = re.compile(r"[（(〔\[「『]([^）)〕\]」』]*)[）)〕\]」』]")


def digits(value: Any) -> str:
    """Every digit read on its own, 1 as 幺: "A2016" -> "A二零幺六"."""
    return str(value).translate(_DIGITS_TABLE)


def tail(ticket: Any) -> str:
    """A ticket as it is named on the phone: its last four characters, read one by one."""
    return digits(str(ticket)[-4:])


def spoken_note(note: str) -> str:
    """A stand-in note ("（老旧小区改造办未配置负责人，转您处理）") as it is said after the
    greeting: "老旧小区改造办未配置负责人，由您代为处理。"."""
    core = note.strip().strip("（）()").strip("。")
    return core.replace("转您处理", "由您代为处理") + "。"


def with_spoken_notes(text: str, notes: Sequence[str]) -> str:
    """The notes said right after the greeting (a greeting comes first, then why this person)."""
    if not notes:
        return text
    said = "".join(spoken_note(n) for n in dict.fromkeys(notes) if n)
    if not said:
        return text
    if text.startswith(GREETING):
        return GREETING + said + text[len(GREETING) :]
    return said + text


_LIST_MARK = re.compile(r"(^|[：；，。])\s*\d{1,2}[.、．](?!\d)")


def speakable(text: str, ticket: str | None = None) -> str:
    """A text made fit to be read aloud: the greeting first, no 【】, brackets, list marks or
    ellipses; clock times as said; 12345 as 幺二三四五; the ticket, and anything else with more
    than four digits (other tickets' ids), named by its tail; no "回复1确认" (a call asks for a
    key).

    Each step is skipped when the text holds nothing it could change (the same text, faster:
    tests/unit/test_spoken_fast.py compares it with the plain sequence of steps)."""
    if "【" in text:
        text = _TAG.sub("", text)
    # "城管执法中队：工单T1" is said "城管执法中队尾号…的工单"
    text = text.replace("：工单", "工单")
    # "：1.联系诉求人；2.推诿用语" is said without its numbers (a list mark ends with . 、 or ．)
    if "." in text or "、" in text or "．" in text:
        text = _LIST_MARK.sub(_group, text)
    if "确认" in text:
        for hint in ACK_HINTS:
            text = text.replace(hint, "")
    if ticket and len(ticket) > 4 and ticket in text:
        said = f"尾号{tail(ticket)}的工单"
        text = text.replace(f"工单{ticket}", said).replace(ticket, said)
    text = _BRACKETED.sub(_said_bracketed, text)
    # ellipses and marks dropped: runs of two or more dots, then each mark (in that order, as one
    # r"[…⋯]+|\.{2,}|[【】...]" pass would: no mark is a dot), a one-character class being
    # scanned far faster than the alternation (tests/unit/test_spoken_fast.py compares)
    if ".." in text:
        text = _DOTS.sub("", text)
    text = _MARKS.sub("", text)
    if ":" in text:
        text = _say_times(text)
    text = text.replace("12345", HOTLINE)
    if _FIVE_DIGITS.search(text):
        text = _LONG_RUN.sub(_said_tail, text)
    # no spaces: str.split() splits where r"\s+" matches (both are str.isspace)
    text = "".join(text.split())
    if "，，" in text or "，。" in text or "，；" in text:  # what _COMMA_BEFORE finds
        text = _COMMA_BEFORE.sub(_group, text)
        if "，，" in text:
            text = _COMMAS.sub("，", text)
    text = text.strip("，；")
    if text and not text.endswith(("。", "！", "？")):
        text += "。"
    if not text.startswith(GREETING):
        text = text.removeprefix("您好，").removeprefix("您好")
        text = GREETING + text
    return text


_DOTS = re.compile(r"\.{2,}")  # _DROP's dots
_MARKS = re.compile(r"[…⋯【】〖〗「」『』\[\]()（）<>《》★※•·→①-⑳]")  # _DROP's marks
_FIVE_DIGITS = re.compile(r"\d{5}")  # what every _LONG_RUN holds
_COMMA_BEFORE = re.compile(r"，+([，。；])")
_COMMAS = re.compile(r"，{2,}")


def _group(m: re.Match[str]) -> str:  # r"\1" (the group always takes part in the match)
    return m[1]


def _said_bracketed(m: re.Match[str]) -> str:  # r"，\1，"
    return f"，{m[1]}，"


def _said_hm(m: re.Match[str]) -> str:
    return f"{int(m[1])}点" + ("整" if m[2] == "00" else f"{int(m[2])}分")


def _say_times(text: str) -> str:
    r"""_HM.sub(_said_hm, text), found from each ":" instead of tried at every character.

    A match of (\d{1,2}):(\d{2}) holds exactly one colon, followed by two digits (\d is
    str.isdecimal); scanning from the left, the regex takes for each colon, in order, the
    earliest start after the previous match: two digits before it if both are there, else one,
    else none (a start further left would need another colon). tests/unit/test_spoken_fast.py
    compares the two on every string of a small alphabet."""
    out: list[str] = []
    last, n = 0, len(text)
    i = text.find(":")
    while i != -1:
        if i + 2 < n and text[i + 1].isdecimal() and text[i + 2].isdecimal():
            if i - 2 >= last and text[i - 2].isdecimal() and text[i - 1].isdecimal():
                start = i - 2
            elif i - 1 >= last and text[i - 1].isdecimal():
                start = i - 1
            else:
                start = -1
            if start >= 0:
                said = _HM_SAID.get(text[start : i + 3])
                if said is None:
                    h, m = text[start:i], text[i + 1 : i + 3]
                    said = f"{int(h)}点" + ("整" if m == "00" else f"{int(m)}分")
                    if len(_HM_SAID) < 4096:  # a few thousand clock times at most
                        _HM_SAID[text[start : i + 3]] = said
                out.append(text[last:start])
                out.append(said)
                last = i + 3
        i = text.find(":", i + 1)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


_HM_SAID: dict[str, str] = {}  # "14:30" -> "14点30分"


def _said_tail(m: re.Match[str]) -> str:
    return f"尾号{tail(m.group())}"


def call_info(
    *, ticket: str, item: str, unit_name: str, notes: Sequence[str] = ()
) -> dict[str, Any]:
    """What a counting call needs of one row (stored in the row's params as "call")."""
    return {"tail": tail(ticket), "item": item, "unit": unit_name,
            "notes": [spoken_note(n) for n in dict.fromkeys(notes) if n] if notes else []}  # fmt: skip


def compose_call(rows: Sequence[Mapping[str, Any]]) -> str:
    """The one call for several items to one person in one window: counted, never the grouped
    SMS read aloud. "您有2件工单签收超时，尾号零幺二三、零零八七。" (items by what is late, in
    the rows' order). A single row is said as written."""
    if len(rows) == 1:
        return str(rows[0]["text"])
    items: dict[str, list[str]] = {}
    notes: list[str] = []
    for r in rows:
        info = (r.get("params") or {}).get("call") or {}
        item = str(info.get("item") or "需要处理")
        said = str(info.get("tail") or tail(r["ticket"]))
        if said not in items.setdefault(item, []):
            items[item].append(said)
        notes += [n for n in info.get("notes") or () if n not in notes]
    total = sum(len(t) for t in items.values())
    if len(items) == 1:
        ((item, tails),) = items.items()
        body = f"您有{total}件工单{item}，尾号{'、'.join(tails)}。"
    else:
        parts = "；".join(f"{len(t)}件{item}，尾号{'、'.join(t)}" for item, t in items.items())
        body = f"您有{total}件工单需要处理：{parts}。"
    return GREETING + "".join(notes) + body + CLOSING
