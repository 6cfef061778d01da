"""The setup file: a TOML description of the business, read strictly and applied idempotently."""
from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Refusal
from handlers.identity import normalise_email
from storage.db import UnitOfWork
from storage.models import (
    Address, Audit, Business, Location, OpeningHours, Person, Role, Service, Staff, StaffHours, StaffService,
)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LANGUAGES = ("de", "en")
BOOKING_MODES = ("direct", "request")
STAFF_ROLES = ("owner", "admin", "provider", "assistant", "support")
RIGHTS = ("book_for_colleagues", "own_hours", "settings")
# The Role row each staff role grants; owner and admin imply the weaker ones (context.IMPLIED_ROLES).
ROLE_ROWS = {"owner": "owner", "admin": "admin", "provider": "staff", "assistant": "staff", "support": "support"}
MANAGED_ROLES = frozenset(ROLE_ROWS.values())

TOP_KEYS = ("business", "locations", "services", "staff")
BUSINESS_KEYS = ("name", "timezone", "language", "booking_mode", "slot_minutes", "min_notice_minutes",
                 "max_days_ahead", "support_email", "max_seats_without_approval")
MAX_SEATS = 50_000  # as groups.MAX_SEATS: no order can be larger
LOCATION_KEYS = ("name", "hours")
SERVICE_KEYS = ("name", "minutes", "colour", "price", "kind")
SERVICE_KINDS = ("appointment", "course")  # a course is sold by the seat (group bookings)
STAFF_KEYS = ("name", "role", "telegram", "email", "services", "rights", "hours")

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
PRICE = re.compile(r"^\d{1,9}(\.\d{1,4})?$")
RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


class SetupError(Exception):
    """A problem in the setup file; str() is the whole message for the operator."""


class _Conflict(Exception):
    """The file and the database disagree about who someone is."""


@dataclass(frozen=True)
class Interval:
    """An interval on a weekday (0 = Monday) in minutes from local midnight."""

    weekday: int
    start: int
    end: int


@dataclass(frozen=True)
class BusinessSpec:
    name: str
    timezone: str
    language: str
    booking_mode: str = "direct"
    slot_minutes: int = 15
    min_notice_minutes: int = 60
    max_days_ahead: int = 60
    support_email: str | None = None
    max_seats_without_approval: int = 20  # a seat order above it waits for an admin's approval


@dataclass(frozen=True)
class LocationSpec:
    name: str
    hours: tuple[Interval, ...]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    minutes: int
    colour: str | None = None
    price: str | None = None
    kind: str = "appointment"


@dataclass(frozen=True)
class StaffHoursSpec:
    location: str
    weekday: int
    start: int
    end: int


@dataclass(frozen=True)
class StaffSpec:
    name: str
    role: str
    telegram: int | None = None
    email: str | None = None
    services: tuple[str, ...] = ()
    rights: tuple[str, ...] = ()
    hours: tuple[StaffHoursSpec, ...] = ()

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses this staff member is reached at, as stored in Address.address."""
        found = []
        if self.telegram is not None:
            found.append(f"telegram:{self.telegram}")
        if self.email is not None:
            found.append(f"email:{self.email}")
        return tuple(found)


@dataclass(frozen=True)
class SetupSpec:
    filename: str
    business: BusinessSpec
    locations: tuple[LocationSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    staff: tuple[StaffSpec, ...] = ()


# ---------------------------------------------------------------- reading


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
    business = _business(_Table.single(source, data["business"]))
    tables = {kind: _tables(source, data, kind) for kind in TOP_KEYS[1:]}
    locations = tuple(_location(t) for t in tables["locations"])
    _unique(tables["locations"])
    services = tuple(_service(t) for t in tables["services"])
    _unique(tables["services"])
    known = ({loc.name for loc in locations}, {s.name for s in services})
    staff = tuple(_staff(t, *known) for t in tables["staff"])
    _unique(tables["staff"])
    _unique_addresses(tables["staff"], staff)
    return SetupSpec(filename, business, locations, services, staff)


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

    def text(self, key: str, required: bool = True) -> str | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad((key,), value, "must be a non-empty string")
        return value.strip()

    def integer(self, key: str, minimum: int, default: int | None = None) -> int | None:
        value = self.raw(key, default is None)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.bad((key,), value, f"must be a whole number of at least {minimum}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(key, default is None)
        if value is None:
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


def _business(table: _Table) -> BusinessSpec:
    """[business]"""
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
        support_email=_email(table, "support_email"),
        max_seats_without_approval=_seat_limit(table),
    )


def _seat_limit(table: _Table) -> int:
    """[business] max_seats_without_approval: 0 (every order waits) … MAX_SEATS (none does)."""
    value = table.integer("max_seats_without_approval", 0, 20)
    if value > MAX_SEATS:
        table.bad(("max_seats_without_approval",), value, f"must be at most {MAX_SEATS}")
    return value


def _email(table: _Table, key: str) -> str | None:
    value = table.text(key, required=False)
    if value is None:
        return None
    try:
        return normalise_email(value)
    except Refusal:
        table.bad((key,), value, "is not an email address")


def _location(table: _Table) -> LocationSpec:
    """[[locations]]"""
    table.check_keys(LOCATION_KEYS)
    hours = table.sub_table(("hours",), table.data.get("hours", {}), "days")
    return LocationSpec(table.text("name"), tuple(_week(table, ("hours",), hours)))


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


def _staff(table: _Table, locations: set[str], services: set[str]) -> StaffSpec:
    """[[staff]]"""
    table.check_keys(STAFF_KEYS)
    return StaffSpec(
        name=table.text("name"), role=table.choice("role", STAFF_ROLES), telegram=_telegram(table),
        email=_email(table, "email"), services=_names(table, "services", services, "service"),
        rights=tuple(sorted(_names(table, "rights", set(RIGHTS), "right"))), hours=_staff_hours(table, locations),
    )


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
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


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


def parse_range(text: str) -> tuple[int, int]:
    """"08:00-12:30" as minutes from midnight (480, 750); ValueError says what is wrong."""
    match = RANGE.match(text)
    if not match:
        raise ValueError("expected HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    for hour, minute in ((h1, m1), (h2, m2)):
        if minute > 59 or hour > 24 or (hour == 24 and minute):
            raise ValueError(f"{hour:02d}:{minute:02d} is outside 00:00-24:00")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= end:
        raise ValueError("start must be before end")
    return start, end


# ---------------------------------------------------------------- applying


async def apply_setup(uow: UnitOfWork, spec: SetupSpec, now: datetime) -> list[str]:
    """Bring the database in line with the spec (no commit); returns one line per change."""
    session = uow.session
    changes = await _apply_business(session, spec.business)
    location_ids = await _apply_locations(session, spec.locations, changes)
    service_ids = await _apply_services(session, spec.services, changes)
    seen: dict[int, str] = {}
    try:
        for staff in spec.staff:
            person_id = await _apply_staff(session, staff, location_ids, service_ids, now, changes)
            if person_id in seen:
                raise _Conflict(f'staff "{staff.name}" and "{seen[person_id]}" are the same person (#{person_id})')
            seen[person_id] = staff.name
    except _Conflict as exc:
        raise SetupError(f"{spec.filename}: {exc}") from None
    if changes:
        session.add(Audit(at=now, actor="setup", person_id=None, channel="setup", action="setup_applied",
                          subject=spec.filename[-340:], detail={"changes": len(changes)}))
    await session.flush()
    return changes


def _fmt(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _update(row: Any, values: dict[str, Any], labels: dict[str, str] | None = None) -> list[str]:
    """Set differing attributes; returns "field old → new" for each."""
    notes = []
    for field, value in values.items():
        old = getattr(row, field)
        if old != value:
            setattr(row, field, value)
            notes.append(f"{(labels or {}).get(field, field)} {_fmt(old)} → {_fmt(value)}")
    return notes


async def _apply_business(session: AsyncSession, spec: BusinessSpec) -> list[str]:
    values = {field: getattr(spec, field) for field in BUSINESS_KEYS}
    row = await session.get(Business, 1)
    if row is None:
        session.add(Business(id=1, **values))
        return [f"+ business {spec.name}"]
    notes = _update(row, values)
    return [f"~ business: {', '.join(notes)}"] if notes else []


async def _apply_locations(session: AsyncSession, specs: tuple[LocationSpec, ...],
                           changes: list[str]) -> dict[str, int]:
    rows = {row.name: row for row in (await session.scalars(select(Location))).all()}
    ids = {}
    for spec in specs:
        row = rows.get(spec.name)
        if row is None:
            row = Location(name=spec.name)
            session.add(row)
            await session.flush()
            changes.append(f"+ location {spec.name}")
            await _replace_opening_hours(session, row.id, spec.hours)
        elif await _replace_opening_hours(session, row.id, spec.hours):
            changes.append(f"~ location {spec.name}: opening hours changed")
        ids[spec.name] = row.id
    return ids


async def _replace_opening_hours(session: AsyncSession, location_id: int, hours: tuple[Interval, ...]) -> bool:
    """Replace a location's opening hours if they differ; True if they did."""
    columns = (OpeningHours.weekday, OpeningHours.start_minute, OpeningHours.end_minute)
    rows = await session.execute(select(*columns).where(OpeningHours.location_id == location_id))
    current = sorted(tuple(r) for r in rows)
    wanted = sorted((i.weekday, i.start, i.end) for i in hours)
    if current == wanted:
        return False
    await session.execute(delete(OpeningHours).where(OpeningHours.location_id == location_id))
    session.add_all(OpeningHours(location_id=location_id, weekday=w, start_minute=s, end_minute=e)
                    for w, s, e in wanted)
    return True


async def _apply_services(session: AsyncSession, specs: tuple[ServiceSpec, ...],
                          changes: list[str]) -> dict[str, int]:
    # Services missing from the file stay: past appointments refer to them.
    rows = {row.name: row for row in (await session.scalars(select(Service))).all()}
    for spec in specs:
        values = {"minutes": spec.minutes, "colour": spec.colour, "price": spec.price, "kind": spec.kind}
        row = rows.get(spec.name)
        if row is None:
            rows[spec.name] = Service(name=spec.name, **values)
            session.add(rows[spec.name])
            changes.append(f"+ service {spec.name} ({spec.minutes} min)")
            continue
        notes = _update(row, values)
        if row.deleted_at is not None:
            row.deleted_at = None
            notes.append("restored")
        if notes:
            changes.append(f"~ service {spec.name}: {', '.join(notes)}")
    await session.flush()
    return {name: row.id for name, row in rows.items()}


async def _apply_staff(session: AsyncSession, spec: StaffSpec, location_ids: dict[str, int],
                       service_ids: dict[str, int], now: datetime, changes: list[str]) -> int:
    """One [[staff]] entry: person, addresses, staff row, role, services and hours; returns the person id."""
    person = await _staff_person(session, spec, now)
    row = await session.get(Staff, person.id)
    notes = [f'name "{person.name}" → "{spec.name}"'] if person.name != spec.name else []
    person.name = spec.name
    notes += await _staff_addresses(session, person.id, spec.addresses, now)
    if row is None:
        session.add(Staff(person_id=person.id, kind=spec.role, rights=list(spec.rights)))
    else:
        notes += _update(row, {"kind": spec.role, "rights": list(spec.rights)}, {"kind": "role"})
    if await _staff_role(session, person.id, spec.role) and not any(n.startswith("role ") for n in notes):
        notes.append(f"access set to {ROLE_ROWS[spec.role]}")
    notes += await _staff_services(session, person.id, [service_ids[n] for n in spec.services])
    wanted = [(location_ids[h.location], h.weekday, h.start, h.end) for h in spec.hours]
    if await _replace_staff_hours(session, person.id, wanted):
        notes.append("hours changed")
    if row is None:
        changes.append(f"+ staff {spec.name} ({spec.role})")
    elif notes:
        changes.append(f"~ staff {spec.name}: {', '.join(notes)}")
    return person.id


async def _staff_person(session: AsyncSession, spec: StaffSpec, now: datetime) -> Person:
    """The person behind a staff entry: by address first (they may have written before), then by staff name."""
    owners = set((await session.scalars(select(Address.person_id).where(Address.address.in_(spec.addresses)))).all())
    if len(owners) > 1:
        raise _Conflict(f'staff "{spec.name}": {" and ".join(spec.addresses)} belong to different people '
                         f"(#{', #'.join(str(o) for o in sorted(owners))}); they must be merged first")
    if owners:
        return await session.get(Person, owners.pop())
    person = await session.scalar(select(Person).join(Staff, Staff.person_id == Person.id)
                                  .where(Person.name == spec.name).order_by(Person.id).limit(1))
    if person is None:
        person = Person(name=spec.name, created_at=now)
        session.add(person)
        await session.flush()
    return person


async def _staff_addresses(session: AsyncSession, person_id: int, addresses: tuple[str, ...],
                           now: datetime) -> list[str]:
    """Add missing addresses, verified: the file is trusted. Other addresses of the person stay."""
    rows = {r.address: r for r in (await session.scalars(select(Address).where(Address.address.in_(addresses)))).all()}
    notes = []
    for address in addresses:
        row = rows.get(address)
        if row is None:
            session.add(Address(address=address, kind=address.split(":", 1)[0], person_id=person_id,
                                verified=True, created_at=now))
            notes.append(f"+ {address}")
        elif not row.verified:
            row.verified = True
            notes.append(f"{address} verified")
    return notes


async def _staff_role(session: AsyncSession, person_id: int, role: str) -> bool:
    """Keep exactly the one global role row the staff role grants (scoped roles stay); True if changed."""
    wanted = ROLE_ROWS[role]
    rows = (await session.scalars(select(Role).where(
        Role.person_id == person_id, Role.scope == "", Role.role.in_(MANAGED_ROLES)))).all()
    current = sorted(r.role for r in rows)
    if current == [wanted]:
        return False
    for row in rows:
        if row.role != wanted:
            await session.delete(row)
    if wanted not in current:
        session.add(Role(person_id=person_id, role=wanted, scope=""))
    return True


async def _staff_services(session: AsyncSession, person_id: int, wanted: list[int]) -> list[str]:
    query = select(StaffService.service_id).where(StaffService.person_id == person_id)
    current = sorted((await session.scalars(query)).all())
    if current == sorted(wanted):
        return []
    query = select(Service.id, Service.name).where(Service.id.in_(current + wanted))
    names = dict((await session.execute(query)).all())
    await session.execute(delete(StaffService).where(StaffService.person_id == person_id))
    session.add_all(StaffService(person_id=person_id, service_id=s) for s in wanted)
    return [f"services {_fmt([names[s] for s in current])} → {_fmt([names[s] for s in wanted])}"]


async def _replace_staff_hours(session: AsyncSession, person_id: int,
                               wanted: list[tuple[int, int, int, int]]) -> bool:
    """Replace a staff member's bookable hours if they differ; True if they did."""
    columns = (StaffHours.location_id, StaffHours.weekday, StaffHours.start_minute, StaffHours.end_minute)
    current = sorted(tuple(r) for r in await session.execute(select(*columns).where(StaffHours.person_id == person_id)))
    if current == sorted(wanted):
        return False
    await session.execute(delete(StaffHours).where(StaffHours.person_id == person_id))
    session.add_all(StaffHours(person_id=person_id, location_id=loc, weekday=w, start_minute=s, end_minute=e)
                    for loc, w, s, e in sorted(wanted))
    return True
