"""The calendar's words and patterns: pure parsing of what staff type, no store and no I/O."""
from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from handlers.context import Refusal
from handlers.rules.availability import day_bounds, local_minute
from handlers.rules.values import COLOUR, PRICE, parse_range
from handlers.rules.words import (
    FIRST_YEAR,
    LAST_YEAR,
    OutOfRange,
    clock_minutes,
    fold,
    hhmm,
    iso_date,
    looks_like_date,
)
from handlers.rules.words import parse_id as read_id

MAX_CLOSURE_DAYS = 366
MAX_SERVICE_MINUTES = 720

WEEKDAYS = {name: index for index, names in enumerate((
    ("mon", "monday", "mo", "montag"), ("tue", "tuesday", "di", "dienstag"),
    ("wed", "wednesday", "mi", "mittwoch"), ("thu", "thursday", "do", "donnerstag"),
    ("fri", "friday", "fr", "freitag"), ("sat", "saturday", "sa", "samstag"),
    ("sun", "sunday", "so", "sonntag"),
)) for name in names}
CLOSED = frozenset({"closed", "-", "none", "zu", "geschlossen"})
KINDS = {"sick": "sick", "krank": "sick", "vacation": "vacation", "holiday": "vacation", "urlaub": "vacation"}
EVERYONE_WORDS = frozenset({"all", "alle"})
ME = frozenset({"me", "ich", "mich"})
MODES = {"direct": "direct", "direkt": "direct", "request": "request", "anfrage": "request"}
ADD_WORDS = frozenset({"add", "new", "neu"})
DELETE_WORDS = frozenset({"delete", "remove", "löschen", "loeschen", "entfernen"})
STAFF_WORDS = frozenset({"staff", "team", "mitarbeiter"})
NOBODY = frozenset({"nobody", "none", "niemand", "keiner", "-"})
TODAY, TOMORROW = frozenset({"today", "heute"}), frozenset({"tomorrow", "morgen"})
YES = frozenset({"yes", "ja", "ok", "confirm"})
NO = frozenset({"no", "nein", "abort", "abbrechen"})
SHORT_COLOUR = re.compile(r"^#[0-9a-f]{3}$")
DATE_LIKE = re.compile(r"^\d{1,4}[-./]\d{1,2}([-./]\d{0,4})?$")  # 2026-2-3, 8.12.2026, 12/8: no staff name
PRICE_LIKE = re.compile(r"^(€\d+([.,]\d{1,4})?|\d+[.,]\d{1,4}€?|\d+€)$")  # minutes are bare digits

# The emoji nearest to a service colour: a chat cannot paint text, but it can show a dot.
DOTS = (("🔴", (221, 46, 68)), ("🟠", (244, 144, 12)), ("🟡", (253, 203, 88)), ("🟢", (120, 177, 89)),
        ("🔵", (85, 172, 238)), ("🟣", (170, 142, 214)), ("🟤", (193, 105, 79)), ("⚫", (49, 55, 61)),
        ("⚪", (230, 231, 232)))


class Invalid(Refusal):
    """Input that does not fit a command: the template names the problem, `guarded` adds the usage line."""

    def __init__(self, problem: str, **values):
        super().__init__("calendar_invalid", problem=problem, **values)


def parse_date(text: str) -> date:
    """'2026-12-07' as a date, in the years the desk works with (FIRST_YEAR to LAST_YEAR)."""
    try:
        return iso_date(text)
    except OutOfRange:
        raise Invalid("date_range", value=text, first=FIRST_YEAR, last=LAST_YEAR) from None
    except ValueError:
        raise no_such_date(text) from None


def no_such_date(text: str) -> Invalid:
    """Why a typed date is none: not written as one, too far off, or a day (2026-02-30) or month that
    does not exist, with the number of days the month has."""
    if not looks_like_date(text):
        return Invalid("date", value=text)
    year, month = int(text[:4]), int(text[5:7])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return Invalid("date_range", value=text, first=FIRST_YEAR, last=LAST_YEAR)
    if not 1 <= month <= 12:
        return Invalid("no_such_month", value=text)
    return Invalid("no_such_day", value=text, month=date(year, month, 1), days=monthrange(year, month)[1])


def parse_clock(text: str) -> int:
    """'09:30' as minutes after midnight."""
    try:
        return clock_minutes(text)
    except ValueError:
        raise Invalid("time", value=text) from None


def parse_weekday(text: str) -> int | None:
    """mon…sun or mo…so (also full English and German names) as 0…6."""
    return WEEKDAYS.get(text.casefold().rstrip(".,"))


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """'08:00-12:00,13:00-18:00' as sorted minute ranges; 'closed' or '-' as none."""
    if fold(text) in CLOSED:
        return []
    ranges = []
    for part in text.split(","):
        try:
            ranges.append(parse_range(part))
        except ValueError:
            raise Invalid("range", value=part.strip()) from None
    ranges.sort()
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        if start < end:
            raise Invalid("range_overlap", value=text.strip())
    return ranges


def parse_colour(text: str) -> str:
    """'#2E86DE' or '#2e8' as '#2e86de'."""
    value = text.strip().lower()
    if SHORT_COLOUR.match(value):
        value = "#" + "".join(c * 2 for c in value[1:])
    if not COLOUR.match(value):
        raise Invalid("colour", value=text)
    return value


def is_number(text: str) -> bool:
    """Only ASCII digits: str.isdigit() also accepts '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def parse_minutes(text: str) -> int:
    """A service length: whole minutes on the 5-minute grid every appointment lies on."""
    if not is_number(text) or int(text) % 5 or not 5 <= int(text) <= MAX_SERVICE_MINUTES:
        raise Invalid("minutes", value=text, maximum=MAX_SERVICE_MINUTES)
    return int(text)


def parse_price(text: str) -> str:
    """'€65', '65,50' or '65.00' as decimal text (money is never a float)."""
    value = text.strip("€").replace(",", ".")
    if not PRICE.match(value):
        raise Invalid("price", value=text)
    return value


def parse_id(text: str) -> int:
    """'12' or '#12' as 12 (an id too long for the database is 0, which no row has)."""
    number = read_id(text)
    if number is None:
        raise Invalid("id", value=text.strip())
    return number


@dataclass(frozen=True)
class NewService:
    name: str
    minutes: int
    colour: str | None = None
    price: str | None = None


def parse_service_add(words: list[str]) -> NewService:
    """NAME MINUTES [#colour] [price]: the name may have spaces, the extras come last."""
    words, colour, price = list(words), None, None
    while words and (words[-1].startswith("#") or PRICE_LIKE.match(words[-1])) and len(words) > 2:
        last = words.pop()
        if last.startswith("#"):
            colour = parse_colour(last)
        else:
            price = parse_price(last)
    if len(words) >= 3 and not is_number(words[-1]) and is_number(words[-2]):
        raise Invalid("colour", value=words[-1])  # a colour without its '#', most likely
    if len(words) < 2:
        raise Invalid("form")
    name = " ".join(words[:-1])
    if len(name) > 120:
        raise Invalid("name_long", value=name[:40])
    return NewService(name, parse_minutes(words[-1]), colour, price)


@dataclass(frozen=True)
class HoursRequest:
    head: tuple[str, ...]  # LOCATION, or STAFF… LOCATION
    weekday: int
    ranges: tuple[tuple[int, int], ...]


def parse_hours(words: list[str]) -> HoursRequest:
    """[STAFF] LOCATION DAY RANGES: the last weekday word with something after it splits the line."""
    for index in range(len(words) - 2, 0, -1):
        weekday = parse_weekday(words[index])
        if weekday is not None:
            ranges = parse_ranges(" ".join(words[index + 1:]))
            return HoursRequest(tuple(words[:index]), weekday, tuple(ranges))
    first_range = next((i for i, w in enumerate(words) if ":" in w or fold(w) in CLOSED), len(words))
    if first_range >= 2:
        raise Invalid("day", value=words[first_range - 1])
    raise Invalid("form")


@dataclass(frozen=True)
class AppointRequest:
    customer: str
    service: str
    day: date
    minute: int
    staff: str | None


def parse_appoint(words: list[str], service_names: Iterable[str]) -> AppointRequest:
    """CUSTOMER SERVICE DATE TIME [STAFF]; the customer is what comes before a known service name."""
    at = next((i for i, w in enumerate(words) if looks_like_date(w)), None)
    if at is None or at < 2:
        raise Invalid("form")
    if at + 1 >= len(words):
        raise Invalid("time", value="")
    customer, service = split_customer_service(words[:at], list(service_names))
    return AppointRequest(customer, service, parse_date(words[at]), parse_clock(words[at + 1]),
                          " ".join(words[at + 2:]) or None)


def split_customer_service(words: list[str], service_names: list[str]) -> tuple[str, str]:
    """'Maria Muster Massage' → ('Maria Muster', 'Massage'): the longest known service name at the end."""
    known = {fold(name) for name in service_names}
    for cut in range(1, len(words)):
        if fold(" ".join(words[cut:])) in known:
            return " ".join(words[:cut]), " ".join(words[cut:])
    raise Invalid("service", value=words[-1], known=sorted(service_names))


@dataclass(frozen=True)
class ClosureRequest:
    kind: str  # sick | vacation | pause
    first: date
    last: date
    span: tuple[int, int] | None  # local minutes for a pause; None: whole days
    who: str | None  # a staff name, "all", or None for the speaker's own calendar


def parse_off(words: list[str]) -> ClosureRequest:
    """sick|vacation FROM [TO] [STAFF|all]."""
    if not words or fold(words[0]) not in KINDS:
        raise Invalid("kind", value=words[0] if words else "")
    if len(words) < 2:
        raise Invalid("form")
    first, rest = parse_date(words[1]), words[2:]
    last = parse_date(rest.pop(0)) if rest and looks_like_date(rest[0]) else first
    if last < first:
        raise Invalid("date_order", first=first, last=last)
    if (last - first).days >= MAX_CLOSURE_DAYS:
        raise Invalid("too_long", days=MAX_CLOSURE_DAYS)
    return ClosureRequest(KINDS[fold(words[0])], first, last, None, " ".join(rest) or None)


def parse_pause(words: list[str]) -> ClosureRequest:
    """DATE HH:MM-HH:MM [STAFF|all] ('12:00 - 13:00' with spaces works too)."""
    if len(words) < 2:
        raise Invalid("form")
    day = parse_date(words[0])
    joined = len(words) >= 4 and words[2] == "-"
    text, rest = ("".join(words[1:4]), words[4:]) if joined else (words[1], words[2:])
    try:
        span = parse_range(text)
    except ValueError:
        raise Invalid("range", value=text) from None
    return ClosureRequest("pause", day, day, span, " ".join(rest) or None)


def parse_when(words: list[str], today: date) -> tuple[date, str | None]:
    """[DATE|today|tomorrow] [STAFF] for the day and week views."""
    if words and fold(words[0]) in TODAY | TOMORROW:
        return today + timedelta(days=fold(words[0]) in TOMORROW), " ".join(words[1:]) or None
    if words and (looks_like_date(words[0]) or DATE_LIKE.match(words[0])):
        return parse_date(words[0]), " ".join(words[1:]) or None  # '8.12.2026' is a date typed otherwise
    return today, " ".join(words) or None


def closure_window(request: ClosureRequest, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Whole local days (inclusive) or the pause's hours, in UTC."""
    if request.span is None:
        return day_bounds(request.first, tz)[0], day_bounds(request.last, tz)[1]
    return local_minute(request.first, request.span[0], tz), local_minute(request.first, request.span[1], tz)


def colour_dot(colour: str | None) -> str:
    """The coloured dot nearest to '#rrggbb'; a plain dot for a service without a colour."""
    if not colour or not COLOUR.match(colour):
        return "▫️"
    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return min(DOTS, key=lambda dot: sum((a - b) ** 2 for a, b in zip(rgb, dot[1])))[0]


def week_rows(rows: Iterable[tuple[int, int, int]]) -> list[tuple[int, list[str]]]:
    """(weekday, start, end) rows as seven days of 'HH:MM–HH:MM' ranges."""
    week: list[tuple[int, list[str]]] = [(day, []) for day in range(7)]
    for weekday, start, end in sorted(rows):
        week[weekday][1].append(f"{hhmm(start)}–{hhmm(end)}")
    return week
