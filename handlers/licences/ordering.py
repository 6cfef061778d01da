"""`licence PRODUCT` with the registration list: a dry run (schools, types, eligibility, total, credits), then
`licence PRODUCT confirm` sets the licence up: its schools, the activation mails and the jobs of its term."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal, table
from handlers.licences import lists, terms
from handlers.licences.rules import (
    LIST_HEADERS,
    LIST_REQUIRED,
    ListRow,
    TypeCheck,
    add_months,
    check_list,
    credit_cents,
    eligibility,
)
from handlers.members.imports import RowError
from handlers.members.membership import in_chunks
from handlers.members.rules import CONFIRM
from handlers.messages import Reply
from handlers.router import sender_verified
from handlers.rules.words import split_words
from storage.dialect import insert_ignoring_conflicts
from storage.models import CarrierBuyer, Licence, Product, School

KIND = "licence"
CANCEL = ("cancel", "kündigen", "kuendigen")


@dataclass
class Plan:
    """A registration list against the directory."""

    carrier: str | None
    schools: list[tuple[ListRow, School]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    types: list[TypeCheck] = field(default_factory=list)
    credits: dict[str, int] = field(default_factory=dict)  # school number → cents

    @property
    def eligible(self) -> bool:
        return bool(self.schools) and all(t.eligible for t in self.types)


def cents_of(price: str) -> int:
    return int(Decimal(price) * 100)


async def licence(ctx: Context, args: str) -> list[Reply]:
    """`licence PRODUCT` (+ list): a dry run; `licence PRODUCT confirm`: order; `licence cancel ID`."""
    words = split_words(args)
    if words and words[0].casefold() in CANCEL:
        return await terms.cancel(ctx, words[1:])
    confirm = bool(words) and words[-1].casefold() in CONFIRM
    product = await find_product(ctx, " ".join(words[:-1] if confirm else words))
    if not await sender_verified(ctx):
        raise Refusal("licences_verify_first")
    if confirm:
        return await confirm_order(ctx, product)
    if not ctx.inbound.attachments:
        raise Refusal("licences_no_file", product=product.name)
    columns, rows = lists.prepared_table(ctx, LIST_HEADERS, LIST_REQUIRED)
    checked = check_list(rows, columns)
    plan = await make_plan(ctx, product, checked.valid, checked.errors)
    await check_buyer(ctx, plan.carrier)
    summary = summary_of(plan, product)
    await lists.store_batch(ctx, KIND, product.name, [row for row, _ in plan.schools], summary)
    choices = [ctx.choice("licences_label.order", f'licence "{product.name}" confirm')] if plan.eligible else []
    reply = ctx.say("licences_dry_run", product=product, plan=plan, summary=summary, choices=choices,
                    shown=plan.schools[:50])
    if plan.errors:
        reply.attachments.append(lists.error_file(ctx, "licence", plan.errors))
    await ctx.audit("licence_checked", product.name, carrier=plan.carrier, schools=len(plan.schools))
    return [reply]


async def find_product(ctx: Context, name: str) -> Product:
    products = (await ctx.session.scalars(select(Product).order_by(Product.name))).all()
    found = next((p for p in products if p.name.casefold() == name.strip().casefold()), None)
    if found is None:
        raise Refusal("licences_no_product", wanted=name, products=[p.name for p in products])
    return found


async def make_plan(ctx: Context, product: Product, rows: list[ListRow], errors: list[RowError]) -> Plan:
    """Rows matched to the directory; the carrier; eligibility per type; credits for single licences."""
    found = await in_chunks(ctx, lambda chunk: select(School).where(School.number.in_(chunk)),
                            [r.number for r in rows])
    by_number = {school.number: school for (school,) in found}
    carriers = Counter(by_number[r.number].carrier for r in rows if r.number in by_number)
    if len(carriers) > 1:
        raise Refusal("licences_mixed_carriers", carriers=sorted(carriers))
    plan = Plan(next(iter(carriers), None), errors=list(errors))
    for row in rows:
        school = by_number.get(row.number)
        if school is None:
            plan.errors.append(RowError(row.row, row.number, "school_unknown"))
        else:
            plan.schools.append((row, school))
    if plan.carrier is None:
        raise Refusal("licences_no_school", errors=len(plan.errors))
    owned = dict((await ctx.session.execute(select(School.type, func.count()).where(
        School.carrier == plan.carrier).group_by(School.type))).all())
    plan.types = eligibility(owned, dict(Counter(school.type for _, school in plan.schools)))
    today = ctx.now.astimezone(terms.zone(ctx)).date()
    for _, school in plan.schools:
        credit = single_credit(school, product, today)
        if credit:
            plan.credits[school.number] = credit
    return plan


def single_credit(school: School, product: Product, today: date) -> int:
    """The credit for the school's own licence of this product, if it holds one."""
    if school.single_product is None or school.single_product.casefold() != product.name.casefold():
        return 0
    if school.single_until is None or school.single_paid_cents is None:
        return 0
    starts = add_months(school.single_until, -product.term_months)
    return credit_cents(school.single_paid_cents, starts, school.single_until, today)


def summary_of(plan: Plan, product: Product) -> dict:
    price = cents_of(product.price_per_school)
    return {"carrier": plan.carrier, "schools": len(plan.schools), "invalid": len({e.row for e in plan.errors}),
            "price_cents": price, "total_cents": price * len(plan.schools),
            "credit_cents": sum(plan.credits.values()), "eligible": plan.eligible}


async def check_buyer(ctx: Context, carrier: str | None) -> None:
    """Only the carrier's buyer orders for it (the first order makes someone the buyer)."""
    buyer = await ctx.session.scalar(select(CarrierBuyer.person_id).where(CarrierBuyer.carrier == carrier))
    if buyer is not None and buyer != ctx.person.id:
        raise Refusal("licences_other_buyer", carrier=carrier)


async def claim_buyer(ctx: Context, carrier: str) -> None:
    """Become the carrier's buyer unless someone is already: the primary key decides a race."""
    await ctx.session.execute(insert_ignoring_conflicts(ctx.uow.dialect, table(CarrierBuyer), ["carrier"]).values(
        carrier=carrier, person_id=ctx.person.id, created_at=ctx.now))
    await check_buyer(ctx, carrier)


async def confirm_order(ctx: Context, product: Product) -> list[Reply]:
    """Order the last dry run: the licence, its schools, their activation mails and the term's jobs."""
    batch = await lists.claim_batch(ctx, KIND, product.name,
                                    Refusal("licences_nothing", command=f'licence "{product.name}"'))
    plan = await make_plan(ctx, product, [ListRow(**r) for r in batch.rows], [])
    if not plan.eligible or plan.errors or plan.carrier is None or len(plan.schools) != len(batch.rows):
        raise Refusal("licences_changed", product=product.name)
    await claim_buyer(ctx, plan.carrier)
    today = ctx.now.astimezone(terms.zone(ctx)).date()
    row = Licence(product_id=product.id, carrier=plan.carrier, buyer_person_id=ctx.person.id,
                  price_cents=cents_of(product.price_per_school), starts_on=today,
                  ends_on=add_months(today, product.term_months), term=1, status="active", live=True,
                  created_at=ctx.now)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(row)
            await ctx.session.flush()
    except IntegrityError:  # a live licence of this product for the carrier exists (or was just made)
        raise Refusal("licences_exists", product=product.name, carrier=plan.carrier) from None
    await terms.add_schools(ctx, row, product, plan.schools, plan.credits)
    await terms.schedule_term(ctx, row, product)
    await ctx.audit("licence_ordered", f"licence:{row.id}", product=product.name, carrier=plan.carrier,
                    schools=len(plan.schools))
    return [ctx.say("licences_ordered", licence=row, product=product, summary=summary_of(plan, product))]
