"""Invoice arithmetic without I/O: lines, totals per VAT rate, rounding, numbers, the GiroCode payload and
what a lawful invoice needs (§14 UStG, §33 UStDV). Money is integer cents; quantities are Decimals."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
KINDS = (INVOICE, CREDIT_NOTE)
TYPE_CODES = {INVOICE: "380", CREDIT_NOTE: "381"}  # UNTDID 1001: commercial invoice, credit note
CURRENCY = "EUR"
# §33 UStDV: an invoice up to 250 € gross (Kleinbetragsrechnung) need not name the buyer.
SMALL_INVOICE_CENTS = 250_00
# What the setup file must give before any invoice is written ([business] keys).
SELLER_KEYS = ("name", "address", "tax_id", "vat_percent", "iban", "bic")
MAX_TEXT = 500  # one line's description
EPC_MAX_CENTS = 999_999_999_99  # EPC069-12: the largest amount a GiroCode carries


@dataclass(frozen=True)
class Line:
    """One position: what was delivered, how many, the price of one in cents, and when (the service period).

    For a credit note the line says what is credited back, with a positive quantity and price: the
    credit note's totals come out negative.
    """

    description: str
    quantity: Decimal | int
    unit_cents: int
    period_start: date | None = None
    period_end: date | None = None


@dataclass(frozen=True)
class Totals:
    """Net per rate, the VAT on it and the gross amount, in cents, signed (a credit note's are negative)."""

    amounts: tuple[int, ...]  # one per line: quantity × unit price, rounded half up to the cent
    net_cents: int
    vat_percent: Decimal
    vat_cents: int
    gross_cents: int


class InvoiceDataMissing(Exception):
    """An invoice cannot be written because data the law asks for is missing; `missing` names the keys
    (setup file keys such as "tax_id", or "buyer_name"/"buyer_address"). No number was used."""

    def __init__(self, missing: list[str]):
        super().__init__("invoice data missing: " + ", ".join(missing))
        self.missing = list(missing)


def cents(value: Decimal) -> int:
    """Round to whole cents, half up (kaufmännisch), as the invoice states."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_cents(line: Line) -> int:
    return cents(Decimal(line.quantity) * line.unit_cents)


def totals(lines: list[Line], vat_percent: Decimal, kind: str = INVOICE) -> Totals:
    """Line amounts are rounded each; the VAT is computed once, on the net sum, and rounded half up."""
    sign = -1 if kind == CREDIT_NOTE else 1
    amounts = tuple(sign * line_cents(line) for line in lines)
    net = sum(amounts)
    vat = sign * cents(abs(net) * vat_percent / 100)
    return Totals(amounts, net, vat_percent, vat, net + vat)


def line_problem(line: Line) -> str | None:
    """What makes a line unusable, or None: a description, a positive quantity, a price of at least 0."""
    if not line.description.strip() or len(line.description) > MAX_TEXT:
        return "description"
    if Decimal(line.quantity) <= 0 or line.unit_cents < 0:
        return "amount"
    if line.period_start and line.period_end and line.period_end < line.period_start:
        return "period"
    return None


def service_period(lines: list[Line]) -> tuple[date | None, date | None]:
    """The whole invoice's service period: from the earliest start to the latest end of its lines."""
    starts = [d for line in lines for d in (line.period_start, line.period_end) if d]
    ends = [d for line in lines for d in (line.period_end, line.period_start) if d]
    return (min(starts), max(ends)) if starts else (None, None)


def invoice_number(year: int, sequence: int) -> str:
    """R-2026-000042: the year and its sequence; numbers restart every year."""
    return f"R-{year}-{sequence:06d}"


def missing_fields(seller: dict[str, object], buyer_name: str, buyer_address: str, gross_cents: int) -> list[str]:
    """Every key an invoice lacks: the seller's always, the buyer's above a Kleinbetragsrechnung."""
    missing = [key for key in SELLER_KEYS if seller.get(key) in (None, "")]
    if abs(gross_cents) > SMALL_INVOICE_CENTS:
        missing += [key for key, value in (("buyer_name", buyer_name), ("buyer_address", buyer_address))
                    if not value.strip()]
    return missing


def decimal_text(value_cents: int) -> str:
    """12345 → "123.45", -5 → "-0.05"."""
    sign = "-" if value_cents < 0 else ""
    whole, part = divmod(abs(value_cents), 100)
    return f"{sign}{whole}.{part:02d}"


def girocode_payload(name: str, iban: str, bic: str, amount_cents: int, remittance: str) -> str:
    """The EPC069-12 "SEPA credit transfer" QR payload (version 002, UTF-8): the whole amount, the payee's
    IBAN, BIC and name, and the invoice number as unstructured remittance. Fields are cut to their limits."""
    if not 1 <= amount_cents <= EPC_MAX_CENTS:
        raise ValueError("a GiroCode carries 0.01 to 999999999.99 EUR")
    fields = ["BCD", "002", "1", "SCT", bic.strip().upper(), one_line(name)[:70], "".join(iban.split()).upper(),
              f"EUR{decimal_text(amount_cents)}", "", "", one_line(remittance)[:140]]
    return "\n".join(fields)


def one_line(text: str) -> str:
    return " ".join(text.split())
