"""The invoice words: `invoices` lists the asker's invoices (an admin's: all), `invoice NUMBER` sends one
again (PDF and XML, by mail to the asker's verified address and into the chat), `billing` keeps the name
and address a person wants on their invoices."""
from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select, update

from handlers.context import Context, Refusal, table
from handlers.invoices.issuing import invoice_files, invoice_view, mail_invoice, verified_email
from handlers.messages import Reply
from handlers.rules.names import FORBIDDEN, name_problem
from handlers.rules.payment import address_parts, address_problem
from handlers.rules.roles import ADMINS
from storage.dialect import insert_ignoring_conflicts
from storage.models import BillingAddress, Invoice

LIST_LIMIT = 30
BUTTONS = 10
NUMBER = re.compile(r"R-\d{4}-\d{6}")
MAX_NAME = 200
MAX_ADDRESS = 500


async def list_invoices(ctx: Context, args: str) -> list[Reply]:
    """`invoices`: the newest invoices and credit notes of the asker (for admins: everyone's)."""
    query = select(Invoice).order_by(Invoice.id.desc()).limit(LIST_LIMIT + 1)
    everyone = bool(ctx.roles & ADMINS)
    if not everyone:
        query = query.where(Invoice.buyer_person_id == ctx.person.id)
    found = list((await ctx.session.scalars(query)).all())
    shown = [invoice_view(invoice, ctx.lang) for invoice in found[:LIST_LIMIT]]
    choices = [ctx.choice("label.invoice_send", f"invoice {view['number']}", number=view["number"])
               for view in shown[:BUTTONS]]
    return [ctx.say("invoices_list", invoices=shown, more=len(found) > LIST_LIMIT, everyone=everyone,
                    choices=choices)]


async def send_invoice(ctx: Context, args: str) -> list[Reply]:
    """`invoice NUMBER`: the PDF and XML again, into this chat and to the asker's verified email address."""
    number = args.strip().upper()
    if not NUMBER.fullmatch(number):
        raise Refusal("invoices_usage", value=args.strip()[:40])
    invoice = await ctx.session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None or not (ctx.roles & ADMINS or invoice.buyer_person_id == ctx.person.id):
        raise Refusal("invoices_unknown", number=number)  # someone else's invoice looks like none
    files = await invoice_files(invoice)
    if ctx.inbound.channel == "email":  # the answer is the mail: it carries the files
        mailed: str | None = ctx.sender.split(":", 1)[1]
    else:
        mailed = await verified_email(ctx.session, ctx.person.id)
        if mailed is not None:
            await mail_invoice(ctx, invoice, to=mailed, again=True, files=files)
    await ctx.audit("invoice_sent_again", invoice.number, to=mailed)
    reply = ctx.say("invoice_sent", invoice=invoice_view(invoice, ctx.lang), mailed=mailed)
    reply.attachments.extend(files)
    return [reply]


async def billing(ctx: Context, args: str) -> list[Reply]:
    """`billing` shows the invoice address; `billing NAME; STREET; POSTCODE CITY` sets it."""
    current = await ctx.session.get(BillingAddress, ctx.person.id)
    if not args.strip():
        return [ctx.say("billing_shown", billing=current)]
    parts = address_parts(args)
    name, address = (parts[0], "\n".join(parts[1:])) if parts else ("", "")
    problem = name_problem(name, MAX_NAME) if name else "empty"
    if problem or len(address) > MAX_ADDRESS or unprintable(parts) or address_problem(address):
        raise Refusal("billing_invalid", value=args.strip()[:120])
    values = dict(name=name, address=address, updated_at=ctx.now)
    await ctx.session.execute(insert_ignoring_conflicts(ctx.uow.dialect, table(BillingAddress), ["person_id"])
                              .values(person_id=ctx.person.id, **values))
    await ctx.session.execute(update(BillingAddress).where(BillingAddress.person_id == ctx.person.id)
                              .values(**values).execution_options(synchronize_session=False))
    await ctx.audit("billing_address_set", f"person:{ctx.person.id}")
    return [ctx.say("billing_set", holder=name, address=address.splitlines())]


def unprintable(parts: list[str]) -> bool:
    """A control, format or line-separator character in an address line: no invoice XML may hold a control
    character (rendering would fail at every later order), and a direction override would disguise the address."""
    return any(unicodedata.category(c) in FORBIDDEN for part in parts for c in part)
