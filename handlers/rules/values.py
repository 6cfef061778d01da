"""The value formats the setup file, the calendar and the seat orders share: colours, prices, time ranges,
seat counts."""
from __future__ import annotations

import re

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
PRICE = re.compile(r"^\d{1,9}(\.\d{1,4})?$")  # decimal text: money is never a float
RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
MAX_SEATS = 50_000  # no seat order can be larger, and no group's approval limit


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
