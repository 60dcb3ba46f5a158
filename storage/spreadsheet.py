"""Reading a spreadsheet (CSV in UTF-8 or GB18030/GBK, or XLSX) into numbered rows of cell texts."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

CSV_ENCODINGS = ("utf-8-sig", "gb18030")  # gb18030 is a superset of GBK and GB2312


def _cell_text(value: Any) -> str:
    """Spreadsheet cells arrive typed; turn them back into what the user typed."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class UnknownEncoding(Exception):
    pass


def _decode(data: bytes) -> str:
    for encoding in CSV_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnknownEncoding


def _read_csv(path: Path) -> list[tuple[int, list[str]]]:
    text = _decode(path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    line = 1
    for record in reader:
        rows.append((line, [cell.strip() for cell in record]))
        line = reader.line_num + 1  # a quoted cell may span lines: the next row starts after it
    return rows


def _read_xlsx(path: Path) -> list[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        return [(i, [_cell_text(v) for v in values]) for i, values in enumerate(sheet.iter_rows(values_only=True), 1)]
    finally:
        workbook.close()


def read_table(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) for every row of a CSV or XLSX file, header included. Blocking."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    raise ValueError(suffix)
