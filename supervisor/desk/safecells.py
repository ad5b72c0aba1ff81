"""Spreadsheet cells that cannot carry a formula (OWASP "CSV injection"): a text starting with
= + - @ tab or carriage return is written as text. For CSV, a leading apostrophe; for xlsx,
xlsxwriter's write_string (a string cell, never a formula) plus the same apostrophe-free text.
(i18b may add an equivalent helper for the statistics exports; this one serves the 审计 export.)"""

from __future__ import annotations

from typing import Any

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    return value


def xlsx_write(sheet: Any, row: int, col: int, value: Any) -> None:
    """Strings as string cells (xlsxwriter's `write` would turn "=..." into a formula)."""
    if isinstance(value, str):
        sheet.write_string(row, col, value)
    elif value is None:
        sheet.write_blank(row, col, None)
    else:
        sheet.write(row, col, value)
