"""Invoices without a store: numbers, VAT rounding, the GiroCode payload (EPC069-12), payment values, and the
PDF and XML read back by independent readers (pypdf; lxml with the schema drafthorse ships; drafthorse's parser)."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import drafthorse
import pytest
from babel.numbers import format_currency
from drafthorse.models.document import Document
from lxml import etree
from pypdf import PdfReader

from handlers.invoices.document import document_of, stored_lines
from handlers.invoices.issuing import pdf_words
from handlers.invoices.money import (
    CREDIT_NOTE,
    INVOICE,
    InvoiceDataMissing,
    Line,
    girocode_payload,
    invoice_number,
    line_problem,
    missing_fields,
    service_period,
    totals,
)
from handlers.invoices.pdf import money_format, render_pdf
from handlers.invoices.xml import render_xml
from handlers.rules.payment import address_problem, bic_problem, iban_problem, postal_address, vat_percent
from handlers.setup import SetupError, parse_setup
from storage.models import Invoice

SELLER = {"name": "Akademie Nord GmbH", "address": "Hauptstraße 1, 10115 Berlin", "tax_id": "DE123456789",
          "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}
XSD = Path(drafthorse.__file__).parent / "schema" / "Factur-X_1.0.07_EN16931.xsd"


def stored(lines: list[Line], vat: str = "19", kind: str = INVOICE, corrects: str | None = None,
           number: str = "R-2026-000007", buyer: str = "Schulträger Musterkreis", lang: str = "de") -> Invoice:
    """An invoice row as issue_invoice stores it (not saved anywhere)."""
    figures = totals(lines, Decimal(vat), kind)
    start, end = service_period(lines)
    return Invoice(number=number, year=2026, sequence=7, kind=kind, corrects=corrects, issue_date=date(2026, 3, 2),
                   period_start=start, period_end=end, buyer_name=buyer,
                   buyer_address="Schulstraße 1\n12345 Musterstadt", seller=SELLER,
                   lines=stored_lines(lines, figures.amounts), currency="EUR", vat_percent=vat,
                   net_cents=figures.net_cents, vat_cents=figures.vat_cents, gross_cents=figures.gross_cents,
                   source="test", language=lang)


def files(row: Invoice) -> tuple[bytes, bytes]:
    doc = document_of(row)
    words = pdf_words(doc.lang, doc.kind)
    return render_pdf(doc, words), render_xml(doc, words["vat_zero"])


def value(element) -> Decimal:
    """A parsed amount: drafthorse keeps a plain decimal in _value, one with a currency in _amount."""
    return element._amount if hasattr(element, "_amount") else element._value


def pdf_text(data: bytes) -> str:
    """The text pypdf reads from every page, no-break spaces (money: "149,70 €") as plain spaces."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).replace("\xa0", " ")


# ---- arithmetic ---------------------------------------------------------------------------------

def test_numbers_carry_the_year_and_six_digits():
    assert invoice_number(2026, 1) == "R-2026-000001"
    assert invoice_number(2027, 42) == "R-2027-000042"


def test_vat_is_computed_once_on_the_net_total_and_rounded_half_up():
    # Five lines of 2 cents: per line 0.38 cents would round to 0 each; once on 10 cents it is 1.9 → 2 cents.
    figures = totals([Line("Pin", 1, 2)] * 5, Decimal(19))
    assert (figures.net_cents, figures.vat_cents, figures.gross_cents) == (10, 2, 12)
    assert totals([Line("Kurs", 1, 1050)], Decimal(19)).vat_cents == 200  # 199.5 cents → 200 (half up)
    assert totals([Line("Kurs", 1, 1050)], Decimal("7")).vat_cents == 74  # 73.5 → 74
    assert totals([Line("Kurs", 3, 4990)], Decimal(0)).gross_cents == 14970


def test_a_line_amount_is_quantity_times_price_rounded_to_the_cent():
    figures = totals([Line("Stunden", Decimal("1.5"), 333), Line("Kurs", 3, 4990)], Decimal(19))
    assert figures.amounts == (500, 14970)  # 499.5 cents → 500
    assert (figures.net_cents, figures.vat_cents, figures.gross_cents) == (15470, 2939, 18409)


def test_a_credit_notes_totals_are_negative():
    figures = totals([Line("Kurs", 2, 4990)], Decimal(19), CREDIT_NOTE)
    assert (figures.net_cents, figures.vat_cents, figures.gross_cents) == (-9980, -1896, -11876)
    assert totals([Line("Kurs", 2, 4990)], Decimal(19)).gross_cents == 11876  # the same, positive


def test_lines_need_a_text_a_positive_quantity_and_a_period_in_order():
    assert line_problem(Line("", 1, 100)) == "description"
    assert line_problem(Line("Kurs", 0, 100)) == "amount"
    assert line_problem(Line("Kurs", 1, -1)) == "amount"
    assert line_problem(Line("Kurs", 1, 100, date(2026, 2, 1), date(2026, 1, 1))) == "period"
    assert line_problem(Line("Kurs", 1, 0)) is None
    assert service_period([Line("a", 1, 1, date(2026, 3, 1), date(2026, 3, 31)),
                           Line("b", 1, 1, date(2026, 1, 1), date(2026, 1, 31)), Line("c", 1, 1)]) \
        == (date(2026, 1, 1), date(2026, 3, 31))


def test_missing_data_is_named_and_the_buyer_only_above_250_euros():
    empty = dict.fromkeys(SELLER)
    assert missing_fields({**SELLER, "vat_percent": "19"}, "", "", 250_00) == []
    assert missing_fields({**SELLER, "vat_percent": "19"}, "", "", 250_01) == ["buyer_name", "buyer_address"]
    assert missing_fields({**empty, "name": "A", "vat_percent": "0"}, "Kim", "Weg 1, 12345 Ort", 1) == [
        "address", "tax_id", "iban", "bic"]
    assert "tax_id" in str(InvoiceDataMissing(["tax_id", "iban"]))


# ---- GiroCode (EPC069-12) -----------------------------------------------------------------------

def test_the_girocode_payload_follows_epc069_12():
    payload = girocode_payload("Akademie Nord GmbH", "DE89 3704 0044 0532 0130 00", "cobadeffxxx", 178_14,
                               "R-2026-000007")
    assert payload.split("\n") == ["BCD", "002", "1", "SCT", "COBADEFFXXX", "Akademie Nord GmbH",
                                   "DE89370400440532013000", "EUR178.14", "", "", "R-2026-000007"]
    assert "\r" not in payload and not payload.endswith("\n")


def test_the_girocode_cuts_fields_to_their_limits_and_refuses_amounts_it_cannot_carry():
    payload = girocode_payload("N" * 90, SELLER["iban"], SELLER["bic"], 999_999_999_99, "x" * 200)
    fields = payload.split("\n")
    assert len(fields[5]) == 70 and len(fields[10]) == 140 and fields[7] == "EUR999999999.99"
    assert len(payload.encode("utf-8")) <= 331  # the payload's limit
    assert girocode_payload("A", SELLER["iban"], SELLER["bic"], 5, "R")[:-2].endswith("EUR0.05\n\n")
    for bad in (0, -100, 1_000_000_000_00):
        with pytest.raises(ValueError):
            girocode_payload("A", SELLER["iban"], SELLER["bic"], bad, "R")


# ---- payment values and the setup file ----------------------------------------------------------

def test_ibans_are_checked_by_their_check_digits_and_bics_by_their_shape():
    assert iban_problem("DE89 3704 0044 0532 0130 00") is None
    assert iban_problem("AT61 1904 3002 3457 3201") is None
    assert "check digits" in iban_problem("DE89370400440532013001")
    assert "not an IBAN" in iban_problem("12345")
    assert bic_problem("COBADEFFXXX") is None and bic_problem("COBADEFF") is None and bic_problem("COBA") is not None


def test_vat_rates_run_from_0_to_100():
    assert [str(vat_percent(v)) for v in (19, "7", 7.0, "19.5", 0, 100)] == ["19", "7", "7", "19.5", "0", "100"]
    for bad in (101, -1, "abc", True, "7.125", [19]):
        with pytest.raises(ValueError):
            vat_percent(bad)


def test_addresses_are_split_into_street_postcode_city_and_country():
    assert postal_address("Parkstraße 1, 4020 Linz, AT").country == "AT"
    address = postal_address("c/o Schulamt\nSchulstraße 1\n12345 Musterstadt")
    assert (address.lines, address.postcode, address.city, address.country) == (
        ("c/o Schulamt", "Schulstraße 1"), "12345", "Musterstadt", "DE")
    assert address_problem("Schulstraße 1") is not None and address_problem("12345 Ort") is not None


SETUP = '[business]\nname = "Akademie"\ntimezone = "Europe/Berlin"\nlanguage = "de"\n'


def test_the_setup_file_takes_the_invoice_data_and_names_bad_values_by_line_and_key():
    spec = parse_setup(SETUP + 'address = "Hauptstraße 1, 10115 Berlin"\ntax_id = "DE123456789"\nvat_percent = 19\n'
                               'iban = "de89 3704 0044 0532 0130 00"\nbic = "cobadeffxxx"\n', "s.toml")
    business = spec.business
    assert (business.address, business.tax_id, business.vat_percent, business.iban, business.bic) == (
        "Hauptstraße 1, 10115 Berlin", "DE123456789", "19", "DE89370400440532013000", "COBADEFFXXX")
    cases = [('iban = "DE89370400440532013001"', "s.toml:5: business iban", "check digits"),
             ("vat_percent = 120", "s.toml:5: business vat_percent: 120", "from 0 to 100"),
             ('address = "Hauptstraße 1"', "s.toml:5: business address", "postcode city"),
             ('bic = "X"', "s.toml:5: business bic", "not a BIC")]
    for line, start, words in cases:
        with pytest.raises(SetupError) as error:
            parse_setup(SETUP + line + "\n", "s.toml")
        assert str(error.value).startswith(start) and words in str(error.value), str(error.value)


# ---- the PDF ------------------------------------------------------------------------------------

def test_money_is_written_as_babel_writes_it():
    for lang in ("de", "en"):
        money = money_format(lang, "EUR")
        for cents in (0, 5, 99, 100, 123456, 100000000, -1, -178_14):
            assert money(cents) == format_currency(Decimal(cents) / 100, "EUR", locale=lang), (lang, cents)


def test_the_pdf_shows_number_dates_parties_totals_tax_id_and_bank_details():
    lines = [Line("Kursplatz Erste Hilfe", 3, 4990, date(2026, 1, 1), date(2026, 12, 31)),
             Line("Ein sehr langer Text, der in der Spalte umbrechen muss – mit Gedankenstrich und Umlauten äöü "
                  "und einem Wort, das zu lang ist: " + "X" * 80, 1, 1000)]
    pdf, _ = files(stored(lines))
    text = pdf_text(pdf)
    for part in ("Rechnung R-2026-000007", "02.03.2026", "01.01.2026 – 31.12.2026", "Akademie Nord GmbH",
                 "Hauptstraße 1, 10115 Berlin", "DE123456789", "Schulträger Musterkreis", "12345 Musterstadt",
                 "149,70 €", "159,70 €", "USt 19 %", "30,34 €", "190,04 €", "DE89370400440532013000", "COBADEFFXXX",
                 "Gedankenstrich", "GiroCode"):
        assert part in text, part
    assert PdfReader(io.BytesIO(pdf)).metadata.title == "Rechnung R-2026-000007"


def test_a_credit_note_pdf_names_the_invoice_it_corrects_and_asks_no_payment():
    pdf, _ = files(stored([Line("Kursplatz", 1, 4990)], kind=CREDIT_NOTE, corrects="R-2026-000003", lang="en"))
    text = pdf_text(pdf)
    assert "Credit note R-2026-000007" in text and "Corrects invoice R-2026-000003" in text
    assert "-€59.38" in text and "nothing is to be paid" in text and "GiroCode" not in text


def test_a_name_in_another_script_is_written_with_a_unicode_font():
    pdf, _ = files(stored([Line("Курс первой помощи", 1, 4990)], buyer="Школа № 5"))
    text = pdf_text(pdf)
    assert "Школа № 5" in text and "Курс первой помощи" in text


def test_a_thousand_lines_break_across_pages_with_every_line_on_one():
    pdf, _ = files(stored([Line(f"Lizenz Schule {n}", 1, 100 + n) for n in range(1000)]))
    text = pdf_text(pdf)
    assert len(PdfReader(io.BytesIO(pdf)).pages) > 10
    assert all(f"Lizenz Schule {n}\n" in text or f"Lizenz Schule {n} " in text for n in (0, 499, 999))
    assert "Seite 2 · R-2026-000007" in text


# ---- the XML ------------------------------------------------------------------------------------

def test_the_xml_is_valid_en16931_cii_and_carries_the_invoice():
    _, xml = files(stored([Line("Kursplatz", 3, 4990, date(2026, 1, 1), date(2026, 12, 31)),
                           Line("Stunden", Decimal("1.5"), 333)]))
    schema = etree.XMLSchema(etree.parse(str(XSD)))  # read here, independently of the renderer's copy
    schema.assertValid(etree.fromstring(xml))
    doc = Document.parse(xml)
    assert (doc.header.id._text, doc.header.type_code._text) == ("R-2026-000007", "380")
    totals_ = doc.trade.settlement.monetary_summation
    assert (value(totals_.line_total), value(totals_.tax_basis_total), value(totals_.grand_total)) == (
        Decimal("154.70"), Decimal("154.70"), Decimal("184.09"))
    assert doc.trade.agreement.seller.tax_registrations.children[0].id._text == "DE123456789"
    assert doc.trade.agreement.buyer.address.postcode._text == "12345"
    means = doc.trade.settlement.payment_means.children[0]
    assert (means.type_code._text, means.payee_account.iban._text) == ("58", "DE89370400440532013000")
    items = doc.trade.items.children
    assert [value(item.settlement.monetary_summation.total_amount) for item in items] == [
        Decimal("149.70"), Decimal("5.00")]


def test_the_buyers_reference_goes_into_pdf_and_xml():
    row = stored([Line("Lizenz", 1, 10_000)])
    row.buyer_reference = "04011000-1234512345-06"  # a Leitweg-ID
    pdf, xml = files(row)
    assert "Ihr Zeichen 04011000-1234512345-06" in pdf_text(pdf)
    assert Document.parse(xml).trade.agreement.buyer_reference._text == "04011000-1234512345-06"


def test_a_credit_note_xml_is_type_381_with_positive_amounts_and_refers_to_the_invoice():
    _, xml = files(stored([Line("Kursplatz", 1, 4990)], vat="0", kind=CREDIT_NOTE, corrects="R-2026-000003"))
    etree.XMLSchema(etree.parse(str(XSD))).assertValid(etree.fromstring(xml))
    doc = Document.parse(xml)
    assert doc.header.type_code._text == "381"
    assert doc.trade.settlement.invoice_referenced_document.issuer_assigned_id._text == "R-2026-000003"
    assert value(doc.trade.settlement.monetary_summation.grand_total) == Decimal("49.90")
    tax = doc.trade.settlement.trade_tax.children[0]
    assert (tax.category_code._text, tax.exemption_reason._text) == ("E", pdf_words("de", CREDIT_NOTE)["vat_zero"])
