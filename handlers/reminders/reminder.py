"""A reminder comes due: the customer hears of their appointment where they read, with a way to cancel or move
it (buttons in a chat; in a mail, the line to reply with, which runs after the usual code round trip)."""
from __future__ import annotations

from handlers.context import Context
from handlers.jobs.table import Due
from handlers.messages import Choice
from handlers.notices import customer_language, ics_for, view
from handlers.reminders.rules import utc_text
from handlers.reminders.schedule import reminder_labels
from handlers.speaking import chat_address
from storage.models import Appointment, Person
from templates import word


async def run_reminder(ctx: Context, due: Due) -> str | None:
    """Remind the customer, unless the appointment was moved, ended or has begun; then say why not."""
    # Read without a row lock: the runner holds this job's row already, and a cancel that holds the
    # appointment's lock waits for the job's row to drop its reminders; locking here could deadlock them.
    appointment = await ctx.session.get(Appointment, due.payload["appointment"])
    reason = await stale(ctx, appointment, due)
    if reason or appointment is None:
        return reason or "the appointment is gone"
    address = await chat_address(ctx.uow, appointment.customer_id)
    if address is None:
        return "the customer has no chat and no confirmed email address"
    customer = await ctx.session.get_one(Person, appointment.customer_id)
    lang = customer_language(ctx, customer)
    v = await view(ctx.uow, appointment)
    kind, _, target = address.partition(":")
    if kind == "email":
        invitation = await ics_for(ctx, v, "REQUEST", target, customer.name, lang)
        await ctx.mail(target, "reminder_mail", lang=lang, attachments=[invitation], appointment=v)
    else:
        await ctx.notify(address, "reminder", lang=lang, appointment=v, choices=[
            Choice(word(lang, "booking_label.cancel", id=v.id), f"cancel {v.id}"),
            Choice(word(lang, "booking_label.move", id=v.id), f"move {v.id}")])
    await ctx.audit("reminder_sent", f"appointment:{appointment.id}", offset=due.payload["offset"], channel=kind)
    return None


async def stale(ctx: Context, appointment: Appointment | None, due: Due) -> str | None:
    """Why this reminder no longer fits its appointment, or None when it does."""
    if appointment is None:
        return "the appointment is gone"
    if appointment.status != "confirmed":
        return f"the appointment is {appointment.status}"
    if utc_text(appointment.start_at) != due.payload["start"]:
        return "the appointment was moved"
    if appointment.start_at <= ctx.now:
        return "the appointment has begun"
    if due.payload["offset"] not in await reminder_labels(ctx.uow):
        return f"the business no longer sends reminders {due.payload['offset']} before"
    return None
