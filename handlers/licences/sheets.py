"""Reading the school directory and the registration list, in the upload child process (members.uploads).

The member import's reader does the work (size, zip and row limits, CSV encodings); a registration list
must be a real Excel workbook, and one with formulas or merged cells is refused: a formula's cached
value may be stale or absent, and a merged cell leaves the rows under it empty. Each kind of list has its
own row limit, below a member list's."""
from __future__ import annotations

import io
import re
import zipfile

from handlers.members.imports import FileRefused, check_zip, file_kind, read_table

SHEET_PART = re.compile(r"^xl/worksheets/[^/]+\.xml$")
FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
MERGED = re.compile(rb"<(?:\w+:)?mergeCell\b")
CHUNK = 1024 * 1024
DIRECTORY_PARSER = "handlers.licences.sheets:directory_table"
LIST_PARSER = "handlers.licences.sheets:registration_table"
# One row per school: a carrier (a town, a district) has hundreds of schools, not thousands, and Germany has
# about 41 000 schools in all; a list beyond these is a wrong file, refused while its size is read.
LIST_MAX_ROWS = 5_000
DIRECTORY_MAX_ROWS = 45_000


def directory_table(name: str, mime: str, data: bytes) -> dict:
    """The directory's cells as text (CSV or XLSX)."""
    if file_kind(name, mime, data) == "xlsx":
        check_zip(data, DIRECTORY_MAX_ROWS)  # the declared sizes first: a huge sheet is refused unscanned
        refuse_formulas_and_merges(data)
    table = read_table(name, mime, data, DIRECTORY_MAX_ROWS)
    return {"headers": table.headers, "rows": table.rows}


def registration_table(name: str, mime: str, data: bytes) -> dict:
    """A registration list's cells as text; only an XLSX workbook is one."""
    if file_kind(name, mime, data) != "xlsx":
        raise FileRefused("licence_not_xlsx")
    check_zip(data, LIST_MAX_ROWS)
    refuse_formulas_and_merges(data)
    table = read_table(name, mime, data, LIST_MAX_ROWS)
    return {"headers": table.headers, "rows": table.rows}


def refuse_formulas_and_merges(data: bytes) -> None:
    """Scan every sheet part for a formula or a merged range (read_table checks the zip's sizes first)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for entry in archive.infolist():
                if SHEET_PART.match(entry.filename) and entry.file_size <= 64 * 1024 * 1024:
                    scan(archive, entry.filename)
    except (zipfile.BadZipFile, OSError, EOFError):
        return  # read_table answers for a broken file


def scan(archive: zipfile.ZipFile, part: str) -> None:
    tail = b""
    with archive.open(part) as stream:
        while chunk := stream.read(CHUNK):
            window = tail + chunk
            if FORMULA.search(window):
                raise FileRefused("formulas")
            if MERGED.search(window):
                raise FileRefused("merged_cells")
            tail = window[-32:]
