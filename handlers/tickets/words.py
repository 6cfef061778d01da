"""The support words (tickets, ticket, reply, note, close) and what the tickets contribute to the desk."""
from __future__ import annotations

from handlers.context import Context, Refusal
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.rules.mailthread import tag
from handlers.tickets.answers import answer_proven, send_answer
from handlers.tickets.display import list_tickets, show_ticket
from handlers.tickets.intake import on_mail
from handlers.tickets.records import ANSWER_PROOF, SUPPORT, add_message, attachment_list, prefix, ticket_arg


def split_id(args: str) -> tuple[str, str]:
    """Split '12 Some text' (the text may start on the next line) → ('12', 'Some text')."""
    parts = args.strip().split(None, 1)
    return (parts[0] if parts else ""), (parts[1] if len(parts) > 1 else "")


async def reply(ctx: Context, args: str) -> list[Reply]:
    """Answer the customer by email: `reply ID TEXT`."""
    head, text = split_id(args)
    ticket = await ticket_arg(ctx, head, "reply")
    return await send_answer(ctx, ticket, text)


async def note(ctx: Context, args: str) -> list[Reply]:
    """Add an internal note to the thread, never mailed: `note ID TEXT`."""
    head, text = split_id(args)
    ticket = await ticket_arg(ctx, head, "note")
    if not text.strip():
        raise Refusal("tickets_empty_text", word="note", id=ticket.id, p=prefix(ctx))
    await add_message(ctx, ticket, "note", ctx.sender, text.strip(), attachments=attachment_list(ctx.inbound))
    ticket.updated_at = ctx.now
    await ctx.audit("ticket_noted", tag(ticket.id))
    return [ctx.say("tickets_noted", ticket=ticket)]


async def close(ctx: Context, args: str) -> list[Reply]:
    """Close a ticket without mailing the customer (their next mail opens it again): `close ID`."""
    ticket = await ticket_arg(ctx, args, "close")
    if ticket.status == "closed":
        raise Refusal("tickets_already_closed", id=ticket.id)
    ticket.status, ticket.updated_at = "closed", ctx.now
    await ctx.audit("ticket_closed", tag(ticket.id))
    return [ctx.say("tickets_closed", ticket=ticket)]


def handlers() -> Handlers:
    """Contribute the support words and the email fallback."""
    return Handlers(
        commands=[
            Command("tickets", list_tickets, allowed=SUPPORT, section="support", safe=True),
            Command("ticket", show_ticket, allowed=SUPPORT, section="support", safe=True),
            Command("reply", reply, allowed=SUPPORT, aliases=("antworten",), section="support"),
            Command("note", note, allowed=SUPPORT, aliases=("notiz",), section="support"),
            Command("close", close, allowed=SUPPORT, aliases=("schliessen", "schließen"), section="support"),
        ],
        completions={ANSWER_PROOF: answer_proven},
        fallbacks={"email": on_mail},
    )
