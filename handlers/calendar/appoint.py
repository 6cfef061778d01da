"""Appointments entered by staff: any time, for any customer by name, never over another appointment."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.appointments import SlotTaken, claim, holiday_at, live_condition
from handlers.calendar.lookup import active_services, find_service, find_staff, staff_members
from handlers.calendar.rights import Actor, Member, actor, myself, require
from handlers.calendar.words import AppointRequest, Invalid, parse_appoint
from handlers.context import Context, Refusal
from handlers.messages import Reply
from handlers.notices import display_address, tell_customer, view
from handlers.reminders.schedule import schedule_reminders
from handlers.rules.availability import local_minute, on_grid
from handlers.rules.words import fold, hhmm, parse_id, split_words
from storage.models import Appointment, Closure, Location, Person, Service, StaffHours


async def appoint(ctx: Context, args: str) -> list[Reply]:
    """`appoint CUSTOMER SERVICE DATE TIME [STAFF]`: outside opening hours too, never over another appointment."""
    services = await active_services(ctx)
    request = parse_appoint(split_words(args), [s.name for s in services])
    chosen = find_service(services, request.service)
    staff = await appoint_staff(ctx, await actor(ctx), request.staff)
    start = local_minute(request.day, request.minute, ZoneInfo(ctx.tz))
    if not on_grid(start):
        raise Invalid("grid", value=hhmm(request.minute))
    if start < ctx.now:
        raise Invalid("past", value=f"{request.day} {hhmm(request.minute)}")
    matches = await customers_named(ctx, request.customer)
    if len(matches) > 1:
        return [await ask_which_customer(ctx, matches, request, chosen, staff)]
    customer = matches[0] if matches else await new_customer(ctx, request.customer)
    appointment = await enter(ctx, chosen, staff, customer.id, start)
    return await announce(ctx, appointment, created=not matches)


async def appoint_staff(ctx: Context, me: Actor, name: str | None) -> Member:
    """Whose calendar: one's own, or anyone's with book_for_colleagues (admins may always)."""
    if name is None:
        if not me.has_calendar:
            raise Invalid("staff_needed", known=[m.name for m in await staff_members(ctx) if m.has_calendar])
        return myself(ctx, me)
    staff = await find_staff(ctx, name)
    if staff.id != me.person_id:
        require(me.may("book_for_colleagues"), "book_for_colleagues")
    if not staff.has_calendar:
        raise Invalid("no_calendar", value=staff.name)
    return staff


async def customers_named(ctx: Context, text: str) -> list[Person]:
    """`#ID`, else every person whose name matches exactly, case-insensitively."""
    number = parse_id(text) if text.startswith("#") else None
    if number is not None:
        person = await ctx.session.get(Person, number)
        if person is None:
            raise Invalid("customer_id", value=text)
        return [person]
    # Compared in Python: SQLite's lower() folds only ASCII, and names are often not ASCII.
    rows = await ctx.session.execute(select(Person.id, Person.name).where(Person.name.is_not(None)))
    ids = [i for i, name in rows if fold(name) == fold(text)]
    return [await ctx.session.get(Person, i) for i in sorted(ids)]


async def ask_which_customer(ctx: Context, matches: list[Person], request: AppointRequest, chosen: Service,
                             staff: Member) -> Reply:
    """Several customers share the name: offer each by id, with the same booking."""
    rest = f"{chosen.name} {request.day.isoformat()} {hhmm(request.minute)} {staff.name}"
    options = [(p.id, p.name, await display_address(ctx.uow, p.id)) for p in matches]
    choices = [ctx.choice("calendar.pick_customer", f"appoint #{i} {rest}", id=i, name=name) for i, name, _ in options]
    return ctx.say("calendar_customer_ambiguous", typed=request.customer, options=options, rest=rest, choices=choices)


async def new_customer(ctx: Context, name: str) -> Person:
    """Create a customer known only by name (they may never book online)."""
    if len(name) > 200:
        raise Invalid("name_long", value=name[:40])
    customer = Person(name=name, created_at=ctx.now)
    ctx.session.add(customer)
    await ctx.session.flush()
    await ctx.audit("customer_created", f"person:{customer.id}", name=name)
    return customer


async def enter(ctx: Context, chosen: Service, staff: Member, customer_id: int, start: datetime) -> Appointment:
    """Claim the time for a confirmed appointment, or refuse naming the appointment in the way."""
    end = start + timedelta(minutes=chosen.minutes)
    appointment = Appointment(
        service_id=chosen.id, location_id=await location_for(ctx, staff.id, start), staff_id=staff.id,
        customer_id=customer_id, start_at=start, end_at=end, status="confirmed", hold_expires_at=None, sequence=0,
        channel=ctx.inbound.channel, created_by=ctx.sender, created_at=ctx.now)
    try:
        await claim(ctx.uow, appointment, ctx.now)
    except SlotTaken:
        other = await live_between(ctx, start, end, [staff.id])
        raise Refusal("calendar_slot_taken", staff=staff.name, start=start, end=end,
                      other=await view(ctx.uow, other[0]) if other else None) from None
    await schedule_reminders(ctx.uow, appointment, ctx.now)
    return appointment


async def location_for(ctx: Context, staff_id: int, start: datetime) -> int | None:
    """Where the staff member works at that time that weekday, else the only (or first) location."""
    local = start.astimezone(ZoneInfo(ctx.tz))
    minute = local.hour * 60 + local.minute
    rows = (await ctx.session.execute(
        select(StaffHours.location_id, StaffHours.start_minute, StaffHours.end_minute)
        .where(StaffHours.person_id == staff_id, StaffHours.weekday == local.weekday())
        .order_by(StaffHours.start_minute))).all()
    inside = [loc for loc, s, e in rows if s <= minute < e]
    if inside or rows:
        return (inside or [rows[0][0]])[0]
    return await ctx.session.scalar(select(Location.id).order_by(Location.id).limit(1))


async def announce(ctx: Context, appointment: Appointment, created: bool) -> list[Reply]:
    """Mail the customer (with ICS), tell the staff member if someone else booked, and confirm."""
    mailed = await tell_customer(ctx, appointment, "calendar_appointed_mail", method="REQUEST")
    await tell_staff(ctx, appointment, "calendar_staff_booked")
    closed = await closure_over(ctx, appointment)
    # A public holiday is like outside the opening hours: staff may book it, and are told.
    day = appointment.start_at.astimezone(ZoneInfo(ctx.tz)).date()
    holiday = await holiday_at(ctx.uow, appointment.location_id, day, ctx.lang)
    await ctx.audit("appointment_created", f"appointment:{appointment.id}", customer=appointment.customer_id,
                    staff=appointment.staff_id, start=appointment.start_at.isoformat(), new_customer=created)
    return [ctx.say("calendar_appointed", appointment=await view(ctx.uow, appointment), mailed=mailed,
                    created=created, closed=closed, holiday=holiday)]


async def tell_staff(ctx: Context, appointment: Appointment, template: str) -> None:
    """The staff member hears of a change in their calendar that someone else made."""
    if appointment.staff_id == ctx.person.id:
        return
    await ctx.tell(appointment.staff_id, template, appointment=await view(ctx.uow, appointment),
                   by=ctx.person.name or ctx.sender)


async def closure_over(ctx: Context, appointment: Appointment) -> str | None:
    """The kind of a closure the appointment falls into (staff may book there; customers online may not)."""
    return await ctx.session.scalar(select(Closure.kind).where(
        Closure.start_at < appointment.end_at, Closure.end_at > appointment.start_at,
        Closure.staff_id.is_(None) | (Closure.staff_id == appointment.staff_id)).limit(1))


async def live_between(ctx: Context, start: datetime, end: datetime, staff_ids: list[int] | None,
                       lock: bool = False) -> list[Appointment]:
    """Held (unexpired), requested and confirmed appointments overlapping [start, end).

    With `lock` the rows stay locked until commit (in one order, so two closures cannot deadlock): a
    concurrent cancel, answer or move waits, and a row it closed meanwhile is no longer found.
    """
    query = select(Appointment).where(Appointment.start_at < end, Appointment.end_at > start, live_condition(ctx.now))
    if staff_ids is not None:
        query = query.where(Appointment.staff_id.in_(staff_ids))
    query = query.order_by(Appointment.start_at, Appointment.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return list((await ctx.session.scalars(query)).all())
