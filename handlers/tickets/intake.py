"""Mail into tickets: a mail that is no command opens or continues one, and support hears of it."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import make_transient_to_detached

from handlers.context import Context
from handlers.messages import MailMeta, Reply
from handlers.router import command_hint
from handlers.rules.mailthread import LOOKUP_REFERENCES, chain_after, normal_id, tag, topic
from handlers.speaking import preferred_addresses
from handlers.tickets.answers import answer_by_mail, answers_notice
from handlers.tickets.records import (
    ACK_AUTHOR,
    ACKS_PER_HOUR,
    ACKS_SINCE,
    NEW_TICKET,
    SUPPORT,
    add_message,
    answer_headers,
    attachment_list,
    excerpt,
    find_ticket,
    known_message,
    mail_meta,
    unread_parts,
)
from storage.db import UnitOfWork
from storage.models import Address, Person, Role, Ticket

MAX_SUBJECT = 300  # of a ticket's stored subject

_PEOPLE, _ADDRESSES, _ROLES = Person.__table__, Address.__table__, Role.__table__
# Everyone who answers tickets, with their language and confirmed addresses.
SUPPORT_ADDRESSES = (
    select(_PEOPLE.c.id, _PEOPLE.c.language, _ADDRESSES.c.kind, _ADDRESSES.c.address)
    .join(_ADDRESSES, _ADDRESSES.c.person_id == _PEOPLE.c.id)
    .where(_PEOPLE.c.id.in_(select(_ROLES.c.person_id).where(_ROLES.c.role.in_(SUPPORT))), _ADDRESSES.c.verified)
    .order_by(_PEOPLE.c.id))
KEPT = "tickets.support"  # a session's info: support's addresses as read in this transaction (see keep_support_list)


def keep_support_list(uow: UnitOfWork) -> None:
    """Let the tickets read support's addresses once for the rest of this transaction (a batch of mails):
    the caller forgets them (forget_support_list) before anything that may change roles or addresses."""
    uow.session.info[KEPT] = None


def forget_support_list(uow: UnitOfWork) -> None:
    """Read support's addresses anew at their next use."""
    if KEPT in uow.session.info:
        uow.session.info[KEPT] = None


async def on_mail(ctx: Context, text: str) -> list[Reply]:
    """Take a mail that is no command: a support answer to a notification, a follow-up, or a new ticket."""
    meta = mail_meta(ctx.inbound)
    if await known_message(ctx.uow, meta.message_id):
        await ctx.audit("ticket_mail_repeated", normal_id(meta.message_id))
        return []
    ticket = await find_ticket(ctx, meta)
    if ticket is None:
        return await open_ticket(ctx, meta)
    if await answers_notice(ctx, ticket, meta):
        return await answer_by_mail(ctx, ticket, meta, text)
    return await continue_ticket(ctx, ticket, meta)


async def open_ticket(ctx: Context, meta: MailMeta) -> list[Reply]:
    """Open a ticket for this mail, acknowledge it once (never to machines) and tell support."""
    email = ctx.sender.removeprefix("email:")
    acked_lately = meta.acks_lately if meta.acks_lately is not None else await acks_sent_lately(ctx, email)
    support = await support_addresses(ctx)
    values = dict(customer_id=ctx.person.id, email=email, subject=topic(meta.subject)[:MAX_SUBJECT], status="open",
                  created_at=ctx.now, updated_at=ctx.now)
    # Its number goes into the acknowledgement and the notices; the session takes the row as loaded.
    ticket = Ticket(id=await ctx.session.scalar(NEW_TICKET, values), **values)
    make_transient_to_detached(ticket)
    ctx.session.add(ticket)
    async with ctx.grouped_writes():  # nothing below reads back what it writes
        await record_incoming(ctx, ticket, meta)
        if not meta.automatic and not meta.quiet and acked_lately < ACKS_PER_HOUR:
            await acknowledge(ctx, ticket, meta)
        await notify_support(ctx, ticket, meta, "new", support)
        await ctx.audit("ticket_opened", tag(ticket.id), email=email, automatic=meta.automatic)
    return []


async def continue_ticket(ctx: Context, ticket: Ticket, meta: MailMeta) -> list[Reply]:
    """Add a mail to its ticket; the customer writing again opens it and support hears of it."""
    async with ctx.grouped_writes():  # nothing below reads back what it writes
        await record_incoming(ctx, ticket, meta)
        ticket.updated_at = ctx.now
        if meta.automatic:
            # An out-of-office answer is kept on the thread but is no customer reply: no reopening, no alarm.
            await ctx.audit("ticket_mail_in", tag(ticket.id), automatic=True)
            return []
        reopened = ticket.status == "closed"
        ticket.status = "open"
        await tell_support(ctx, ticket, meta, "reopened" if reopened else "followup")
        await ctx.audit("ticket_reopened" if reopened else "ticket_mail_in", tag(ticket.id), automatic=False)
    return []


async def record_incoming(ctx: Context, ticket: Ticket, meta: MailMeta) -> None:
    """Keep the whole mail (quotes and signature included) and its attachments' names and sizes; what
    could not be read of it goes into an internal note."""
    await add_message(ctx, ticket, "in", ctx.sender, meta.body or ctx.inbound.text, normal_id(meta.message_id),
                      attachment_list(ctx.inbound))
    unread = unread_parts(meta)
    if unread:
        note = ctx.render("tickets_unread_note", ctx.language_for(None), unread=unread, sender=ctx.sender,
                          references=len(meta.references), kept=LOOKUP_REFERENCES)
        await add_message(ctx, ticket, "note", ACK_AUTHOR, note.text)
        await ctx.audit("ticket_mail_unread", tag(ticket.id), unread=unread)


async def acks_sent_lately(ctx: Context, email: str) -> int:
    """Count the acknowledgements mailed to this address in the last hour."""
    return await ctx.session.scalar(ACKS_SINCE, {"email": email, "since": ctx.now - timedelta(hours=1)})


async def acknowledge(ctx: Context, ticket: Ticket, meta: MailMeta) -> None:
    """Mail the one acknowledgement with the ticket's tag, threaded under the customer's mail."""
    headers = answer_headers(normal_id(meta.message_id), chain_after(meta), automatic=True)
    queued = await ctx.mail(ticket.email, "tickets_ack", headers=headers, ticket=ticket,
                            **await command_hint(ctx, meta.looked_like))
    await add_message(ctx, ticket, "out", ACK_AUTHOR, queued.text, queued.message_id)


async def support_addresses(ctx: Context) -> list[tuple[str | None, str]]:
    """Everyone who answers tickets, except the one who wrote: (their language, where they read)."""
    info = ctx.session.info
    found = info.get(KEPT)
    if found is None:
        found = (await ctx.session.execute(SUPPORT_ADDRESSES)).all()
        if KEPT in info:
            info[KEPT] = found
    rows = [row for row in found if row.id != ctx.person.id]
    languages = {person_id: lang for person_id, lang, _, _ in rows}
    addresses = preferred_addresses([(person_id, kind, address) for person_id, _, kind, address in rows])
    return [(languages[person_id], address) for person_id, address in sorted(addresses.items())]


async def tell_support(ctx: Context, ticket: Ticket, meta: MailMeta, kind: str) -> None:
    """Notify everyone who answers tickets (see notify_support)."""
    await notify_support(ctx, ticket, meta, kind, await support_addresses(ctx))


async def notify_support(ctx: Context, ticket: Ticket, meta: MailMeta, kind: str,
                         support: list[tuple[str | None, str]]) -> None:
    """Notify each support member in their chat (by mail if that is all they have), in their language."""
    values = dict(ticket=ticket, kind=kind, sender=ctx.sender.removeprefix("email:"), automatic=meta.automatic,
                  excerpt=excerpt(ctx.inbound.text or meta.body), unread=unread_parts(meta))
    for lang, address in support:
        await notify_one(ctx, ticket, address, lang or ctx.language_for(None), values)


async def notify_one(ctx: Context, ticket: Ticket, address: str, lang: str, values: dict) -> None:
    """Send one notification; remember a mailed one, so an answer to it can be trusted as support's."""
    if not address.startswith("email:"):
        await ctx.notify(address, "tickets_notice", lang=lang, by_mail=False, **values)
        return
    queued = await ctx.mail(address.removeprefix("email:"), "tickets_notice", lang=lang, by_mail=True, **values)
    await add_message(ctx, ticket, "notice", address, queued.text, queued.message_id)
