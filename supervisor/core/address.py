"""Addresses as the office reads them (DOMAIN.md, *Addresses*): the key for "the same address".

Pure. The key is
- the road (…路/街/巷/道/大道/弄…) and the house number (…号): "建设路12号"; or, with no house
  number,
- a named compound (…小区/…花园/…村/…苑/…公寓…) and its building: "和平小区5栋";
and anything after that (栋, 单元, 室, 楼下, 门口, 北门, 对面, 旁, 附近…) is detail that does not
make another address. Before the words are read, the text is folded: full-width digits and letters
to ASCII (NFKC), lower case, 號 as 号, spaces and punctuation dropped. Administrative divisions in
front (…市…区…街道) are dropped too, so "某市某区建设路12号" and "建设路12号" agree. The words are the
office's own, from the rule files' `matter:` section (AddressWords, in supervisor/vocabulary/matter.py, with the defaults).

Text that matches neither form falls back to the folded text with trailing building/unit/room
detail cut (the matcher's older reading), so free-form addresses still match themselves.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from supervisor.vocabulary.matter import DEFAULT_WORDS, AddressWords

_DROP = re.compile(r"[\s\-_,.，。、;；:：!！?？'\"“”‘’()（）\[\]【】<>《》/\\#]+")
_NUM = r"[0-9a-z一二三四五六七八九十百零〇甲乙丙丁东西南北]+"
_DETAIL = re.compile(
    rf"(?:{_NUM}(?:号楼|栋|幢|座|楼|单元|层|室|户|号房|房)|(?<=号){_NUM}|(?<=[栋幢座楼元层]){_NUM})$"
)
_CN_DIGITS = {c: str(i) for i, c in enumerate("零一二三四五六七八九")} | {"〇": "0"}


def fold(text: str) -> str:
    """Full-width to ASCII, lower case, 號 as 号, no spaces or punctuation."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).lower().replace("號", "号"))


def _alt(words: tuple[str, ...]) -> str:
    # longest first, so 大道 wins over 道 and 号楼 over 号
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


@dataclass(frozen=True)
class _Patterns:
    road: re.Pattern[str]
    compound: re.Pattern[str]
    division: re.Pattern[str]
    detail: re.Pattern[str]


@lru_cache(maxsize=16)
def _patterns(words: AddressWords) -> _Patterns:
    # A road: a name without digits ending in a road word, then a number and 号 (12号, 12-1号).
    road = re.compile(
        rf"(?P<name>[^0-9]{{1,24}}?)(?P<word>{_alt(words.roads)})(?P<num>[0-9]+(?:-[0-9]+)?)号"
    )
    # A compound: a name ending in a compound word, then an optional building (5栋, 5号楼, a座).
    compound = re.compile(
        rf"(?P<name>[^0-9]{{1,24}}?)(?P<word>{_alt(words.compounds)})"
        rf"(?:(?P<num>[0-9a-z]+|[一二三四五六七八九十〇零]+)(?:{_alt(words.buildings)}))?"
    )
    # Everything up to the last division word ("…市…区…街道") in front of the name.
    division = re.compile(rf"^.*(?:{_alt(words.divisions)})")
    detail = re.compile(rf"(?:{_alt(words.details)})+$")
    return _Patterns(road, compound, division, detail)


def _name(m: re.Match[str], pats: _Patterns) -> str:
    """The road's or compound's name with its word, the divisions in front of it dropped (only
    in front: the 区 of 小区 is the compound's own)."""
    name = m["name"]
    cut = pats.division.sub("", name)
    return (cut or name) + m["word"]


def _number(num: str) -> str:
    if num and num[0] in _CN_DIGITS and len(num) <= 3 and "十" not in num:
        return "".join(_CN_DIGITS.get(c, c) for c in num)
    return num


def address_key(
    text: str | None, words: AddressWords = DEFAULT_WORDS, min_chars: int = 4
) -> str | None:
    """The address's key, or None when there is too little to match on."""
    if not text:
        return None
    folded = fold(text)
    if not folded:
        return None
    pats = _patterns(words)
    m = pats.road.search(folded)
    if m is not None:
        key = f"{_name(m, pats)}{m['num']}号"
        return key if len(key) >= min_chars else None
    m = pats.compound.search(folded)
    if m is not None:
        name = _name(m, pats)
        key = f"{name}{_number(m['num'])}栋" if m["num"] else name
        return key if len(key) >= min_chars else None
    key = pats.detail.sub("", folded) or folded
    while True:
        cut = _DETAIL.sub("", key)
        if cut == key or len(cut) < min_chars:
            break
        key = cut
    return key if len(key) >= min_chars else None
