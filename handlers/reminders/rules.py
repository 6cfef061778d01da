"""The rules of reminders and agendas, pure: offsets as the setup file writes them, job keys, due times."""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from handlers.rules.availability import local_minute

DEFAULT_REMINDERS = ("24h",)
MAX_REMINDERS = 5  # more would be noise, not help
MAX_OFFSET_MINUTES = 90 * 24 * 60  # 90 days
OFFSET = re.compile(r"^(\d{1,6})\s*([hm])$")


def parse_offset(text: str) -> int:
    """ "24h" or "90m" as minutes before the appointment; ValueError says what is wrong."""
    match = OFFSET.match(text.strip().lower())
    if not match:
        raise ValueError('expected hours or minutes like "24h" or "90m"')
    minutes = int(match[1]) * (60 if match[2] == "h" else 1)
    if minutes == 0:
        raise ValueError("a reminder must come before the appointment, not at its start")
    if minutes > MAX_OFFSET_MINUTES:
        raise ValueError("at most 90 days (2160h) before")
    return minutes


def offset_label(minutes: int) -> str:
    """The one spelling of an offset: whole hours as "24h", anything else as "90m"."""
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def utc_text(moment: datetime) -> str:
    """A moment as it is written into job keys: UTC, to the minute (appointments start on a 5-minute grid)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def reminder_key(appointment_id: int, label: str, start: datetime) -> str:
    """One job per appointment, offset and start: a move is a new start, so its reminders are new jobs."""
    return f"{appointment_id}:{label}:{utc_text(start)}"


def reminders_ahead(start: datetime, labels: Iterable[str], now: datetime) -> list[tuple[str, datetime]]:
    """(label, due) of each reminder that is still ahead: an appointment booked later than a reminder's time
    gets no late reminder for it."""
    found = []
    for label in labels:
        due = start - timedelta(minutes=parse_offset(label))
        if due > now:
            found.append((label, due))
    return found


def agenda_key(staff_id: int, day: date) -> str:
    return f"{staff_id}:{day.isoformat()}"


def agenda_due(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """When the agenda for `day` goes out: `minute` after local midnight on the wall clock (DST-correct)."""
    return local_minute(day, minute, tz)


def first_agenda_day(minute: int, tz: ZoneInfo, now: datetime, earliest: date) -> date:
    """The first day from `earliest` on whose agenda time is still ahead of `now`."""
    day = max(earliest, now.astimezone(tz).date() - timedelta(days=1))
    while agenda_due(day, minute, tz) <= now:
        day += timedelta(days=1)
    return day
