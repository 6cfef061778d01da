"""The day and week views: who sees whose appointments and closures, grouped by day."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import aliased

from handlers.appointments import holiday_codes, live_condition
from handlers.calendar.lookup import find_staff, local_date, locations
from handlers.calendar.rights import Actor, actor, require
from handlers.calendar.words import EVERYONE_WORDS, colour_dot, parse_when
from handlers.context import Context
from handlers.messages import Reply
from handlers.rules.availability import day_bounds
from handlers.rules.holidays import holidays_between
from handlers.rules.words import fold, split_words
from storage.db import UnitOfWork
from storage.models import Appointment, Closure, Location, Person, Service


@dataclass(frozen=True)
class Entry:
    """One line of the calendar."""

    id: int
    start: datetime
    end: datetime
    status: str
    service: str
    colour: str | None
    dot: str
    staff: str
    customer: str
    location: str | None
    staff_id: int = 0
    customer_id: int = 0


@dataclass(frozen=True)
class ClosureView:
    kind: str
    start: datetime
    end: datetime
    staff: str | None  # None: the whole business
    staff_id: int | None = None

    @property
    def last(self) -> datetime:
        """An instant on the last day a whole-day closure covers."""
        return self.end - timedelta(seconds=1)


@dataclass(frozen=True)
class HolidayNote:
    """A public holiday on one day and the locations it closes (none named: the business has no location)."""

    name: str
    locations: tuple[str, ...]


@dataclass(frozen=True)
class DayView:
    day: date
    closures: list[ClosureView]
    entries: list[Entry]
    holidays: list[HolidayNote] = field(default_factory=list)


def group_days(days: Sequence[date], tz: ZoneInfo, entries: Sequence[Entry], closures: Sequence[ClosureView],
               holidays: Mapping[date, list[HolidayNote]] | None = None) -> list[DayView]:
    """Each day with the appointments that start on it, the closures that touch it and its public holidays."""
    grouped = []
    for day in days:
        start, end = day_bounds(day, tz)
        grouped.append(DayView(day, [c for c in closures if c.start < end and c.end > start],
                               [e for e in entries if start <= e.start < end], list((holidays or {}).get(day, []))))
    return grouped


async def day_holidays(uow: UnitOfWork, first: date, last: date, lang: str) -> dict[date, list[HolidayNote]]:
    """The public holidays from `first` to `last` (local dates), named in `lang`, each with the locations it
    closes: what the day and week views list, and what a week picture may shade."""
    codes = await holiday_codes(uow)
    names: dict[int, str] = {i: name for i, name in await uow.session.execute(select(Location.id, Location.name))}
    places: dict[str | None, list[str]] = {}
    for location, code in sorted(codes.locations.items()):
        places.setdefault(code, []).append(names[location])
    if not codes.locations:  # no location yet: the business's own holidays
        places[codes.business] = []
    found: dict[date, list[HolidayNote]] = {}
    for code, where in places.items():
        for day, name in holidays_between(code, first, last, lang).items():
            found.setdefault(day, []).append(HolidayNote(name, tuple(where)))
    return {day: found[day] for day in sorted(found)}


async def show_day(ctx: Context, args: str) -> list[Reply]:
    """`day [DATE] [STAFF]`: one day of the calendar."""
    day, who = parse_when(split_words(args), local_date(ctx, ctx.now))
    return await show_days(ctx, [day], who)


@dataclass(frozen=True)
class CalendarView:
    """What the speaker may see of some days: whose calendar (scope None: everyone's), and each day."""

    scope: list[int] | None
    staff: str | None
    days: list[DayView]


async def show_days(ctx: Context, days: list[date], who: str | None) -> list[Reply]:
    """Render the calendar for consecutive days, limited to what the speaker may see."""
    return [await view_reply(ctx, await calendar_view(ctx, days, who))]


async def calendar_view(ctx: Context, days: list[date], who: str | None) -> CalendarView:
    """The appointments, closures and public holidays of consecutive days that the speaker may see."""
    scope, name = await view_scope(ctx, await actor(ctx), who)
    tz = ZoneInfo(ctx.tz)
    start, end = day_bounds(days[0], tz)[0], day_bounds(days[-1], tz)[1]
    entries = await entries_between(ctx, start, end, scope)
    closures = await closures_between(ctx, start, end, scope)
    holidays = await day_holidays(ctx.uow, days[0], days[-1], ctx.lang)
    return CalendarView(scope, name, group_days(days, tz, entries, closures, holidays))


async def view_reply(ctx: Context, view: CalendarView) -> Reply:
    return ctx.say("calendar_day", days=view.days, staff=view.staff, many_locations=len(await locations(ctx)) > 1)


async def view_scope(ctx: Context, me: Actor, who: str | None) -> tuple[list[int] | None, str | None]:
    """Whose appointments the speaker reads: one's own, or (admins, assistants) anyone's or all."""
    if who is not None and fold(who) not in EVERYONE_WORDS:
        staff = await find_staff(ctx, who)
        if staff.id != me.person_id:
            require(me.sees_all, "see_others")
        return [staff.id], staff.name
    if me.sees_all:
        return None, None
    return [me.person_id], ctx.person.name


async def entries_between(ctx: Context, start: datetime, end: datetime, scope: list[int] | None) -> list[Entry]:
    """Live appointments overlapping [start, end), with the names a person reads, in one query."""
    staffer, customer = aliased(Person), aliased(Person)
    query = (select(Appointment.id, Appointment.start_at, Appointment.end_at, Appointment.status, Service.name,
                    Service.colour, staffer.name, customer.name, customer.id, Location.name, Appointment.staff_id)
             .join(Service, Service.id == Appointment.service_id)
             .join(staffer, staffer.id == Appointment.staff_id)
             .join(customer, customer.id == Appointment.customer_id)
             .outerjoin(Location, Location.id == Appointment.location_id)
             .where(Appointment.start_at < end, Appointment.end_at > start, live_condition(ctx.now))
             .order_by(Appointment.start_at, staffer.name))
    if scope is not None:
        query = query.where(Appointment.staff_id.in_(scope))
    return [Entry(i, s, e, status, svc, colour, colour_dot(colour), staff or "?", cust or f"#{cid}", loc, staff_id,
                  cid)
            for i, s, e, status, svc, colour, staff, cust, cid, loc, staff_id in await ctx.session.execute(query)]


async def closures_between(ctx: Context, start: datetime, end: datetime,
                           scope: list[int] | None) -> list[ClosureView]:
    """Closures touching [start, end) that concern the scope (whole-business closures always do)."""
    query = (select(Closure.kind, Closure.start_at, Closure.end_at, Person.name, Closure.staff_id)
             .outerjoin(Person, Person.id == Closure.staff_id)
             .where(Closure.start_at < end, Closure.end_at > start).order_by(Closure.start_at))
    if scope is not None:
        query = query.where(Closure.staff_id.is_(None) | Closure.staff_id.in_(scope))
    return [ClosureView(kind, s, e, name, staff_id) for kind, s, e, name, staff_id in await ctx.session.execute(query)]
