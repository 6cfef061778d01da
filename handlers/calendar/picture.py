"""`week` as a picture: what the speaker may see of a week, gathered in the unit of work as plain data.

The PNG itself is drawn later (Reply.later), in a thread once the transaction is over; here only the
data is put together: the lanes (one per staff member shown), the hours down the side, the appointments
as blocks, closures and public holidays as shaded spans, and the words around them.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from handlers.calendar.lookup import local_date, locations, staff_members
from handlers.calendar.views import CalendarView, ClosureView, Entry, HolidayNote, calendar_view, view_reply
from handlers.calendar.words import parse_when
from handlers.context import Context
from handlers.messages import Attachment, Reply
from handlers.pictures import week
from handlers.rules.words import hhmm, split_words
from storage.models import OpeningHours, StaffHours
from templates import has_word

# The hours shown when nothing says otherwise (no opening hours, nothing booked).
DEFAULT_HOURS = (8, 18)
WHOLE_DAY = (0, 1440)


@dataclass(frozen=True)
class WeekFile:
    """The week's PNG, owed by a reply (Reply.later): drawn in a thread once the transaction is over."""

    name: str
    picture: week.WeekPicture
    names: tuple[int, ...] = ()  # whom it shows by name: its lanes' staff and its blocks' customers

    def __call__(self) -> Attachment:
        return Attachment(self.name, "image/png", week.render_week(self.picture), self.names)


async def show_week(ctx: Context, args: str) -> list[Reply]:
    """`week [DATE] [STAFF]`: Monday to Sunday of the week with that date, in words and as a picture."""
    day, who = parse_when(split_words(args), local_date(ctx, ctx.now))
    monday = day - timedelta(days=day.weekday())
    view = await calendar_view(ctx, [monday + timedelta(days=i) for i in range(7)], who)
    reply = await view_reply(ctx, view)
    reply.later.append(await week_file(ctx, view))
    return [reply]


async def week_file(ctx: Context, view: CalendarView) -> WeekFile:
    """The week's picture as data to draw: lanes, hours, blocks, shades and the words around them."""
    tz = ZoneInfo(ctx.tz)
    lanes = await lane_staff(ctx, view)
    lane_of = {staff_id: index for index, (staff_id, _) in enumerate(lanes)}
    shown = [(entry, block) for index, day in enumerate(view.days) for entry in day.entries
             if (block := entry_block(index, day.day, entry, lane_of, tz)) is not None]
    blocks = [block for _, block in shown]
    shades = [shade for index, day in enumerate(view.days) for closure in day.closures
              if (shade := closure_shade(ctx, index, day.day, closure, lane_of, tz)) is not None]
    places = {place.name for place in await locations(ctx)}
    shades += [holiday_shade(ctx, index, note, places) for index, day in enumerate(view.days) for note in day.holidays]
    first, last = hour_span([*(await working_hours(ctx, list(lane_of))), *((b.start, b.end) for b in blocks),
                             *((s.start, s.end) for s in shades if (s.start, s.end) != WHOLE_DAY)])
    days = [d.day for d in view.days]
    picture = week.WeekPicture(
        title=ctx.word("week_picture.title", staff=view.staff, week=days[0].isocalendar().week, first=days[0],
                       last=days[-1]),
        days=tuple(ctx.word("week_picture.day", day=d) for d in days), lanes=tuple(name for _, name in lanes),
        first_hour=first, last_hour=last, blocks=tuple(blocks), shades=tuple(shades),
        legend=week.Legend(ctx.word("week_picture.held"), ctx.word("week_picture.requested"),
                           ctx.word("week_picture.closed"), services_shown(blocks)),
        quiet_days=tuple(i for i, d in enumerate(days) if d.weekday() >= 5))
    names = {*lane_of, *(entry.customer_id for entry, _ in shown)}
    return WeekFile(ctx.word("week_picture.file", first=days[0].isoformat()), picture, tuple(sorted(names)))


async def lane_staff(ctx: Context, view: CalendarView) -> list[tuple[int, str]]:
    """One lane per staff member shown: the one asked for, or everyone with a calendar (and anyone else
    with an appointment that week), by name."""
    if view.scope is not None:
        return [(view.scope[0], view.staff or "")]
    lanes = {m.id: m.name for m in await staff_members(ctx) if m.has_calendar}
    for day in view.days:
        for entry in day.entries:
            lanes.setdefault(entry.staff_id, entry.staff)
    return sorted(lanes.items(), key=lambda lane: (lane[1].casefold(), lane[0]))


async def working_hours(ctx: Context, staff_ids: list[int]) -> list[tuple[int, int]]:
    """The earliest start and latest end of the opening hours and of the lanes' bookable times."""
    spans = [(await ctx.session.execute(
        select(func.min(OpeningHours.start_minute), func.max(OpeningHours.end_minute)))).one()]
    if staff_ids:
        spans.append((await ctx.session.execute(
            select(func.min(StaffHours.start_minute), func.max(StaffHours.end_minute))
            .where(StaffHours.person_id.in_(staff_ids)))).one())
    return [(start, end) for start, end in spans if start is not None and end is not None]


def hour_span(spans: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """Whole hours around every span (local minutes); DEFAULT_HOURS when there is none."""
    spans = list(spans)
    if not spans:
        return DEFAULT_HOURS
    first = min(start for start, _ in spans) // 60
    last = math.ceil(max(end for _, end in spans) / 60)
    return max(first, 0), min(max(last, first + 1), 24)


def minute_on(day: date, moment: datetime, tz: ZoneInfo) -> int:
    """A moment as local minutes of `day`: 0 if it lies before the day, 1440 if after."""
    local = moment.astimezone(tz)
    if local.date() != day:
        return 0 if local.date() < day else 1440
    return local.hour * 60 + local.minute


def entry_block(index: int, day: date, entry: Entry, lane_of: dict[int, int], tz: ZoneInfo) -> week.Block | None:
    if entry.staff_id not in lane_of:
        return None
    start, end = minute_on(day, entry.start, tz), minute_on(day, entry.end, tz)
    state = entry.status if entry.status in (week.HELD, week.REQUESTED) else week.CONFIRMED
    return week.Block(index, lane_of[entry.staff_id], start, end, entry.colour or "", f"{hhmm(start)}–{hhmm(end)}",
                      entry.service, entry.customer, state)


def closure_shade(ctx: Context, index: int, day: date, closure: ClosureView, lane_of: dict[int, int],
                  tz: ZoneInfo) -> week.Shade | None:
    """A closure on one day: in its staff member's lane, or across the day for the whole business."""
    if closure.staff_id is not None and closure.staff_id not in lane_of:
        return None
    lane = lane_of[closure.staff_id] if closure.staff_id is not None else None
    key = f"week_picture.{closure.kind}"
    label = ctx.word(key) if has_word(ctx.lang, key) else closure.kind
    return week.Shade(index, minute_on(day, closure.start, tz), minute_on(day, closure.end, tz), label, lane)


def holiday_shade(ctx: Context, index: int, note: HolidayNote, places: set[str]) -> week.Shade:
    """A public holiday across its whole day, with its name, and where it closes unless that is everywhere."""
    label = note.name
    if note.locations and set(note.locations) != places:
        label = ctx.word("week_picture.holiday_at", name=note.name, places=", ".join(note.locations))
    return week.Shade(index, 0, 1440, label, None, week.HOLIDAY)


def services_shown(blocks: Iterable[week.Block]) -> tuple[tuple[str, str], ...]:
    """(colour, service) for the legend, once per service, by name."""
    return tuple(sorted({(b.colour, b.title) for b in blocks}, key=lambda s: s[1].casefold()))

