"""The monthly report as an Excel workbook (xlsxwriter): one sheet per section, native charts for
the 12-month trend and the unit ranking, widths and number formats a clerk need not fix."""

from __future__ import annotations

import io
from typing import Any

import xlsxwriter

from supervisor.stats.render import (
    DASH,
    NO_RATE,
    RATE_LABELS,
    ROLE_LABELS,
    UNIT_COLUMNS,
    label,
    overview,
    pct,
)
from supervisor.stats.safecells import WORKBOOK_OPTIONS, write_cell, write_cells

SHEETS = (
    "总览",
    "单位考核",
    "诉求归口",
    "来源渠道",
    "诉求类型",
    "重复诉求",
    "推诿",
    "答复审核",
    "催办督办",
    "承诺",
)


def _width(values: list[Any], minimum: int = 8) -> int:
    """A column wide enough for its longest cell; CJK characters count double."""
    longest = 0
    for v in values:
        text = str(v)
        longest = max(longest, sum(2 if ord(ch) > 0x2E80 else 1 for ch in text))
    return min(max(minimum, longest + 2), 60)


class _Book:
    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.wb = wb
        self.head = wb.add_format(
            {
                "bold": True,
                "bg_color": "#DCE6F1",
                "border": 1,
                "text_wrap": True,
                "valign": "vcenter",
            }
        )
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.cell = wb.add_format({"border": 1})
        self.int = wb.add_format({"border": 1, "num_format": "#,##0"})
        self.pct = wb.add_format({"border": 1, "num_format": "0.0%"})
        self.dash = wb.add_format({"border": 1, "align": "center"})
        self.num1 = wb.add_format({"border": 1, "num_format": "0.0"})

    def table(
        self,
        ws,
        top: int,
        headers: list[str],
        rows: list[list[Any]],
        formats: list[str] | None = None,
    ) -> None:
        write_cells(ws, top, 0, headers, self.head)
        for i, row in enumerate(rows, top + 1):
            for j, value in enumerate(row):
                kind = formats[j] if formats else "cell"
                if value is None:
                    write_cell(ws, i, j, DASH, self.dash)
                elif kind == "pct":
                    ws.write_number(i, j, value, self.pct)
                elif kind == "int" and isinstance(value, int | float):
                    ws.write_number(i, j, value, self.int)
                elif kind == "num1" and isinstance(value, int | float):
                    ws.write_number(i, j, value, self.num1)
                else:
                    write_cell(ws, i, j, value, self.cell)
        for j, h in enumerate(headers):
            ws.set_column(j, j, _width([h, *(r[j] for r in rows)]))
        ws.freeze_panes(top + 1, 0)


def _rate_cols(r: dict[str, Any]) -> list[Any]:
    return [r["num"], r["den"], r["rate"]]


def write_xlsx(report: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, **WORKBOOK_OPTIONS})
    b = _Book(wb)
    p = report["period"]
    title = f"12345热线工单月度统计（{p['from']}至{p['to']}）"

    ws = wb.add_worksheet("总览")
    write_cell(ws, 0, 0, title, b.title)
    rows = []
    for name, num, den, _text in overview(report):
        key = next((k for k, v in RATE_LABELS.items() if v == name), None)
        value = report.get(key, NO_RATE)["rate"] if key else None
        rows.append(
            [name, num if num != "" else None, den if den != "" else None, value]
            if key
            else [name, num if num != "" else None, None, None]
        )
    b.table(ws, 2, ["指标", "数量/分子", "分母", "比率"], rows, ["cell", "int", "int", "pct"])
    top = 4 + len(rows)
    trend = report.get("trend", [])
    write_cell(ws, top - 1, 0, "近12个月趋势", b.title)
    trows = [
        [t["month"], t["received"], t["closed"]]
        + [
            t[k]["rate"]
            for k in ("sign_off_on_time", "on_time_replies", "satisfaction", "resolution")
        ]
        for t in trend
    ]
    b.table(ws, top, ["月份", "受理量", "办结量", "签收及时率", "按时办结率", "满意率", "解决率"], trows,
            ["cell", "int", "int", "pct", "pct", "pct", "pct"])  # fmt: skip
    ws.set_column(0, 0, 28)
    if trend:
        chart = wb.add_chart({"type": "line"})
        for col, name in ((3, "签收及时率"), (4, "按时办结率"), (5, "满意率"), (6, "解决率")):
            chart.add_series({
                "name": name, "categories": ["总览", top + 1, 0, top + len(trend), 0],
                "values": ["总览", top + 1, col, top + len(trend), col], "marker": {"type": "circle"},
            })  # fmt: skip
        chart.set_title({"name": "近12个月主要指标趋势"})
        chart.set_y_axis({"num_format": "0%", "min": 0, "max": 1})
        chart.set_size({"width": 720, "height": 340})
        ws.insert_chart(2, 6, chart)

    ws = wb.add_worksheet("单位考核")
    write_cell(ws,
        0,
        0,
        f"单位考核排名（{p['from']}至{p['to']}，综合得分=签收及时率、按时办结率、满意率、解决率的平均）",
        b.title,
    )
    headers, fmts, urows = [], [], []
    for key, head in UNIT_COLUMNS:
        if key in RATE_LABELS:
            headers += [f"{head}", "分子", "分母"]
            fmts += ["pct", "int", "int"]
        else:
            headers.append(head)
            fmts.append({"score": "pct", "change_score": "pct", "unit": "cell"}.get(key, "int"))
    for u in report["units"]:
        row: list[Any] = []
        for key, _ in UNIT_COLUMNS:
            if key in RATE_LABELS:
                r = u.get(key, NO_RATE)
                row += [r["rate"], r["num"], r["den"]]
            elif key == "change_score":
                row.append(u["change"]["score"])
            elif key == "change_rank":
                row.append(u["change"]["rank"])
            else:
                row.append(u[key])
        urows.append(row)
    b.table(ws, 2, headers, urows, fmts)
    scored = [i for i, u in enumerate(report["units"]) if u["score"] is not None]
    if scored:
        chart = wb.add_chart({"type": "bar"})
        chart.add_series({
            "name": "综合得分", "categories": ["单位考核", 3, 1, 2 + len(scored), 1],
            "values": ["单位考核", 3, 2, 2 + len(scored), 2], "data_labels": {"value": True, "num_format": "0.0%"},
        })  # fmt: skip
        chart.set_title({"name": "单位综合得分排名"})
        chart.set_x_axis({"num_format": "0%", "min": 0, "max": 1})
        chart.set_y_axis({"reverse": True})
        chart.set_legend({"none": True})
        chart.set_size({"width": 640, "height": max(240, 28 * len(scored) + 80)})
        ws.insert_chart(4 + len(urows), 1, chart)

    total = report["received"]["total"]
    for sheet, key, kind in (
        ("诉求归口", "by_category", ""),
        ("来源渠道", "by_channel", "channel"),
        ("诉求类型", "by_kind", "kind"),
    ):
        ws = wb.add_worksheet(sheet)
        write_cell(ws, 0, 0, f"受理量按{sheet}（共{total}件）", b.title)
        rows = [
            [label(kind, name), n, n / total if total else None]
            for name, n in report["received"][key].items()
        ]
        b.table(ws, 2, [sheet, "受理量", "占比"], rows, ["cell", "int", "pct"])
        if sheet == "诉求归口" and report["received"]["by_grid"]:
            grows = [[name, n] for name, n in report["received"]["by_grid"].items()]
            write_cell(ws, 4 + len(rows), 0, "按网格", b.title)
            b.table(ws, 5 + len(rows), ["网格", "受理量"], grows, ["cell", "int"])

    ws = wb.add_worksheet("重复诉求")
    write_cell(ws, 0, 0, f"重复诉求工单 {report['repeats']['tickets']} 件；3件及以上的事项：", b.title)
    rows = [[m["link"], m["category"] or m["address"] or "",
             m["count"], "、".join(m["tickets"])] for m in report["repeats"]["matters_3plus"]]  # fmt: skip
    b.table(
        ws,
        2,
        ["关联方式", "诉求归口/地址", "工单数", "工单编号"],
        rows,
        ["cell", "cell", "int", "cell"],
    )

    ws = wb.add_worksheet("推诿")
    write_cell(ws,
        0,
        0,
        f"推诿工单（派单3次及以上或2个及以上单位退单）{report['disputes']['tickets']} 件",
        b.title,
    )
    rows = [[unit, n] for unit, n in report["disputes"]["returns_by_unit"].items()]
    b.table(ws, 2, ["单位", "退单次数"], rows, ["cell", "int"])

    ws = wb.add_worksheet("答复审核")
    fp = report.get("first_pass") or {"num": 0, "den": 0, "rate": None}
    ws.write(0, 0, f"答复一次通过率 {pct(fp)}（{fp['num']}/{fp['den']}）；退回原因", b.title)
    rows = [[reason, n] for reason, n in report.get("review", {}).get("returns_by_reason", {}).items()]
    b.table(ws, 2, ["退回原因", "次数"], rows, ["cell", "int"])
    own = report.get("own_demands")
    if own is not None:
        at = 4 + len(rows)
        ws.write(at, 0, "自主登记诉求（一下三民：走访登记、网格上报）", b.title)
        orow = [[own["registered"], own["solved"], own["rate"]["rate"]]]
        b.table(ws, at + 1, ["登记", "解决", "解决率"], orow, ["int", "int", "pct"])

    ws = wb.add_worksheet("催办督办")
    rem, esc = report["reminders"], report["escalations"]
    median = esc["median_ack_minutes"]
    write_cell(ws,
        0,
        0,
        f"催办 {rem['total']} 次，督办 {esc['total']} 次，督办已确认 {esc['acknowledged']} 次，确认用时中位数 {DASH if median is None else median} 分钟",
        b.title,
    )
    units = sorted(set(rem["by_unit"]) | set(esc["by_unit"]))
    rows = [[u, rem["by_unit"].get(u, 0), esc["by_unit"].get(u, 0)] for u in units]
    b.table(ws, 2, ["单位", "催办次数", "督办次数"], rows, ["cell", "int", "int"])
    roles = sorted(set(rem["by_role"]) | set(esc["by_role"]))
    rrows = [
        [ROLE_LABELS.get(r, r), rem["by_role"].get(r, 0) + esc["by_role"].get(r, 0)] for r in roles
    ]
    write_cell(ws, 4 + len(rows), 0, "按接收角色", b.title)
    b.table(ws, 5 + len(rows), ["角色", "次数"], rrows, ["cell", "int"])

    ws = wb.add_worksheet("承诺")
    c = report["commitments"]
    write_cell(ws, 0, 0, "解决问题承诺制", b.title)
    b.table(
        ws,
        2,
        ["项目", "件数"],
        [["本期作出承诺", c["made"]], ["按期兑现", c["kept"]], ["到期未兑现", c["broken"]]],
        ["cell", "int"],
    )
    for sheet in wb.worksheets():
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)
    wb.close()
    return buf.getvalue()
