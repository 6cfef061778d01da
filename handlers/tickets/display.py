"""What support reads of tickets: the `tickets` list and a `ticket`'s whole thread."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import format_timedelta
from sqlalchemy import func, select

from handlers.context import Context, Refusal
from handlers.licences.support import schools_of_email
from handlers.messages import Attachment, Reply
from handlers.tickets.records import ACK_AUTHOR, prefix, ticket_arg
from storage.models import Address, Person, Ticket, TicketMessage

STATES = ("open", "pending", "closed")
STATE_WORDS = {
    "": ("open", "pending"), "open": ("open",), "offen": ("open",), "pending": ("pending",),
    "wartend": ("pending",), "closed": ("closed",), "geschlossen": ("closed",), "all": STATES, "alle": STATES,
}
CHAT_CHARS = 3000  # of a thread's texts shown in the chat; the whole thread comes as a file then
LIST_LIMIT = 30


@dataclass(frozen=True)
class TicketLine:
    """One row of the `tickets` list, with the names a person reads."""

    id: int
    status: str
    customer: str
    subject: str
    age: str


def fair_lengths(lengths: list[int], budget: int) -> list[int]:
    """Cut lengths to sum to at most `budget`, the longest first: short texts stay whole."""
    if sum(lengths) <= budget:
        return lengths
    remaining, ordered = budget, sorted(lengths)
    for index, length in enumerate(ordered):
        share = remaining // (len(ordered) - index)
        if length > share:
            return [min(n, share) for n in lengths]
        remaining -= length
    return lengths


def cut(text: str, length: int) -> str:
    """Cut a text to `length` characters, marked with … when something was left out."""
    return text if len(text) <= length else text[:length].rstrip() + "…"


def age_text(now: datetime, then: datetime, lang: str) -> str:
    """Say how long ago, in the reader's language ("3 hours ago")."""
    return format_timedelta(then - now, locale=lang, add_direction=True)


async def list_tickets(ctx: Context, args: str) -> list[Reply]:
    """List tickets, newest first: `tickets [open|pending|closed|all]` (open and pending by default)."""
    wanted = args.strip().lower()
    if wanted not in STATE_WORDS:
        raise Refusal("tickets_bad_state", value=args.strip()[:40])
    states = STATE_WORDS[wanted]
    where = Ticket.status.in_(states)
    newest = select(Ticket).where(where).order_by(Ticket.id.desc()).limit(LIST_LIMIT)
    tickets = (await ctx.session.scalars(newest)).all()
    total = await ctx.session.scalar(select(func.count()).select_from(Ticket).where(where))
    lines = await ticket_lines(ctx, list(tickets))
    choices = [ctx.choice("label.ticket_show", f"ticket {line.id}", id=line.id) for line in lines[:8]]
    return [ctx.say("tickets_list", lines=lines, more=total - len(lines), states=states, p=prefix(ctx),
                    choices=choices)]


async def ticket_lines(ctx: Context, tickets: list[Ticket]) -> list[TicketLine]:
    """Turn tickets into list rows with customer names and ages."""
    names = await person_names(ctx, {t.customer_id for t in tickets})
    return [TicketLine(t.id, t.status, customer_label(names.get(t.customer_id), t.email), t.subject,
                       age_text(ctx.now, t.created_at, ctx.lang)) for t in tickets]


def customer_label(name: str | None, email: str) -> str:
    """Show a customer as "Name <email>", or the bare address."""
    return f"{name} <{email}>" if name else email


async def person_names(ctx: Context, ids: set[int]) -> dict[int, str]:
    """Look up the names of these persons, where known."""
    if not ids:
        return {}
    rows = await ctx.session.execute(
        select(Person.id, Person.name).where(Person.id.in_(ids), Person.name.is_not(None)))
    return dict(rows.all())


async def show_ticket(ctx: Context, args: str) -> list[Reply]:
    """Show a ticket's whole thread, oldest first, internal notes marked: `ticket ID`."""
    ticket = await ticket_arg(ctx, args, "ticket")
    messages = (await ctx.session.scalars(
        select(TicketMessage).where(TicketMessage.ticket_id == ticket.id, TicketMessage.direction != "notice")
        .order_by(TicketMessage.id))).all()
    names = await author_names(ctx, {m.author for m in messages})
    customer = customer_label((await person_names(ctx, {ticket.customer_id})).get(ticket.customer_id), ticket.email)
    closable = ticket.status != "closed"
    choices = [ctx.choice("label.ticket_close", f"close {ticket.id}", id=ticket.id)] if closable else []
    values: dict[str, Any] = dict(ticket=ticket, names=names, customer=customer, desk=ACK_AUTHOR, p=prefix(ctx),
                                  schools=await schools_of_email(ctx.session, ticket.email or ""))
    whole = [ThreadLine.of(m) for m in messages]
    lengths = fair_lengths([len(line.text) for line in whole], CHAT_CHARS)
    shown = [line.cut(n) for line, n in zip(whole, lengths)]
    if shown == whole:
        return [ctx.say("tickets_thread", messages=whole, file=False, file_name=None, choices=choices, **values)]
    name = f"ticket-{ticket.id}.txt"
    full = ctx.render("tickets_thread", messages=whole, file=True, file_name=None, **values).text
    reply = ctx.say("tickets_thread", messages=shown, file=False, file_name=name, choices=choices, **values)
    reply.attachments.append(Attachment(name, "text/plain; charset=utf-8", full.encode("utf-8")))
    return [reply]


@dataclass(frozen=True)
class ThreadLine:
    """One message of a thread as `ticket ID` shows it (our acknowledgements without their text)."""

    direction: str
    author: str
    text: str
    attachments: list
    created_at: datetime

    @classmethod
    def of(cls, message: TicketMessage) -> "ThreadLine":
        text = "" if message.author == ACK_AUTHOR and message.direction != "note" else message.text
        return cls(message.direction, message.author, text, message.attachments, message.created_at)

    def cut(self, length: int) -> "ThreadLine":
        return self if len(self.text) <= length else ThreadLine(
            self.direction, self.author, cut(self.text, length), self.attachments, self.created_at)


async def author_names(ctx: Context, addresses: set[str]) -> dict[str, str]:
    """Look up the names behind the addresses that wrote on a thread, where known."""
    rows = await ctx.session.execute(
        select(Address.address, Person.name).join(Person, Person.id == Address.person_id)
        .where(Address.address.in_(addresses), Person.name.is_not(None)))
    return dict(rows.all())
