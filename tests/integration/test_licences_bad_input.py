"""Bad lists for `schools` and `licence PRODUCT`: an empty sheet and a list of 50 000 rows are refused by the
shared reader (in its child process, before the unit of work) with a clear answer, quickly, and change nothing.
SQLite and PostgreSQL."""
from __future__ import annotations

import io
import re
import time
import zipfile

import pytest
from openpyxl import Workbook

from handlers.licences.sheets import DIRECTORY_MAX_ROWS, LIST_MAX_ROWS
from handlers.messages import Attachment
from storage.models import Licence, LicenceBatch, School
from tests.helpers import rows
from tests.integration.test_licences import ADMIN, CARRIER, XLSX, licence_desk, load_directory, message

ROWS = 50_000


def sheet(header: tuple | None, lines=()) -> bytes:
    """A small workbook as openpyxl writes it (with the sheet's dimension, as spreadsheet programs do)."""
    book = Workbook()
    if header:
        book.active.append(header)
    for line in lines:
        book.active.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def cell(column: str, row: int, value: str) -> str:
    return f'<c r="{column}{row}" t="inlineStr"><is><t>{value}</t></is></c>'


def big_sheet(header: tuple, make_row, count: int) -> bytes:
    """A workbook of `count` rows under the header, its sheet written directly (openpyxl takes seconds)."""
    columns = "ABCDEFGH"[:len(header)]
    lines = [header, *(make_row(n) for n in range(count))]
    data = "".join(f'<row r="{number}">' + "".join(cell(c, number, v) for c, v in zip(columns, line)) + "</row>"
                   for number, line in enumerate(lines, start=1))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(sheet(header)), "r") as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                xml = re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="A1:{columns[-1]}{count + 1}"',
                             content.decode())
                content = re.sub(r"<sheetData>.*</sheetData>", f"<sheetData>{data}</sheetData>", xml).encode()
            target.writestr(item.filename, content)
    return out.getvalue()


EMPTY = sheet(None)
HEADER_ONLY = sheet(("Schulnummer", "Schulname", "Ansprechpartner", "E-Mail"))
HUGE_LIST = big_sheet(("Schulnummer", "Schulname", "Ansprechpartner", "E-Mail"),
                      lambda n: (f"{n}", f"Schule {n}", f"Kontakt {n}", f"s{n}@nord.example"), ROWS)
HUGE_DIRECTORY_CSV = ("Schulnummer;Name;Schulform;Träger;E-Mail\n" + "".join(
    f"{n};Schule {n};Grundschule;Stadt Nord;s{n}@nord.example\n" for n in range(ROWS))).encode()
HUGE_DIRECTORY_XLSX = big_sheet(("Schulnummer", "Name", "Schulform", "Träger", "E-Mail"),
                                lambda n: (f"{n}", f"Schule {n}", "Grundschule", "Stadt Nord", f"s{n}@nord.example"),
                                ROWS)


def test_the_limits_sit_between_real_lists_and_50_000_rows():
    assert 1_000 < LIST_MAX_ROWS < ROWS and 41_000 < DIRECTORY_MAX_ROWS < ROWS


@pytest.mark.parametrize("data, said", [(EMPTY, "The file is empty."),
                                        (HEADER_ONLY, "has a header (Schulnummer, Schulname, Ansprechpartner, "
                                                      "E-Mail) but no rows")], ids=["empty", "header_only"])
async def test_an_empty_registration_list_is_refused_and_nothing_kept(store, config, clock, data, said):
    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    [answer] = await desk.handle(message(CARRIER, "/licence Mathe", clock, Attachment("liste.xlsx", XLSX, data)))
    assert answer.template == "groups_file_refused" and said in answer.text, answer.text
    assert await rows(store, LicenceBatch, LicenceBatch.kind == "licence") == []
    [nothing] = await desk.handle(message(CARRIER, "/licence Mathe confirm", clock))
    assert nothing.template == "licences_nothing" and await rows(store, Licence) == []


async def test_a_registration_list_of_50_000_rows_is_refused_quickly_naming_the_limit(store, config, clock):
    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    started = time.monotonic()
    [answer] = await desk.handle(message(CARRIER, "/licence Mathe", clock,
                                         Attachment("liste.xlsx", XLSX, HUGE_LIST)))
    took = time.monotonic() - started
    assert answer.template == "groups_file_refused"
    assert f"more than {LIST_MAX_ROWS:,} rows" in answer.text, answer.text
    assert took < 5, took  # refused on the sheet's declared size, not after reading 50 000 rows
    assert await rows(store, LicenceBatch, LicenceBatch.kind == "licence") == []
    assert await rows(store, Licence) == []


@pytest.mark.parametrize("name, kind, data", [("schulen.xlsx", XLSX, EMPTY), ("schulen.csv", "text/csv", b"\n\n")],
                         ids=["xlsx", "csv"])
async def test_an_empty_directory_is_refused_and_the_directory_stays(store, config, clock, name, kind, data):
    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    before = {(s.number, s.name, s.email) for s in await rows(store, School)}
    [answer] = await desk.handle(message(ADMIN, "/schools", clock, Attachment(name, kind, data)))
    assert answer.template == "groups_file_refused" and "The file is empty." in answer.text, answer.text
    [nothing] = await desk.handle(message(ADMIN, "/schools confirm", clock))
    assert nothing.template == "licences_nothing"
    assert {(s.number, s.name, s.email) for s in await rows(store, School)} == before


@pytest.mark.parametrize("name, kind, data", [("schulen.xlsx", XLSX, HUGE_DIRECTORY_XLSX),
                                              ("schulen.csv", "text/csv", HUGE_DIRECTORY_CSV)], ids=["xlsx", "csv"])
async def test_a_directory_of_50_000_rows_is_refused_quickly_and_the_directory_stays(store, config, clock, name,
                                                                                      kind, data):
    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    started = time.monotonic()
    [answer] = await desk.handle(message(ADMIN, "/schools", clock, Attachment(name, kind, data)))
    took = time.monotonic() - started
    assert answer.template == "groups_file_refused"
    assert f"more than {DIRECTORY_MAX_ROWS:,} rows" in answer.text, answer.text
    assert took < 5, took
    [nothing] = await desk.handle(message(ADMIN, "/schools confirm", clock))
    assert nothing.template == "licences_nothing" and len(await rows(store, School)) == 6
