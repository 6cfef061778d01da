"""The desk's own records: `tickets [state]` (support) and `audit [FROM [TO]] [word]` (admins)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from handlers.context import Context, Refusal
from handlers.customers import like_pattern
from handlers.exports.appointments import window
from handlers.exports.request import date_range
from handlers.registry import ExportList
from handlers.rules.roles import ADMINS
from handlers.rules.words import split_words
from handlers.tickets.display import STATE_WORDS
from handlers.tickets.records import SUPPORT
from storage.models import Audit, Person, Ticket, TicketMessage

TICKET_FIELDS = ("id", "status", "subject", "customer", "email", "messages", "created", "updated")
TICKET_DEFAULT = ("id", "status", "subject", "customer", "email", "created", "updated")
AUDIT_FIELDS = ("id", "at", "actor", "channel", "action", "subject", "detail")


async def ticket_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    """`export tickets [open|pending|closed|all]`: open and pending ones unless a state is named."""
    wanted = args.strip().lower()
    if wanted not in STATE_WORDS:
        raise Refusal("tickets_bad_state", value=args.strip()[:40])
    messages = (select(func.count()).where(TicketMessage.ticket_id == Ticket.id).scalar_subquery())
    rows = await ctx.session.execute(
        select(Ticket.id, Ticket.status, Ticket.subject, Person.name, Ticket.email, messages, Ticket.created_at,
               Ticket.updated_at)
        .outerjoin(Person, Person.id == Ticket.customer_id)
        .where(Ticket.status.in_(STATE_WORDS[wanted])).order_by(Ticket.id))
    return [{"id": number, "status": status, "subject": subject, "customer": name, "email": email,
             "messages": count, "created": created, "updated": updated}
            for number, status, subject, name, email, count, created, updated in rows]


async def audit_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    """`export audit [FROM [TO]] [word]`: the log, oldest first, optionally only entries mentioning a word."""
    first, last, rest = date_range(split_words(args))
    query = select(Audit).where(*window(ctx, Audit.at, first, last)).order_by(Audit.id)
    if rest:
        needle = like_pattern(" ".join(rest))  # a typed % or _ is looked for, not a wildcard
        query = query.where(Audit.action.ilike(needle, escape="\\") | Audit.actor.ilike(needle, escape="\\")
                            | Audit.subject.ilike(needle, escape="\\"))
    return [{"id": entry.id, "at": entry.at, "actor": entry.actor, "channel": entry.channel, "action": entry.action,
             "subject": entry.subject, "detail": entry.detail or None} for entry in await ctx.session.scalars(query)]


def audit_lists() -> dict[str, ExportList]:
    return {
        "tickets": ExportList("tickets", ticket_rows, TICKET_FIELDS, TICKET_DEFAULT, allowed=SUPPORT),
        "audit": ExportList("audit", audit_rows, AUDIT_FIELDS, allowed=ADMINS, aliases=("protokoll",)),
    }
