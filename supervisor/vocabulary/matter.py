"""The same-matter settings (同一事项) of the rules' `matter:` section: thresholds and address words.

What they mean is core/matter.py's and core/address.py's (the keys); policy/rulebook.py reads
them from the rule files. Here so that both sides speak them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AddressWords:
    """The office's words for the parts of an address (config: `matter.address` in rules)."""

    roads: tuple[str, ...] = ("大道", "大街", "胡同", "路", "街", "巷", "道", "弄", "里")
    compounds: tuple[str, ...] = (
        "小区", "花园", "新村", "村", "苑", "公寓", "家园", "大厦", "广场", "园",
    )  # fmt: skip
    buildings: tuple[str, ...] = ("号楼", "栋", "幢", "座", "号")
    divisions: tuple[str, ...] = ("自治区", "省", "市", "区", "县", "街道", "镇", "乡")
    # detail after a place with neither a road number nor a compound: cut from the end
    details: tuple[str, ...] = (
        "楼下", "门口", "门前", "东门", "西门", "南门", "北门", "对面", "旁边", "旁", "附近", "周边",
        "后面", "楼上", "路口",
    )  # fmt: skip


DEFAULT_WORDS = AddressWords()


@dataclass(frozen=True)
class MatterConfig:
    summary_similarity: int = 60  # rapidfuzz ratio (0-100) for two summaries to be the same matter
    min_summary_chars: int = 6  # shorter summaries say too little to match on
    min_address_chars: int = 4  # shorter addresses ("3号") say too little
    max_candidates: int = 500  # per address or grid: its most recent tickets within the window
    address: AddressWords = DEFAULT_WORDS  # the office's words for roads, compounds, detail
