"""Payment values an invoice shows: IBAN (ISO 13616 checksum), BIC (ISO 9362), the VAT rate and postal
addresses split into the parts an e-invoice names. Pure: the setup file and the invoices share them."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
VAT = re.compile(r"^\d{1,3}(\.\d{1,2})?$")
POSTCODE_CITY = re.compile(r"^(?:([A-Z]{2})[- ])?(\d{4,5})\s+(.+)$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
DEFAULT_COUNTRY = "DE"


def compact_iban(text: str) -> str:
    """The IBAN without spaces, in capitals: "de89 3704 …" → "DE893704…"."""
    return "".join(text.split()).upper()


def iban_problem(text: str) -> str | None:
    """None for a valid IBAN, else what is wrong (its shape or its ISO 7064 mod-97 check digits)."""
    iban = compact_iban(text)
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return "is not an IBAN (two letters, two check digits, then 11 to 30 letters or digits)"
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        return "has wrong check digits (a typo?)"
    return None


def bic_problem(text: str) -> str | None:
    return None if BIC.match(text.strip().upper()) else "is not a BIC (8 or 11 letters and digits)"


def vat_percent(value: object) -> Decimal:
    """A VAT rate from 0 to 100 with at most two decimals, given as a number or as text; ValueError else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number from 0 to 100")
    text = (repr(value) if isinstance(value, float) else str(value)).strip()
    try:
        rate = Decimal(text)
    except InvalidOperation:
        raise ValueError("must be a number from 0 to 100") from None
    if not VAT.match(text.removesuffix(".0")) or not 0 <= rate <= 100:
        raise ValueError("must be a number from 0 to 100 with at most two decimals")
    return rate.normalize() if rate != rate.to_integral() else rate.quantize(Decimal(1))


@dataclass(frozen=True)
class PostalAddress:
    """An address as an e-invoice names it (BT-35…BT-40 for the seller, BT-50…BT-55 for the buyer)."""

    lines: tuple[str, ...]  # street lines, before the postcode
    postcode: str
    city: str
    country: str  # ISO 3166-1 alpha-2

    @property
    def text_lines(self) -> list[str]:
        tail = f"{self.postcode} {self.city}".strip()
        return [*self.lines, *([tail] if tail else []), *([self.country] if self.country != DEFAULT_COUNTRY else [])]


def address_parts(text: str) -> list[str]:
    """The parts of an address written on several lines or on one line with commas."""
    parts = [p.strip() for p in re.split(r"[\n;,]", text)]
    return [p for p in parts if p]


def postal_address(text: str) -> PostalAddress:
    """Split "Street 1, 12345 City[, DE]" (or the same on lines); a part "PLZ City" is required."""
    parts = address_parts(text)
    country = DEFAULT_COUNTRY
    if parts and COUNTRY.match(parts[-1]):
        country = parts.pop()
    for at in range(len(parts) - 1, -1, -1):
        match = POSTCODE_CITY.match(parts[at])
        if match:
            return PostalAddress(tuple(parts[:at] + parts[at + 1:]), match.group(2), match.group(3),
                                 match.group(1) or country)
    return PostalAddress(tuple(parts), "", "", country)


def address_problem(text: str) -> str | None:
    """None for a full postal address: a street line and a line "PLZ City" (an optional last line "AT")."""
    address = postal_address(text)
    if not address.lines or not address.postcode:
        return 'must name the street and "postcode city", e.g. "Hauptstraße 1, 10115 Berlin"'
    return None
