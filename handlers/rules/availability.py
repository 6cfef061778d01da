"""Pure rules for free slots: opening hours ∩ staff hours − closures − appointments − notice.

Everything is computed in UTC from local wall-clock intervals, so a day with 23 or 25 hours
(the DST change days) yields exactly the slots that fit into its real length.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
CELL = timedelta(minutes=5)  # every appointment starts and ends on this grid; claims are per cell

Interval = tuple[datetime, datetime]  # [start, end) in UTC


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    staff_ids: tuple[int, ...]


@dataclass
class StaffCalendar:
    """What one staff member offers on one day: bookable windows (UTC) and what already blocks them."""

    staff_id: int
    windows: list[Interval]
    busy: list[Interval] = field(default_factory=list)  # sorted by start


def local_minute(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of `minute` minutes after local midnight of `day` on the wall clock (1440 = next midnight)."""
    days, rest = divmod(minute, 1440)
    wall = datetime.combine(day + timedelta(days=days), time(rest // 60, rest % 60), tzinfo=tz)
    return wall.astimezone(UTC)


def local_intervals(day: date, ranges: Iterable[tuple[int, int]], tz: ZoneInfo) -> list[Interval]:
    return [(local_minute(day, a, tz), local_minute(day, b, tz)) for a, b in ranges]


def day_bounds(day: date, tz: ZoneInfo) -> Interval:
    return local_minute(day, 0, tz), local_minute(day, 1440, tz)


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                out.append((start, end))
    return sorted(out)


def subtract(windows: Sequence[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """Windows minus holes (closures, pauses)."""
    result = list(windows)
    for h_start, h_end in holes:
        cut = []
        for start, end in result:
            if h_end <= start or end <= h_start:
                cut.append((start, end))
                continue
            if start < h_start:
                cut.append((start, h_start))
            if h_end < end:
                cut.append((h_end, end))
        result = cut
    return result


def align_up(moment: datetime, anchor: datetime, step: timedelta) -> datetime:
    """The first instant at or after `moment` that lies on the step grid starting at `anchor`."""
    remainder = (moment - anchor) % step
    return moment if not remainder else moment + (step - remainder)


def slot_starts(window: Interval, length: timedelta, step: timedelta, anchor: datetime, earliest: datetime):
    start = align_up(max(window[0], earliest), anchor, step)
    while start + length <= window[1]:
        yield start
        start += step


def free_slots(calendars: Sequence[StaffCalendar], length: timedelta, step: timedelta, anchor: datetime,
               earliest: datetime, first_only: bool = False) -> list[Slot]:
    """Every start time at which at least one staff member is free for `length`; with first_only, the first one."""
    found: dict[datetime, list[int]] = {}
    for calendar in calendars:
        for window in calendar.windows:
            for start in slot_starts(window, length, step, anchor, earliest):
                if is_free(calendar.busy, start, start + length):
                    found.setdefault(start, []).append(calendar.staff_id)
                    if first_only:
                        return [Slot(start, start + length, (calendar.staff_id,))]
    return [Slot(s, s + length, tuple(found[s])) for s in sorted(found)]


def is_free(busy: Sequence[Interval], start: datetime, end: datetime) -> bool:
    """True if [start, end) overlaps none of the sorted, non-overlapping busy intervals."""
    i = bisect.bisect_left(busy, (end,))  # intervals from i on start at or after `end`
    return i == 0 or busy[i - 1][1] <= start


def cells(start: datetime, end: datetime) -> list[datetime]:
    """The 5-minute cells that [start, end) occupies (both ends lie on the grid)."""
    out, cell = [], start
    while cell < end:
        out.append(cell)
        cell += CELL
    return out


def on_grid(moment: datetime) -> bool:
    return moment.timestamp() % CELL.total_seconds() == 0


def pick_fairly(staff_ids: Sequence[int], load: dict[int, int]) -> int:
    """For "any free": the qualified staff member with the fewest live appointments, then the lowest id."""
    return min(staff_ids, key=lambda s: (load.get(s, 0), s))
