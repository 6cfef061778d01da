"""Pure rules for bulk imports: read a CSV or XLSX member list and check every row.

Names, phone numbers and the CSV writer for the error file are member accounts' rules (rules.profile).

Nothing here touches the database or the network, so every rule is testable with bytes in and
values out. A file that cannot be read at all is a `FileRefused` (a Refusal the router renders);
a row that is wrong is a `RowError` for the per-row error file.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time

from handlers.refusal import Refusal
from handlers.rules.addresses import normalise_email
from handlers.rules.profile import DEFAULT_REGION, FIRST_NAME_MAX, LAST_NAME_MAX, UTF8_BOM, parse_phone

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_UNZIPPED_BYTES = 64 * 1024 * 1024  # an xlsx of 50 000 rows unpacks to ~15 MB; more is a zip bomb
MAX_ZIP_ENTRIES = 1_000
MAX_COLUMNS = 100
# What a workbook may declare before anything is parsed: a 146 KB file can claim millions of strings.
MAX_CELLS = 1_000_000  # 50 000 rows of 20 columns; the declared sheet size (rows × columns) above it is refused
MAX_SHARED_STRINGS = 500_000  # distinct texts of a member list: 50 000 rows × 10 text columns
MAX_ZIP_RATIO = 100  # an ordinary xlsx unpacks to 5-20 times its size
ZIP_RATIO_FLOOR = 4 * 1024 * 1024  # below this unpacked size no ratio is suspicious
HEAD_BYTES = 16 * 1024  # the start of an XML part, where <sst count=…> and <dimension ref=…> stand
MAX_NAME = 200  # person.name
DELIMITERS = (";", ",")
# A UTF-8 multi-byte sequence: in a file that is not valid UTF-8 it means two encodings were mixed.
UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")

# Header spellings (German and English), compared without case, spaces or punctuation.
HEADERS = {
    "name": ("name", "fullname", "vollername", "vollständigername", "teilnehmer", "teilnehmername",
             "participant", "member", "mitglied"),
    "email": ("email", "mail", "emailadresse", "emailaddress", "mailadresse", "eposta", "epost"),
    "first_name": ("firstname", "givenname", "forename", "vorname"),
    "last_name": ("lastname", "surname", "familyname", "nachname", "familienname", "zuname"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "telefon", "telefonnummer", "telnr", "telefonnr",
              "mobile", "mobil", "handy", "mobilnummer", "handynummer"),
}
FIELD_OF = {spelling: name for name, spellings in HEADERS.items() for spelling in spellings}


class FileRefused(Refusal):
    """A file that cannot be imported at all; `reason` picks the sentence in groups_file_refused."""

    def __init__(self, reason: str, **values):
        super().__init__("groups_file_refused", reason=reason, **values)
        self.reason = reason


@dataclass(frozen=True)
class Table:
    """A file's cells as text: the header row and the data rows with their row numbers (header = 1)."""

    headers: list[str]
    rows: list[tuple[int, list[str]]]
    kind: str  # csv | xlsx
    encoding: str = ""
    delimiter: str = ";"


@dataclass(frozen=True)
class ImportRow:
    row: int
    name: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None  # E.164

    def to_dict(self) -> dict:
        return dict(vars(self))  # dataclasses.asdict deep-copies field by field: 5x slower on 10 000 rows


@dataclass(frozen=True)
class RowError:
    row: int
    value: str
    reason: str  # a key of [groups_reason] in the word files
    other_row: int | None = None  # the earlier row a duplicate repeats


@dataclass
class Checked:
    """Every row sorted into valid rows and errors; `ignored` are headers nobody reads."""

    valid: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    delimiter: str = ";"

    @property
    def invalid_rows(self) -> int:
        return len({e.row for e in self.errors})


# ---- reading a file -----------------------------------------------------------------------------

def parse_import(name: str, mime: str, data: bytes, region: str = DEFAULT_REGION) -> Checked:
    """Read an uploaded member list and check every row."""
    table = read_table(name, mime, data)
    columns, ignored = map_headers(table.headers)
    checked = check_rows(table.rows, columns, region)
    checked.ignored, checked.delimiter = ignored, table.delimiter
    return checked


def read_table(name: str, mime: str, data: bytes, max_rows: int = MAX_ROWS) -> Table:
    """CSV or XLSX by the file's name, else by its first bytes; refuse empty and oversized files (more than
    `max_rows` rows under the header: a kind of list may allow fewer than a member list)."""
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused("too_big", size=len(data), limit=MAX_FILE_BYTES)
    if not data.strip():
        raise FileRefused("empty")
    kind = file_kind(name, mime, data)
    if kind == "xls":
        raise FileRefused("old_excel")
    table = read_xlsx(data, max_rows) if kind == "xlsx" else read_csv(data, max_rows)
    if not table.rows:  # an empty sheet has no header either
        raise FileRefused("no_rows", headers=", ".join(table.headers)) if table.headers else FileRefused("empty")
    return table


def file_kind(name: str, mime: str, data: bytes) -> str:
    """'xlsx', 'xls' or 'csv'."""
    lower = (name or "").lower()
    if lower.endswith((".xlsx", ".xlsm")) or "spreadsheetml" in (mime or ""):
        return "xlsx"
    if lower.endswith(".xls") or data.startswith(b"\xd0\xcf\x11\xe0"):  # the old binary Excel format
        return "xls"
    if lower.endswith((".csv", ".txt")):
        return "csv"
    return "xlsx" if data.startswith(b"PK\x03\x04") else "csv"


def decode(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM), else cp1252 as German Excel writes it; refuse anything else."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise FileRefused("utf16")
    bom = data.startswith(UTF8_BOM)
    try:
        return data.decode("utf-8-sig"), "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        if bom or UTF8_SEQUENCE.search(data):
            raise FileRefused("mixed_encoding", line=line) from None
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise FileRefused("encoding", line=data.count(b"\n", 0, exc.start) + 1) from None


def pick_delimiter(header_line: str) -> str:
    """';' or ',', whichever splits the header into more columns; refuse a header that neither splits."""
    counts = {d: len(next(csv.reader([header_line], delimiter=d), [])) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties go to ';', German Excel's choice
    if counts[best] < 2:
        raise FileRefused("tab_separated" if "\t" in header_line else "one_column", header=header_line.strip()[:80])
    return best


def read_csv(data: bytes, max_rows: int = MAX_ROWS) -> Table:
    """Decode, find the delimiter from the header line, and read rows as text."""
    text, encoding = decode(data)
    # splitlines: old Mac exports end lines with a lone CR, which line iteration does not split on.
    number, header_line = next(((n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()), (1, ""))
    reader = None
    try:  # the header line goes through the csv module too: an oversized field fails there already
        delimiter = pick_delimiter(header_line)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        headers, rows = split_header(reader, max_rows)
    except csv.Error as exc:
        line = reader.line_num if reader is not None else number
        raise FileRefused("malformed", line=line, problem=str(exc)[:80]) from None
    return Table(headers, rows, "csv", encoding, delimiter)


def split_header(records: Iterable[Iterable],
                 max_rows: int = MAX_ROWS) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The first non-empty record is the header; empty records are skipped; at most `max_rows` rows."""
    headers: list[str] | None = None
    width = MAX_COLUMNS
    rows: list[tuple[int, list[str]]] = []
    for number, record in enumerate(records, start=1):
        if number > 2 * max_rows:  # blank runs count too: a sheet can claim a row a million lines down
            raise FileRefused("too_many_rows", limit=max_rows)
        cells = [cell_text(c) for c in tuple(record)[:width]]  # cells beyond the header's last are nobody's
        if not any(cells):
            continue
        if headers is None:
            headers = trim(cells)
            width = len(headers)
        elif len(rows) == max_rows:
            raise FileRefused("too_many_rows", limit=max_rows)
        else:
            rows.append((number, cells))
    return headers or [], rows


def trim(cells: list[str]) -> list[str]:
    """Drop empty cells at the end of a row."""
    while cells and not cells[-1]:
        cells.pop()
    return cells


def cell_text(value) -> str:
    """A cell as text: Excel dates as ISO dates, whole numbers without ".0", text trimmed."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_xlsx(data: bytes, max_rows: int = MAX_ROWS) -> Table:
    """Read the first sheet with openpyxl, after checking the zip cannot unpack into a bomb."""
    check_zip(data, max_rows)
    from openpyxl import load_workbook  # here: only imports need it, and it is slow to import

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a broken file; all mean "unreadable"
        raise FileRefused("bad_xlsx") from None
    try:
        rows = sheet_rows(book.worksheets[0]) if book.worksheets else ()
        return Table(*split_header(rows, max_rows), "xlsx")
    except FileRefused:
        raise
    except Exception:  # noqa: BLE001 - a broken sheet inside a valid zip
        raise FileRefused("bad_xlsx") from None
    finally:
        book.close()


def sheet_rows(sheet) -> Iterator[tuple]:
    """Rows of values, never wider than MAX_COLUMNS: a sheet's stored size may claim 16 384 columns."""
    sheet.reset_dimensions()  # else openpyxl pads up to the claimed last row, which may be a million away
    return sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS)


def check_zip(data: bytes, max_rows: int = MAX_ROWS) -> None:
    """Refuse what is not a zip, what would unpack to too much, and a workbook whose declared sizes
    (shared strings, the first sheet's dimension) are beyond a member list's, before parsing any of it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            # zipfile stops at each entry's declared size (and fails the CRC past it), so the sum is a real cap.
            unpacked = sum(e.file_size for e in entries)
            if len(entries) > MAX_ZIP_ENTRIES or unpacked > MAX_UNZIPPED_BYTES:
                raise FileRefused("zip_bomb", limit=MAX_UNZIPPED_BYTES)
            if unpacked > ZIP_RATIO_FLOOR and unpacked > MAX_ZIP_RATIO * len(data):
                raise FileRefused("zip_ratio", ratio=unpacked // max(len(data), 1), limit=MAX_ZIP_RATIO)
            check_declared_sizes(archive, max_rows)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error):
        raise FileRefused("not_zip") from None


def check_declared_sizes(archive: zipfile.ZipFile, max_rows: int = MAX_ROWS) -> None:
    """The shared-string count and the first sheet's rows, columns and cells, as the workbook states them."""
    names = set(archive.namelist())
    if "xl/sharedStrings.xml" in names:
        tag = SST_TAG.search(xml_head(archive, "xl/sharedStrings.xml"))
        declared = max((int(n) for n in SST_COUNT.findall(tag.group(0))), default=0) if tag else 0
        if declared > MAX_SHARED_STRINGS:
            raise FileRefused("too_many_strings", count=declared, limit=MAX_SHARED_STRINGS)
    sheet = first_sheet(archive, names)
    found = DIMENSION.search(xml_head(archive, sheet)) if sheet else None
    if found is None:
        return
    rows, columns = dimension_size(found.group(1))
    if rows > max_rows + 1:
        raise FileRefused("too_many_rows", limit=max_rows)
    if columns > MAX_COLUMNS:
        raise FileRefused("too_many_columns", count=columns, limit=MAX_COLUMNS)
    if rows * columns > MAX_CELLS:
        raise FileRefused("too_many_cells", rows=rows, columns=columns, limit=MAX_CELLS)


SST_TAG = re.compile(r"<(?:\w+:)?sst\b[^>]*>")
SST_COUNT = re.compile(r"\b(?:count|uniqueCount)=[\"'](\d{1,12})[\"']")
DIMENSION = re.compile(r"<(?:\w+:)?dimension\s+ref=\"([A-Za-z0-9:$]{1,40})\"")
CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d{1,7})")
SHEET_TARGET = re.compile(r"<(?:\w+:)?sheet\b[^>]*?\br:id=\"([^\"]+)\"")


def xml_head(archive: zipfile.ZipFile, name: str) -> str:
    """The first HEAD_BYTES of an XML part, unpacked only that far."""
    with archive.open(name) as part:
        return part.read(HEAD_BYTES).decode("utf-8", "replace")


def first_sheet(archive: zipfile.ZipFile, names: set[str]) -> str | None:
    """The part name of the workbook's first sheet (what read_xlsx reads), by workbook.xml and its relations."""
    default = "worksheets/sheet1.xml"
    try:
        sheet = SHEET_TARGET.search(xml_head(archive, "xl/workbook.xml"))
        target = None
        if sheet is not None:
            rels = xml_head(archive, "xl/_rels/workbook.xml.rels")
            escaped = re.escape(sheet.group(1))
            target = re.search(rf"<(?:\w+:)?Relationship\b[^>]*?\bId=\"{escaped}\"[^>]*?\bTarget=\"([^\"]+)\""
                               rf"|<(?:\w+:)?Relationship\b[^>]*?\bTarget=\"([^\"]+)\"[^>]*?\bId=\"{escaped}\"",
                               rels)
        path = next(g for g in target.groups() if g) if target is not None else default
    except (KeyError, StopIteration):
        path = default
    path = path.lstrip("/") if path.startswith("/") else f"xl/{path}"
    return path if path in names else None


def dimension_size(ref: str) -> tuple[int, int]:
    """'A1:CV26000' → (26000, 100): the rows and columns a sheet says it spans."""
    found = [CELL_REF.fullmatch(part) for part in ref.split(":")]
    cells = [c for c in found if c is not None]
    if len(cells) < len(found):
        return 0, 0
    rows = [int(c.group(2)) for c in cells]
    columns = [column_number(c.group(1)) for c in cells]
    return max(rows) - min(rows) + 1, max(columns) - min(columns) + 1


def column_number(letters: str) -> int:
    """'A' → 1, 'CV' → 100, 'XFD' → 16384."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


# ---- headers and rows ---------------------------------------------------------------------------

def header_key(text: str) -> str:
    """'E-Mail-Adresse ' → 'emailadresse': case, spaces and punctuation do not matter."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def map_headers(headers: list[str]) -> tuple[dict[str, int], list[str]]:
    """Column index of each known field; refuse a list without email, or without any name."""
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, header in enumerate(headers):
        known = FIELD_OF.get(header_key(header))
        if known is None or known in columns:
            if header:
                ignored.append(header)
            continue
        columns[known] = index
    found = ", ".join(h for h in headers if h) or "-"
    if "email" not in columns:
        raise FileRefused("no_email_column", headers=found)
    if "name" not in columns and not {"first_name", "last_name"} & set(columns):
        raise FileRefused("no_name_column", headers=found)
    return columns, ignored


def check_rows(rows: list[tuple[int, list[str]]], columns: dict[str, int],
               region: str = DEFAULT_REGION) -> Checked:
    """Check every row; a repeated email or phone is an error after its first row."""
    checked = Checked()
    emails: dict[str, int] = {}
    phones: dict[str, int] = {}
    for number, cells in rows:
        values = {key: cells[index].strip() if index < len(cells) else "" for key, index in columns.items()}
        errors = row_errors(number, values, region)
        if errors:
            checked.errors += errors
            continue
        row = make_row(number, values, region)
        duplicates = repeats(row, emails, phones)
        checked.errors += duplicates
        if not duplicates:
            checked.valid.append(row)
    return checked


def row_errors(number: int, values: dict[str, str], region: str) -> list[RowError]:
    """What is wrong with one row on its own (repeats are checked across rows)."""
    errors = []
    first, last = values.get("first_name", ""), values.get("last_name", "")
    name = full_name(values)
    if not name:
        errors.append(RowError(number, values.get("email", ""), "name_missing"))
    for value, limit, reason in ((name, MAX_NAME, "name_too_long"), (first, FIRST_NAME_MAX, "first_name_too_long"),
                                 (last, LAST_NAME_MAX, "last_name_too_long")):
        if len(value) > limit:
            errors.append(RowError(number, value[:80], reason))
    email = values.get("email", "")
    if not email:
        errors.append(RowError(number, name[:80], "email_missing"))
    elif valid_email(email) is None:
        errors.append(RowError(number, email[:80], "email_invalid"))
    if values.get("phone") and e164(values["phone"], region) is None:
        errors.append(RowError(number, values["phone"][:40], "phone_invalid"))
    return errors


def repeats(row: ImportRow, emails: dict[str, int], phones: dict[str, int]) -> list[RowError]:
    """A second row with the same email (any case) or phone number is an error; the first one counts."""
    errors = []
    key = row.email.casefold()
    if key in emails:
        errors.append(RowError(row.row, row.email, "email_duplicate", emails[key]))
    if row.phone and row.phone in phones:
        errors.append(RowError(row.row, row.phone, "phone_duplicate", phones[row.phone]))
    if not errors:
        emails[key] = row.row
        if row.phone:
            phones[row.phone] = row.row
    return errors


def full_name(values: dict[str, str]) -> str:
    """The name column, else first and last name together; whitespace collapsed."""
    name = values.get("name") or f"{values.get('first_name', '')} {values.get('last_name', '')}"
    return " ".join(name.split())


def valid_email(text: str) -> str | None:
    """The address normalised by identity's rules, or None."""
    try:
        return normalise_email(text)
    except Refusal:
        return None


def e164(text: str, region: str = DEFAULT_REGION) -> str | None:
    """A phone number in E.164 (+4930123456), or None if it cannot be one (member accounts' rule)."""
    try:
        return parse_phone(text, region)
    except Refusal:  # a bad number is a row error here, not a refusal of the whole file
        return None


def make_row(number: int, values: dict[str, str], region: str) -> ImportRow:
    """One row that row_errors passed (its email is valid)."""
    phone = values.get("phone")
    email = valid_email(values["email"])
    if email is None:
        raise ValueError(f"row {number}: an invalid email reached make_row")
    return ImportRow(number, full_name(values), email, values.get("first_name") or None,
                     values.get("last_name") or None, e164(phone, region) if phone else None)


def row_from_dict(data: dict) -> ImportRow:
    return ImportRow(**data)
