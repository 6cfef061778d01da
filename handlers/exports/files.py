"""Lists as files, pure: CSV (';', UTF-8 with a BOM, ISO dates) or XLSX, every text cell safe from formulas.

The CSV rules are the ones every export of ours follows (handlers/rules/profile.py): German Excel opens
such a file by a double click, English Excel and LibreOffice through their import dialogue. Times come in
as aware datetimes and are written in the business's timezone, without an offset, as spreadsheets read them.
"""
from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from handlers.messages import Attachment
from handlers.rules.profile import csv_bytes, safe_cell

CSV, XLSX = "csv", "xlsx"
KINDS = (CSV, XLSX)
MIME = {CSV: "text/csv", XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
XLSX_FORMATS = {datetime: "yyyy-mm-dd hh:mm:ss", date: "yyyy-mm-dd", time: "hh:mm"}
MAX_XLSX_TEXT = 32_767  # characters Excel holds in one cell
MAX_SHEET_TITLE = 31
TRUE, FALSE = "true", "false"

Row = Mapping[str, Any]


def local(value: datetime, zone: ZoneInfo) -> datetime:
    """An aware time as the wall clock in `zone` shows it (naive); a naive one is taken as already local."""
    return value.astimezone(zone).replace(tzinfo=None) if value.tzinfo else value


def text_of(value: Any, zone: ZoneInfo) -> str:
    """A value as CSV text: ISO dates and times, lists joined with ', ', mappings as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, datetime):
        return local(value, zone).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    if isinstance(value, (list, tuple)):
        return ", ".join(text_of(item, zone) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def csv_cell(value: Any, zone: ZoneInfo) -> str | int:
    """A CSV cell: whole numbers stay numbers, anything else is text the csv writer neutralises."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return text_of(value, zone)


def csv_file(fields: Sequence[str], rows: Iterable[Row], zone: ZoneInfo) -> bytes:
    """The chosen fields of every row as CSV: ';' between cells, UTF-8 with a BOM, a header line of field names."""
    return csv_bytes(list(fields), ([csv_cell(row.get(f), zone) for f in fields] for row in rows))


def xlsx_value(value: Any, zone: ZoneInfo) -> Any:
    """A value as an XLSX cell holds it: numbers, dates and booleans as such, text made safe and printable."""
    if value is None or isinstance(value, (bool, int, float, Decimal, date, time)):
        return local(value, zone) if isinstance(value, datetime) else value
    text = ILLEGAL_CHARACTERS_RE.sub("", text_of(value, zone))  # control characters make a broken file
    return safe_cell(text)[:MAX_XLSX_TEXT]


def xlsx_cell(sheet: Any, value: Any, zone: ZoneInfo) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, xlsx_value(value, zone))
    for kind, number_format in XLSX_FORMATS.items():  # datetime first: a datetime is a date too
        if isinstance(value, kind):
            cell.number_format = number_format
            break
    if isinstance(cell.value, str):
        cell.data_type = "s"  # text, never a formula, whatever it starts with
    return cell


def xlsx_file(fields: Sequence[str], rows: Iterable[Row], zone: ZoneInfo, title: str = "export") -> bytes:
    """The chosen fields of every row as one worksheet: a bold, frozen header of field names, then the rows."""
    book = Workbook(write_only=True)
    book.properties.creator = "frontdesk"
    sheet = book.create_sheet(sheet_title(title))
    sheet.freeze_panes = "A2"
    for number, field in enumerate(fields, 1):
        sheet.column_dimensions[get_column_letter(number)].width = min(max(len(field) + 4, 12), 40)
    header = []
    for field in fields:
        cell = WriteOnlyCell(sheet, safe_cell(field))
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append([xlsx_cell(sheet, row.get(f), zone) for f in fields])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_title(title: str) -> str:
    """A worksheet title Excel accepts: at most 31 characters, none of []:*?/\\."""
    return re.sub(r"[\[\]:*?/\\]", "-", title)[:MAX_SHEET_TITLE].strip("'") or "export"


def file_bytes(kind: str, fields: Sequence[str], rows: Iterable[Row], zone: ZoneInfo, title: str) -> bytes:
    if kind == XLSX:
        return xlsx_file(fields, rows, zone, title)
    if kind == CSV:
        return csv_file(fields, rows, zone)
    raise ValueError(f"no such file kind: {kind!r}")


def file_name(list_name: str, args: str, day: date, kind: str) -> str:
    """'members-Klasse-5a-2026-12-01.csv': the list, what it was narrowed to, the day, the kind."""
    parts = [list_name, re.sub(r"[^\w-]+", "-", args).strip("-_")[:40], day.isoformat()]
    return "-".join(p for p in parts if p) + "." + kind


def make_file(kind: str, name: str, fields: Sequence[str], rows: Sequence[Row], zone: ZoneInfo,
              title: str) -> Attachment:
    """The attachment itself (slow for long lists: made in a thread, after the transaction)."""
    return Attachment(name, MIME[kind], file_bytes(kind, fields, rows, zone, title))
