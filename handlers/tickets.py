"""Support tickets: mail that is no command opens or continues one; support answers from chat or by mail.

Closing a ticket does not mail the customer: the last reply already said what there was to say, and a
"your ticket was closed" mail mostly invites a "thanks!" that opens the ticket again.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.dates import format_timedelta
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import make_transient_to_detached

from handlers.context import Context, Queued, Refusal, known_id
from handlers.identity import issue_code
from handlers.messages import Attachment, Inbound, MailMeta, Reply
from handlers.registry import Command, Handlers
from handlers.router import command_hint
from handlers.speaking import preferred_addresses
from storage.db import UnitOfWork
from storage.models import Address, Code, Person, Role, Ticket, TicketMessage

SUPPORT = frozenset({"support", "admin", "owner"})
STATES = ("open", "pending", "closed")
STATE_WORDS = {
    "": ("open", "pending"), "open": ("open",), "offen": ("open",), "pending": ("pending",),
    "wartend": ("pending",), "closed": ("closed",), "geschlossen": ("closed",), "all": STATES, "alle": STATES,
}
TAG = re.compile(r"\[#T-(\d{1,9})\]", re.IGNORECASE)
TICKET_ID = re.compile(r"^\[?#?(?:T-?)?(\d{1,9})\]?$", re.IGNORECASE)
REPLY_PREFIXES = re.compile(r"^(?:\s*(?:re|aw|antw|wg|fw|fwd|sv)(?:\[\d+\])?\s*:)+", re.IGNORECASE)
ACK_AUTHOR = "desk"  # the author of our automatic acknowledgements on a ticket's thread
ACKS_PER_HOUR = 5  # new tickets from one address (looping or spoofed) get at most this many acknowledgements
MAX_REFERENCES = 20  # long References headers get folded badly by some servers; keep the root and the latest
# Ids of a mail's References looked up to find its ticket: the root and the latest. PostgreSQL takes at
# most 32 767 bind parameters in one query, and a real thread is found long before that.
LOOKUP_REFERENCES = 100
CHAT_CHARS = 3000  # of a thread's texts shown in the chat; the whole thread comes as a file then
UNPROVEN = "unproven"  # a support answer by mail that waits for its code (direction of its message)
ANSWER_PROOF = "ticket_answer"  # the purpose of that code
LIST_LIMIT = 30
EXCERPT_LINES, EXCERPT_CHARS = 6, 600


# The statements every incoming mail runs, built once (building one costs more than running it).
# (Table columns, not mapped attributes, where no objects come back: that skips the ORM's part.)
_MESSAGES, _TICKETS = TicketMessage.__table__, Ticket.__table__
KNOWN_MESSAGE = select(_MESSAGES.c.id).where(_MESSAGES.c.message_id == bindparam("message_id")).limit(1)
ACKS_SINCE = (select(func.count()).select_from(_MESSAGES).join(_TICKETS, _TICKETS.c.id == _MESSAGES.c.ticket_id)
              .where(_TICKETS.c.email == bindparam("email"), _MESSAGES.c.author == ACK_AUTHOR,
                     _MESSAGES.c.created_at > bindparam("since")))
NEW_TICKET = insert(_TICKETS).returning(_TICKETS.c.id)
NEW_MESSAGE = insert(_MESSAGES)
NEW_HELD = insert(_MESSAGES).returning(_MESSAGES.c.id)
_PEOPLE, _ADDRESSES, _ROLES = Person.__table__, Address.__table__, Role.__table__
# Everyone who answers tickets (but the writer), with their language and confirmed addresses.
SUPPORT_ADDRESSES = (
    select(_PEOPLE.c.id, _PEOPLE.c.language, _ADDRESSES.c.kind, _ADDRESSES.c.address)
    .join(_ADDRESSES, _ADDRESSES.c.person_id == _PEOPLE.c.id)
    .where(_PEOPLE.c.id.in_(select(_ROLES.c.person_id).where(_ROLES.c.role.in_(SUPPORT))),
           _PEOPLE.c.id != bindparam("writer"), _ADDRESSES.c.verified)
    .order_by(_PEOPLE.c.id))


@dataclass(frozen=True)
class TicketLine:
    """One row of the `tickets` list, with the names a person reads."""

    id: int
    status: str
    customer: str
    subject: str
    age: str


# --- pure rules -------------------------------------------------------------------------------------

def tag(ticket_id: int) -> str:
    """Tag a ticket number for subjects: 12 → [#T-12]."""
    return f"[#T-{ticket_id}]"


def tagged_id(subject: str) -> int | None:
    """Read the ticket number tagged in a subject, if any."""
    found = TAG.search(subject or "")
    return known_id(int(found.group(1))) if found else None


def clean_subject(subject: str) -> str:
    """Drop our tag and Re:/AW:/Fwd: prefixes from a subject, for storing on a new ticket."""
    text = TAG.sub(" ", subject or "")
    text = REPLY_PREFIXES.sub("", text)
    return " ".join(text.split())[:300]


def normal_id(message_id: str | None) -> str | None:
    """Bracket a Message-ID, so stored and referenced ids compare equal."""
    bare = (message_id or "").strip().strip("<>").strip()
    return f"<{bare}>" if bare else None


def thread_refs(meta: MailMeta) -> list[str]:
    """List the ids a mail answers: the direct parent first, then References from the newest back (only
    the root and the latest LOOKUP_REFERENCES - 1 of a longer list)."""
    ids = [meta.in_reply_to, *reversed(trimmed(list(meta.references), LOOKUP_REFERENCES))]
    return list(dict.fromkeys(filter(None, map(normal_id, ids))))


def unread_parts(meta: MailMeta) -> list[str]:
    """Name what of a mail could not be read or used: parts of it, or References beyond the lookup."""
    found = list(meta.unread)
    if len(meta.references) > LOOKUP_REFERENCES:
        found.append("references")
    return found


def chain_after(meta: MailMeta) -> list[str]:
    """Build References for an answer to this mail: its References (or In-Reply-To), then its id."""
    parents = list(meta.references) or [meta.in_reply_to]
    return list(dict.fromkeys(filter(None, map(normal_id, [*parents, meta.message_id]))))


def trimmed(chain: list[str], most: int = MAX_REFERENCES) -> list[str]:
    """Keep the thread's root and the latest ids (RFC 5322 advises keeping the first)."""
    return chain if len(chain) <= most else [chain[0], *chain[-(most - 1):]]


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


def excerpt(text: str) -> str:
    """Cut the first non-empty lines of a mail, for a notification."""
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()][:EXCERPT_LINES]
    short = "\n".join(lines)
    return short if len(short) <= EXCERPT_CHARS else short[:EXCERPT_CHARS].rstrip() + "…"


def parse_ticket_id(text: str) -> int | None:
    """Read a typed ticket number: '12', '#12', 'T-12', '#T-12' or '[#T-12]' → 12."""
    found = TICKET_ID.match(text.strip())
    return known_id(int(found.group(1))) if found else None


def age_text(now: datetime, then: datetime, lang: str) -> str:
    """Say how long ago, in the reader's language ("3 hours ago")."""
    return format_timedelta(then - now, locale=lang, add_direction=True)


# --- finding tickets ----------------------------------------------------------------------------------

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
    return await uow.session.scalar(KNOWN_MESSAGE, {"message_id": wanted}) is not None


# --- mail in ------------------------------------------------------------------------------------------

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
    acked_lately = await acks_sent_lately(ctx, email)
    support = await support_addresses(ctx)
    values = dict(customer_id=ctx.person.id, email=email, subject=clean_subject(meta.subject), status="open",
                  created_at=ctx.now, updated_at=ctx.now)
    # Its number goes into the acknowledgement and the notices; the session takes the row as loaded.
    ticket = Ticket(id=await ctx.session.scalar(NEW_TICKET, values), **values)
    make_transient_to_detached(ticket)
    ctx.session.add(ticket)
    await record_incoming(ctx, ticket, meta)
    if not meta.automatic and not meta.quiet and acked_lately < ACKS_PER_HOUR:
        await acknowledge(ctx, ticket, meta)
    await notify_support(ctx, ticket, meta, "new", support)
    await ctx.audit("ticket_opened", tag(ticket.id), email=email, automatic=meta.automatic)
    return []


async def continue_ticket(ctx: Context, ticket: Ticket, meta: MailMeta) -> list[Reply]:
    """Add a mail to its ticket; the customer writing again opens it and support hears of it."""
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
        note = ctx.render("tickets_unread_note", business_language(ctx), unread=unread, sender=ctx.sender,
                          references=len(meta.references), kept=LOOKUP_REFERENCES)
        await add_message(ctx, ticket, "note", ACK_AUTHOR, note.text)
        await ctx.audit("ticket_mail_unread", tag(ticket.id), unread=unread)


async def add_message(ctx: Context, ticket: Ticket, direction: str, author: str, text: str,
                      message_id: str | None = None, attachments: list[dict] | None = None) -> None:
    """Write one message of a ticket's thread (a Core INSERT: cheaper than the ORM's flush)."""
    await ctx.session.execute(NEW_MESSAGE, dict(
        ticket_id=ticket.id, direction=direction, author=author, text=text, message_id=message_id,
        attachments=attachments or [], created_at=ctx.now))


def attachment_list(inbound: Inbound) -> list[dict]:
    """Describe attachments by name, type and size (the bytes stay with the mail)."""
    return [{"name": a.name, "type": a.mime, "size": len(a.data)} for a in inbound.attachments]


async def acks_sent_lately(ctx: Context, email: str) -> int:
    """Count the acknowledgements mailed to this address in the last hour."""
    return await ctx.session.scalar(ACKS_SINCE, {"email": email, "since": ctx.now - timedelta(hours=1)})


async def acknowledge(ctx: Context, ticket: Ticket, meta: MailMeta) -> None:
    """Mail the one acknowledgement with the ticket's tag, threaded under the customer's mail."""
    headers = answer_headers(normal_id(meta.message_id), chain_after(meta), automatic=True)
    queued = await ctx.mail(ticket.email, "tickets_ack", headers=headers, ticket=ticket,
                            **await command_hint(ctx, meta.looked_like))
    await add_message(ctx, ticket, "out", ACK_AUTHOR, queued.text, queued.message_id)


def answer_headers(parent: str | None, chain: list[str], automatic: bool) -> dict[str, str]:
    """What makes a mail an answer: In-Reply-To, References, and whether a machine or a person wrote it
    (RFC 3834: only automatic mail says auto-replied; a person's answer may be answered automatically)."""
    headers = {"Auto-Submitted": "auto-replied" if automatic else "no"}
    if parent:
        headers["In-Reply-To"] = parent
    if chain:
        headers["References"] = " ".join(trimmed(chain))
    return headers


# --- telling support ------------------------------------------------------------------------------------

async def support_addresses(ctx: Context) -> list[tuple[str | None, str]]:
    """Everyone who answers tickets, except the one who wrote: (their language, where they read)."""
    rows = (await ctx.session.execute(SUPPORT_ADDRESSES, {"writer": ctx.person.id})).all()
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
        await notify_one(ctx, ticket, address, lang or business_language(ctx), values)


async def notify_one(ctx: Context, ticket: Ticket, address: str, lang: str, values: dict) -> None:
    """Send one notification; remember a mailed one, so an answer to it can be trusted as support's."""
    if not address.startswith("email:"):
        await ctx.notify(address, "tickets_notice", lang=lang, by_mail=False, **values)
        return
    queued = await ctx.mail(address.removeprefix("email:"), "tickets_notice", lang=lang, by_mail=True, **values)
    await add_message(ctx, ticket, "notice", address, queued.text, queued.message_id)


def business_language(ctx: Context) -> str:
    """Pick the language for people who chose none."""
    return ctx.business.language if ctx.business else ctx.config.default_language


async def answers_notice(ctx: Context, ticket: Ticket, meta: MailMeta) -> bool:
    """Tell whether support answers a notice mailed to this very address (a forged From: cannot know its id)."""
    refs = thread_refs(meta)
    if not (ctx.roles & SUPPORT) or not refs:
        return False
    notice = select(TicketMessage.id).where(
        TicketMessage.ticket_id == ticket.id, TicketMessage.direction == "notice",
        TicketMessage.author == ctx.sender, TicketMessage.message_id.in_(refs))
    return await ctx.session.scalar(notice.limit(1)) is not None


async def answer_by_mail(ctx: Context, ticket: Ticket, meta: MailMeta, text: str) -> list[Reply]:
    """Hold a support member's answer to a notification mail on the ticket, unproven, and mail them a
    code: a From: line proves nothing, so the answer reaches the customer only when the code comes back."""
    if meta.automatic:
        # A support member's out-of-office answer must never reach the customer.
        await ctx.audit("ticket_auto_answer_ignored", tag(ticket.id))
        return []
    text = text.strip()
    if not text:
        raise Refusal("tickets_empty_text", word="reply", id=ticket.id, p=prefix(ctx))
    held = await ctx.session.scalar(NEW_HELD, dict(
        ticket_id=ticket.id, direction=UNPROVEN, author=ctx.sender, text=text,
        message_id=normal_id(meta.message_id), attachments=held_attachments(ctx.inbound), created_at=ctx.now))
    ticket.updated_at = ctx.now
    try:
        code = await issue_code(ctx, ANSWER_PROOF, str(held))
    except Refusal as refusal:  # too many codes this hour: the answer stays on the ticket, unsent
        await ctx.audit("ticket_answer_held", tag(ticket.id), code=False)
        reason = ctx.render(refusal.template, **refusal.values).text
        return [ctx.say("tickets_answer_kept", ticket=ticket, reason=reason)]
    await ctx.audit("ticket_answer_held", tag(ticket.id), code=True)
    rendered = ctx.render("tickets_answer_code", code=code, ticket=ticket, excerpt=excerpt(text),
                          expires_at=ctx.now + ctx.config.code_ttl)
    return [Reply(rendered.text, subject=rendered.subject)]


def held_attachments(inbound: Inbound) -> list[dict]:
    """Attachments of an answer held for its proof, with their bytes: they go out with it later."""
    return [dict(item, data=base64.b64encode(a.data).decode())
            for a, item in zip(inbound.attachments, attachment_list(inbound))]


async def answer_proven(ctx: Context, code: Code) -> list[Reply]:
    """The code came back: whoever holds the support member's mailbox wrote the answer, so send it."""
    if not ctx.roles & SUPPORT:
        return [ctx.say("not_allowed", word="reply")]
    held = await ctx.session.get(TicketMessage, int(code.target))
    claimed = held is not None and (await ctx.session.execute(
        update(TicketMessage).where(TicketMessage.id == held.id, TicketMessage.direction == UNPROVEN)
        .values(direction="out", message_id=None).execution_options(synchronize_session=False))).rowcount == 1
    if not claimed:
        return [ctx.say("tickets_answer_gone")]
    ticket = await ctx.session.get(Ticket, held.ticket_id)
    files = [Attachment(a["name"], a["type"], base64.b64decode(a["data"])) for a in held.attachments]
    queued = await mail_answer(ctx, ticket, held.text, files)
    listed = [{k: v for k, v in a.items() if k != "data"} for a in held.attachments]
    await ctx.session.execute(update(TicketMessage).where(TicketMessage.id == held.id).values(
        message_id=queued.message_id, attachments=listed).execution_options(synchronize_session=False))
    return await answered(ctx, ticket, code.address)


# --- answering the customer -----------------------------------------------------------------------------

async def send_answer(ctx: Context, ticket: Ticket, text: str) -> list[Reply]:
    """Mail support's words to the customer, threaded and tagged; the ticket then waits for them."""
    text = text.strip()
    if not text:
        raise Refusal("tickets_empty_text", word="reply", id=ticket.id, p=prefix(ctx))
    queued = await mail_answer(ctx, ticket, text, list(ctx.inbound.attachments))
    await add_message(ctx, ticket, "out", ctx.sender, text, queued.message_id, attachment_list(ctx.inbound))
    return await answered(ctx, ticket, ctx.sender)


async def mail_answer(ctx: Context, ticket: Ticket, text: str, files: list[Attachment]) -> Queued:
    """Queue a person's answer to the customer, threaded under their last mail (no Auto-Submitted)."""
    parent, chain = await thread_of(ctx.uow, ticket)
    return await ctx.mail(ticket.email, "tickets_reply", lang=await customer_language(ctx, ticket),
                          attachments=files, headers=answer_headers(parent, chain, automatic=False),
                          ticket=ticket, message=text)


async def answered(ctx: Context, ticket: Ticket, author: str) -> list[Reply]:
    """The answer went out: the ticket waits for the customer."""
    ticket.status, ticket.updated_at = "pending", ctx.now
    await ctx.audit("ticket_replied", tag(ticket.id), email=ticket.email, by=author)
    return [ctx.say("tickets_replied", ticket=ticket)]


async def thread_of(uow: UnitOfWork, ticket: Ticket) -> tuple[str | None, list[str]]:
    """Return the last customer mail's id (what an answer replies to) and the ids of the exchange."""
    rows = (await uow.session.execute(
        select(TicketMessage.direction, TicketMessage.message_id).where(
            TicketMessage.ticket_id == ticket.id, TicketMessage.direction.in_(("in", "out")),
            TicketMessage.message_id.is_not(None)).order_by(TicketMessage.id))).all()
    incoming = [mid for direction, mid in rows if direction == "in"]
    return (incoming[-1] if incoming else None), [mid for _, mid in rows]


async def customer_language(ctx: Context, ticket: Ticket) -> str:
    """Pick the customer's language, else the business's."""
    customer = await ctx.session.get(Person, ticket.customer_id)
    return (customer.language if customer else None) or business_language(ctx)


# --- support words --------------------------------------------------------------------------------------

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
    values = dict(ticket=ticket, names=names, customer=customer, desk=ACK_AUTHOR, p=prefix(ctx))
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
