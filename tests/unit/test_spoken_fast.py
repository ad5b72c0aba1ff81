"""core/spoken.speakable skips the steps that cannot change a text; it must give exactly what
the plain sequence of steps gives (kept here as the reference), on every shipped template's text
rendered against the sample context and on generated texts full of what the steps look for."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.config.templates import load_templates, sample_context
from supervisor.core import spoken
from supervisor.core.spoken import speakable


def ref_tail(ticket: str) -> str:
    """spoken.tail as it was (a digit at a time)."""
    return "".join(spoken._SPOKEN_DIGITS.get(c, c) for c in str(ticket)[-4:])


def reference(text: str, ticket: str | None = None) -> str:
    """speakable as it was before the skips (every step on every text)."""
    text = spoken._TAG.sub("", text)
    text = text.replace("：工单", "工单")
    text = spoken._LIST_MARK.sub(r"\1", text)
    for hint in spoken.ACK_HINTS:
        text = text.replace(hint, "")
    if ticket and len(ticket) > 4:
        text = text.replace(f"工单{ticket}", f"尾号{ref_tail(ticket)}的工单").replace(
            ticket, f"尾号{ref_tail(ticket)}的工单"
        )
    text = spoken._BRACKETED.sub(r"，\1，", text)
    text = re.sub(r"[…⋯]+|\.{2,}|[【】〖〗「」『』\[\]()（）<>《》★※•·→①-⑳]", "", text)
    text = spoken._HM.sub(
        lambda m: f"{int(m[1])}点" + ("整" if m[2] == "00" else f"{int(m[2])}分"), text
    )
    text = text.replace("12345", spoken.HOTLINE)
    text = spoken._LONG_RUN.sub(lambda m: f"尾号{ref_tail(m.group())}", text)
    text = re.sub(r"\s+", "", text)
    text = re.sub(r"，+([，。；])", r"\1", text)
    text = re.sub(r"，{2,}", "，", text)
    text = text.strip("，；")
    if text and not text.endswith(("。", "！", "？")):
        text += "。"
    if not text.startswith(spoken.GREETING):
        text = text.removeprefix("您好，").removeprefix("您好")
        text = spoken.GREETING + text
    return text


ROOT = Path(__file__).resolve().parents[2]


def test_shipped_texts() -> None:
    templates = load_templates(ROOT / "config" / "templates.yaml")
    context = sample_context()
    tid = context["ticket"]["id"]
    for name in templates.names:
        text = templates.render(name, context)
        for ticket in (tid, None, "T1", text[5:12]):
            assert speakable(text, ticket) == reference(text, ticket), name


_ALPHABET = (
    "0123456789１２٣ 　\t\n:：.、．…⋯,，，，；;。！？【】〖〗「」『』[]()（）〔〕<>《》★※•·→①⑳-"
    "工单确认回复1您好幺二三四五热线督办ABCxyz\x1c\x85\u2028\xa0\u200b②"
)
_PIECES = st.sampled_from(
    ["回复1确认。", "请回复1确认", "：工单", "12345", "您好，", spoken.GREETING, "14:05", "9:00",
     "2026112500123", "T20261125-0001", "，，", "，。", "1.", "；2、", "【12345催办】", "...", "．．", "…...…"]
)  # fmt: skip
texts = st.lists(st.text(alphabet=_ALPHABET, max_size=12) | _PIECES, max_size=10).map("".join)
tickets = (
    st.none()
    | st.sampled_from(["2026112500123", "T20261125-0001", "T1", "12345"])
    | st.text(alphabet="0123456789T-", max_size=14)
)


@settings(max_examples=3000, deadline=None)
@given(texts, tickets)
def test_generated(text: str, ticket: str | None) -> None:
    assert speakable(text, ticket) == reference(text, ticket)


@given(st.text(alphabet="0123456789１٣A-零", max_size=8))
def test_tail(ticket: str) -> None:
    assert spoken.tail(ticket) == ref_tail(ticket)


def test_clock_times_are_found_as_the_regex_finds_them() -> None:
    """_say_times against _HM.sub on every string of up to 6 characters of an alphabet with
    ASCII, Arabic-Indic and other digits (① and ² are digits, not decimals: \\d takes neither)."""
    import itertools

    alphabet = ["1", "0", "٣", "①", "²", ":", "a"]
    for n in range(7):
        for chars in itertools.product(alphabet, repeat=n):
            text = "".join(chars)
            assert spoken._say_times(text) == spoken._HM.sub(spoken._said_hm, text), text
    for text in ("14:30", "9:00:00", "12:3456:78", "１４:３０", "at 7:05, 23:59 and 24:00"):
        assert spoken._say_times(text) == spoken._HM.sub(spoken._said_hm, text), text
