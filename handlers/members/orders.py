"""Seat orders: placing them, invoicing them through the invoice module, mailing the invoice, and the
approval of large orders."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from babel.numbers import format_currency
from sqlalchemy import func, select, update

from handlers.context import Context, Refusal
from handlers.invoices import (
    Invoice,
    InvoiceDataMissing,
    Line,
    billing_of,
    check_invoice_data,
    invoice_files,
    issue_invoice,
    totals,
)
from handlers.invoices import invoice_view as issued_view
from handlers.members.membership import course_of, secret_digest
from handlers.members.rules import (
    ADMINS,
    APPROVE,
    CURRENCY,
    GROUP_BUTTONS,
    LIST_LIMIT,
    REJECT,
    deep_link,
    invoice_lines,
)
from handlers.messages import Reply
from handlers.rules.words import split_words
from storage.models import Address, Code, Person, SeatGroup, SeatOrder, Service

GROUP_LINK = "group_link"  # code purpose: the buyer's /start g-… link (stored as a Code, never shown again)
LINK_DAYS = 30
DEFAULT_APPROVAL_LIMIT = 20  # [business] max_seats_without_approval


# ---- placing and invoicing ----------------------------------------------------------------------

def approval_limit(ctx: Context) -> int:
    """The most seats one order buys without an admin's approval (setup file, default 20)."""
    limit = ctx.business.max_seats_without_approval if ctx.business else None
    return DEFAULT_APPROVAL_LIMIT if limit is None else limit


def needs_approval(ctx: Context, seats: int) -> bool:
    """An order above the limit waits for an admin; admins' and the owner's own orders do not."""
    return seats > approval_limit(ctx) and not ctx.roles & ADMINS


async def place_order(ctx: Context, group: SeatGroup, seats: int, course: Service | None,
                      pending: bool = False) -> tuple[SeatOrder, Invoice | None]:
    """One order with its invoice; a pending one is invoiced when it is approved, and is refused now if it
    could not be invoiced then (the setup lacks invoice data, or a large order's buyer gave no address)."""
    lines, total = invoice_lines(line_text(ctx, group.name, course), seats, course.price if course else None)
    order = SeatOrder(invoice_number=None, group_id=group.id, buyer_id=ctx.person.id, seats=seats, lines=lines,
                      total=total, created_at=ctx.now, status="pending" if pending else "approved")
    ctx.session.add(order)
    await ctx.session.flush()
    if pending:
        name, address = await buyer_party(ctx, ctx.person)
        try:
            await check_invoice_data(ctx, name, address, gross_cents(ctx, order))
        except InvoiceDataMissing as missing:
            raise missing_refusal(ctx, missing) from None
        return order, None
    return order, await invoice_order(ctx, order, ctx.person)


async def invoice_order(ctx: Context, order: SeatOrder, buyer: Person) -> Invoice:
    """Issue the order's invoice through the one invoice module; the order keeps its number."""
    name, address = await buyer_party(ctx, buyer)
    lines = [Line(line["text"], line["quantity"], to_cents(line["unit_price"])) for line in order.lines]
    try:
        invoice = await issue_invoice(ctx, buyer_person_id=buyer.id, buyer_name=name, buyer_address=address,
                                      lines=lines, source=f"seat_order:{order.id}", send=False)
    except InvoiceDataMissing as missing:
        raise missing_refusal(ctx, missing) from None
    await ctx.session.execute(update(SeatOrder).where(SeatOrder.id == order.id)
                              .values(invoice_number=invoice.number).execution_options(synchronize_session=False))
    await ctx.session.refresh(order)
    return invoice


async def buyer_party(ctx: Context, buyer: Person) -> tuple[str, str]:
    """The name and address on the buyer's invoices: their `billing` address, else their name alone."""
    return await billing_of(ctx.session, buyer.id) or (buyer.name or "", "")


def gross_cents(ctx: Context, order: SeatOrder) -> int:
    vat = Decimal((ctx.business.vat_percent if ctx.business else None) or 0)
    return totals([Line("seats", 1, to_cents(order.total))], vat).gross_cents


def to_cents(amount: str) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


def missing_refusal(ctx: Context, missing: InvoiceDataMissing) -> Refusal:
    """The clear no when an order cannot be invoiced: which setup keys are missing, or the buyer's address."""
    seller = [ctx.word(f"invoice_keys.{key}") for key in missing.missing if not key.startswith("buyer_")]
    return Refusal("invoices_missing", seller=seller, buyer=any(k.startswith("buyer_") for k in missing.missing))


def invoice_view(ctx: Context, order: SeatOrder, invoice: Invoice | None = None) -> dict:
    """The order's invoice with money formatted for the reader (VAT and gross once it is issued)."""
    lines = [{**line, "unit_price": money(ctx, line["unit_price"]), "amount": money(ctx, line["amount"])}
             for line in order.lines]
    issued = issued_view(invoice, ctx.lang) if invoice else None
    return {"number": order.invoice_number, "lines": lines, "total": money(ctx, order.total),
            "seats": order.seats, "created_at": order.created_at,
            "vat": issued["vat"] if issued and invoice and invoice.vat_cents else None,
            "vat_percent": issued["vat_percent"] if issued else None,
            "gross": issued["gross"] if issued else money(ctx, order.total)}


def line_text(ctx: Context, name: str, course: Service | None) -> str:
    return ctx.word("groups.invoice_line", group=name, course=course.name if course else "")


def money(ctx: Context, amount: str) -> str:
    return format_currency(Decimal(amount), CURRENCY, locale=ctx.lang)


async def issue_group_link(ctx: Context, group: SeatGroup, buyer_id: int | None = None) -> str:
    """A random `/start g-…` payload for the buyer; its HMAC is kept as a Code, single use for binding."""
    token = secrets.token_urlsafe(18)
    buyer_id = buyer_id or ctx.person.id
    ctx.session.add(Code(address=f"group:{group.id}", purpose=GROUP_LINK, target=f"group:{group.id}:{buyer_id}",
                         digest=secret_digest(ctx.config.secret_key, GROUP_LINK, token), created_at=ctx.now,
                         expires_at=ctx.now + timedelta(days=LINK_DAYS), attempts=0))
    return f"g-{token}"


async def buyer_email(ctx: Context, buyer: Person) -> str | None:
    """Where the invoice goes: the mailbox that wrote (if the buyer wrote), else the buyer's verified email."""
    if ctx.inbound.channel == "email" and buyer.id == ctx.person.id:
        return ctx.sender.split(":", 1)[1]
    found = await ctx.session.scalar(select(Address.address).where(
        Address.person_id == buyer.id, Address.kind == "email", Address.verified).order_by(Address.id).limit(1))
    return found.split(":", 1)[1] if found else None


async def mail_order(ctx: Context, template: str, group: SeatGroup, order: SeatOrder, invoice: Invoice,
                     course: Service | None, link: str | None, buyer: Person | None = None,
                     lang: str | None = None) -> str | None:
    """Mail the invoice (PDF and XML attached) and the way into the group to the buyer; None if no address
    is known."""
    buyer = buyer or ctx.person
    email = await buyer_email(ctx, buyer)
    if email is not None:
        await ctx.mail(email, template, lang=lang, attachments=await invoice_files(invoice), group=group,
                       course=course, order=invoice_view(ctx, order, invoice),
                       link=deep_link(ctx, link) if link else None, buyer=buyer)
    return email


async def add_bought(ctx: Context, group_id: int, seats: int) -> None:
    await ctx.session.execute(update(SeatGroup).where(SeatGroup.id == group_id)
                              .values(seats_bought=SeatGroup.seats_bought + seats)
                              .execution_options(synchronize_session=False))



# ---- orders waiting for approval ----------------------------------------------------------------

async def order_waits(ctx: Context, group: SeatGroup, order: SeatOrder, enroll_me: bool) -> list[Reply]:
    """Tell the buyer their order waits for an admin; nothing is bought, invoiced or mailed yet."""
    await ctx.audit("seat_order_pending", f"group:{group.id}", order=order.id, seats=order.seats,
                    limit=approval_limit(ctx))
    return [ctx.say("groups_order_pending", group=group, order=order, limit=approval_limit(ctx),
                    enroll_me=enroll_me)]


@dataclass(frozen=True)
class OrderLine:
    id: int
    group: str
    seats: int
    total: str
    buyer: str
    created_at: object


async def list_orders(ctx: Context, args: str) -> list[Reply]:
    """`orders`: seat orders waiting for an admin, oldest first, with buttons to approve or reject."""
    rows = (await ctx.session.execute(
        select(SeatOrder, SeatGroup.name, Person.name).join(SeatGroup, SeatGroup.id == SeatOrder.group_id)
        .join(Person, Person.id == SeatOrder.buyer_id).where(SeatOrder.status == "pending")
        .order_by(SeatOrder.id).limit(LIST_LIMIT + 1))).all()
    lines = [OrderLine(o.id, group, o.seats, money(ctx, o.total), buyer or f"#{o.buyer_id}", o.created_at)
             for o, group, buyer in rows[:LIST_LIMIT]]
    choices = [choice for line in lines[:GROUP_BUTTONS] for choice in (
        ctx.choice("label.groups_order_approve", f"order approve {line.id}", id=line.id),
        ctx.choice("label.groups_order_reject", f"order reject {line.id}", id=line.id))]
    return [ctx.say("groups_orders", orders=lines, more=len(rows) > LIST_LIMIT, choices=choices)]


async def order_command(ctx: Context, args: str) -> list[Reply]:
    """`order approve ID` buys the seats and sends the invoice; `order reject ID [REASON]` drops the order."""
    tokens = split_words(args)
    action = tokens[0].casefold() if tokens else ""
    if len(tokens) < 2 or action not in APPROVE + REJECT or not re.fullmatch(r"#?[0-9]{1,9}", tokens[1]):
        raise Refusal("groups_usage", word="order")
    order_id, reason = int(tokens[1].lstrip("#")), " ".join(tokens[2:])[:500]
    order = await decide_order(ctx, order_id, "approved" if action in APPROVE else "rejected")
    group = await ctx.session.get(SeatGroup, order.group_id)
    buyer = await ctx.session.get(Person, order.buyer_id)
    if order.status == "approved":
        return await approve_order(ctx, order, group, buyer)
    await tell_buyer(ctx, buyer, "groups_order_rejected_notice", group=group, order=order, reason=reason)
    await ctx.audit("seat_order_rejected", f"group:{group.id}", order=order.id, seats=order.seats, reason=reason)
    return [ctx.say("groups_order_decided", group=group, order=order, reason=reason)]


async def decide_order(ctx: Context, order_id: int, status: str) -> SeatOrder:
    """Move a pending order to `status` in one conditional UPDATE: of two admins deciding at once, one wins."""
    done = await ctx.session.execute(
        update(SeatOrder).where(SeatOrder.id == order_id, SeatOrder.status == "pending")
        .values(status=status, decided_by=ctx.sender, decided_at=ctx.now)
        .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise Refusal("groups_refused", reason="no_pending_order", value=str(order_id))
    return await ctx.session.get(SeatOrder, order_id, populate_existing=True)


async def approve_order(ctx: Context, order: SeatOrder, group: SeatGroup, buyer: Person) -> list[Reply]:
    """The seats are bought now: number the invoice, mail it to the buyer (with the group link if new)."""
    first = not await ctx.session.scalar(select(func.count()).select_from(SeatOrder).where(
        SeatOrder.group_id == group.id, SeatOrder.status == "approved", SeatOrder.id != order.id))
    await add_bought(ctx, group.id, order.seats)
    invoice = await invoice_order(ctx, order, buyer)
    await ctx.session.refresh(group)
    course = await course_of(ctx, group)
    link = await issue_group_link(ctx, group, buyer.id) if first else None
    lang = ctx.language_for(buyer.language)
    mailed = await mail_order(ctx, "groups_bought_mail" if first else "groups_seats_mail", group, order, invoice,
                              course, link, buyer, lang)
    await tell_buyer(ctx, buyer, "groups_order_approved_notice", group=group,
                     order=invoice_view(ctx, order, invoice), mailed=mailed)
    await ctx.audit("seat_order_approved", f"group:{group.id}", order=order.id, seats=order.seats,
                    invoice=order.invoice_number, total=order.total)
    return [ctx.say("groups_order_decided", group=group, order=order, mailed=mailed)]


async def tell_buyer(ctx: Context, buyer: Person, template: str, **values) -> None:
    """A chat message to the buyer where they have a chat (their language, else the business's)."""
    await ctx.tell(buyer.id, template, by_mail=False, **values)
