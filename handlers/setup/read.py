"""Reading the setup file: the TOML parsed strictly, every error naming file, line, key and value."""
from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NoReturn, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.licences.setup import read_product
from handlers.rules.values import COLOUR, PRICE, parse_range
from handlers.rules.words import clock_minutes, hhmm
from handlers.setup import business
from handlers.setup.courses import read_course
from handlers.setup.spec import (
    BOOKING_MODES,
    BUSINESS_KEYS,
    COURSE_KEYS,
    DAYS,
    LANGUAGES,
    LOCATION_KEYS,
    RIGHTS,
    SERVICE_KEYS,
    SERVICE_KINDS,
    STAFF_KEYS,
    STAFF_ROLES,
    TOP_KEYS,
    BusinessSpec,
    CourseSpec,
    Interval,
    LocationSpec,
    ServiceSpec,
    SetupError,
    SetupSpec,
    StaffHoursSpec,
    StaffSpec,
)

HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def load_setup(path: Path) -> SetupSpec:
    """Read and validate a setup file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"{path}: cannot read the file ({exc})") from None
    return parse_setup(text, str(path))


def parse_setup(text: str, filename: str) -> SetupSpec:
    """Parse and validate setup file text; `filename` only appears in messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"{filename}: invalid TOML: {exc}") from None
    source = _Source(text, filename)
    for key in data:
        if key not in TOP_KEYS:
            raise source.error(source.top_line(key), f'unknown key "{key}" at the top level')
    if "business" not in data:
        raise source.error(None, "missing the [business] table")
    business = _business(_Table.single(source, data["business"]), Path(filename).parent)
    tables = {kind: _tables(source, data, kind) for kind in TOP_KEYS[1:]}
    locations = tuple(_location(t) for t in tables["locations"])
    _unique(tables["locations"])
    services = tuple(_service(t) for t in tables["services"])
    _unique(tables["services"])
    known = ({loc.name for loc in locations}, {s.name for s in services})
    staff = tuple(_staff(t, *known) for t in tables["staff"])
    _unique(tables["staff"])
    _unique_addresses(tables["staff"], staff)
    courses = tuple(_course(t, known[0]) for t in tables["courses"])
    _unique(tables["courses"])
    products = tuple(read_product(t, PRICE) for t in tables["products"])
    _unique(tables["products"])
    return SetupSpec(filename, business, locations, services, staff, courses, products)


class _Source:
    """The raw text, to find the line a key sits on (tomllib does not tell)."""

    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.lines = text.splitlines()
        self.headers = []  # (line index, is array, dotted name)
        for number, line in enumerate(self.lines):
            match = HEADER.match(line)
            if match and "=" not in match.group(2):
                name = re.sub(r"\s*\.\s*", ".", match.group(2)).replace('"', "").replace("'", "")
                self.headers.append((number, match.group(1) == "[[", name))

    def error(self, line: int | None, message: str) -> SetupError:
        """An error pointing at a line (1-based), if known."""
        return SetupError(f"{self.filename}:{line}: {message}" if line else f"{self.filename}: {message}")

    def top_line(self, key: str) -> int | None:
        """Where a top-level key is: its table header, else a `key =` line before the first header."""
        for number, _, name in self.headers:
            if name == key or name.startswith(key + "."):
                return number + 1
        end = self.headers[0][0] if self.headers else len(self.lines)
        return self._search(_key_patterns((key,)), 0, end)

    def line_of(self, table: str, index: int | None, path: tuple[str, ...]) -> int | None:
        """The line of `path` inside the table (the index-th one of an array), else its header."""
        header, start, end = self._region(table, index)
        found = self._search(_key_patterns(path), start, end) if path else None
        return found or (header + 1 if header is not None else None)

    def _region(self, table: str, index: int | None) -> tuple[int | None, int, int]:
        """The header line and the line span of one table, or the whole file if it has no header."""
        own = [h for h in self.headers if h[2] == table and h[1] == (index is not None)]
        position = index or 0
        if position >= len(own):
            return None, 0, len(self.lines)
        header = own[position][0]
        later = [n for n, _, name in self.headers if n > header and not name.startswith(table + ".")]
        return header, header + 1, later[0] if later else len(self.lines)

    def _search(self, patterns: Iterator[re.Pattern], start: int, end: int) -> int | None:
        for pattern in patterns:
            for number in range(start, end):
                if pattern.search(self.lines[number]):
                    return number + 1
        return None


def _key_patterns(path: tuple[str, ...]) -> Iterator[re.Pattern]:
    """Ways a key can be written, most precise first: dotted, a prefix of deeper keys, in a sub-table, inline."""
    parts = [rf"""["']?{re.escape(p)}["']?""" for p in path]
    dotted = r"\s*\.\s*".join(parts)
    yield re.compile(rf"^\s*{dotted}\s*=")
    yield re.compile(rf"^\s*{dotted}\s*\.")
    yield re.compile(rf"^\s*\[.*\.\s*{dotted}\s*\]")
    for k in range(1, len(parts)):
        yield re.compile(r"^\s*" + r"\s*\.\s*".join(parts[k:]) + r"\s*=")
    yield re.compile(rf"[{{,]\s*{parts[-1]}\s*=")


def _show(value: Any) -> str:
    """A value as the operator wrote it, roughly in TOML."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{…}"
    return str(value)


class _Table:
    """One table of the file with the means to complain about it precisely."""

    def __init__(self, source: _Source, data: Any, kind: str, index: int | None):
        self.source, self.kind, self.index = source, kind, index
        if not isinstance(data, dict):
            where = f"[{kind}]" if index is None else f"[[{kind}]] #{index + 1}"
            raise source.error(source.line_of(kind, index, ()), f"{where} must be a table, not {_show(data)}")
        self.data = data
        name = data.get("name")
        label = f'"{name}"' if isinstance(name, str) and name.strip() else f"#{(index or 0) + 1}"
        self.where = kind if index is None else f"{kind} {label}"
        self.header = f"[{kind}]" if index is None else f"[[{kind}]] {label}"

    @classmethod
    def single(cls, source: _Source, data: Any) -> "_Table":
        return cls(source, data, "business", None)

    def fail(self, path: tuple[str, ...], message: str) -> NoReturn:
        raise self.source.error(self.source.line_of(self.kind, self.index, path), message)

    def bad(self, path: tuple[str, ...], value: Any, problem: str) -> NoReturn:
        """Complain about a value, naming the table, the key and the value."""
        self.fail(path, f"{self.where} {'.'.join(path)}: {_show(value)} {problem}")

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                self.fail((key,), f'unknown key "{key}" in {self.header}')

    def raw(self, key: str, required: bool) -> Any:
        if key not in self.data and required:
            self.fail((), f'{self.where}: missing key "{key}"')
        return self.data.get(key)

    @overload
    def text(self, key: str, required: Literal[True] = True) -> str: ...

    @overload
    def text(self, key: str, required: Literal[False]) -> str | None: ...

    def text(self, key: str, required: bool = True) -> str | None:
        """A non-empty string, stripped; None only for a missing key that is not required."""
        value = self.raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad((key,), value, "must be a non-empty string")
        return value.strip()

    def integer(self, key: str, minimum: int, default: int | None = None) -> int:
        """A whole number of at least `minimum`; without a default the key is required (raw fails)."""
        value = self.raw(key, default is None)
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.bad((key,), value, f"must be a whole number of at least {minimum}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(key, default is None)
        if value is None and default is not None:
            return default
        if value not in options:
            self.bad((key,), value, "must be one of " + ", ".join(options))
        return value

    def strings(self, key: str) -> list[str]:
        value = self.raw(key, False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.bad((key,), value, "must be a list of strings")
        return [v.strip() for v in value]

    def sub_table(self, path: tuple[str, ...], value: Any, what: str) -> dict:
        if not isinstance(value, dict):
            self.bad(path, value, f"must be a table of {what}")
        return value


def _tables(source: _Source, data: dict, kind: str) -> list[_Table]:
    value = data.get(kind, [])
    if not isinstance(value, list):
        raise source.error(source.top_line(kind), f"{kind} must be written as [[{kind}]] tables")
    return [_Table(source, item, kind, i) for i, item in enumerate(value)]


def _unique(tables: list[_Table]) -> None:
    """Names are how rows are matched, so each may appear only once."""
    seen: set[str] = set()
    for table in tables:
        name = table.data["name"].strip()
        if name.casefold() in seen:
            table.bad(("name",), name, f"is used by more than one of [[{table.kind}]]")
        seen.add(name.casefold())


def _unique_addresses(tables: list[_Table], staff: tuple[StaffSpec, ...]) -> None:
    seen: set[str] = set()
    for table, spec in zip(tables, staff):
        for address in spec.addresses:
            if address in seen:
                key = address.split(":", 1)[0]
                table.bad((key,), table.data[key], "is given for more than one of [[staff]]")
            seen.add(address)


def _business(table: _Table, folder: Path) -> BusinessSpec:
    """[business]; a file it names (widget_css) is found beside the setup file."""
    table.check_keys(BUSINESS_KEYS)
    zone = table.text("timezone")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        table.bad(("timezone",), zone, "is not a known time zone (e.g. Europe/Vienna)")
    return BusinessSpec(
        name=table.text("name"), timezone=zone, language=table.choice("language", LANGUAGES),
        booking_mode=table.choice("booking_mode", BOOKING_MODES, "direct"),
        slot_minutes=table.integer("slot_minutes", 1, 15),
        min_notice_minutes=table.integer("min_notice_minutes", 0, 60),
        max_days_ahead=table.integer("max_days_ahead", 1, 60),
        support_email=business.email(table, "support_email"),
        max_seats_without_approval=business.seat_limit(table),
        holidays=business.holidays(table),
        retention_days=business.retention(table),
        reminders=business.reminders(table),
        **business.invoice_data(table),
        widget_accent=business.accent(table),
        widget_font=business.font(table),
        widget_css=business.css(table, folder),
    )


def _location(table: _Table) -> LocationSpec:
    """[[locations]]"""
    table.check_keys(LOCATION_KEYS)
    hours = table.sub_table(("hours",), table.data.get("hours", {}), "days")
    return LocationSpec(table.text("name"), tuple(_week(table, ("hours",), hours)), business.holidays(table))


def _service(table: _Table) -> ServiceSpec:
    """[[services]]"""
    table.check_keys(SERVICE_KEYS)
    colour = table.text("colour", required=False)
    if colour is not None and not COLOUR.match(colour):
        table.bad(("colour",), colour, 'is not a colour like "#2e86de"')
    return ServiceSpec(table.text("name"), table.integer("minutes", 1), colour and colour.lower(), _price(table),
                       table.choice("kind", SERVICE_KINDS, "appointment"))


def _price(table: _Table) -> str | None:
    value = table.raw("price", False)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    # A float would already have lost cents; money is text.
    if not isinstance(value, str) or not PRICE.match(value.strip()):
        table.bad(("price",), value, 'is not a price; write it as a string like "65.00"')
    return value.strip()


def _course(table: _Table, locations: set[str]) -> CourseSpec:
    """[[courses]]"""
    table.check_keys(COURSE_KEYS)
    return read_course(table, locations, _price(table))


def _staff(table: _Table, locations: set[str], services: set[str]) -> StaffSpec:
    """[[staff]]"""
    table.check_keys(STAFF_KEYS)
    return StaffSpec(
        name=table.text("name"), role=table.choice("role", STAFF_ROLES), telegram=_telegram(table),
        email=business.email(table, "email"), services=_names(table, "services", services, "service"),
        rights=tuple(sorted(_names(table, "rights", set(RIGHTS), "right"))), hours=_staff_hours(table, locations),
        agenda=_agenda(table),
    )


def _agenda(table: _Table) -> int | None:
    """[[staff]] agenda = "07:30": the local time of the daily agenda."""
    text = table.text("agenda", required=False)
    if text is None:
        return None
    try:
        return clock_minutes(text)
    except ValueError:
        table.bad(("agenda",), text, 'is not a time of day like "07:30"')


def _telegram(table: _Table) -> int | None:
    value = table.raw("telegram", False)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        table.bad(("telegram",), value, "must be a Telegram user id (a positive number)")
    return value


def _names(table: _Table, key: str, known: set[str], what: str) -> tuple[str, ...]:
    """A list of names that must each be known; repeats are dropped."""
    found: list[str] = []
    for name in table.strings(key):
        if name not in known:
            table.bad((key,), name, f"is not a known {what}" + (f" ({', '.join(sorted(known))})" if known else ""))
        if name not in found:
            found.append(name)
    return tuple(found)


def _staff_hours(table: _Table, locations: set[str]) -> tuple[StaffHoursSpec, ...]:
    hours = table.sub_table(("hours",), table.data.get("hours", {}), "locations")
    found = []
    for location, days in hours.items():
        if location not in locations:
            table.bad(("hours", location), location, "is not a location of [[locations]]")
        days = table.sub_table(("hours", location), days, "days")
        found += [StaffHoursSpec(location, i.weekday, i.start, i.end) for i in _week(table, ("hours", location), days)]
    _no_double_booking(table, found)
    return tuple(found)


def _no_double_booking(table: _Table, hours: list[StaffHoursSpec]) -> None:
    """One person cannot be at two locations at once."""
    ordered = sorted(hours, key=lambda h: (h.weekday, h.start))
    for earlier, later in zip(ordered, ordered[1:]):
        if earlier.weekday == later.weekday and later.start < earlier.end:
            day = DAYS[later.weekday]
            table.bad(("hours", later.location, day), _hhmm_range(later.start, later.end),
                      f'overlaps hours.{earlier.location}.{day} "{_hhmm_range(earlier.start, earlier.end)}"')


def _hhmm_range(start: int, end: int) -> str:
    return f"{hhmm(start)}-{hhmm(end)}"


def _week(table: _Table, path: tuple[str, ...], days: dict) -> list[Interval]:
    """`{mon = ["08:00-12:00", …], …}` as sorted intervals, refusing bad days and overlaps."""
    found = []
    for day, ranges in days.items():
        key = (*path, day)
        if day not in DAYS:
            table.bad(key, day, "is not a day (use " + ", ".join(DAYS) + ")")
        if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
            table.bad(key, ranges, 'must be a list like ["08:00-12:00", "13:00-18:00"]')
        found += _day(table, key, DAYS.index(day), ranges)
    return sorted(found, key=lambda i: (i.weekday, i.start))


def _day(table: _Table, key: tuple[str, ...], weekday: int, ranges: list[str]) -> list[Interval]:
    parsed = []
    for text in ranges:
        try:
            start, end = parse_range(text)
        except ValueError as exc:
            table.bad(key, text, f"is not a valid time range ({exc})")
        parsed.append((start, end, text))
    parsed.sort()
    for (_, end, earlier), (start, _, later) in zip(parsed, parsed[1:]):
        if start < end:
            table.bad(key, later, f'overlaps "{earlier}"')
    return [Interval(weekday, start, end) for start, end, _ in parsed]
