"""Reading member lists: encodings, delimiters, headers, Excel cells, bad files, row checks, safe CSV out."""
from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime

import pytest
from openpyxl import Workbook

from handlers.members.imports import (
    MAX_ROWS,
    FileRefused,
    check_zip,
    decode,
    e164,
    map_headers,
    parse_import,
    pick_delimiter,
    read_table,
)
from handlers.rules.profile import csv_bytes, safe_cell  # the one CSV writer every export uses

ROWS = "Name;E-Mail;Telefon\nJürgen Müller;juergen@example.de;030 1234567\nKim Weiß;kim@example.de;\n"


def refusal(data: bytes, name: str = "list.csv") -> FileRefused:
    with pytest.raises(FileRefused) as caught:
        parse_import(name, "", data)
    return caught.value


def xlsx(rows: list[list]) -> bytes:
    """An .xlsx file made by openpyxl, as Excel would send it."""
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ---- encodings ----------------------------------------------------------------------------------

def test_utf8_without_bom_keeps_umlauts():
    checked = parse_import("list.csv", "text/csv", ROWS.encode("utf-8"))
    assert [r.name for r in checked.valid] == ["Jürgen Müller", "Kim Weiß"]


def test_utf8_with_bom_does_not_spoil_the_first_header():
    checked = parse_import("list.csv", "text/csv", b"\xef\xbb\xbf" + ROWS.encode("utf-8"))
    assert [r.email for r in checked.valid] == ["juergen@example.de", "kim@example.de"]
    assert checked.ignored == []


def test_cp1252_from_german_excel_is_read_with_its_umlauts():
    data = ROWS.encode("cp1252")
    assert decode(data) == (ROWS, "cp1252")
    assert [r.name for r in parse_import("list.csv", "", data).valid] == ["Jürgen Müller", "Kim Weiß"]


def test_a_file_mixing_utf8_and_cp1252_is_refused_with_the_line():
    data = "Name;E-Mail\nJürgen;j@example.de\n".encode() + "Käthe;k@example.de\n".encode("cp1252")
    refused = refusal(data)
    assert refused.reason == "mixed_encoding" and refused.values["line"] == 3


def test_a_file_that_is_neither_utf8_nor_cp1252_is_refused():
    refused = refusal(b"Name;E-Mail\nA\x81B;a@example.de\n")
    assert refused.reason == "encoding" and refused.values["line"] == 2


def test_utf16_is_refused_with_advice():
    assert refusal(ROWS.encode("utf-16")).reason == "utf16"


def test_cp1252_punctuation_after_an_accent_is_not_taken_for_utf8():
    data = "Name,Email\nJosé’s Café,jose@example.com\n".encode("cp1252")  # é followed by ’: 0xE9 0x92
    assert parse_import("list.csv", "", data).valid[0].name == "José’s Café"


# ---- delimiters and headers ---------------------------------------------------------------------

def test_comma_and_semicolon_are_both_detected():
    assert pick_delimiter("Name;E-Mail") == ";"
    assert pick_delimiter("name,email,phone") == ","
    assert pick_delimiter('"Doe; John",email') == ","  # quoted text does not count
    checked = parse_import("l.csv", "", b'name,email\n"Meyer, Kim",kim@example.com\n')
    assert checked.valid[0].name == "Meyer, Kim" and checked.delimiter == ","


def test_a_tab_separated_file_gets_a_clear_message():
    refused = refusal(b"Name\tE-Mail\nKim\tkim@example.de\n")
    assert refused.reason == "tab_separated"


def test_a_single_column_is_refused_naming_it():
    refused = refusal(b"email\nkim@example.de\n")
    assert refused.reason == "one_column" and refused.values["header"] == "email"


@pytest.mark.parametrize("header", [
    "Name;E-Mail;Telefon", "name;email;phone", "NAME;Mail;Tel.", "Teilnehmer;E-Mail-Adresse;Handy",
    "Full Name;Email Address;Phone Number",
])
def test_german_and_english_headers_are_understood(header):
    columns, ignored = map_headers(header.split(";"))
    assert columns == {"name": 0, "email": 1, "phone": 2} and ignored == []


def test_first_and_last_name_columns_make_the_name():
    checked = parse_import("l.csv", "", "Vorname;Nachname;E-Mail;Abteilung\nKim;Weiß;k@example.de;IT\n".encode())
    row = checked.valid[0]
    assert (row.name, row.first_name, row.last_name) == ("Kim Weiß", "Kim", "Weiß")
    assert checked.ignored == ["Abteilung"]


def test_a_list_without_email_or_name_column_is_refused_naming_the_headers():
    no_email = refusal(b"Name;Telefon\nKim;030 1234567\n")
    assert no_email.reason == "no_email_column" and no_email.values["headers"] == "Name, Telefon"
    no_name = refusal(b"E-Mail;Telefon\nk@example.de;030 1234567\n")
    assert no_name.reason == "no_name_column" and no_name.values["headers"] == "E-Mail, Telefon"


# ---- rows ---------------------------------------------------------------------------------------

def test_every_row_is_checked_and_errors_name_row_value_and_reason():
    data = (b"Name;E-Mail;Telefon\n"
            b"Kim;kim@example.de;+49 30 1234567\n"  # row 2: fine
            b";nobody@example.de;\n"                  # row 3: no name
            b"Lu;not-an-address;\n"                   # row 4: bad email
            b"Ed;;\n"                                 # row 5: no email
            b"Bo;bo@example.de;12\n"                  # row 6: bad phone
            b"\n"                                     # empty lines are skipped, not errors
            b"Al;al@example.de;0301234567\n")  # row 8: same phone as row 2, written differently
    checked = parse_import("l.csv", "", data)
    assert [r.row for r in checked.valid] == [2]
    assert [(e.row, e.value, e.reason) for e in checked.errors] == [
        (3, "nobody@example.de", "name_missing"), (4, "not-an-address", "email_invalid"),
        (5, "Ed", "email_missing"), (6, "12", "phone_invalid"), (8, "+49301234567", "phone_duplicate")]
    assert checked.valid[0].phone == "+49301234567" and checked.invalid_rows == 5


def test_a_repeated_email_is_invalid_after_its_first_row_in_any_case():
    checked = parse_import("l.csv", "", b"name;email\nKim;kim@example.de\nKim B;KIM@example.DE\nLu;lu@example.de\n")
    assert [r.row for r in checked.valid] == [2, 4]
    [error] = checked.errors
    assert (error.row, error.reason, error.other_row) == (3, "email_duplicate", 2)


def test_names_longer_than_the_account_limits_are_invalid():
    data = f"Vorname;Nachname;E-Mail\n{'A' * 24};B;a@example.de\nC;{'D' * 31};c@example.de\n".encode()
    assert [e.reason for e in parse_import("l.csv", "", data).errors] == ["first_name_too_long", "last_name_too_long"]


def test_phone_numbers_are_stored_in_e164():
    assert e164("030 1234567") == "+49301234567"
    assert e164("+43 1 5880") == "+4315880"
    assert e164("call me") is None


def test_phone_numbers_follow_the_same_rules_and_regions_as_member_accounts():
    from handlers.rules import profile as rules

    assert e164("030 1234567", rules.region_for("Europe/Berlin")) == rules.parse_phone("030 1234567", "DE")
    assert rules.region_for("Europe/Luxembourg") == "LU"  # one map: the import's former extra country
    lux = b"Name;E-Mail;Telefon\nKim;k@example.lu;621 123 456\n"
    assert parse_import("l.csv", "", lux, rules.region_for("Europe/Luxembourg")).valid[0].phone == "+352621123456"
    assert e164("12") is None and e164("0000000") is None  # what accounts refuse is invalid here


# ---- bad files ----------------------------------------------------------------------------------

def test_an_empty_file_is_refused():
    assert refusal(b"").reason == "empty"
    assert refusal(b" \r\n\n").reason == "empty"


def test_a_file_with_old_mac_line_ends_is_read_line_by_line():
    checked = parse_import("l.csv", "", b"Name;E-Mail\rKim;kim@example.de\rLu;lu@example.de\r")
    assert [(r.row, r.email) for r in checked.valid] == [(2, "kim@example.de"), (3, "lu@example.de")]


@pytest.mark.parametrize("data", [
    b'"' + b"x" * 140_000 + b'";E-Mail\nKim;k@example.de\n',  # a header field over the csv module's limit
    b"Name;E-Mail\nKim;" + b'"' + b"x" * 140_000 + b'"\n',  # a row field over it
])
def test_a_broken_csv_is_refused_as_malformed_with_the_line(data):
    refused = refusal(data)
    assert refused.reason == "malformed" and refused.values["line"] >= 1 and refused.values["problem"]


def test_a_header_without_rows_is_refused_naming_the_header():
    refused = refusal(b"Name;E-Mail\n\n")
    assert refused.reason == "no_rows" and refused.values["headers"] == "Name, E-Mail"


def test_fifty_thousand_rows_are_read_and_one_more_is_refused():
    lines = "".join(f"P{i};p{i}@example.de\n" for i in range(MAX_ROWS))
    assert len(read_table("l.csv", "", ("Name;E-Mail\n" + lines).encode()).rows) == MAX_ROWS
    refused = refusal(("Name;E-Mail\n" + lines + "Extra;extra@example.de\n").encode())
    assert refused.reason == "too_many_rows" and refused.values["limit"] == 50_000


def test_a_file_over_the_size_cap_is_refused_before_reading():
    assert refusal(b"Name;E-Mail\n" + b"x" * (5 * 1024 * 1024)).reason == "too_big"


def test_an_old_binary_excel_file_is_refused():
    assert refusal(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "list.xls").reason == "old_excel"


# ---- Excel --------------------------------------------------------------------------------------

def test_xlsx_dates_and_numbers_stored_as_text_or_numbers_are_read():
    data = xlsx([["Vorname", "Nachname", "E-Mail", "Telefon", "Eintritt"],
                 ["Kim", "Weiß", "kim@example.de", "0301234567", datetime(2026, 3, 1)],  # phone as text
                 ["Lu", "Li", "lu@example.de", 301234568, datetime(2026, 3, 1, 8, 30)],  # phone as a number
                 [None, None, None, None, None],
                 ["Bo", "Ba", "bo@example.de", None, "2026-03-02"]])
    checked = parse_import("liste.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", data)
    assert [(r.row, r.name, r.phone) for r in checked.valid] == [
        (2, "Kim Weiß", "+49301234567"), (3, "Lu Li", "+49301234568"), (5, "Bo Ba", None)]
    assert checked.ignored == ["Eintritt"] and checked.errors == []


def test_cells_of_an_xlsx_are_text_whatever_excel_stored():
    table = read_table("l.xlsx", "", xlsx([["name", "email", "x"], ["Kim", "k@example.de", datetime(2026, 1, 2)],
                                          ["Lu", "l@example.de", 12.0], ["Bo", "b@example.de", 1.5]]))
    assert [cells[2] for _, cells in table.rows] == ["2026-01-02", "12", "1.5"]


def test_a_file_named_xlsx_that_is_no_zip_is_refused():
    assert refusal(b"Name;E-Mail\nKim;k@example.de\n", "liste.xlsx").reason == "not_zip"


def test_a_zip_bomb_is_refused_before_unpacking():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (80 * 1024 * 1024))  # 80 MB of zeros, ~80 kB packed
    data = out.getvalue()
    assert len(data) < 200_000
    assert refusal(data, "liste.xlsx").reason == "zip_bomb"
    with pytest.raises(FileRefused):
        check_zip(data)


def test_a_zip_that_is_no_workbook_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert refusal(out.getvalue(), "liste.xlsx").reason == "bad_xlsx"


def test_an_xlsx_without_a_name_extension_is_recognised_by_its_bytes():
    checked = parse_import("upload", "application/octet-stream", xlsx([["Name", "Email"], ["Kim", "k@example.de"]]))
    assert [r.email for r in checked.valid] == ["k@example.de"]


# ---- CSV out ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "safe"), [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"), ("+49 30", "+49 30"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("Kim", "Kim"), ("", ""), (None, ""), ("a=b", "a=b"),
])
def test_cells_that_spreadsheets_would_run_are_neutralised(value, safe):
    assert safe_cell(value) == safe


def test_exported_csv_neutralises_formulas_and_opens_as_utf8_in_excel():
    data = csv_bytes(["row", "value", "reason"], [(2, "=1+1", "Weiß"), (3, "@cmd", "-")])
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows == [["row", "value", "reason"], ["2", "'=1+1", "Weiß"], ["3", "'@cmd", "-"]]


def test_a_workbook_is_refused_by_the_sizes_it_declares_before_it_is_parsed():
    from handlers.members.imports import dimension_size

    assert dimension_size("A1:CV26000") == (26000, 100) and dimension_size("A1") == (1, 1)
    assert dimension_size("$A$1:$XFD$1048576") == (1048576, 16384)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx([["Name", "Email"], ["Kim", "k@example.de"]]))) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:B60000"', content)
            target.writestr(item.filename, content)
    assert refusal(out.getvalue(), "liste.xlsx").reason == "too_many_rows"
