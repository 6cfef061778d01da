"""Pure rules of school licences: the directory's and the registration list's rows, eligibility per school
type, the pro-rata credit and term dates. Nothing here touches the database or the network."""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from handlers.members.imports import RowError, header_key, valid_email

# Header spellings (German and English), compared as imports.header_key writes them.
DIRECTORY_HEADERS = {
    "number": ("schulnummer", "schoolid", "schulnr", "nummer"),
    "name": ("name", "schulname", "schoolname", "school"),
    "type": ("schulform", "type", "schultyp", "schoolform"),
    "carrier": ("träger", "traeger", "carrier", "schulträger", "schultraeger"),
    "email": ("email", "mail", "emailadresse"),
    "product": ("produkt", "product"),
    "until": ("lizenzbis", "licenceuntil", "licenseuntil"),
    "paid": ("lizenzbezahlt", "licencepaid", "licensepaid"),
}
DIRECTORY_REQUIRED = ("number", "name", "type", "carrier", "email")
LIST_HEADERS = {
    "number": ("schulnummer", "schoolid", "schulnr"),
    "school": ("schulname", "school", "schoolname", "name"),
    "contact": ("ansprechpartner", "contact", "ansprechperson", "kontakt"),
    "email": ("email", "mail", "emailadresse"),
}
LIST_REQUIRED = ("number", "school", "contact", "email")
REFUND_MONTHS = 3  # the seed: a credit only when more than 3 months of the single licence are left
MAX_TEXT = 200


class HeadersMissing(Exception):
    """A list without a column it needs; `missing` are field names, `found` the headers it has."""

    def __init__(self, missing: list[str], found: str):
        super().__init__(", ".join(missing))
        self.missing, self.found = missing, found


@dataclass(frozen=True)
class SchoolRow:
    row: int
    number: str
    name: str
    type: str
    carrier: str
    email: str
    product: str | None = None
    until: str | None = None  # ISO date
    paid_cents: int | None = None


@dataclass(frozen=True)
class ListRow:
    row: int
    number: str
    school: str
    contact: str
    email: str


@dataclass
class Rows:
    valid: list = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def map_columns(headers: list[str], spellings: dict[str, tuple[str, ...]], required: tuple[str, ...]) -> dict[str, int]:
    """Column index of each known field; HeadersMissing names what a list lacks."""
    known = {header_key(s): name for name, names in spellings.items() for s in names}
    columns: dict[str, int] = {}
    for index, header in enumerate(headers):
        name = known.get(header_key(header))
        if name is not None and name not in columns:
            columns[name] = index
    missing = [name for name in required if name not in columns]
    if missing:
        raise HeadersMissing(missing, ", ".join(h for h in headers if h) or "-")
    return columns


def cells_of(cells: list[str], columns: dict[str, int]) -> dict[str, str]:
    return {key: (cells[index].strip() if index < len(cells) else "") for key, index in columns.items()}


def money_cents(text: str) -> int | None:
    """'49,90' or '49.90' → 4990; None if it is no amount of money."""
    cleaned = text.replace("€", "").replace(" ", "")
    if "," in cleaned:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value < 0 or value != value.quantize(Decimal("0.01")):
        return None
    return int(value * 100)


def iso_day(text: str) -> str | None:
    """'2027-03-31' or '31.03.2027' → '2027-03-31', else None."""
    try:
        if "." in text:
            day, month, year = (int(part) for part in text.split("."))
            return date(year, month, day).isoformat()
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return None


def check_directory(rows: list[tuple[int, list[str]]], columns: dict[str, int]) -> Rows:
    """Every directory row checked; a school number listed twice is an error after its first row."""
    result, seen = Rows(), dict[str, int]()
    for number, cells in rows:
        values = cells_of(cells, columns)
        problem = directory_problem(values)
        if problem is None and values["number"] in seen:
            problem = (values["number"], "school_duplicate")
        if problem:
            result.errors.append(RowError(number, problem[0][:80], problem[1], seen.get(values["number"])))
            continue
        seen[values["number"]] = number
        result.valid.append(school_row(number, values))
    return result


def directory_problem(values: dict[str, str]) -> tuple[str, str] | None:
    for key in DIRECTORY_REQUIRED:
        if not values.get(key):
            return values.get("number", ""), f"{key}_missing"
    if any(len(values[key]) > MAX_TEXT for key in DIRECTORY_REQUIRED):
        return values["number"], "too_long"
    if valid_email(values["email"]) is None:
        return values["email"], "email_invalid"
    single = [values.get(k, "") for k in ("product", "until", "paid")]
    if any(single) and not all(single):
        return values["number"], "licence_incomplete"
    if values.get("until") and iso_day(values["until"]) is None:
        return values["until"], "date_invalid"
    if values.get("paid") and money_cents(values["paid"]) is None:
        return values["paid"], "amount_invalid"
    return None


def school_row(number: int, values: dict[str, str]) -> SchoolRow:
    return SchoolRow(number, values["number"], values["name"], values["type"], values["carrier"],
                     valid_email(values["email"]) or "", values.get("product") or None,
                     iso_day(values["until"]) if values.get("until") else None,
                     money_cents(values["paid"]) if values.get("paid") else None)


def check_list(rows: list[tuple[int, list[str]]], columns: dict[str, int]) -> Rows:
    """Every registration row on its own: the fields and the email; a school listed twice (see `against`)."""
    result, seen = Rows(), dict[str, int]()
    for number, cells in rows:
        values = cells_of(cells, columns)
        missing = next((key for key in LIST_REQUIRED if not values.get(key)), None)
        if missing:
            result.errors.append(RowError(number, values.get("number", "")[:80], f"{missing}_missing"))
        elif valid_email(values["email"]) is None:
            result.errors.append(RowError(number, values["email"][:80], "email_invalid"))
        elif values["number"] in seen:
            result.errors.append(RowError(number, values["number"][:80], "school_duplicate", seen[values["number"]]))
        else:
            seen[values["number"]] = number
            result.valid.append(ListRow(number, values["number"], values["school"][:MAX_TEXT],
                                        values["contact"][:MAX_TEXT], valid_email(values["email"]) or ""))
    return result


@dataclass(frozen=True)
class TypeCheck:
    """One school type of an order: the carrier's schools of it, how many are listed, how many more needed."""

    type: str
    owned: int
    listed: int

    @property
    def needed(self) -> int:
        """More than half, or all: the smallest count that qualifies, less what is listed (never below 0)."""
        return max(0, min(self.owned, self.owned // 2 + 1) - self.listed)

    @property
    def eligible(self) -> bool:
        return self.listed == self.owned or 2 * self.listed > self.owned


def eligibility(owned: dict[str, int], listed: dict[str, int]) -> list[TypeCheck]:
    """The seed's rule per type listed: all of the carrier's schools of that type, or more than half of them
    (exactly half is refused)."""
    return [TypeCheck(kind, owned.get(kind, 0), count) for kind, count in sorted(listed.items())]


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has fewer days)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def credit_cents(paid_cents: int, starts_on: date, ends_on: date, today: date) -> int:
    """What is refunded of a single licence when a carrier's licence takes over on `today`: nothing with
    3 months or less left, else amount paid × remaining days / days of that licence's term (half up)."""
    if ends_on <= add_months(today, REFUND_MONTHS):
        return 0
    term_days = (ends_on - starts_on).days
    remaining = (ends_on - today).days
    if term_days <= 0 or remaining <= 0:
        return 0
    return (paid_cents * remaining * 2 + term_days) // (2 * term_days)
