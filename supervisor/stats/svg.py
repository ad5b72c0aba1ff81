"""Server-rendered SVG charts for the html report: a line chart of the 12-month trend and a bar
chart of the unit ranking. Plain SVG text, no script, so it prints as it shows."""

from __future__ import annotations

from html import escape
from typing import Any

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e")
SERIES = (("sign_off_on_time", "签收及时率"), ("on_time_replies", "按时办结率"),
          ("satisfaction", "满意率"), ("resolution", "解决率"))  # fmt: skip


def trend_chart(trend: list[dict[str, Any]], width: int = 680, height: int = 260) -> str:
    left, right, top, bottom = 44, 120, 16, 36
    w, h = width - left - right, height - top - bottom
    n = max(len(trend), 1)
    step = w / max(n - 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="近12个月主要指标趋势">']  # fmt: skip
    for pct in (0, 25, 50, 75, 100):
        y = top + h - h * pct / 100
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{pct}%</text>'
        )
    for i, row in enumerate(trend):
        x = left + i * step
        parts.append(
            f'<text x="{x:.1f}" y="{height - 14}" font-size="10" text-anchor="middle">{escape(row["month"][2:])}</text>'
        )
    for (key, _name), color in zip(SERIES, COLORS, strict=True):
        points = [
            (left + i * step, top + h - h * row[key]["rate"])
            for i, row in enumerate(trend)
            if row[key]["rate"] is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
    for j, ((_, name), color) in enumerate(zip(SERIES, COLORS, strict=True)):
        y = top + 14 + j * 20
        parts.append(
            f'<rect x="{left + w + 14}" y="{y - 9}" width="12" height="12" fill="{color}"/>'
        )
        parts.append(f'<text x="{left + w + 32}" y="{y + 1}" font-size="12">{name}</text>')
    parts.append("</svg>")
    return "".join(parts)


def ranking_chart(units: list[dict[str, Any]], width: int = 680) -> str:
    scored = [u for u in units if u["score"] is not None]
    bar, gap, left, top = 18, 8, 150, 8
    height = top * 2 + max(len(scored), 1) * (bar + gap)
    w = width - left - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="单位综合得分排名">']  # fmt: skip
    for i, u in enumerate(scored):
        y = top + i * (bar + gap)
        length = w * u["score"]
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" font-size="12" text-anchor="end">{escape(u["unit"])}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" fill="#1f77b4"/>'
        )
        parts.append(
            f'<text x="{left + length + 4:.1f}" y="{y + 13}" font-size="12">{u["score"] * 100:.1f}</text>'
        )
    if not scored:
        parts.append(f'<text x="{left}" y="{top + 14}" font-size="12">本期无可评分单位</text>')
    parts.append("</svg>")
    return "".join(parts)
