"""The calendar's words and buttons, registered; a Confirm or a typed answer goes to its question here."""
from __future__ import annotations

from handlers.calendar.appoint import appoint
from handlers.calendar.closures import confirm_closure, off, pause
from handlers.calendar.hours import hours
from handlers.calendar.picture import show_week
from handlers.calendar.question import (
    ABORT,
    CONFIRM,
    FLOW,
    MAX_MESSAGE,
    SILENT,
    abort_pending,
    confirm_choices,
    pending,
    send_closure_notices,
    skip_message,
)
from handlers.calendar.requests import approve, list_requests, mode, reject
from handlers.calendar.rights import Run, guarded
from handlers.calendar.services import confirm_service_delete, list_services, service
from handlers.calendar.views import show_day
from handlers.calendar.words import NO, YES
from handlers.context import Context
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.rules.words import fold

STAFF = frozenset({"staff"})  # owners and admins imply staff (context.IMPLIED_ROLES)


async def confirm_pending(ctx: Context, args: str) -> list[Reply]:
    """The Confirm button of a closure or a service deletion."""
    data, conversation = pending(ctx, args, "closure", "service_delete"), ctx.conversation
    if data is None or conversation is None:  # pending() finds no data without a conversation
        return [ctx.say("calendar_question_gone")]
    if conversation.step == "closure":
        return await confirm_closure(ctx, data)
    return await confirm_service_delete(ctx, data)


async def calendar_step(ctx: Context, text: str) -> list[Reply]:
    """A typed answer in an open calendar conversation: yes/no to a question, or the personal message."""
    conversation = ctx.conversation
    if conversation is None:  # a flow step runs inside its conversation; gone meanwhile, the question is
        return [ctx.say("calendar_question_gone")]
    step, nonce = conversation.step, conversation.data.get("nonce", "")
    if step == "closure_message":
        return await send_closure_notices(ctx, text.strip()[:MAX_MESSAGE])
    if fold(text) in YES:
        return await confirm_pending(ctx, nonce)
    if fold(text) in NO:
        return await abort_pending(ctx, nonce)
    return [ctx.say("calendar_press_button", choices=confirm_choices(ctx, nonce))]


def staff_command(word: str, run: Run, aliases: tuple[str, ...] = (), section: str = "staff",
                  safe: bool = False) -> Command:
    """A calendar word for staff; `safe` marks one that only reads (email runs it without a code round trip)."""
    return Command(word, guarded(word, run), allowed=STAFF, aliases=aliases, section=section, safe=safe)


def handlers() -> Handlers:
    """The calendar words, their German aliases and the buttons of its questions."""
    return Handlers(
        commands=[
            staff_command("day", show_day, ("tag",), safe=True),
            staff_command("week", show_week, ("woche",), safe=True),
            staff_command("appoint", appoint, ("eintragen",)),
            staff_command("requests", list_requests, ("anfragen",), safe=True),
            staff_command("approve", approve, ("zusagen", "annehmen")),
            staff_command("reject", reject, ("ablehnen", "absagen")),
            staff_command("off", off, ("abwesend",)),
            staff_command("pause", pause, ("pausieren",)),
            staff_command("hours", hours, ("zeiten", "oeffnungszeiten", "öffnungszeiten")),
            staff_command("services", list_services, ("leistungen",), safe=True),
            staff_command("service", service, ("leistung",), section="admin"),
            staff_command("mode", mode, ("modus",), section="admin"),
            # Buttons of the calendar's questions; not listed in /help.
            Command(CONFIRM, confirm_pending, allowed=STAFF, section="hidden"),
            Command(ABORT, abort_pending, allowed=STAFF, section="hidden"),
            Command(SILENT, skip_message, allowed=STAFF, section="hidden"),
        ],
        flows={FLOW: calendar_step},
    )
