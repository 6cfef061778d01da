"""An open calendar question: its Confirm/Abort buttons, and the personal message after a closure."""
from __future__ import annotations

from datetime import timedelta

from handlers.context import Context
from handlers.messages import Choice, Reply
from handlers.notices import AppointmentView, tell_customer, view
from storage.models import Appointment

FLOW = "calendar"
CONFIRM, ABORT, SILENT = "calendar-confirm", "calendar-abort", "calendar-silent"
MESSAGE_TTL = timedelta(hours=24)  # the personal message may take a while to write
MAX_MESSAGE = 2000


def confirm_choices(ctx: Context, nonce: str) -> list[Choice]:
    # The nonce ties a button to its question: an old keyboard cannot confirm a newer question.
    return [ctx.choice("calendar.confirm", f"{CONFIRM} {nonce}"), ctx.choice("calendar.abort", f"{ABORT} {nonce}")]


def pending(ctx: Context, nonce: str, *steps: str) -> dict | None:
    """The open calendar question this button or word answers, if it is still open."""
    conversation = ctx.conversation
    if conversation is None or conversation.flow != FLOW or conversation.step not in steps:
        return None
    if conversation.data.get("nonce") != nonce.strip():
        return None
    return dict(conversation.data)


async def abort_pending(ctx: Context, args: str) -> list[Reply]:
    """The Abort button: nothing changes."""
    if pending(ctx, args, "closure", "service_delete") is None:
        return [ctx.say("calendar_question_gone")]
    await ctx.end_flow()
    return [ctx.say("calendar_aborted")]


async def skip_message(ctx: Context, args: str) -> list[Reply]:
    """The 'No message' button: customers are told of the cancellation without a personal word."""
    if pending(ctx, args, "closure_message") is None:
        return [ctx.say("calendar_question_gone")]
    return await send_closure_notices(ctx, None)


async def send_closure_notices(ctx: Context, message: str | None) -> list[Reply]:
    """Mail every affected customer who has an email; name the others, who must be told another way."""
    if ctx.conversation is None:
        return [ctx.say("calendar_question_gone")]
    ids = list(ctx.conversation.data["ids"])
    await ctx.end_flow()
    told: list[AppointmentView] = []
    untold: list[AppointmentView] = []
    for appointment_id in ids:
        appointment = await ctx.session.get(Appointment, appointment_id)
        sent = await tell_customer(ctx, appointment, "calendar_cancelled_mail", message=message, method="CANCEL")
        (told if sent else untold).append(await view(ctx.uow, appointment))
    await ctx.audit("closure_customers_told", None, told=len(told), untold=[v.id for v in untold],
                    message=bool(message))
    return [ctx.say("calendar_closure_told", told=told, untold=untold, message=message)]


async def settle_pending(ctx: Context) -> list[Reply]:
    """A new question must not swallow customers still waiting for news: tell them without a message."""
    conversation = ctx.conversation
    if conversation is None or conversation.flow != FLOW or conversation.step != "closure_message":
        return []
    return await send_closure_notices(ctx, None)
