"""A licence's life: its schools activated by code, the invoice after set-up and after each renewal, the
renewal notice, the renewal itself at the term's end, and `licence cancel ID` (to the end of the term)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update

from handlers.bounces import Bounce, purpose_headers
from handlers.context import Context, Refusal, table
from handlers.invoices import CREDIT_NOTE, Line, billing_of, issue_invoice
from handlers.invoices.issuing import verified_email
from handlers.jobs.table import Due, drop, schedule
from handlers.licences.rules import ListRow, add_months
from handlers.messages import Reply
from handlers.rules import codes
from storage.db import UnitOfWork
from storage.models import Code, Licence, LicenceSchool, Product, School

ACTIVATION = "licence_activation"  # code purpose: a school contact's code (target: ls:ID)
INVITATION_DAYS = 30
INVOICE_JOB, NOTICE_JOB, RENEW_JOB, EXPIRY_JOB = "licence_invoice", "licence_notice", "licence_renew", "licence_expiry"
NOTICE_HOUR = time(8, 0)


def zone(ctx: Context) -> ZoneInfo:
    return ZoneInfo(ctx.tz)


def at(ctx: Context, day: date, clock: time = time(0)) -> datetime:
    """A local day and time as an aware datetime."""
    return datetime.combine(day, clock, zone(ctx))


async def add_schools(ctx: Context, row: Licence, product: Product, schools: list[tuple[ListRow, School]],
                      credits: dict[str, int]) -> None:
    """The licence's schools, each contact mailed a code that activates the school (bulk inserts)."""
    expires = ctx.now + timedelta(days=INVITATION_DAYS)
    await ctx.session.execute(insert(table(LicenceSchool)), [
        {"licence_id": row.id, "school_id": school.id, "contact": line.contact, "email": line.email,
         "state": "pending", "invitation_expires_at": expires, "credit_cents": credits.get(school.number, 0)}
        for line, school in schools])
    ids = dict((await ctx.session.execute(select(LicenceSchool.school_id, LicenceSchool.id).where(
        LicenceSchool.licence_id == row.id))).all())
    lang = ctx.language_for(None)
    code_rows = []
    for line, school in schools:
        code, target = codes.new_code(), f"ls:{ids[school.id]}"
        code_rows.append({"address": f"email:{line.email}", "purpose": ACTIVATION, "target": target,
                          "created_at": ctx.now, "expires_at": expires, "attempts": 0,
                          "digest": codes.digest(ctx.config.secret_key, ACTIVATION, target, code)})
        await ctx.mail(line.email, "licences_activation_mail", lang=lang, code=code, school=school,
                       contact=line.contact, product=product, expires_at=expires,
                       headers=purpose_headers(ACTIVATION, ids[school.id]))
    await ctx.session.execute(insert(table(Code)), code_rows)
    await schedule(ctx.uow, EXPIRY_JOB, str(row.id), expires, ctx.now, {"licence": row.id})


async def schedule_term(ctx: Context, row: Licence, product: Product) -> None:
    """The jobs of the term that has just begun: its invoice, the renewal notice and the renewal."""
    key = f"{row.id}:{row.term}"
    payload = {"licence": row.id, "term": row.term}
    await schedule(ctx.uow, INVOICE_JOB, key, ctx.now + timedelta(days=product.invoice_after_days), ctx.now, payload)
    notice_day = row.ends_on - timedelta(days=product.renewal_notice_days)
    await schedule(ctx.uow, NOTICE_JOB, key, max(at(ctx, notice_day, NOTICE_HOUR), ctx.now), ctx.now, payload)
    await schedule(ctx.uow, RENEW_JOB, key, at(ctx, row.ends_on), ctx.now, payload)


async def activated(ctx: Context, code: Code) -> list[Reply]:
    """A contact's right code: the school is activated (a failed or activated one stays as it is)."""
    school_row = await ctx.session.get(LicenceSchool, int(code.target.split(":", 1)[1]))
    if school_row is None:
        return [ctx.say("licences_activation_invalid")]
    done = await ctx.session.execute(update(LicenceSchool).where(
        LicenceSchool.id == school_row.id, LicenceSchool.state == "pending",
        LicenceSchool.invitation_expires_at > ctx.now).values(state="activated", activated_at=ctx.now)
        .execution_options(synchronize_session=False))
    school = await ctx.session.get(School, school_row.school_id)
    if done.rowcount != 1:
        return [ctx.say("licences_activation_invalid")]
    await ctx.audit("school_activated", f"licence:{school_row.licence_id}", school=school.number if school else None)
    return [ctx.say("licences_activated", school=school)]


async def expire_invitations(ctx: Context, due: Due) -> str | None:
    """Schools still pending when their invitation runs out have failed."""
    failed = await ctx.session.execute(update(LicenceSchool).where(
        LicenceSchool.licence_id == due.payload["licence"], LicenceSchool.state == "pending",
        LicenceSchool.invitation_expires_at <= ctx.now).values(state="failed")
        .execution_options(synchronize_session=False))
    return None if failed.rowcount else "every school was activated already"


async def activation_bounced(uow: UnitOfWork, bounce: Bounce) -> None:
    """A contact's activation mail bounced: the school has failed, with the reason `licences` shows."""
    await uow.session.execute(update(LicenceSchool).where(
        LicenceSchool.id == int(bounce.target), LicenceSchool.state == "pending")
        .values(state="failed", failure_reason=bounce.reason).execution_options(synchronize_session=False))


async def licence_and_product(ctx: Context, due: Due, ended_too: bool = False) -> tuple[Licence, Product] | None:
    """The job's licence while still in the job's term (a term's invoice is due even after the licence ended)."""
    row = await ctx.session.get(Licence, due.payload["licence"])
    if row is None or row.term != due.payload["term"] or (row.status == "ended" and not ended_too):
        return None
    return row, await ctx.session.get(Product, row.product_id)


async def invoice_job(ctx: Context, due: Due) -> str | None:
    """One invoice to the buyer for all schools of the term (and, after set-up, a credit note for each
    single licence taken over); a missing invoice field raises, and the job fails visibly."""
    found = await licence_and_product(ctx, due, ended_too=True)
    if found is None:
        return "the licence moved on to another term"
    row, product = found
    schools = (await ctx.session.execute(select(School.name, LicenceSchool.credit_cents).join(
        School, School.id == LicenceSchool.school_id).where(LicenceSchool.licence_id == row.id))).all()
    name, address = await billing_of(ctx.session, row.buyer_person_id) or ("", "") if row.buyer_person_id else ("", "")
    start = add_months(row.ends_on, -product.term_months)
    description = ctx.word("licences_invoice.line", product=product.name, carrier=row.carrier)
    invoice = await issue_invoice(ctx.uow, buyer_person_id=row.buyer_person_id, buyer_name=name, buyer_address=address,
                                  lines=[Line(description, len(schools), row.price_cents, start,
                                              row.ends_on - timedelta(days=1))],
                                  source=f"licence:{row.id}:{row.term}", now=ctx.now, config=ctx.config)
    credits = [Line(ctx.word("licences_invoice.credit", school=school), 1, cents)
               for school, cents in schools if cents and row.term == 1]
    if credits:
        await issue_invoice(ctx.uow, buyer_person_id=row.buyer_person_id, buyer_name=name, buyer_address=address,
                            lines=credits, kind=CREDIT_NOTE, corrects=invoice.number,
                            source=f"licence:{row.id}:credit", now=ctx.now, config=ctx.config)
    return None


async def notice_job(ctx: Context, due: Due) -> str | None:
    """Tell the buyer when the licence renews, for how much, and how to cancel."""
    found = await licence_and_product(ctx, due)
    if found is None or found[0].status != "active":
        return "the licence was cancelled or ended"
    row, product = found
    count = await school_count(ctx, row.id)
    if row.buyer_person_id is None or not await ctx.tell(
            row.buyer_person_id, "licences_renewal_notice", licence=row, product=product,
            amount_cents=row.price_cents * count, schools=count):
        return "the buyer has no address to write to"
    return None


async def renew_job(ctx: Context, due: Due) -> str | None:
    """At the term's end: a cancelled licence ends; an active one runs another term (with its jobs)."""
    found = await licence_and_product(ctx, due)
    if found is None:
        return "the licence ended or moved on to another term"
    row, product = found
    if row.status == "cancelled":
        row.status, row.live = "ended", None
        await ctx.session.flush()
        return None
    row.term, row.ends_on = row.term + 1, add_months(row.ends_on, product.term_months)
    await ctx.session.flush()
    await schedule_term(ctx, row, product)
    return None


async def school_count(ctx: Context, licence_id: int) -> int:
    return len((await ctx.session.scalars(select(LicenceSchool.id).where(
        LicenceSchool.licence_id == licence_id))).all())


async def cancel(ctx: Context, words: list[str]) -> list[Reply]:
    """`licence cancel ID`: the buyer's licence ends at the end of its term; no renewal, no renewal invoice."""
    if len(words) != 1 or not words[0].lstrip("#").isdigit():
        raise Refusal("licences_cancel_usage")
    row = await ctx.session.get(Licence, int(words[0].lstrip("#")))
    if row is None or row.buyer_person_id != ctx.person.id:
        await ctx.audit("licence_cancel_refused", words[0][:20])
        raise Refusal("licences_not_yours", id=words[0].lstrip("#"))
    done = await ctx.session.execute(update(Licence).where(Licence.id == row.id, Licence.status == "active")
                                     .values(status="cancelled", cancelled_at=ctx.now)
                                     .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise Refusal("licences_cancelled_already", licence=row)
    await drop(ctx.uow, NOTICE_JOB, f"{row.id}:")
    product = await ctx.session.get(Product, row.product_id)
    to = await verified_email(ctx.session, ctx.person.id)
    if to is not None:  # the cancellation is confirmed by mail
        await ctx.mail(to, "licences_cancel_mail", licence=row, product=product)
    await ctx.audit("licence_cancelled", f"licence:{row.id}")
    return [ctx.say("licences_cancelled", licence=row, product=product)]


JOBS = {INVOICE_JOB: invoice_job, NOTICE_JOB: notice_job, RENEW_JOB: renew_job, EXPIRY_JOB: expire_invitations}
