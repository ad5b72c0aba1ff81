"""Cells that cannot carry a formula, for every spreadsheet and CSV the service writes.

Names in the exports come from outside (a unit or category posted through the API, an imported
sheet): `=HYPERLINK("http://evil.example","点我")` written as a formula becomes a live link in
Excel or LibreOffice, `=1+1` a computation, and in a CSV any cell starting with `=`, `+`, `-`,
`@`, a tab or a carriage return is read as a formula (OWASP, CSV injection). So:

- xlsx: text is always written as a string cell (`write_string`), never through xlsxwriter's
  `write()`, which turns a leading `=` into a formula and a URL into a link; numbers stay numbers.
- csv: a text cell starting with one of those characters gets a leading `'` (OWASP's rule), unless
  it is a plain number (`-3`, `+1.5`, `-2.0%`): a number cannot be a formula and stays readable.
"""

from __future__ import annotations

import re
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?%?")


def csv_cell(value: Any) -> Any:
    """`value` as a CSV cell a spreadsheet reads as data: text that could start a formula is
    prefixed with `'`; numbers and other text are unchanged."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(values: list[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


def write_cell(ws: Any, row: int, col: int, value: Any, fmt: Any = None) -> None:
    """One xlsxwriter cell: numbers as numbers, booleans as booleans, None as a blank, anything
    else as a string cell (never a formula, never a link)."""
    if value is None:
        ws.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        ws.write_boolean(row, col, value, fmt)
    elif isinstance(value, int | float):
        ws.write_number(row, col, value, fmt)
    else:
        ws.write_string(row, col, str(value), fmt)


def write_cells(ws: Any, row: int, col: int, values: list[Any], fmt: Any = None) -> None:
    for j, value in enumerate(values):
        write_cell(ws, row, col + j, value, fmt)


# Belt and braces for any write() that slips in: no formulas, no links, no numbers from text.
WORKBOOK_OPTIONS = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}
