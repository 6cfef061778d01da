"""One's appointments: `bookings` lists them, `cancel` and `move` change them (customers, their staff, managers)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from handlers.appointments import SlotTaken, holiday_at, live_condition, location_ids, move, release
from handlers.booking.catalog import (
    Scope,
    alternatives,
    day_choices,
    free_days,
    places_at,
    plan_for,
    refuse_holiday,
)
from handlers.booking.form import Commander, move_commander, parse_move, split_id
from handlers.booking.rules import Rules, booking_rules, check_day, is_live, local_day
from handlers.booking.walk import target
from handlers.context import Context, Refusal
from handlers.messages import Choice, Reply
from handlers.notices import AppointmentView, tell_customer, tell_staff_and_admins, view
from handlers.rules.availability import local_minute
from handlers.rules.roles import ADMINS
from storage.models import Appointment, Service, Staff

COLLEAGUES_RIGHT = "book_for_colleagues"
CUSTOMER, STAFF, MANAGER = "customer", "staff", "manager"  # how a speaker may act on an appointment


# ---- `bookings`, `cancel`, `move` -------------------------------------------------------------


async def list_bookings(ctx: Context, args: str) -> list[Reply]:
    """The speaker's upcoming live appointments, each with Cancel and Move."""
    rows = (await ctx.session.scalars(select(Appointment).where(
        Appointment.customer_id == ctx.person.id, Appointment.end_at > ctx.now, live_condition(ctx.now))
        .order_by(Appointment.start_at))).all()
    views = [await view(ctx.uow, row) for row in rows]
    return [ctx.say("booking_list", appointments=views, choices=[c for v in views for c in manage_choices(ctx, v)])]


def manage_choices(ctx: Context, v: AppointmentView) -> list[Choice]:
    """Cancel and Move buttons for one listed appointment."""
    cancel = ctx.choice("booking_label.cancel", f"cancel {v.id}", id=v.id)
    if v.status == "held":  # nothing to move until the code is in
        return [cancel]
    return [cancel, ctx.choice("booking_label.move", f"move {v.id}", id=v.id)]


async def authority(ctx: Context, appointment: Appointment) -> str | None:
    """How the speaker may act on an appointment: as its customer, its staff member, a manager, or not at all."""
    if appointment.customer_id == ctx.person.id:
        return CUSTOMER
    if ctx.roles & ADMINS:
        return MANAGER
    if "staff" not in ctx.roles:
        return None
    staff = await ctx.session.get(Staff, ctx.person.id)
    if staff is not None and COLLEAGUES_RIGHT in (staff.rights or []):
        return MANAGER
    return STAFF if appointment.staff_id == ctx.person.id else None


async def managed(ctx: Context, number: int) -> tuple[Appointment, str]:
    """The appointment if the speaker may act on it and it is live and ahead; someone else's looks unknown.

    The row stays locked until the change commits: a concurrent approve, cancel or move waits, then sees
    this one's outcome (populate_existing re-reads it) instead of acting on a status that no longer holds.
    """
    appointment = await ctx.session.get(Appointment, number, with_for_update=True, populate_existing=True)
    role = await authority(ctx, appointment) if appointment is not None else None
    if role is None:
        raise Refusal("booking_not_found", number=number)
    if not is_live(appointment, ctx.now) or appointment.start_at <= ctx.now:
        raise Refusal("booking_not_live", number=number)
    return appointment, role


async def cancel_booking(ctx: Context, args: str) -> list[Reply]:
    """`cancel ID [reason]`: one's own appointment; managers any (the rest of the line goes to the customer)."""
    number, reason = split_id(args)
    appointment, role = await managed(ctx, number)
    was = appointment.status
    await release(ctx.uow, appointment, "cancelled", ctx.sender, reason or None, ctx.now)
    told = await tell_cancellation(ctx, appointment, was, role, reason)
    await ctx.audit("appointment_cancelled", target(appointment), role=role, was=was, reason=reason[:200])
    return [ctx.say("booking_cancelled", appointment=await view(ctx.uow, appointment),
                    by_customer=role == CUSTOMER, told=told)]


async def tell_cancellation(ctx: Context, appointment: Appointment, was: str, role: str, reason: str) -> bool:
    """Mail the customer (ICS CANCEL if it was confirmed) and tell staff; True if the customer got the mail."""
    if was == "confirmed":
        appointment.sequence += 1  # calendars apply a CANCEL only if its SEQUENCE is not older
    told = False
    if was != "held" or role != CUSTOMER:
        told = await tell_customer(ctx, appointment, "booking_cancelled_mail",
                                   message=None if role == CUSTOMER else reason or None,
                                   method="CANCEL" if was == "confirmed" else None)
    if was != "held":  # staff never heard of a hold
        await tell_staff_and_admins(ctx, appointment, "booking_cancelled_staff", reason=reason or None,
                                    by_customer=role == CUSTOMER)
    return told


@dataclass(frozen=True)
class Moving:
    """A move in progress: the appointment, who moves it, and where it may go."""

    appointment: Appointment
    role: str
    scope: Scope
    rules: Rules

    def command(self) -> Commander:
        return move_commander(self.appointment.id)


async def move_booking(ctx: Context, args: str) -> list[Reply]:
    """`move ID [DATE [TIME]] [message]`: offer days, then times, then move (same UID, higher SEQUENCE)."""
    number, rest = split_id(args)
    appointment, role = await managed(ctx, number)
    if appointment.status == "held":
        raise Refusal("booking_move_held", number=number)
    day, minute, message = parse_move(rest)
    moving = Moving(appointment, role, await move_scope(ctx, appointment), booking_rules(ctx.business, ctx.now))
    if day is None:
        return [await ask_move_day(ctx, moving)]
    if minute is None:
        return [await ask_move_time(ctx, moving, day)]
    start = local_minute(day, minute, moving.rules.tz)
    location = await move_target(ctx, moving, day, start)
    return await shift(ctx, moving, start, location, message)


async def move_scope(ctx: Context, appointment: Appointment) -> Scope:
    """The same service with the same staff member, wherever they work that day."""
    service = await ctx.session.get(Service, appointment.service_id)
    return Scope(service, tuple(await location_ids(ctx.uow)), (appointment.staff_id,))


async def ask_move_day(ctx: Context, moving: Moving) -> Reply:
    """Offer the next days with a free slot for the same service and staff member."""
    days = await free_days(ctx.uow, moving.rules, moving.scope, ignore=moving.appointment)
    v = await view(ctx.uow, moving.appointment)
    if not days:
        raise Refusal("booking_no_days", service=v.service, last_day=moving.rules.last_day)
    return ctx.say("booking_move_pick_day", appointment=v, choices=day_choices(ctx, days, moving.command()))


async def ask_move_time(ctx: Context, moving: Moving, day: date) -> Reply:
    """Offer the free times of the chosen day (the appointment's own time counts as free)."""
    check_day(moving.rules, day)
    await refuse_holiday(ctx, moving.scope, moving.rules, day, moving.command(), moving.appointment)
    offers = await alternatives(ctx, moving.scope, moving.rules, day, moving.command(), moving.appointment)
    if not offers["times_left"]:
        raise Refusal("booking_day_full", day=day, choices=offers["choices"])
    return ctx.say("booking_move_pick_time", appointment=await view(ctx.uow, moving.appointment), day=day,
                   choices=offers["choices"])


async def move_target(ctx: Context, moving: Moving, day: date, start: datetime) -> int | None:
    """Where the appointment lands: customers only into a slot they may book; managers and staff anywhere ahead."""
    rules, appointment = moving.rules, moving.appointment
    if start <= rules.now:
        raise Refusal("booking_in_past", day=day)
    if moving.role != CUSTOMER:  # like booking by hand: outside hours is allowed, overlaps never are
        return appointment.location_id
    check_day(rules, day)
    await refuse_holiday(ctx, moving.scope, rules, day, moving.command(), appointment)
    plan = await plan_for(ctx.uow, rules, moving.scope, day, day, appointment)
    places = places_at(plan, rules, moving.scope, start)
    if appointment.staff_id in places:
        return places[appointment.staff_id]
    free_hours = places_at(plan, rules, moving.scope, start, busy=False)
    offers = await alternatives(ctx, moving.scope, rules, day, moving.command(), appointment)
    raise Refusal("booking_just_taken" if free_hours else "booking_not_free", day=day, start=start, **offers)


async def shift(ctx: Context, moving: Moving, start: datetime, location: int | None, message: str) -> list[Reply]:
    """Move atomically, then send the updated invitation and tell staff."""
    appointment, old_start = moving.appointment, moving.appointment.start_at
    try:
        await move(ctx.uow, appointment, start, ctx.now)
    except SlotTaken:
        day = local_day(start, moving.rules.tz)
        offers = await alternatives(ctx, moving.scope, moving.rules, day, moving.command(), appointment)
        return [ctx.say("booking_just_taken", day=day, start=start, **offers)]
    appointment.location_id = location
    by_customer = moving.role == CUSTOMER
    told = await tell_customer(ctx, appointment, "booking_moved_mail", message=None if by_customer else message or None,
                               method="REQUEST" if appointment.status == "confirmed" else None)
    await tell_staff_and_admins(ctx, appointment, "booking_moved_staff", old_start=old_start, by_customer=by_customer)
    await ctx.audit("appointment_moved", target(appointment), role=moving.role, old_start=old_start.isoformat(),
                    start=start.isoformat(), sequence=appointment.sequence)
    # Staff may move onto a public holiday, as outside the hours; they are told so.
    holiday = await holiday_at(ctx.uow, location, local_day(start, moving.rules.tz), ctx.lang)
    return [ctx.say("booking_moved", appointment=await view(ctx.uow, appointment), old_start=old_start,
                    by_customer=by_customer, told=told, holiday=holiday)]
