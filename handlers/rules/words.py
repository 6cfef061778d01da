"""The words people type, pure: dates, clocks, ids, the first word, quoted names and how names compare."""
from __future__ import annotations

import re
from datetime import date

# ---- dates ----------------------------------------------------------------------------------------

# The years a typed date may name: near year 1 or 9999, turning a day into UTC overflows.
FIRST_YEAR, LAST_YEAR = 2000, 2100
ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class OutOfRange(ValueError):
    """A real date outside the years the desk works with (FIRST_YEAR to LAST_YEAR)."""


def plausible(day: date) -> bool:
    """True if the day lies in the years the desk works with (FIRST_YEAR to LAST_YEAR)."""
    return FIRST_YEAR <= day.year <= LAST_YEAR


def looks_like_date(text: str) -> bool:
    """YYYY-MM-DD in shape, whether or not the day exists."""
    return ISO_DATE.match(text) is not None


def iso_date(text: str) -> date:
    """YYYY-MM-DD as a date; ValueError if it is none, OutOfRange if it lies outside FIRST_YEAR…LAST_YEAR."""
    match = ISO_DATE.match(text)
    if not match:
        raise ValueError(f"not a date: {text!r}")
    day = date(*map(int, match.groups()))
    if not plausible(day):
        raise OutOfRange(f"outside {FIRST_YEAR}-{LAST_YEAR}: {text!r}")
    return day


# ---- clocks ---------------------------------------------------------------------------------------

CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def clock_minutes(text: str) -> int:
    """'09:30' as minutes after midnight (570); ValueError for anything else."""
    match = CLOCK.match(text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"not a time: {text!r}")
    return int(match[1]) * 60 + int(match[2])


def hhmm(minute: int) -> str:
    """Minutes after midnight as the HH:MM people type."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


# ---- ids ------------------------------------------------------------------------------------------

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers
ID = re.compile(r"^#?([0-9]+)$")  # ASCII only: str.isdigit() also takes "²", which int() refuses


def known_id(number: int) -> int:
    """A typed id as it may be looked up: one beyond the column's range is 0, which no row has.

    Without this a long number is an error in PostgreSQL, not "unknown".
    """
    return number if number <= MAX_ID else 0


def parse_id(text: str) -> int | None:
    """'12' or '#12' → 12; anything else → None. An id beyond the column's range is 0 (unknown)."""
    match = ID.match(text.strip())
    if match is None:
        return None
    digits = match.group(1).lstrip("0") or "0"
    return known_id(int(digits)) if len(digits) <= len(str(MAX_ID)) else 0  # int() refuses 4300 digits


# ---- the first word and quoted names --------------------------------------------------------------

# "…", „…“ (German), “…” (English), '…', «…» and »…«. A single quote opens a name only at the start of a
# word and closes only at its end, so O'Brien stays one word.
TOKEN = re.compile(r'"([^"]*)"|„([^“”"]*)[“”"]|“([^”"]*)[”"]|”([^”"]*)”|«([^»]*)»|»([^«]*)«'
                   r"|'([^']*)'(?!\S)|(\S+)")
QUOTE_MARKS = frozenset('"„“”«»')  # never in a group name, so quoting one always works


def first_word(text: str) -> tuple[str, str]:
    """The first word and the rest as typed ('12 Anna Berger' → ('12', 'Anna Berger')): a personal message
    in the rest keeps its line breaks. Quotes mean nothing here; `split_first` reads a quoted name."""
    parts = (text or "").strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], (parts[1] if len(parts) > 1 else "")


def token(found: re.Match[str]) -> str:
    return next(g for g in found.groups() if g is not None).strip()


def split_words(text: str) -> list[str]:
    """Split on spaces; a quoted name ("…", „…“, “…”, '…', «…») is one word, without its quotes and the
    spaces inside them; an empty quoted word is dropped."""
    return [word for word in map(token, TOKEN.finditer(text or "")) if word]


def split_first(text: str) -> tuple[str, str]:
    """The first word (a quoted name counts as one, quotes taken off) and the rest of the text as typed."""
    text = (text or "").strip()
    found = TOKEN.match(text)
    if not found:
        return "", ""
    return token(found), text[found.end():].strip()


def unquote(text: str) -> str:
    """A whole name that may be quoted: "VIP Kunden" → VIP Kunden; an unquoted name stays as typed."""
    first, rest = split_first(text)
    return first if not rest and first != (text or "").strip() else " ".join((text or "").split())


def fold(text: str) -> str:
    """A name as it is compared: any case, any spacing."""
    return " ".join(text.split()).casefold()
