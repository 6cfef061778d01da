"""Hours: a location's opening hours and each staff member's bookable times, by weekday."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from sqlalchemy import delete, select

from handlers.appointments import holiday_codes
from handlers.calendar.lookup import Named, find_staff, local_date, locations
from handlers.calendar.rights import Member, actor, myself, require
from handlers.calendar.words import HoursRequest, Invalid, parse_hours, week_rows
from handlers.context import Context
from handlers.messages import Reply
from handlers.rules.holidays import holidays_between
from handlers.rules.words import fold, hhmm, split_words
from storage.models import Location, OpeningHours, StaffHours


async def hours(ctx: Context, args: str) -> list[Reply]:
    """`hours LOCATION DAY RANGES` or `hours STAFF LOCATION DAY RANGES`; alone, every week's hours."""
    words = split_words(args)
    if not words:
        return await show_all_hours(ctx)
    request = parse_hours(words)
    staff, location = await hours_target(ctx, list(request.head))
    me = await actor(ctx)
    if staff is None:
        require(me.may("settings"), "settings")
        await replace_opening(ctx, location, request)
    else:
        require(me.admin or (staff.id == me.person_id and "own_hours" in me.rights), "own_hours")
        if not staff.has_calendar:
            raise Invalid("no_calendar", value=staff.name)
        await replace_staff_hours(ctx, staff, location, request)
    return [ctx.say("calendar_hours", tables=[await hours_table(ctx, location, staff)], changed=True)]


async def hours_target(ctx: Context, head: list[str]) -> tuple[Member | None, Named]:
    """Split 'Lukas Huber Linz' into the staff member (if any) and the location at the end."""
    places = await locations(ctx)
    for cut in range(len(head)):
        found = [p for p in places if fold(p.name) == fold(" ".join(head[cut:]))]
        if found:
            return (await find_staff(ctx, " ".join(head[:cut])) if cut else None), found[0]
    raise Invalid("location", value=head[-1], known=[p.name for p in places])


async def replace_opening(ctx: Context, location: Named, request: HoursRequest) -> None:
    """Set a location's opening hours on one weekday (none: closed that day)."""
    await ctx.session.execute(delete(OpeningHours).where(
        OpeningHours.location_id == location.id, OpeningHours.weekday == request.weekday))
    ctx.session.add_all(OpeningHours(location_id=location.id, weekday=request.weekday, start_minute=s, end_minute=e)
                        for s, e in request.ranges)
    await ctx.audit("opening_hours_set", f"location:{location.id}", weekday=request.weekday,
                    ranges=[f"{hhmm(s)}-{hhmm(e)}" for s, e in request.ranges])


async def replace_staff_hours(ctx: Context, staff: Member, location: Named, request: HoursRequest) -> None:
    """Set a staff member's bookable times at one location on one weekday; one person is in one place at once."""
    await check_no_clash(ctx, staff, location, request)
    await ctx.session.execute(delete(StaffHours).where(
        StaffHours.person_id == staff.id, StaffHours.location_id == location.id,
        StaffHours.weekday == request.weekday))
    ctx.session.add_all(StaffHours(person_id=staff.id, location_id=location.id, weekday=request.weekday,
                                   start_minute=s, end_minute=e) for s, e in request.ranges)
    await ctx.audit("staff_hours_set", f"staff:{staff.id}", location=location.name, weekday=request.weekday,
                    ranges=[f"{hhmm(s)}-{hhmm(e)}" for s, e in request.ranges])


async def check_no_clash(ctx: Context, staff: Member, location: Named, request: HoursRequest) -> None:
    """Refuse bookable times that overlap the same person's times at another location that weekday."""
    rows = await ctx.session.execute(
        select(Location.name, StaffHours.start_minute, StaffHours.end_minute)
        .join(Location, Location.id == StaffHours.location_id)
        .where(StaffHours.person_id == staff.id, StaffHours.weekday == request.weekday,
               StaffHours.location_id != location.id))
    for other, start, end in rows:
        if any(s < end and start < e for s, e in request.ranges):
            raise Invalid("hours_clash", value=staff.name, location=other, range=f"{hhmm(start)}–{hhmm(end)}")


@dataclass(frozen=True)
class HoursTable:
    location: str
    staff: str | None
    week: list[tuple[int, list[str]]]
    holidays_code: str | None = None  # opening hours only: the public holidays that close the location
    holidays: list[tuple[date, str]] = field(default_factory=list)  # those within the booking reach
    holidays_until: date | None = None


async def hours_table(ctx: Context, location: Named, staff: Member | None) -> HoursTable:
    """The week of a location's opening hours (with its coming public holidays), or of a staff member's
    bookable times there."""
    if staff is None:
        query = select(OpeningHours.weekday, OpeningHours.start_minute, OpeningHours.end_minute).where(
            OpeningHours.location_id == location.id)
    else:
        query = select(StaffHours.weekday, StaffHours.start_minute, StaffHours.end_minute).where(
            StaffHours.location_id == location.id, StaffHours.person_id == staff.id)
    rows = [tuple(r) for r in await ctx.session.execute(query)]
    table = HoursTable(location.name, staff.name if staff else None, week_rows(rows))
    return table if staff is not None else await with_holidays(ctx, table, location)


async def with_holidays(ctx: Context, table: HoursTable, location: Named) -> HoursTable:
    """The table with the public holidays that close the location from today to the last bookable day."""
    code = (await holiday_codes(ctx.uow)).at(location.id)
    if code is None:
        return table
    today = local_date(ctx, ctx.now)
    until = today + timedelta(days=ctx.business.max_days_ahead if ctx.business else 60)
    found = holidays_between(code, today, until, ctx.lang)
    return replace(table, holidays_code=code, holidays=sorted(found.items()), holidays_until=until)


async def show_all_hours(ctx: Context) -> list[Reply]:
    """Every location's opening hours, then the speaker's own bookable times."""
    places = await locations(ctx)
    tables = [await hours_table(ctx, place, None) for place in places]
    me = await actor(ctx)
    if me.has_calendar:
        own = [await hours_table(ctx, place, myself(ctx, me)) for place in places]
        tables += [t for t in own if any(ranges for _, ranges in t.week)]
    return [ctx.say("calendar_hours", tables=tables, changed=False)]
