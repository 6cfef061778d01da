"""The booking mode (direct or by request) and the answers to booking requests."""
from __future__ import annotations

from sqlalchemy import func, select

from handlers.appointments import release
from handlers.calendar.appoint import tell_staff
from handlers.calendar.question import MAX_MESSAGE
from handlers.calendar.rights import actor, require
from handlers.calendar.words import MODES, Invalid, parse_id
from handlers.context import Context
from handlers.messages import Reply
from handlers.notices import tell_customer, view
from handlers.reminders.schedule import schedule_reminders
from handlers.rules.words import fold
from storage.models import Appointment

MAX_REQUEST_BUTTONS = 10


async def mode(ctx: Context, args: str) -> list[Reply]:
    """`mode`: show; `mode direct|request`: let customers book directly or only request."""
    business = ctx.business
    if business is None:
        raise Invalid("no_business")
    wanted = fold(args)
    waiting = await ctx.session.scalar(select(func.count()).select_from(Appointment)
                                       .where(Appointment.status == "requested"))
    if not wanted:
        return [ctx.say("calendar_mode", mode=business.booking_mode, changed=False, waiting=waiting)]
    if wanted not in MODES:
        raise Invalid("mode", value=args.strip())
    require((await actor(ctx)).may("settings"), "settings")
    old, business.booking_mode = business.booking_mode, MODES[wanted]
    if old != business.booking_mode:
        await ctx.audit("booking_mode_set", business.booking_mode, old=old)
    return [ctx.say("calendar_mode", mode=business.booking_mode, changed=old != business.booking_mode,
                    waiting=waiting)]


async def list_requests(ctx: Context, args: str) -> list[Reply]:
    """`requests`: what waits for an answer (admins see all, staff their own), with buttons."""
    me = await actor(ctx)
    query = select(Appointment).where(Appointment.status == "requested").order_by(Appointment.start_at)
    if not me.admin:
        query = query.where(Appointment.staff_id == me.person_id)
    views = [await view(ctx.uow, a) for a in (await ctx.session.scalars(query)).all()]
    choices = []
    for v in views[:MAX_REQUEST_BUTTONS]:
        choices += [ctx.choice("calendar.approve", f"approve {v.id}", id=v.id),
                    ctx.choice("calendar.reject", f"reject {v.id}", id=v.id)]
    return [ctx.say("calendar_requests", appointments=views, choices=choices)]


async def requested(ctx: Context, text: str) -> Appointment:
    """The requested appointment named by ID, if the speaker may answer it, locked until the answer commits.

    The row lock makes a concurrent cancel or second answer wait, and the status is checked only once we
    hold it (populate_existing: not a copy read before the wait). SQLite's BEGIN IMMEDIATE serializes anyway.
    """
    appointment = await ctx.session.get(Appointment, parse_id(text), with_for_update=True, populate_existing=True)
    if appointment is None:
        raise Invalid("appointment", value=text.strip())
    me = await actor(ctx)
    require(me.admin or appointment.staff_id == me.person_id, "concerned")
    if appointment.status != "requested":
        raise Invalid("not_requested", value=appointment.id, status=appointment.status)
    return appointment


async def approve(ctx: Context, args: str) -> list[Reply]:
    """`approve ID`: the request becomes a confirmed appointment; the customer gets the invitation."""
    appointment = await requested(ctx, args)
    if appointment.start_at <= ctx.now:
        raise Invalid("request_past", value=appointment.id)
    appointment.status, appointment.hold_expires_at = "confirmed", None
    await schedule_reminders(ctx.uow, appointment, ctx.now)
    await ctx.audit("appointment_approved", f"appointment:{appointment.id}")
    mailed = await tell_customer(ctx, appointment, "calendar_approved_mail", method="REQUEST")
    await tell_staff(ctx, appointment, "calendar_staff_approved")
    return [ctx.say("calendar_approved", appointment=await view(ctx.uow, appointment), mailed=mailed)]


async def reject(ctx: Context, args: str) -> list[Reply]:
    """`reject ID [reason]`: the request is turned down, its time freed, and the customer told why."""
    parts = args.strip().split(None, 1)
    appointment = await requested(ctx, parts[0] if parts else "")
    reason = parts[1].strip()[:MAX_MESSAGE] if len(parts) > 1 else None
    await release(ctx.uow, appointment, "rejected", ctx.sender, reason, ctx.now)
    await ctx.audit("appointment_rejected", f"appointment:{appointment.id}", reason=reason)
    mailed = await tell_customer(ctx, appointment, "calendar_rejected_mail", message=reason, method=None)
    return [ctx.say("calendar_rejected", appointment=await view(ctx.uow, appointment), mailed=mailed,
                    reason=reason)]
