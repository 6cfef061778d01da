"""The export files, pure: CSV with ';' and a BOM, ISO dates, chosen fields, formulas made harmless; XLSX alike.

pandas reads the files back as a spreadsheet user's program would, independently of the csv module and of
the way openpyxl wrote them."""
from __future__ import annotations

import io
from datetime import date, datetime, time, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from openpyxl import load_workbook

from handlers.context import Refusal
from handlers.exports.files import csv_file, file_name, make_file, sheet_title, xlsx_file
from handlers.exports.request import check_fields, check_preset_name, date_range, read_request

VIENNA = ZoneInfo("Europe/Vienna")
ROWS = [
    {"id": 1, "name": "Jörg Müßig", "email": "j@example.com", "start": datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc),
     "day": date(2026, 12, 1), "at": time(10, 0), "groups": ["VIP", "Yoga"], "paid": True, "price": Decimal("65.00")},
    {"id": 2, "name": "=HYPERLINK(\"http://evil\")", "email": "+1+cmd|' /C calc'!A0", "start": None,
     "day": None, "at": None, "groups": [], "paid": False, "price": None},
    {"id": 3, "name": "@SUM(A1)", "email": "-2+3", "groups": ["\tTab"], "paid": None},
    {"id": 4, "name": "\rCR", "email": "+49 30 1234567", "groups": ["Ok"]},
]
FIELDS = ("id", "name", "email", "start", "day", "at", "groups", "paid", "price")


def read_csv(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)


def test_csv_starts_with_a_bom_and_separates_with_semicolons():
    data = csv_file(FIELDS, ROWS, VIENNA)
    assert data.startswith(b"\xef\xbb\xbf")
    assert data[3:].decode("utf-8").splitlines()[0] == ";".join(FIELDS)


def test_csv_writes_iso_dates_and_local_times():
    frame = read_csv(csv_file(FIELDS, ROWS, VIENNA))
    first = frame.iloc[0]
    assert first["start"] == "2026-12-01 10:00:00"  # 09:00 UTC is 10:00 in Vienna, written without offset
    assert (first["day"], first["at"]) == ("2026-12-01", "10:00")
    assert first["name"] == "Jörg Müßig"  # UTF-8 survives
    assert (first["groups"], first["paid"], first["price"]) == ("VIP, Yoga", "true", "65.00")
    assert frame.iloc[1]["start"] == ""


def test_cells_that_could_run_as_formulas_get_a_leading_quote():
    frame = read_csv(csv_file(FIELDS, ROWS, VIENNA))
    assert list(frame["name"]) == ["Jörg Müßig", "'=HYPERLINK(\"http://evil\")", "'@SUM(A1)", "'\rCR"]
    assert list(frame["email"]) == ["j@example.com", "'+1+cmd|' /C calc'!A0", "'-2+3", "+49 30 1234567"]
    assert frame.iloc[2]["groups"] == "'\tTab"


def test_only_the_chosen_fields_are_written_in_the_chosen_order():
    frame = read_csv(csv_file(("email", "id"), ROWS, VIENNA))
    assert list(frame.columns) == ["email", "id"]
    assert frame.iloc[0].tolist() == ["j@example.com", "1"]


def test_an_empty_list_is_a_header_line():
    data = csv_file(("id", "name"), [], VIENNA)
    assert data == b"\xef\xbb\xbfid;name\r\n"


def test_xlsx_holds_typed_cells_and_safe_text():
    data = xlsx_file(FIELDS, ROWS, VIENNA, title="customers")
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet.title == "customers" and sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == list(FIELDS)
    assert sheet["D2"].value == datetime(2026, 12, 1, 10, 0) and sheet["D2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert sheet["A2"].value == 1 and sheet["H2"].value is True
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)  # no formulas at all
    frame = pd.read_excel(io.BytesIO(data), engine="openpyxl", dtype=str, keep_default_na=False)
    assert list(frame["name"]) == ["Jörg Müßig", "'=HYPERLINK(\"http://evil\")", "'@SUM(A1)", "'\rCR"]
    assert frame.iloc[0]["groups"] == "VIP, Yoga"


def test_xlsx_drops_control_characters_that_would_break_the_file():
    data = xlsx_file(("name",), [{"name": "bell\x07 and null\x00"}], VIENNA)
    assert load_workbook(io.BytesIO(data)).active["A2"].value == "bell and null"


def test_file_names_and_sheet_titles():
    assert file_name("members", "\"Klasse 5a\"", date(2026, 12, 1), "xlsx") == "members-Klasse-5a-2026-12-01.xlsx"
    assert file_name("customers", "", date(2026, 12, 1), "csv") == "customers-2026-12-01.csv"
    assert sheet_title("a/b:c*d?e[f]" * 5) == "a-b-c-d-e-f-a-b-c-d-e-f-a-b-c-d"  # 31 characters
    attachment = make_file("csv", "x.csv", ("id",), [{"id": 7}], VIENNA, "x")
    assert (attachment.name, attachment.mime, attachment.data) == ("x.csv", "text/csv", b"\xef\xbb\xbfid\r\n7\r\n")


# ---- what was asked ------------------------------------------------------------------------------

CUSTOMER_FIELDS = ("id", "name", "email", "phone")


@pytest.mark.parametrize("typed, args, kind, fields", [
    ("", "", None, None),
    ("name,email,phone", "", None, ("name", "email", "phone")),
    ("name, Email ,phone", "", None, ("name", "email", "phone")),
    ("xlsx name,email", "", "xlsx", ("name", "email")),
    ("Müller csv email", "Müller", "csv", ("email",)),
    ("Müller", "Müller", None, None),
    ("2026-12-01 2026-12-31 xlsx", "2026-12-01 2026-12-31", "xlsx", None),
    ("\"Klasse 5a\" name", "\"Klasse 5a\"", None, ("name",)),
    ("name,name,id", "", None, ("name", "id")),
    ("excel", "", "xlsx", None),
])
def test_a_request_splits_into_arguments_kind_and_fields(typed, args, kind, fields):
    request = read_request(typed, CUSTOMER_FIELDS)
    assert (request.args, request.kind, request.fields) == (args, kind, fields)


def test_a_preset_always_names_fields_last_but_for_a_file_kind():
    assert read_request("Meier", CUSTOMER_FIELDS, strict=True).fields == ("meier",)  # then refused as no field
    assert read_request("Müller", CUSTOMER_FIELDS, strict=True).args == "Müller"  # no field looks like that
    assert read_request("Müller xlsx", CUSTOMER_FIELDS, strict=True) == read_request("Müller xlsx", CUSTOMER_FIELDS)


def test_an_unknown_field_is_named_with_the_allowed_ones():
    request = read_request("name,emial", CUSTOMER_FIELDS)
    with pytest.raises(Refusal) as refused:
        check_fields("customers", request.fields, CUSTOMER_FIELDS)
    assert refused.value.template == "export_unknown_field"
    assert refused.value.values["unknown"] == ["emial"] and refused.value.values["allowed"] == list(CUSTOMER_FIELDS)


def test_a_kind_we_do_not_write_is_refused():
    with pytest.raises(Refusal) as refused:
        read_request("pdf", CUSTOMER_FIELDS)
    assert refused.value.template == "export_bad_kind"


def test_date_ranges():
    assert date_range(["2026-12-01", "2026-12-31", "x"]) == (date(2026, 12, 1), date(2026, 12, 31), ["x"])
    assert date_range(["x"]) == (None, None, ["x"])
    for words, problem in ((["2026-02-30"], "date"), (["2026-12-31", "2026-12-01"], "order"), (["2026-1-5"], "date")):
        with pytest.raises(Refusal) as refused:
            date_range(words)
        assert refused.value.values["problem"] == problem


def test_preset_names():
    assert check_preset_name("Monat-1", {"customers"}) == "Monat-1"
    for name, reason in (("Customers", "reserved"), ("two words", "shape"), ("x" * 41, "shape"), ("-a", "shape")):
        with pytest.raises(Refusal) as refused:
            check_preset_name(name, {"customers"})
        assert refused.value.values["reason"] == reason
