"""Readers of the platform's exports: rows of cells, numbered as the spreadsheet numbers them.

.xlsx and .xls through python-calamine (rows are iterated, not copied into lists of lists);
.csv through the csv module (UTF-8 with or without BOM, else GB18030, the usual Excel-in-China
encoding). Cells come as calamine gives them: str, int, float, bool, date, datetime, or "".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from supervisor.errors import HotlineError

Row = tuple[int, list[Any]]  # (1-based row number, cells)
SUFFIXES = (".xlsx", ".xls", ".xlsm", ".csv")


class ReadError(HotlineError):
    """The file cannot be read at all (not a spreadsheet, no such sheet)."""


def read_rows(path: Path | str, sheet: str | int = 0, data: bytes | None = None) -> Iterator[Row]:
    """The rows of the file at `path` (or of `data`, named by `path`, for uploads)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(data if data is not None else Path(path).read_bytes())
    elif suffix in (".xlsx", ".xls", ".xlsm"):
        yield from _calamine_rows(path, sheet, data)
    else:
        raise ReadError(f"{path}: not an export this reads (one of: {', '.join(SUFFIXES)})")


def _csv_rows(raw: bytes) -> Iterator[Row]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    for i, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
        yield i, list(row)


def _calamine_rows(path: Path | str, sheet: str | int, data: bytes | None) -> Iterator[Row]:
    from python_calamine import CalamineWorkbook

    try:
        wb = (
            CalamineWorkbook.from_filelike(io.BytesIO(data))
            if data is not None
            else CalamineWorkbook.from_path(str(path))
        )
    except Exception as exc:  # calamine raises its own error types for broken files
        raise ReadError(f"{path}: cannot be read as a spreadsheet ({exc})") from None
    try:
        ws = wb.get_sheet_by_index(sheet) if isinstance(sheet, int) else wb.get_sheet_by_name(sheet)
    except Exception:
        raise ReadError(
            f"{path}: has no sheet {sheet!r} (sheets: {', '.join(wb.sheet_names)})"
        ) from None
    # calamine's range starts at the first used cell: keep the spreadsheet's own row numbers
    start = ws.start[0] if ws.start else 0
    for i, row in enumerate(ws.iter_rows(), start + 1):
        yield i, list(row)
