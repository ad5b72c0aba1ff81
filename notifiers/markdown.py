"""Markdown for the group robots (WeCom, DingTalk): a message written for SMS, laid out for a chat.

Our texts are written for SMS: one run of sentences, a tag in 【】, lists joined with "；". In a
group chat a digest, a look-back or a monthly summary reads better as a heading and a list. Pure
functions; the notifiers (webhook.py) call `to_markdown` when their `format` is markdown.

The layout, from the text alone (the templates need not change):
- a leading 【tag】 becomes the title and a bold heading;
- each line is cut into sentences at "。"; a sentence holding "；" is a list: what comes before
  the last "：" of its first part is a lead paragraph, a last part starting with 等/请 is a closing
  paragraph, the rest are items ("1.xxx" items become an ordered list); a ticket number at the
  start of an item is set in bold;
- a text of several lines (a monthly summary) keeps its lines: "label：value" lines become
  items with the label in bold, other lines paragraphs;
- a text that is already Markdown (a line starting with #, -, *, | or **) is sent as written.
"""

from __future__ import annotations

import re

_TAG = re.compile(r"^【([^】]{1,20})】")
_MARKDOWN = re.compile(r"^\s*(#{1,6}\s|[-*]\s|\||\*\*)", re.MULTILINE)
_NUMBERED = re.compile(r"^(\d{1,2})[.、]\s*")
_TICKET = re.compile(r"^(\d{6,}|[A-Z]{2,}\d{6,}\w*)")
_LABEL = re.compile(r"^([^：:]{1,12})[：:](.+)$")


def to_markdown(text: str) -> tuple[str, str]:
    """(title, body): the title for DingTalk's `title` and the chat's notification line."""
    text = text.strip()
    if _MARKDOWN.search(text):
        first = next((line for line in text.splitlines() if line.strip()), text)
        return first.strip("#*-| ").strip()[:30] or "通知", text
    title = "通知"
    out: list[str] = []
    tag = _TAG.match(text)
    if tag:
        title = tag.group(1)
        out.append(f"**{title}**")
        text = text[tag.end() :]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        for line in lines:
            label = _LABEL.match(line)
            out.append(f"- **{label.group(1)}**：{label.group(2)}" if label else f"\n{line}\n")
        return title, "\n".join(out).replace("\n\n\n", "\n\n").strip()
    for sentence in _sentences(lines[0] if lines else ""):
        out.extend(_block(sentence))
    return title, "\n\n".join(_join_lists(out))


def _sentences(text: str) -> list[str]:
    # "。" ends a sentence unless a "；" follows (an item of a grouped message ends with 。；)
    parts = re.split(r"(?<=。)(?![；;])", text)
    return [p.strip() for p in parts if p.strip(" 。")]


def _block(sentence: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"[；;]", sentence) if p.strip()]
    if len(parts) < 2:
        return [sentence]
    out: list[str] = []
    lead, sep, first = parts[0].rpartition("：")
    if sep and lead and first:
        out.append(f"{lead}：")
        parts[0] = first
    closing = parts[-1] if parts[-1].startswith(("等", "请")) else None
    if closing is not None:
        parts = parts[:-1]
    numbered = all(_NUMBERED.match(p) for p in parts)
    for i, part in enumerate(parts, 1):
        item = _NUMBERED.sub("", part).rstrip("。")
        item = _TICKET.sub(r"**\1** ", item, count=1)
        out.append(f"\x00{i}. {item}" if numbered else f"\x00- {item}")
    if closing is not None:
        out.append(closing)
    return out


def _join_lists(blocks: list[str]) -> list[str]:
    """Consecutive list items on consecutive lines (one block); paragraphs apart."""
    out: list[str] = []
    for b in blocks:
        if b.startswith("\x00") and out and out[-1].startswith("\x00"):
            out[-1] += "\n" + b
        else:
            out.append(b)
    return [b.replace("\x00", "") for b in out]
