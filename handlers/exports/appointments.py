"""The appointment lists: `bookings [FROM [TO]]` (one's own, one's calendar, or all) and the `day`/`week` views."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from handlers.calendar.lookup import local_date
from handlers.calendar.rights import Denied, actor
from handlers.calendar.views import Entry, entries_between, view_scope
from handlers.calendar.words import parse_when
from handlers.context import Context, Refusal
from handlers.exports.request import date_range
from handlers.registry import ExportList
from handlers.rules.availability import day_bounds
from handlers.rules.roles import ADMINS
from handlers.rules.words import split_words
from storage.models import Address, Appointment, Location, Person, Service

STAFF = frozenset({"staff"})  # owners and admins imply it
BOOKING_FIELDS = ("id", "date", "start", "end", "service", "staff", "customer", "email", "location", "status",
                  "note", "created")
BOOKING_DEFAULT = ("id", "date", "start", "end", "service", "staff", "customer", "location", "status")
DAY_FIELDS = ("id", "date", "start", "end", "service", "staff", "customer", "location", "status")


def gone(now: datetime):
    """Holds that ran out never were bookings: they are left out, whatever the cleanup job did yet."""
    return or_(Appointment.status == "expired",
               and_(Appointment.status == "held", Appointment.hold_expires_at <= now))


async def booking_scope(ctx: Context):
    """Which appointments the asker may export: all (admins, assistants who book for colleagues), those
    in their own calendar and their own (staff), or their own (everyone else). None: all."""
    if ctx.roles & ADMINS:
        return None
    if "staff" in ctx.roles:
        me = await actor(ctx)
        if me.sees_all:
            return None
        return (Appointment.staff_id == ctx.person.id) | (Appointment.customer_id == ctx.person.id)
    return Appointment.customer_id == ctx.person.id


def window(ctx: Context, column: Any, first: date | None, last: date | None) -> list:
    """`column` on the days from `first` to `last` (both included, either open), in the business's timezone."""
    zone = ZoneInfo(ctx.tz)
    where = []
    if first is not None:
        where.append(column >= day_bounds(first, zone)[0])
    if last is not None:
        where.append(column < day_bounds(last, zone)[1])
    return where


async def booking_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    """`export bookings [FROM [TO]]`: every appointment in the window the asker may see, with its status."""
    first, last, rest = date_range(split_words(args))
    if rest:
        raise Refusal("export_bad_arguments", list="bookings", value=" ".join(rest)[:60],
                      usage=ctx.word("export_args.bookings"))
    scope = await booking_scope(ctx)
    staffer, customer = aliased(Person), aliased(Person)
    email = (select(func.min(Address.address)).where(Address.person_id == Appointment.customer_id,
                                                     Address.kind == "email").scalar_subquery())
    query = (select(Appointment.id, Appointment.start_at, Appointment.end_at, Appointment.status, Service.name,
                    staffer.name, customer.name, Appointment.customer_id, email, Location.name, Appointment.note,
                    Appointment.created_at)
             .join(Service, Service.id == Appointment.service_id)
             .join(staffer, staffer.id == Appointment.staff_id)
             .join(customer, customer.id == Appointment.customer_id)
             .outerjoin(Location, Location.id == Appointment.location_id)
             .where(~gone(ctx.now), *window(ctx, Appointment.start_at, first, last))
             .order_by(Appointment.start_at, Appointment.id))
    if scope is not None:
        query = query.where(scope)
    zone, team = ZoneInfo(ctx.tz), bool(ctx.roles & STAFF)
    return [dict(timing(start, end, zone), id=number, status=status, service=service, staff=staff,
                 customer=name or f"#{customer_id}", email=address.split(":", 1)[1] if address else None,
                 location=location, note=note if team else None, created=created)  # notes are the team's
            for number, start, end, status, service, staff, name, customer_id, address, location, note, created
            in await ctx.session.execute(query)]


def timing(start: datetime, end: datetime, zone: ZoneInfo) -> dict[str, Any]:
    """The local day, start and end of an appointment."""
    begins, ends = start.astimezone(zone), end.astimezone(zone)
    return {"date": begins.date(), "start": begins.time(), "end": ends.time()}


async def calendar_rows(ctx: Context, args: str, week: bool) -> list[dict[str, Any]]:
    """`export day|week [DATE] [STAFF]`: the live appointments the calendar view shows the asker."""
    day, who = parse_when(split_words(args), local_date(ctx, ctx.now))
    first = day - timedelta(days=day.weekday()) if week else day
    last = first + timedelta(days=6 if week else 0)
    try:
        scope, _ = await view_scope(ctx, await actor(ctx), who)
    except Denied as denied:
        raise Refusal("calendar_denied", word="export " + ("week" if week else "day"), need=denied.need) from None
    zone = ZoneInfo(ctx.tz)
    entries = await entries_between(ctx, day_bounds(first, zone)[0], day_bounds(last, zone)[1], scope)
    return [entry_row(entry, zone) for entry in entries]


def entry_row(entry: Entry, zone: ZoneInfo) -> dict[str, Any]:
    return dict(timing(entry.start, entry.end, zone), id=entry.id, service=entry.service, staff=entry.staff,
                customer=entry.customer, location=entry.location, status=entry.status)


async def day_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    return await calendar_rows(ctx, args, week=False)


async def week_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    return await calendar_rows(ctx, args, week=True)


def appointment_lists() -> dict[str, ExportList]:
    return {
        "bookings": ExportList("bookings", booking_rows, BOOKING_FIELDS, BOOKING_DEFAULT, aliases=("termine",)),
        "day": ExportList("day", day_rows, DAY_FIELDS, allowed=STAFF, aliases=("tag",)),
        "week": ExportList("week", week_rows, DAY_FIELDS, allowed=STAFF, aliases=("woche",)),
    }
