"""Reading one [[courses]] table of the setup file (the table and its error messages come from `read`)."""
from __future__ import annotations

from typing import Any, NoReturn, Protocol

from handlers.courses.rules import MAX_CAPACITY, MAX_DEADLINE_DAYS, BadValue, parse_sessions
from handlers.rules.words import QUOTE_MARKS
from handlers.setup.spec import CourseSpec

PROBLEMS = {  # the operator reads these, next to the file, line, key and value
    "shape": 'is not a session like "2026-12-10 18:00-20:00"',
    "date": "does not start with a real date (YYYY-MM-DD, years 2000-2100)",
    "times": "has no valid time range (HH:MM-HH:MM, the start before the end)",
    "overlap": "overlaps another session of the course",
    "none": "must list at least one session",
    "too_many": "lists too many sessions",
}


class Table(Protocol):
    """What this needs of a setup file table (read._Table)."""

    data: dict

    def bad(self, path: tuple[str, ...], value: Any, problem: str) -> NoReturn: ...
    def text(self, key: str) -> str: ...
    def integer(self, key: str, minimum: int, default: int | None = None) -> int: ...
    def strings(self, key: str) -> list[str]: ...
    def raw(self, key: str, required: bool) -> Any: ...


def read_course(table: Table, locations: set[str], price: str | None) -> CourseSpec:
    """[[courses]]: name, location (one of [[locations]]), sessions, capacity, optional price, min_participants,
    booking_deadline_days."""
    name, location = table.text("name"), table.text("location")
    if any(c in QUOTE_MARKS for c in name):  # people type the name in commands, quoted when it has spaces
        table.bad(("name",), name, "must not hold quotation marks")
    if location not in locations:
        table.bad(("location",), location, "is not a location of [[locations]]"
                  + (f" ({', '.join(sorted(locations))})" if locations else ""))
    capacity = bounded(table, "capacity", 1, MAX_CAPACITY, None)
    minimum = bounded(table, "min_participants", 1, capacity, None) if "min_participants" in table.data else None
    return CourseSpec(name, location, sessions(table), capacity, price, minimum,
                      bounded(table, "booking_deadline_days", 0, MAX_DEADLINE_DAYS, 0))


def bounded(table: Table, key: str, low: int, high: int, default: int | None) -> int:
    value = table.integer(key, low, default)
    if value > high:
        table.bad((key,), value, f"must be at most {high}")
    return value


def sessions(table: Table) -> tuple:
    table.raw("sessions", True)
    lines = table.strings("sessions")
    try:
        return tuple(parse_sessions(lines))
    except BadValue as bad:
        table.bad(("sessions",), bad.value if bad.field == "session" else lines, PROBLEMS[bad.problem])
