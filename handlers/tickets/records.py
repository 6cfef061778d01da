"""A ticket's records: numbers and tags, finding the ticket a mail belongs to, writing its messages."""
from __future__ import annotations

import re

from sqlalchemy import bindparam, func, insert, select

from handlers.context import Context, Refusal, table
from handlers.messages import Inbound, MailMeta
from handlers.rules.mailthread import LOOKUP_REFERENCES, normal_id, references, tag, tagged_number, thread_refs
from handlers.rules.words import known_id
from handlers.speaking import AUTO_REPLIED, WRITTEN_BY_A_PERSON
from storage.db import UnitOfWork
from storage.models import Ticket, TicketMessage

SUPPORT = frozenset({"support", "admin", "owner"})
TICKET_ID = re.compile(r"^\[?#?(?:T-?)?(\d{1,9})\]?$", re.IGNORECASE)
ACK_AUTHOR = "desk"  # the author of our automatic acknowledgements on a ticket's thread
ACKS_PER_HOUR = 5  # new tickets from one address (looping or spoofed) get at most this many acknowledgements
UNPROVEN = "unproven"  # a support answer by mail that waits for its code (direction of its message)
ANSWER_PROOF = "ticket_answer"  # the purpose of that code
EXCERPT_LINES, EXCERPT_CHARS = 6, 600


# The statements every incoming mail runs, built once (building one costs more than running it).
# (Table columns, not mapped attributes, where no objects come back: that skips the ORM's part.)
_MESSAGES, _TICKETS = table(TicketMessage), table(Ticket)
KNOWN_MESSAGE = select(_MESSAGES.c.id).where(_MESSAGES.c.message_id == bindparam("message_id")).limit(1)
KNOWN_MESSAGES = (select(_MESSAGES.c.message_id).distinct()
                  .where(_MESSAGES.c.message_id.in_(bindparam("message_ids", expanding=True))))
KNOWN = "tickets.known"  # a session's info: (Message-IDs asked, those on a ticket), see keep_known_messages
ACKS_SINCE = (select(func.count()).select_from(_MESSAGES).join(_TICKETS, _TICKETS.c.id == _MESSAGES.c.ticket_id)
              .where(_TICKETS.c.email == bindparam("email"), _MESSAGES.c.author == ACK_AUTHOR,
                     _MESSAGES.c.created_at > bindparam("since")))
NEW_TICKET = insert(_TICKETS).returning(_TICKETS.c.id)
NEW_MESSAGE = insert(_MESSAGES)
NEW_HELD = insert(_MESSAGES).returning(_MESSAGES.c.id)


def tagged_id(subject: str) -> int | None:
    """Read the ticket number tagged in a subject, if any."""
    found = tagged_number(subject)
    return known_id(found) if found is not None else None


def unread_parts(meta: MailMeta) -> list[str]:
    """Name what of a mail could not be read or used: parts of it, or References beyond the lookup."""
    found = list(meta.unread)
    if len(meta.references) > LOOKUP_REFERENCES:
        found.append("references")
    return found


def excerpt(text: str) -> str:
    """Cut the first non-empty lines of a mail, for a notification."""
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()][:EXCERPT_LINES]
    short = "\n".join(lines)
    return short if len(short) <= EXCERPT_CHARS else short[:EXCERPT_CHARS].rstrip() + "…"


def parse_ticket_id(text: str) -> int | None:
    """Read a typed ticket number: '12', '#12', 'T-12', '#T-12' or '[#T-12]' → 12."""
    found = TICKET_ID.match(text.strip())
    return known_id(int(found.group(1))) if found else None


def mail_meta(inbound: Inbound) -> MailMeta:
    """Return the mail's metadata; an email inbound without it (a console stand-in) gets a blank one."""
    return inbound.mail or MailMeta(message_id="", body=inbound.text)


async def find_ticket(ctx: Context, meta: MailMeta) -> Ticket | None:
    """Find the ticket a mail belongs to: by the tag in its subject (if the sender may use it), then by
    the ids it answers."""
    answered = await answered_tickets(ctx.uow, thread_refs(meta))
    tagged = tagged_id(meta.subject)
    if tagged is not None and (ticket := await ctx.session.get(Ticket, tagged)) is not None:
        if may_follow_tag(ctx, ticket, answered):
            return ticket
        await ctx.audit("ticket_tag_ignored", tag(ticket.id))
    return None if not answered else await ctx.session.get(Ticket, answered[0])


async def answered_tickets(uow: UnitOfWork, refs: list[str]) -> list[int]:
    """List the tickets whose messages a mail answers, the nearest first."""
    if not refs:
        return []
    rows = await uow.session.execute(
        select(TicketMessage.message_id, TicketMessage.ticket_id).where(TicketMessage.message_id.in_(refs)))
    found = dict(rows.all())
    return list(dict.fromkeys(found[ref] for ref in refs if ref in found))


def may_follow_tag(ctx: Context, ticket: Ticket, answered: list[int]) -> bool:
    """Whether a subject's tag may add this mail to the ticket: anyone can type a tag, so only the
    customer, support, or a mail answering one of the ticket's messages may use it."""
    own = ctx.sender.removeprefix("email:").lower() == ticket.email.lower()
    return own or bool(ctx.roles & SUPPORT) or ticket.id in answered


async def known_message(uow: UnitOfWork, message_id: str | None) -> bool:
    """Tell whether a Message-ID is already on a ticket (the same mail again, or ours coming back)."""
    wanted = normal_id(message_id)
    if wanted is None:
        return False
    asked, found = uow.session.info.get(KNOWN, ((), ()))
    if wanted in asked:
        return wanted in found
    return await uow.session.scalar(KNOWN_MESSAGE, {"message_id": wanted}) is not None


def note_known(uow: UnitOfWork, message_id: str | None) -> None:
    """Keep keep_known_messages' answer true: a Message-ID (normal_id) this transaction puts on a ticket."""
    if message_id is not None and KNOWN in uow.session.info:
        uow.session.info[KNOWN][1].add(message_id)


async def keep_known_messages(uow: UnitOfWork, message_ids: list[str]) -> None:
    """Read at once which of a batch's Message-IDs are on a ticket already, for known_message in this
    transaction. Every write of a ticket message notes its Message-ID (note_known), so a later mail of
    the batch whose Message-ID reads the same sees it as before."""
    asked = {wanted for wanted in map(normal_id, message_ids) if wanted is not None}
    found = set((await uow.session.scalars(KNOWN_MESSAGES, {"message_ids": list(asked)})).all()) if asked else set()
    uow.session.info[KNOWN] = (asked, found)


async def add_message(ctx: Context, ticket: Ticket, direction: str, author: str, text: str,
                      message_id: str | None = None, attachments: list[dict] | None = None) -> None:
    """Write one message of a ticket's thread (a Core INSERT: cheaper than the ORM's flush)."""
    note_known(ctx.uow, message_id)
    await ctx.write(NEW_MESSAGE, dict(
        ticket_id=ticket.id, direction=direction, author=author, text=text, message_id=message_id,
        attachments=attachments or [], created_at=ctx.now))


def attachment_list(inbound: Inbound) -> list[dict]:
    """Describe attachments by name, type and size (the bytes stay with the mail)."""
    return [{"name": a.name, "type": a.mime, "size": len(a.data)} for a in inbound.attachments]


def answer_headers(parent: str | None, chain: list[str], automatic: bool) -> dict[str, str]:
    """What makes a mail an answer: In-Reply-To, References, and whether a machine or a person wrote it
    (RFC 3834: only automatic mail says auto-replied; a person's answer may be answered automatically)."""
    headers = dict(AUTO_REPLIED if automatic else WRITTEN_BY_A_PERSON)
    if parent:
        headers["In-Reply-To"] = parent
    if chain:
        headers["References"] = references(chain)
    return headers


def prefix(ctx: Context) -> str:
    """Say how commands are typed where the reader is: '/reply' in chat, 'reply' by email."""
    return "" if ctx.inbound.channel == "email" else "/"


async def ticket_arg(ctx: Context, text: str, word: str) -> Ticket:
    """Load the ticket an argument names, or refuse with what was wrong."""
    ticket_id = parse_ticket_id(text)
    if ticket_id is None:
        raise Refusal("tickets_bad_id", value=text.strip()[:40], word=word, p=prefix(ctx))
    ticket = await ctx.session.get(Ticket, ticket_id)
    if ticket is None:
        raise Refusal("tickets_unknown", id=ticket_id, p=prefix(ctx))
    return ticket
