"""The typed form, pure: reading `book …` and `move ID …`, and writing the commands that buttons run."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from handlers.context import Refusal
from handlers.messages import Choice
from handlers.rules.words import (
    FIRST_YEAR,
    LAST_YEAR,
    OutOfRange,
    clock_minutes,
    first_word,
    fold,
    hhmm,
    iso_date,
    parse_id,
)

ANY = "*"  # "any free staff member"
GRID_MINUTES = 5  # appointments start on the 5-minute cells that slot_claim guards

LOCATION_WORDS = frozenset({"at", "in"})
STAFF_WORDS = frozenset({"with", "bei", "mit"})
ANY_WORDS = frozenset({"any", "anyone", "anybody", "egal", "beliebig", "jemand", "*"})
DATE_WORDS = frozenset({"on", "am"})
TIME_WORDS = frozenset({"at", "um"})
FILLER = frozenset({"uhr", "h", "o'clock"})
KEYWORDS = LOCATION_WORDS | STAFF_WORDS | DATE_WORDS | TIME_WORDS

# (day, minute or None) → the command a button runs
Commander = Callable[[date, "int | None"], str]


# ---- parsing the typed form (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class BookingQuery:
    """What a typed or tapped `book …` asks for so far; None means not chosen yet."""

    service: str | None = None
    location: str | None = None
    staff: str | None = None  # a staff member's name, or ANY
    day: date | None = None
    minute: int | None = None  # minutes after local midnight


def longest_name(tokens: list[str], names: list[str]) -> tuple[str | None, int]:
    """The longest of `names` that the first tokens spell (case-insensitive), and how many tokens it takes."""
    index = {fold(name): name for name in names}
    for count in range(len(tokens), 0, -1):
        name = index.get(fold(" ".join(tokens[:count])))
        if name is not None:
            return name, count
    return None, 0


def staff_name(tokens: list[str], names: list[str]) -> tuple[str | None, int]:
    """A staff member's full name, or one word that names exactly one of them (a first or last name)."""
    name, used = longest_name(tokens, names)
    if name is not None or not tokens:
        return name, used
    hits = [n for n in names if fold(tokens[0]) in fold(n).split()]
    return (hits[0], 1) if len(hits) == 1 else (None, 0)


def leading_words(tokens: list[str]) -> str:
    """The words before the first date, time or keyword: what the speaker meant as a name."""
    taken = []
    for token in tokens:
        if token[:1].isdigit() or fold(token) in KEYWORDS:
            break
        taken.append(token)
    return " ".join(taken or tokens[:1])[:60]


def read_date(token: str) -> date:
    """YYYY-MM-DD as a date in the years the desk works with, or a refusal that quotes what was typed."""
    try:
        return iso_date(token)
    except OutOfRange:
        raise Refusal("booking_date_range", value=token, first=FIRST_YEAR, last=LAST_YEAR) from None
    except ValueError:
        raise Refusal("booking_bad_format", value=token[:20]) from None


def read_time(token: str) -> int:
    """HH:MM as minutes after midnight, on the 5-minute grid."""
    try:
        minute = clock_minutes(token)
    except ValueError:
        raise Refusal("booking_bad_format", value=token[:20]) from None
    if minute % GRID_MINUTES:
        raise Refusal("booking_off_grid", value=token)
    return minute


def read_moment(token: str, found: dict) -> None:
    """A token that starts with a digit is a time (with a colon) or a date."""
    if ":" in token:
        found["minute"] = read_time(token)
    else:
        found["day"] = read_date(token)


def parse_booking(text: str, services: list[str], locations: list[str], staff: list[str]) -> BookingQuery:
    """Read `SERVICE [at|in LOCATION] [with|bei STAFF|any] [[on|am] YYYY-MM-DD] [[at|um] HH:MM] [STAFF]`."""
    tokens = text.split()
    if not tokens:
        return BookingQuery()
    service, used = longest_name(tokens, services)
    if service is None:
        raise Refusal("booking_unknown_service", value=leading_words(tokens), services=sorted(services),
                      choices=[Choice(name, f"book {name}") for name in services])
    found: dict = {"service": service}
    rest = tokens[used:]
    while rest:
        rest = read_part(rest, found, locations, staff)
    if "minute" in found and "day" not in found:
        raise Refusal("booking_missing_date", time=hhmm(found["minute"]))
    return BookingQuery(**found)


def read_part(rest: list[str], found: dict, locations: list[str], staff: list[str]) -> list[str]:
    """Read one part of a typed booking into `found`; return the words left."""
    head, tail = fold(rest[0]), rest[1:]
    if head in FILLER:
        return tail
    if head in TIME_WORDS | DATE_WORDS and tail and tail[0][:1].isdigit():
        read_moment(tail[0], found)
        return tail[1:]
    if rest[0][:1].isdigit():
        read_moment(rest[0], found)
        return tail
    if head in LOCATION_WORDS and tail:
        return read_location(tail, locations, found)
    if head in STAFF_WORDS and tail:
        return read_staff(tail, staff, found)
    name, used = longest_name(rest, locations)  # a bare location, or the contract's trailing [staff]
    if name is not None:
        found["location"] = name
        return rest[used:]
    return read_staff(rest, staff, found)


def read_location(words: list[str], locations: list[str], found: dict) -> list[str]:
    name, used = longest_name(words, locations)
    if name is None:
        raise Refusal("booking_unknown_location", value=leading_words(words), locations=sorted(locations))
    found["location"] = name
    return words[used:]


def read_staff(words: list[str], staff: list[str], found: dict) -> list[str]:
    if fold(words[0]) in ANY_WORDS:
        found["staff"] = ANY
        return words[1:]
    name, used = staff_name(words, staff)
    if name is None:
        raise Refusal("booking_unknown_staff", value=leading_words(words), staff=sorted(staff))
    found["staff"] = name
    return words[used:]


def book_command(q: BookingQuery) -> str:
    """The typed form of a query: what a button runs, and what a customer could type by email."""
    parts = ["book", q.service or ""]  # every command a button runs names its service
    if q.minute is not None and q.day is not None:  # a typed time always comes with its day
        parts += [q.day.isoformat(), hhmm(q.minute)]
        if q.staff is not None and q.staff != ANY:
            parts.append(q.staff)
        elif q.location:
            parts += ["at", q.location]
        return " ".join(parts)
    if q.location:
        parts += ["at", q.location]
    if q.staff:
        parts += ["with", "any" if q.staff == ANY else q.staff]
    if q.day:
        parts += ["on", q.day.isoformat()]
    return " ".join(parts)


def booking_commander(query: BookingQuery) -> Commander:
    """Buttons that complete `query` with a day and a time."""
    return lambda day, minute: book_command(replace(query, day=day, minute=minute))


def move_commander(number: int) -> Commander:
    """Buttons that move appointment `number` to a day and a time."""
    def command(day: date, minute: int | None) -> str:
        return " ".join(["move", str(number), day.isoformat(), *([hhmm(minute)] if minute is not None else [])])
    return command


def split_id(args: str) -> tuple[int, str]:
    """`12 rest…` or `#12 rest…` → (12, 'rest…')."""
    head, rest = first_word(args)
    number = parse_id(head)
    if number is None:
        raise Refusal("booking_bad_id", value=head[:20])
    return number, rest.strip()


def parse_move(text: str) -> tuple[date | None, int | None, str]:
    """`[on] YYYY-MM-DD [[at] HH:MM] [message]` → (day, minute, message)."""
    word, rest = first_word(text)
    if fold(word) in DATE_WORDS:
        word, rest = first_word(rest)
    if not word:
        return None, None, ""
    day = read_date(word)
    word, tail = first_word(rest)
    if fold(word) in TIME_WORDS:
        word, tail = first_word(tail)
    if not word[:1].isdigit():
        return day, None, rest.strip()
    minute = read_time(word)
    filler, after = first_word(tail)
    return day, minute, (after if fold(filler) in FILLER else tail).strip()
