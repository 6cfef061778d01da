"""The `book` walk: location, staff, day and time as buttons (or typed at once), then a held slot and its code."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy import select

from handlers import identity
from handlers.appointments import DayPlan, SlotTaken, claim, live_load, lock_calendars, release
from handlers.booking.catalog import (
    MAX_TIMES,
    Catalog,
    Scope,
    alternatives,
    day_choices,
    free_days,
    free_times,
    load_catalog,
    narrow,
    offering,
    places_at,
    plan_for,
    refuse_holiday,
    time_choices,
)
from handlers.booking.form import ANY, BookingQuery, book_command, booking_commander, parse_booking
from handlers.booking.rules import Rules, booking_rules, check_day, local_day
from handlers.context import Context, Refusal
from handlers.messages import Choice, Reply
from handlers.notices import AppointmentView, view
from handlers.rules.availability import day_bounds, local_minute, pick_fairly
from handlers.speaking import verified_email
from storage.models import Appointment, Service

BOOKING = "booking"  # the code purpose


# ---- `book`: the walk ------------------------------------------------------------------------


async def book(ctx: Context, args: str) -> list[Reply]:
    """`book` walks through buttons; `book SERVICE YYYY-MM-DD HH:MM [staff]` holds a slot in one message."""
    catalog = await load_catalog(ctx.uow)
    if ctx.business is None or not catalog.services:
        raise Refusal("booking_unavailable")
    query = parse_booking(args, list(catalog.services), list(catalog.locations), list(catalog.staff))
    if query.service is None:
        return [ctx.say("booking_pick_service", services=list(catalog.services.values()),
                        choices=[Choice(name, f"book {name}") for name in catalog.services])]
    service = catalog.services[query.service]
    offer = await offering(ctx.uow, service.id)
    scope, rules = narrow(catalog, service, query, offer), booking_rules(ctx.business, ctx.now)
    if query.day is None:
        return [await next_question(ctx, catalog, query, scope, offer, rules)]
    check_day(rules, query.day)
    if query.minute is not None:
        # Before the day's plan is read, so that the hold can use it: a closure decided at this moment
        # either comes first and is in the plan, or waits for this hold and then lists it.
        await lock_calendars(ctx.uow, sorted(scope.staff_ids), closing=False)
    plan = await refuse_holiday(ctx, scope, rules, query.day, booking_commander(query))
    if query.minute is None:
        return [await ask_time(ctx, query, query.day, scope, rules, plan)]
    return await hold(ctx, query, query.day, query.minute, scope, rules, plan)


def named(staff: str | None) -> str | None:
    """The staff name to show, or None for "any free"."""
    return None if staff == ANY else staff


async def next_question(ctx: Context, catalog: Catalog, query: BookingQuery, scope: Scope,
                        offer: dict[int, list[int]], rules: Rules) -> Reply:
    """Ask for the location (if several offer the service), then the staff member, then the day."""
    if query.location is None and len(offer) > 1:
        names = [catalog.location_name(i) for i in offer]
        return ctx.say("booking_pick_location", service=query.service, choices=[
            Choice(name, book_command(replace(query, location=name))) for name in names])
    if query.staff is None and len(scope.staff_ids) > 1:
        names = [catalog.staff_name(i) for i in scope.staff_ids]
        return ctx.say("booking_pick_staff", service=query.service, location=query.location, choices=[
            ctx.choice("booking_label.any", book_command(replace(query, staff=ANY))),
            *[Choice(name, book_command(replace(query, staff=name))) for name in names]])
    return await ask_day(ctx, query, scope, rules)


async def ask_day(ctx: Context, query: BookingQuery, scope: Scope, rules: Rules) -> Reply:
    """Offer the next days that have a free slot."""
    days = await free_days(ctx.uow, rules, scope)
    if not days:
        raise Refusal("booking_no_days", service=query.service, last_day=rules.last_day)
    return ctx.say("booking_pick_day", service=query.service, location=query.location, staff=named(query.staff),
                   choices=day_choices(ctx, days, booking_commander(query)))


async def ask_time(ctx: Context, query: BookingQuery, day: date, scope: Scope, rules: Rules,
                   plan: DayPlan | None = None) -> Reply:
    """Offer the free times of the chosen day (from its `plan`, if read already), or other days if it is full."""
    slots = await free_times(ctx.uow, rules, scope, day, plan=plan)
    if not slots:
        days = await free_days(ctx.uow, rules, scope)
        raise Refusal("booking_day_full", day=day, choices=day_choices(ctx, days, booking_commander(query)))
    return ctx.say("booking_pick_time", service=query.service, location=query.location, staff=named(query.staff),
                   day=day, more=len(slots) > MAX_TIMES,
                   choices=time_choices(ctx, slots, rules, booking_commander(query)))


# ---- holding a slot and sending the code -----------------------------------------------------


async def hold(ctx: Context, query: BookingQuery, day: date, minute: int, scope: Scope, rules: Rules,
               plan: DayPlan) -> list[Reply]:
    """Hold the chosen slot and send the booking code by email (after asking for an address if needed).

    `plan` is the day's, read after the calendars were locked (see book); it is read again only when
    releasing the customer's earlier holds changed it."""
    start = local_minute(day, minute, rules.tz)
    await check_start(ctx, query, day, scope, rules, start)
    released = await release_own_holds(ctx)
    places = await places_for(ctx, query, day, scope, rules, start, None if released else plan)
    email = await verified_email(ctx.uow, ctx.person.id)
    if email is None:
        await identity.ask_email_first(ctx, book_command(query), "booking_continue", "booking_label.continue")
        return [ctx.say("booking_need_email")]
    appointment = await claim_slot(ctx, query, day, scope, places, start, rules)
    return await send_code(ctx, appointment, email, released)


async def claim_slot(ctx: Context, query: BookingQuery, day: date, scope: Scope, places: dict[int, int],
                     start: datetime, rules: Rules) -> Appointment:
    """Hold `start` with one of the free staff members, or refuse: someone was quicker between look and claim."""
    appointment = await claim_fairly(ctx, scope, places, start, rules)
    if appointment is None:
        offers = await alternatives(ctx, scope, rules, day, booking_commander(query))
        # A refusal, not a reply: rolling back puts the earlier holds released before it back in place.
        raise Refusal("booking_just_taken", day=day, start=start, **offers)
    return appointment


async def check_start(ctx: Context, query: BookingQuery, day: date, scope: Scope, rules: Rules,
                      start: datetime) -> None:
    """Refuse a start in the past or inside the minimum notice (offering what is still free)."""
    if start <= rules.now:
        raise Refusal("booking_in_past", day=day)
    if start < rules.earliest:
        offers = await alternatives(ctx, scope, rules, day, booking_commander(query))
        raise Refusal("booking_too_soon", minutes=rules.min_notice, day=day, **offers)


async def places_for(ctx: Context, query: BookingQuery, day: date, scope: Scope, rules: Rules,
                     start: datetime, plan: DayPlan | None = None) -> dict[int, int]:
    """Who is free at `start` by the day's `plan` (read now if not given); else refuse: "just taken" if
    bookings block it, "not free" if hours do."""
    plan = plan if plan is not None else await plan_for(ctx.uow, rules, scope, day, day)
    places = places_at(plan, rules, scope, start)
    if places:
        return places
    template = "booking_just_taken" if places_at(plan, rules, scope, start, busy=False) else "booking_not_free"
    offers = await alternatives(ctx, scope, rules, day, booking_commander(query))
    raise Refusal(template, day=day, start=start, **offers)


async def release_own_holds(ctx: Context) -> list[AppointmentView]:
    """Release this customer's earlier holds: a new code retires the old one, so they could never be confirmed."""
    rows = (await ctx.session.scalars(select(Appointment).where(
        Appointment.customer_id == ctx.person.id, Appointment.status == "held",
        Appointment.hold_expires_at > ctx.now))).all()
    for row in rows:
        await release(ctx.uow, row, "expired", ctx.sender, "replaced by a new hold", ctx.now)
        await ctx.audit("appointment_expired", target(row), reason="replaced by a new hold")
    return [await view(ctx.uow, row) for row in rows]


async def claim_fairly(ctx: Context, scope: Scope, places: dict[int, int], start: datetime,
                       rules: Rules) -> Appointment | None:
    """Hold the slot with the least busy free staff member; if someone was quicker, try the next one."""
    places = dict(places)
    load = await live_load(ctx.uow, list(places), *day_bounds(local_day(start, rules.tz), rules.tz), ctx.now)
    while places:
        staff = pick_fairly(list(places), load)
        appointment = new_hold(ctx, scope.service, staff, places.pop(staff), start)
        try:
            await claim(ctx.uow, appointment, ctx.now)
        except SlotTaken:  # the savepoint rolled back only the claim; the unit of work goes on
            continue
        return appointment
    return None


def new_hold(ctx: Context, service: Service, staff: int, location: int, start: datetime) -> Appointment:
    """A held appointment for the speaker, blocking the slot until the hold expires."""
    return Appointment(
        service_id=service.id, location_id=location, staff_id=staff, customer_id=ctx.person.id, start_at=start,
        end_at=start + timedelta(minutes=service.minutes), status="held",
        hold_expires_at=ctx.now + timedelta(seconds=ctx.config.hold_seconds), sequence=0,
        channel=ctx.inbound.channel, created_by=ctx.sender, created_at=ctx.now)


def target(appointment: Appointment) -> str:
    """What a booking code proves: this appointment."""
    return f"appointment:{appointment.id}"


async def send_code(ctx: Context, appointment: Appointment, email: str, released: list,
                    mail: str = "booking_code_mail") -> list[Reply]:
    """Mail the booking code (in subject and body, from template `mail`) in the same transaction as the hold."""
    code = await identity.issue_code(ctx, BOOKING, target(appointment))
    v = await view(ctx.uow, appointment)
    until = appointment.hold_expires_at
    await ctx.mail(email, mail, code=code, appointment=v, until=until)
    await ctx.audit("appointment_held", target(appointment), staff=appointment.staff_id,
                    start=appointment.start_at.isoformat(), until=until.isoformat() if until else None)
    return [ctx.say("booking_held", appointment=v, email=email, until=until, released=released)]
