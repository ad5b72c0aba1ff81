"""Renderings of the monthly report shared by every format: Chinese labels, rate text, the
overview rows, and the json and csv outputs (xlsx.py and html.py build on the same rows)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from supervisor.stats.safecells import csv_row

DASH = "—"  # a rate with a zero denominator: never 100%
NO_RATE = {"num": 0, "den": 0, "rate": None}

RATE_LABELS = {
    "sign_off_on_time": "签收及时率",
    "on_time_replies": "按时办结率",
    "satisfaction": "满意率（满意+基本满意）",
    "satisfaction_strict": "满意率（仅满意）",
    "resolution": "解决率",
    "first_pass": "答复一次通过率",
}
ROLE_LABELS = {
    "liaison": "联络员",
    "head": "单位负责人",
    "supervisor": "街道热线专员",
    "leader": "分管领导",
}
CHANNEL_LABELS = {
    "phone": "电话",
    "provincial": "省平台",
    "wechat": "微信",
    "web": "网站",
    "sms": "短信",
    "app": "APP",
    "visit": "走访登记",
    "grid": "网格上报",
}
KIND_LABELS = {
    "complaint": "投诉",
    "help": "求助",
    "consultation": "咨询",
    "suggestion": "建议",
    "praise": "表扬",
}
UNIT_COLUMNS = (
    ("rank", "排名"), ("unit", "单位"), ("score", "综合得分"), ("change_score", "较上月得分"),
    ("change_rank", "名次变化"), ("dispatches", "派单数"), ("sign_off_on_time", "签收及时率"),
    ("replies", "办结数"), ("on_time_replies", "按时办结率"), ("first_pass", "答复一次通过率"), ("satisfaction", "满意率"),
    ("satisfaction_strict", "满意率（仅满意）"), ("resolution", "解决率"), ("returns", "退单数"),
    ("disputes", "推诿工单"), ("reminders", "催办次数"), ("escalations", "督办次数"),
    ("overdue_now", "当前超期"),
)  # fmt: skip


def rate_text(r: dict[str, Any]) -> str:
    """'95.0%（19/20）', or '—（0/0）' for a zero denominator."""
    value = DASH if r["rate"] is None else f"{r['rate'] * 100:.1f}%"
    return f"{value}（{r['num']}/{r['den']}）"


def pct(r: dict[str, Any]) -> str:
    return DASH if r["rate"] is None else f"{r['rate'] * 100:.1f}%"


def label(kind: str, name: str) -> str:
    table = {"channel": CHANNEL_LABELS, "kind": KIND_LABELS, "role": ROLE_LABELS}.get(kind, {})
    return table.get(name, name)


def overview(report: dict[str, Any]) -> list[tuple[str, Any, Any, str]]:
    """(figure, numerator or count, denominator or '', text) rows of 总览."""
    rows: list[tuple[str, Any, Any, str]] = [
        ("受理量", report["received"]["total"], "", str(report["received"]["total"])),
        ("办结量", report["closed"], "", str(report["closed"])),
    ]
    for key, text in RATE_LABELS.items():
        r = report.get(key, NO_RATE)  # a report kept before a figure existed lacks it
        rows.append((text, r["num"], r["den"], pct(r)))
    rows += [
        ("重办量", report["rehandled"], "", str(report["rehandled"])),
        ("办理3次及以上工单", report["handled_3_times"], "", str(report["handled_3_times"])),
        ("重复诉求工单", report["repeats"]["tickets"], "", str(report["repeats"]["tickets"])),
        ("推诿工单", report["disputes"]["tickets"], "", str(report["disputes"]["tickets"])),
        ("催办次数", report["reminders"]["total"], "", str(report["reminders"]["total"])),
        ("督办次数", report["escalations"]["total"], "", str(report["escalations"]["total"])),
        ("督办已确认", report["escalations"]["acknowledged"], report["escalations"]["total"],
         str(report["escalations"]["acknowledged"])),
        ("督办确认用时中位数（分钟）", report["escalations"]["median_ack_minutes"] or "", "",
         DASH if report["escalations"]["median_ack_minutes"] is None else str(report["escalations"]["median_ack_minutes"])),
        ("承诺件数", report["commitments"]["made"], "", str(report["commitments"]["made"])),
        ("承诺按期兑现", report["commitments"]["kept"], "", str(report["commitments"]["kept"])),
        ("承诺未兑现", report["commitments"]["broken"], "", str(report["commitments"]["broken"])),
    ]  # fmt: skip
    own = report.get("own_demands")
    if own is not None:  # 一下三民: the office's own registered demands
        rows += [
            ("自主登记诉求（走访登记、网格上报）", own["registered"], "", str(own["registered"])),
            ("自主登记诉求已解决", own["solved"], "", str(own["solved"])),
            ("自主登记诉求解决率", own["rate"]["num"], own["rate"]["den"], pct(own["rate"])),
        ]
    review = report.get("review")
    if review is not None:
        n = sum(review["returns_by_reason"].values())
        rows.append(("答复审核退回原因（条）", n, "", str(n)))
    return rows


def unit_cells(u: dict[str, Any]) -> list[Any]:
    """One unit's row for the 单位考核 table, as text."""
    out: list[Any] = []
    for key, _ in UNIT_COLUMNS:
        if key in RATE_LABELS:
            out.append(rate_text(u.get(key, NO_RATE)))
        elif key == "score":
            out.append(DASH if u["score"] is None else f"{u['score'] * 100:.1f}")
        elif key == "change_score":
            c = u["change"]["score"]
            out.append(DASH if c is None else f"{c * 100:+.1f}")
        elif key == "change_rank":
            c = u["change"]["rank"]
            out.append(DASH if c is None else (f"↑{c}" if c > 0 else f"↓{-c}" if c < 0 else "持平"))
        else:
            out.append(u[key])
    return out


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)


def _row(w: Any, values: list[Any]) -> None:
    w.writerow(csv_row(values))  # no cell can start a formula (stats.safecells)


def to_csv(report: dict[str, Any]) -> str:
    """Long format, one figure per line: 栏目,项目,分子,分母,数值 (UTF-8 with BOM for Excel)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    _row(w, ["栏目", "项目", "分子", "分母", "数值"])
    period = report["period"]
    _row(w, ["统计期间", f"{period['from']}至{period['to']}", "", "", ""])
    for name, num, den, text in overview(report):
        _row(w, ["总览", name, num, den, text])
    for key, title in (
        ("by_category", "诉求归口"),
        ("by_channel", "来源渠道"),
        ("by_kind", "诉求类型"),
        ("by_grid", "网格"),
    ):
        kind = {"by_channel": "channel", "by_kind": "kind"}.get(key, "")
        for name, n in report["received"][key].items():
            _row(w, [title, label(kind, name), n, report["received"]["total"], n])
    for u in report["units"]:
        for (key, head), cell in zip(UNIT_COLUMNS, unit_cells(u), strict=True):
            if key not in ("unit", "rank"):
                r = u.get(key)
                if isinstance(r, dict) and "num" in r:
                    _row(w, [f"单位考核:{u['unit']}", head, r["num"], r["den"], pct(r)])
                else:
                    _row(w, [f"单位考核:{u['unit']}", head, "", "", cell])
    for m in report["repeats"]["matters_3plus"]:
        _row(w,
            ["重复诉求", m["category"] or m["address"], m["count"], "", "、".join(m["tickets"])]
        )
    for unit, n in report["disputes"]["returns_by_unit"].items():
        _row(w, ["推诿:退单", unit, n, "", n])
    for reason, n in report.get("review", {}).get("returns_by_reason", {}).items():
        _row(w, ["答复审核:退回原因", reason, n, "", n])
    for row in report.get("trend", []):
        for key in ("sign_off_on_time", "on_time_replies", "satisfaction", "resolution"):
            r = row[key]
            _row(w, [f"趋势:{row['month']}", RATE_LABELS[key], r["num"], r["den"], pct(r)])
    return "\ufeff" + buf.getvalue()
