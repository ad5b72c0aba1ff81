"""An import's text times: the fast path (strptime's own pattern, no exception per format that
does not fit) gives exactly what trying datetime.strptime with each format in order gives."""

from __future__ import annotations

import random
from datetime import datetime

from supervisor.imports.rows import _strptime_first

FORMATS = [
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y-%m-%d",
    "%Y/%m/%d", "%Y年%m月%d日", "%d/%m/%Y %H:%M", "%b %d %Y", "%Y%%%m",
]  # fmt: skip


def _reference(text: str, formats: list[str]) -> datetime | None:
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _text(rnd: random.Random) -> str:
    parts = []
    for _ in range(rnd.randint(1, 7)):
        kind = rnd.random()
        if kind < 0.55:
            parts.append(str(rnd.choice([0, 1, 2, 9, 12, 13, 23, 24, 29, 30, 31, 32, 59, 60, 61, 2026,
                                         202, 20261, 7, 8])).zfill(rnd.choice([1, 2, 4])))  # fmt: skip
        else:
            parts.append(rnd.choice(["-", "/", ".", " ", "  ", ":", "T", "年", "月", "日", "%", "x", "Dec", "\u3000"]))  # fmt: skip
    return "".join(parts)


def test_the_fast_path_agrees_with_strptime_on_random_text():
    rnd = random.Random(2026)
    shaped = ["2026-09-01 08:05", "2026/9/1 8:05", "2026-02-30 10:00", "2026-09-01 08:05:61",
              "2026年09月01日 08:05", "2026.12.31 23:59:59", "01/02/2026 10:00", "Dec 01 2026",
              "2026%09", "2026-09-01T08:05:00", " 2026-09-01", "2026-09-01 08:05 "]  # fmt: skip
    texts = shaped + [_text(rnd) for _ in range(4000)]
    for text in texts:
        for formats in (FORMATS, FORMATS[::-1], rnd.sample(FORMATS, 4)):
            assert _strptime_first(text, formats) == _reference(text, formats), (text, formats)
