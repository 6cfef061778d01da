"""Reading the [business] table's checked values: holidays, retention, reminders, invoice data, the booking
page's look (the table and its error messages come from `read`)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol, overload

from handlers.context import Refusal
from handlers.identity import normalise_email
from handlers.reminders.rules import DEFAULT_REMINDERS, MAX_REMINDERS, offset_label, parse_offset
from handlers.rules.holidays import UnknownHolidays, check_code
from handlers.rules.payment import address_problem, bic_problem, compact_iban, iban_problem, vat_percent
from handlers.rules.values import COLOUR, MAX_SEATS

MAX_RETENTION_DAYS = 36500
MAX_WIDGET_CSS = 16 * 1024  # bytes: a few rules that fit the page to a homepage, not a theme
# A CSS font-family list: names, quoted or not, separated by commas; nothing that could end the declaration.
FONT = re.compile(r"""^\s*(?:"[\w .-]+"|'[\w .-]+'|[\w .-]+)(?:\s*,\s*(?:"[\w .-]+"|'[\w .-]+'|[\w .-]+))*\s*$""")


class Table(Protocol):
    """What this needs of a setup file table (read._Table)."""

    def bad(self, path: tuple[str, ...], value: Any, problem: str) -> NoReturn: ...
    @overload
    def text(self, key: str, required: Literal[True] = True) -> str: ...
    @overload
    def text(self, key: str, required: Literal[False]) -> str | None: ...
    def raw(self, key: str, required: bool) -> Any: ...
    def integer(self, key: str, minimum: int, default: int | None = None) -> int: ...


def invoice_data(table: Table) -> dict[str, str | None]:
    """[business] address, tax_id, vat_percent, iban, bic: what an invoice shows of the seller, checked."""
    found: dict[str, str | None] = {"tax_id": table.text("tax_id", required=False)}
    address = table.text("address", required=False)
    if address is not None and (problem := address_problem(address)):
        table.bad(("address",), address, problem)
    found["address"] = address
    iban = table.text("iban", required=False)
    if iban is not None and (problem := iban_problem(iban)):
        table.bad(("iban",), iban, problem)
    found["iban"] = compact_iban(iban) if iban else None
    bic = table.text("bic", required=False)
    if bic is not None and (problem := bic_problem(bic)):
        table.bad(("bic",), bic, problem)
    found["bic"] = bic.upper() if bic else None
    vat = table.raw("vat_percent", False)
    try:
        found["vat_percent"] = None if vat is None else str(vat_percent(vat))
    except ValueError as error:
        table.bad(("vat_percent",), vat, str(error))
    return found


def accent(table: Table) -> str | None:
    """[business] widget_accent: the booking page's colour as #rrggbb."""
    value = table.text("widget_accent", required=False)
    if value is not None and not COLOUR.match(value):
        table.bad(("widget_accent",), value, 'is not a colour like "#2e86de"')
    return value and value.lower()


def font(table: Table) -> str | None:
    """[business] widget_font: a CSS font-family list such as "Georgia, serif"."""
    value = table.text("widget_font", required=False)
    if value is not None and (len(value) > 200 or not FONT.match(value)):
        table.bad(("widget_font",), value, 'is not a list of font names like "Source Sans 3, Arial, sans-serif"')
    return value


def css(table: Table, folder: Path) -> str | None:
    """[business] widget_css: a small UTF-8 CSS file beside the setup file (or a path from it); its text."""
    value = table.text("widget_css", required=False)
    if value is None:
        return None
    path = folder / value
    try:
        data = path.read_bytes()
    except OSError as exc:
        table.bad(("widget_css",), value, f"cannot be read ({exc.strerror or exc}; looked at {path})")
    if len(data) > MAX_WIDGET_CSS:
        table.bad(("widget_css",), value, f"is {len(data)} bytes; at most {MAX_WIDGET_CSS} are taken")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        table.bad(("widget_css",), value, "is not UTF-8 text")
    if "</" in text or "<!--" in text:  # the text goes into the page's <style> element and must stay there
        table.bad(("widget_css",), value, 'holds "</" or "<!--", which a stylesheet in a page cannot')
    return text


def seat_limit(table: Table) -> int:
    """[business] max_seats_without_approval: 0 (every order waits) … MAX_SEATS (none does)."""
    value = table.integer("max_seats_without_approval", 0, 20)
    if value > MAX_SEATS:
        table.bad(("max_seats_without_approval",), value, f"must be at most {MAX_SEATS}")
    return value


def holidays(table: Table) -> str | None:
    """`holidays = "AT-4"`: a country and optional subdivision that the `holidays` package knows."""
    value = table.text("holidays", required=False)
    if value is None:
        return None
    try:
        return check_code(value)
    except UnknownHolidays as exc:
        table.bad(("holidays",), value, f'is not a public holiday code like "AT-4" or "DE-BY" ({exc})')


def retention(table: Table) -> int | None:
    """[business] retention_days: whole days, at least one, at most a century; missing means off."""
    value = table.raw("retention_days", False)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RETENTION_DAYS:
        table.bad(("retention_days",), value, f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS}")
    return value


def reminders(table: Table) -> tuple[str, ...]:
    """[business] reminders = ["24h", "90m"]: hours or minutes before, each once, kept longest first."""
    value = table.raw("reminders", False)
    if value is None:
        return DEFAULT_REMINDERS
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        table.bad(("reminders",), value, 'must be a list like ["24h", "90m"]')
    if len(value) > MAX_REMINDERS:
        table.bad(("reminders",), value, f"lists more than {MAX_REMINDERS} reminders")
    found: dict[int, str] = {}
    for text in value:
        try:
            minutes = parse_offset(text)
        except ValueError as exc:
            table.bad(("reminders",), text, f"is not a reminder time ({exc})")
        if minutes in found:
            table.bad(("reminders",), text, f'is the same time as "{found[minutes]}"')
        found[minutes] = text
    return tuple(offset_label(minutes) for minutes in sorted(found, reverse=True))


def email(table: Table, key: str) -> str | None:
    value = table.text(key, required=False)
    if value is None:
        return None
    try:
        return normalise_email(value)
    except Refusal:
        table.bad((key,), value, "is not an email address")
