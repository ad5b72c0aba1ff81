"""The monthly report as one HTML page (the desk's 统计 page and `report monthly --format html`):
the same figures as the JSON, SVG charts rendered on the server, a print stylesheet for A4."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from supervisor.stats.render import (
    DASH,
    RATE_LABELS,
    ROLE_LABELS,
    UNIT_COLUMNS,
    label,
    overview,
    pct,
    rate_text,
    unit_cells,
)  # fmt: skip
from supervisor.stats.svg import ranking_chart, trend_chart

_env = Environment(
    loader=PackageLoader("supervisor.stats", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def context(report: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What the template shows; the desk's page passes `months` (kept files) and `nav` too."""
    return {
        "r": report,
        "overview": overview(report),
        "unit_heads": [h for _, h in UNIT_COLUMNS],
        "unit_rows": [unit_cells(u) for u in report["units"]],
        "trend_svg": Markup(trend_chart(report.get("trend", []))),
        "ranking_svg": Markup(ranking_chart(report["units"])),
        "rate_labels": RATE_LABELS,
        "role_labels": ROLE_LABELS,
        "label": label,
        "pct": pct,
        "rate_text": rate_text,
        "dash": DASH,
        **extra,
    }


def render_html(report: dict[str, Any], **extra: Any) -> str:
    return _env.get_template("report.html").render(**context(report, **extra))
