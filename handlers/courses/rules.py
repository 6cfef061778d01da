"""Pure rules for courses: session lines, the `course add` line, the booking deadline and place arithmetic."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from handlers.rules.availability import local_minute
from handlers.rules.values import PRICE, parse_range
from handlers.rules.words import iso_date, split_words

MAX_CAPACITY = 10_000
MAX_SESSIONS = 200
MAX_DEADLINE_DAYS = 365
SESSION = re.compile(r"^\s*(\S+)\s+(\S+)\s*$")
OPTION = re.compile(r"^(price|preis|min|deadline|frist)=(.*)$", re.I)
OPTION_NAMES = {"price": "price", "preis": "price", "min": "min", "deadline": "deadline", "frist": "deadline"}


class BadValue(ValueError):
    """A value that does not fit: which part of the input (`field`), as typed (`value`), and why (`problem`,
    a short key the templates explain)."""

    def __init__(self, field: str, value: str, problem: str):
        super().__init__(f"{field}: {value!r} {problem}")
        self.field, self.value, self.problem = field, value, problem


class LocalSession(NamedTuple):
    """A session as typed: a day and minutes after local midnight (the end may be 1440, midnight)."""

    day: date
    start: int
    end: int


class Session(NamedTuple):
    """A session as stored and shown: aware start and end (also readable as a (start, end) pair)."""

    start: datetime
    end: datetime


def parse_session(text: str) -> LocalSession:
    """"2026-12-10 18:00-20:00" as a LocalSession; BadValue says what is wrong."""
    match = SESSION.match(text or "")
    if not match:
        raise BadValue("session", text, "shape")
    try:
        day = iso_date(match.group(1))
    except ValueError:
        raise BadValue("session", text, "date") from None
    try:
        start, end = parse_range(match.group(2))
    except ValueError:
        raise BadValue("session", text, "times") from None
    return LocalSession(day, start, end)


def parse_sessions(lines: list[str]) -> list[LocalSession]:
    """Several session lines, in time order; none may overlap another."""
    if not lines:
        raise BadValue("sessions", "", "none")
    if len(lines) > MAX_SESSIONS:
        raise BadValue("sessions", f"{len(lines)}", "too_many")
    found = sorted((parse_session(line), line) for line in lines)
    for (earlier, _), (later, text) in zip(found, found[1:]):
        if later.day == earlier.day and later.start < earlier.end:
            raise BadValue("session", text, "overlap")
    return [session for session, _ in found]


def session_times(sessions: list[LocalSession], tz: ZoneInfo) -> list[Session]:
    """The sessions as UTC instants, read on the business's wall clock."""
    return [Session(local_minute(s.day, s.start, tz), local_minute(s.day, s.end, tz)) for s in sessions]


def deadline(first_start: datetime, days: int) -> datetime:
    """When joining and leaving end: `days` whole days before the first session starts (0: at its start)."""
    return first_start - timedelta(days=days)


def free_places(capacity: int, live: int, waiting: int) -> int:
    """Places a newcomer could have now: what live places (held or confirmed) leave free, after the waiting
    list, which comes first."""
    return max(0, capacity - live - waiting)


def capacity_fits(capacity: int, taken: int) -> bool:
    """A capacity may never be set below the places already held or confirmed."""
    return 1 <= capacity <= MAX_CAPACITY and capacity >= taken


def check_capacity(text: str) -> int:
    """A typed capacity: a whole number from 1 to MAX_CAPACITY."""
    return check_count("capacity", text, 1, MAX_CAPACITY)


def check_price(text: str) -> str:
    if not PRICE.match(text):
        raise BadValue("price", text, "price")
    return text


def check_count(field: str, text: str, low: int, high: int) -> int:
    """A whole number from `low` to `high`, typed in ASCII digits (int() would also take "²" or "١")."""
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and low <= int(text) <= high):
        raise BadValue(field, text, field)
    return int(text)


@dataclass(frozen=True)
class NewCourse:
    """`course add NAME LOCATION CAPACITY YYYY-MM-DD HH:MM-HH:MM[,…] [price=…] [min=…] [deadline=…]`"""

    name: str
    location: str
    capacity: int
    sessions: list[LocalSession]
    price: str | None = None
    min_participants: int | None = None
    deadline_days: int = 0


def parse_new_course(args: str) -> NewCourse:
    """The `course add` line; a name or location with spaces is quoted. BadValue names what is wrong."""
    words = split_words(args)
    if len(words) < 5:
        raise BadValue("line", args.strip(), "usage")
    name, location, capacity = words[0], words[1], check_capacity(words[2])
    options: dict[str, str] = {}
    rest = []
    for word in words[3:]:
        option = OPTION.match(word)
        if option:
            options[OPTION_NAMES[option.group(1).lower()]] = option.group(2)
        else:
            rest.append(word)
    lines = [line.strip() for line in " ".join(rest).split(",") if line.strip()]
    minimum = options.get("min")
    return NewCourse(
        name, location, capacity, parse_sessions(lines),
        price=check_price(options["price"]) if "price" in options else None,
        min_participants=check_count("min", minimum, 1, capacity) if minimum is not None else None,
        deadline_days=check_count("deadline", options.get("deadline", "0"), 0, MAX_DEADLINE_DAYS))
