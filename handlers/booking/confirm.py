"""The booking code comes back: confirm or request the held slot, or, too late or too often wrong, let it go."""
from __future__ import annotations

from sqlalchemy import update

from handlers import identity
from handlers.appointments import release
from handlers.booking.catalog import alternatives, load_catalog, narrow, offering
from handlers.booking.form import ANY, BookingQuery, booking_commander
from handlers.booking.rules import booking_rules, local_day
from handlers.booking.walk import target
from handlers.context import Context, Refusal
from handlers.messages import Reply
from handlers.notices import tell_customer, tell_staff_and_admins, view
from handlers.reminders.schedule import schedule_reminders
from handlers.speaking import verified_email
from storage.models import Appointment, Code, Service

# ---- the code comes back ---------------------------------------------------------------------


async def appointment_of(ctx: Context, code_target: str) -> Appointment | None:
    """The appointment a booking code was issued for."""
    number = code_target.partition(":")[2]
    return await ctx.session.get(Appointment, int(number)) if number.isdigit() else None


async def complete_booking(ctx: Context, code: Code) -> list[Reply]:
    """The right code in time: confirm (direct mode) or file a request (request mode)."""
    appointment = await appointment_of(ctx, code.target)
    if appointment is None or appointment.status not in ("held", "expired"):
        return [ctx.say("booking_not_held")]
    requests = ctx.business is not None and ctx.business.booking_mode == "request"
    status = "requested" if requests else "confirmed"
    if not await settle_hold(ctx, appointment, status):
        return await hold_expired(ctx, appointment)
    await schedule_reminders(ctx.uow, appointment, ctx.now)  # a request gets them when it is approved
    if code.address == ctx.sender:
        # A hold asked for by an email address (the booking page) mailed its code there: it came back, so the
        # address is proven and the confirmation can go to it. Chat addresses are proven already.
        await identity.prove_sender(ctx)
    email = await verified_email(ctx.uow, appointment.customer_id)
    v = await view(ctx.uow, appointment)  # once for the mail, the staff's notices and the answer
    await tell_customer(ctx, appointment, f"booking_{status}_mail", method="REQUEST" if status == "confirmed" else None,
                        v=v, email=email)
    await tell_staff_and_admins(ctx, appointment, "booking_new_staff", v=v, requested=status == "requested")
    await ctx.audit(f"appointment_{status}", target(appointment), staff=appointment.staff_id)
    return [ctx.say(f"booking_{status}", appointment=v, email=email)]


async def settle_hold(ctx: Context, appointment: Appointment, status: str) -> bool:
    """Turn a live hold into `status` with one conditional UPDATE, so an expired hold is never confirmed."""
    result = await ctx.session.execute(
        update(Appointment)
        .where(Appointment.id == appointment.id, Appointment.status == "held", Appointment.hold_expires_at > ctx.now)
        .values(status=status, hold_expires_at=None))
    if result.rowcount != 1:
        return False
    appointment.status, appointment.hold_expires_at = status, None
    return True


async def hold_expired(ctx: Context, appointment: Appointment) -> list[Reply]:
    """The code came after the hold ran out: free the slot (if still claimed) and offer fresh times."""
    if appointment.status == "held":
        await release(ctx.uow, appointment, "expired", "hold expired", "code came too late", ctx.now)
        await ctx.audit("appointment_expired", target(appointment), reason="code came too late")
    v = await view(ctx.uow, appointment)
    offers = await retry_offers(ctx, appointment)
    return [ctx.say("booking_hold_expired", appointment=v, **offers)]


async def retry_offers(ctx: Context, appointment: Appointment) -> dict:
    """Fresh times for the same service and day at the same location, with anyone free."""
    catalog = await load_catalog(ctx.uow)
    service = await ctx.session.get(Service, appointment.service_id)
    if service.name not in catalog.services:  # deleted meanwhile: nothing to offer
        return {"times_left": False, "choices": []}
    location = catalog.location_name(appointment.location_id) if appointment.location_id else None
    rules = booking_rules(ctx.business, ctx.now)
    day = local_day(appointment.start_at, rules.tz)
    query = BookingQuery(service.name, location, ANY, day)
    try:
        scope = narrow(catalog, service, query, await offering(ctx.uow, service.id))
    except Refusal:
        return {"times_left": False, "choices": []}
    return await alternatives(ctx, scope, rules, day, booking_commander(query))


async def booking_exhausted(ctx: Context, code: Code) -> list[Reply]:
    """The fifth wrong code: release the hold at once."""
    appointment = await appointment_of(ctx, code.target)
    if appointment is not None and appointment.status == "held":
        await release(ctx.uow, appointment, "expired", ctx.sender, "too many wrong codes", ctx.now)
        await ctx.audit("appointment_expired", target(appointment), reason="too many wrong codes")
    return [ctx.say("booking_exhausted")]
