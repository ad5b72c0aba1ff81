"""A re-import looks up a row's event ids before checking the row (`row_ids`, from a few
cells): they must be exactly the ids `row_events` gives a good row, in its order, and a row
whose ids cannot be read that way must be one that `row_events` gives no events. The units a
stored row names are taken from the same cells (the import lists those not in the directory)."""

from __future__ import annotations

import random
from datetime import datetime

from supervisor.imports.command import _units
from supervisor.imports.mapping import load_mapping
from supervisor.imports.rows import _ID_FIELDS, Header, row_events, row_ids
from tests.helpers import CONFIG

MAPPING = load_mapping(CONFIG / "import.yaml")
HEADERS = ["工单编号", "受理时间", "来源渠道", "诉求类型", "是否紧急", "来电号码", "事发地址", "诉求内容",
           "承办单位", "协办单位", "派单时间", "签收时间", "办结时限", "回复时间", "回复内容", "回访时间",
           "回访结果", "是否解决", "重办次数", "结案时间"]  # fmt: skip


def _time(rnd: random.Random) -> object:
    at = datetime(
        2026, rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59)
    )
    if rnd.random() < 0.04:
        return rnd.choice(["2026-13-01 10:00", "昨天"])
    return rnd.choice([
        at, at.strftime("%Y-%m-%d %H:%M"), at.strftime("%Y/%m/%d %H:%M:%S"), at.strftime("%Y年%m月%d日"),
        (at - datetime(1899, 12, 30)).total_seconds() / 86400, "无", "", None,
    ])  # fmt: skip


def _cell(rnd: random.Random, header: str) -> object:
    if rnd.random() < 0.15:
        return rnd.choice([None, "", "  ", "无", "\u3000"])
    if header.endswith("时间") or header.endswith("时限"):
        return _time(rnd)
    good = {
        "工单编号": [f"2026{rnd.randint(0, 99):04d}", 20260001.0, " T-1 "],
        "来源渠道": ["电话", "微信"], "诉求类型": ["投诉", "求助"], "是否紧急": ["是", "否"],
        "来电号码": ["13812345678", 13812345678.0], "事发地址": ["幸福路88号"], "诉求内容": ["占道经营"],
        "承办单位": ["城管执法中队", "\u3000市场监管所 "], "协办单位": ["市场监管所、物业管理办公室", "，"],
        "回复内容": ["已处理"], "回访结果": ["满意", "不满意"], "是否解决": ["是", "否"], "重办次数": ["1"],
    }  # fmt: skip
    bad = {"来源渠道": "飞鸽", "诉求类型": "吐槽", "是否紧急": "也许", "诉求内容": "x" * 5000, "回复内容": "\x07",
           "回访结果": "很好", "重办次数": "两次"}  # fmt: skip
    if header in bad and rnd.random() < 0.02:
        return bad[header]
    return rnd.choice(good[header])


def test_row_ids_are_the_ids_of_a_good_rows_events():
    rnd = random.Random(22)
    header = Header(1, HEADERS, MAPPING)
    id_cells = {header.columns[name][0] for name in _ID_FIELDS if name in header.columns}
    outcomes = {"good": 0, "bad": 0, "unread": 0, "units": 0}
    for number in range(2, 6002):
        cells = [_cell(rnd, h) for h in HEADERS]
        events, problems = row_events(number, cells, header, MAPPING, [])
        units: set[str] = set()
        ids = row_ids(cells, header, MAPPING, units)
        if not problems and events:
            assert ids == [e["id"] for e in events], cells
            assert units == _units(events), cells
            outcomes["units"] += bool(units)
            outcomes["good"] += 1
        if ids is None:
            assert not events, cells
            outcomes["unread"] += 1
        elif problems:
            outcomes["bad"] += 1  # a bad cell the ids are not made of: row_events names it
        # what row_ids says is what row_events says of the id cells alone
        alone = [c if i in id_cells else None for i, c in enumerate(cells)]
        events, problems = row_events(number, alone, header, MAPPING, [])
        assert ids == ([e["id"] for e in events] if events and not problems else None), cells
    assert min(outcomes.values()) > 300, outcomes  # every case is exercised
