"""Support's answers to the customer: from chat at once, or by mail once a code proves the mailbox."""
from __future__ import annotations

import base64

from sqlalchemy import select, update

from handlers.context import Context, Queued, Refusal
from handlers.identity import issue_code
from handlers.messages import Attachment, Inbound, MailMeta, Reply
from handlers.rules.mailthread import normal_id, tag, thread_refs
from handlers.tickets.records import (
    ANSWER_PROOF,
    NEW_HELD,
    SUPPORT,
    UNPROVEN,
    add_message,
    answer_headers,
    attachment_list,
    excerpt,
    note_known,
    prefix,
)
from storage.db import UnitOfWork
from storage.models import Code, Person, Ticket, TicketMessage


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
    note_known(ctx.uow, normal_id(meta.message_id))
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
    return (incoming[-1] if incoming else None), [mid for _, mid in rows if mid is not None]


async def customer_language(ctx: Context, ticket: Ticket) -> str:
    """Pick the customer's language, else the business's."""
    customer = await ctx.session.get(Person, ticket.customer_id)
    return ctx.language_for(customer.language if customer else None)
