"""One invoice as both renderers read it (PDF and XML), built from the stored row alone: a copy sent
again years later shows exactly what was issued. Pure."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date

from handlers.invoices.money import CREDIT_NOTE, CURRENCY, Line, decimal_text, girocode_payload
from handlers.rules.payment import PostalAddress, postal_address


@dataclass(frozen=True)
class Party:
    name: str
    address: PostalAddress
    tax_id: str = ""


@dataclass(frozen=True)
class DocLine:
    position: int
    description: str
    quantity: Decimal
    unit_cents: int  # signed like the amount: negative on a credit note
    amount_cents: int
    period_start: date | None
    period_end: date | None


@dataclass(frozen=True)
class InvoiceDoc:
    number: str
    kind: str
    corrects: str | None
    issue_date: date
    period_start: date | None
    period_end: date | None
    seller: Party
    buyer: Party
    iban: str
    bic: str
    currency: str
    vat_percent: Decimal
    net_cents: int
    vat_cents: int
    gross_cents: int
    lines: tuple[DocLine, ...]
    lang: str
    buyer_reference: str | None = None

    @property
    def credit(self) -> bool:
        return self.kind == CREDIT_NOTE

    def girocode(self) -> str | None:
        """The payment QR's payload; None when there is nothing to pay (a credit note, a zero total)."""
        if self.credit or self.gross_cents <= 0:
            return None
        return girocode_payload(self.seller.name, self.iban, self.bic, self.gross_cents, self.number)


def stored_lines(lines: list[Line], amounts: tuple[int, ...]) -> list[dict[str, Any]]:
    """The lines as the invoice row keeps them (JSON): signed cents, the quantity as decimal text."""
    return [{"description": line.description, "quantity": str(line.quantity),
             "unit_cents": line.unit_cents if amount >= 0 else -line.unit_cents, "amount_cents": amount,
             "period_start": line.period_start.isoformat() if line.period_start else None,
             "period_end": line.period_end.isoformat() if line.period_end else None}
            for line, amount in zip(lines, amounts)]


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def document_of(row: Any) -> InvoiceDoc:
    """The document of a stored invoice row (storage.models.Invoice)."""
    seller = row.seller
    lines = tuple(DocLine(i, line["description"], Decimal(line["quantity"]), line["unit_cents"],
                          line["amount_cents"], _day(line["period_start"]), _day(line["period_end"]))
                  for i, line in enumerate(row.lines, start=1))
    return InvoiceDoc(
        number=row.number, kind=row.kind, corrects=row.corrects, issue_date=row.issue_date,
        period_start=row.period_start, period_end=row.period_end,
        seller=Party(seller["name"], postal_address(seller["address"]), seller["tax_id"]),
        buyer=Party(row.buyer_name, postal_address(row.buyer_address)), iban=seller["iban"], bic=seller["bic"],
        currency=row.currency or CURRENCY, vat_percent=Decimal(row.vat_percent), net_cents=row.net_cents,
        vat_cents=row.vat_cents, gross_cents=row.gross_cents, lines=lines, lang=row.language,
        buyer_reference=row.buyer_reference)


def amount(value_cents: int) -> Decimal:
    return Decimal(decimal_text(value_cents))


@functools.cache
def money_format(lang: str, currency: str) -> Callable[[int], str]:
    """Cents as the locale writes money ("1.234,56 €", "€1,234.56"), from Babel's CLDR pattern, without
    Babel's per-call cost (a thousand lines format two thousand amounts)."""
    locale = Locale.parse(lang)
    pattern, symbols = locale.currency_formats["standard"], locale.number_symbols["latn"]
    symbol = locale.currency_symbols.get(currency, currency)

    def money(cents: int) -> str:
        whole, part = divmod(abs(cents), 100)
        digits = f"{whole:,}".replace(",", symbols["group"]) + symbols["decimal"] + f"{part:02d}"
        negative = int(cents < 0)
        return (pattern.prefix[negative] + digits + pattern.suffix[negative]).replace("¤", symbol)

    return money


def quantity_text(value: Decimal, lang: str) -> str:
    text = str(value.normalize()) if value != value.to_integral() else str(int(value))
    return text.replace(".", decimal_symbol(lang))


@functools.cache
def decimal_symbol(lang: str) -> str:
    return Locale.parse(lang).number_symbols["latn"]["decimal"]


@functools.lru_cache(maxsize=4096)
def day_text(value: date, lang: str) -> str:
    return format_date(value, "medium", locale=lang)
