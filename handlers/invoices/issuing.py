"""Issuing invoices: every invoice of the desk (seat orders, licences, renewals) is numbered, stored and
mailed here, in the caller's unit of work.

The number comes from one atomic `UPDATE invoice_counter SET last = last + 1 WHERE year = :y RETURNING last`
in the same transaction as the invoice row: a concurrent issuer waits for the row lock (PostgreSQL) or the
write lock (SQLite), and a rollback gives the number back, so numbers never skip or repeat. The unique
number (and year, sequence) is the database's last word.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import AUDIT, OUTBOX, Context, DeskConfig
from handlers.invoices.document import document_of, money_format, quantity_text, stored_lines
from handlers.invoices.money import (
    CREDIT_NOTE,
    CURRENCY,
    INVOICE,
    KINDS,
    InvoiceDataMissing,
    Line,
    invoice_number,
    line_problem,
    missing_fields,
    service_period,
    totals,
)
from handlers.messages import Attachment
from handlers.speaking import mail_row, reply_language
from storage.db import UnitOfWork
from storage.dialect import insert_ignoring_conflicts
from storage.models import Address, BillingAddress, Business, Invoice, InvoiceCounter, Person
from templates import render, word

PDF_TYPE, XML_TYPE = "application/pdf", "application/xml"
PDF_WORDS = ("number", "date", "period", "period_is_date", "corrects", "buyer_reference", "tax_id", "page",
             "position", "description", "quantity", "unit", "amount", "net", "vat", "gross", "rounding", "vat_zero",
             "credit_note_payment", "nothing_due", "pay", "payee", "reference")


@dataclass(frozen=True)
class Where:
    """What issuing needs of its caller: a handler's Context, or a job's unit of work with its clock."""

    uow: UnitOfWork
    now: datetime
    config: DeskConfig | None
    actor: str
    person_id: int | None
    channel: str

    @classmethod
    def of(cls, place: Context | UnitOfWork, now: datetime | None, config: DeskConfig | None) -> Where:
        if isinstance(place, Context):
            return cls(place.uow, place.now, place.config, place.sender, place.person.id, place.inbound.channel)
        return cls(place, now or datetime.now(timezone.utc), config, "job", None, "job")

    @property
    def session(self) -> AsyncSession:
        return self.uow.session


async def issue_invoice(place: Context | UnitOfWork, *, buyer_person_id: int | None, buyer_name: str,
                        buyer_address: str, lines: list[Line], kind: str = INVOICE, corrects: str | None = None,
                        source: str, buyer_reference: str | None = None, send: bool = True,
                        now: datetime | None = None, config: DeskConfig | None = None) -> Invoice:
    """Number, store and (with `send`) mail an invoice or credit note in the caller's unit of work.

    Raises InvoiceDataMissing (naming the setup keys or buyer fields) before any number is taken when the
    law's data is incomplete, and ValueError for lines or a correction that make no sense.
    `buyer_reference` is the buyer's own reference (BT-10; a German public body's Leitweg-ID). `now` and
    `config` are for a job that passes its unit of work; a handler passes its Context instead.
    """
    where = Where.of(place, now, config)
    _check_request(lines, kind, corrects)
    business = await where.session.get(Business, 1)
    seller = seller_of(business)
    figures = totals(lines, Decimal(seller["vat_percent"] or 0), kind)
    missing = missing_fields(seller, buyer_name, buyer_address, figures.gross_cents)
    if missing:
        raise InvoiceDataMissing(missing)
    if corrects is not None:
        await _check_corrected(where.session, corrects)
    local = where.now.astimezone(ZoneInfo(business.timezone if business else "Europe/Berlin")).date()
    sequence = await take_number(where.uow, local.year)
    start, end = service_period(lines)
    invoice = Invoice(
        number=invoice_number(local.year, sequence), year=local.year, sequence=sequence, kind=kind,
        corrects=corrects, issued_at=where.now, issue_date=local, period_start=start, period_end=end,
        buyer_person_id=buyer_person_id, buyer_name=buyer_name.strip(), buyer_address=buyer_address.strip(),
        buyer_reference=(buyer_reference or "").strip()[:100] or None,
        seller={k: v for k, v in seller.items() if k != "vat_percent"}, lines=stored_lines(lines, figures.amounts),
        currency=CURRENCY, vat_percent=seller["vat_percent"], net_cents=figures.net_cents,
        vat_cents=figures.vat_cents, gross_cents=figures.gross_cents, source=source[:64],
        language=await buyer_language(where, buyer_person_id, business))
    where.session.add(invoice)
    await where.session.flush()
    await where.session.execute(AUDIT, dict(
        at=where.now, actor=where.actor, person_id=where.person_id, channel=where.channel, action="invoice_issued",
        subject=invoice.number, detail={"kind": kind, "gross_cents": invoice.gross_cents, "source": invoice.source,
                                        "corrects": corrects}))
    if send:
        await mail_invoice(where, invoice)
    return invoice


def _check_request(lines: list[Line], kind: str, corrects: str | None) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if (kind == CREDIT_NOTE) != (corrects is not None):
        raise ValueError("a credit note names the invoice it corrects, and only a credit note does")
    if not lines:
        raise ValueError("an invoice has at least one line")
    problems = [f"line {i}: {p}" for i, line in enumerate(lines, 1) if (p := line_problem(line))]
    if problems:
        raise ValueError("; ".join(problems))


async def _check_corrected(session: AsyncSession, number: str) -> None:
    kind = await session.scalar(select(Invoice.kind).where(Invoice.number == number))
    if kind != INVOICE:
        raise ValueError(f"{number} is no invoice of ours to correct")


def seller_of(business: Business | None) -> dict[str, Any]:
    """The seller as the setup file gives it ([business] name, address, tax_id, vat_percent, iban, bic)."""
    keys = ("name", "address", "tax_id", "vat_percent", "iban", "bic")
    return {key: (getattr(business, key) if business else None) for key in keys}


async def check_invoice_data(place: Context | UnitOfWork, buyer_name: str, buyer_address: str,
                             gross_cents: int) -> None:
    """Raise InvoiceDataMissing now for an invoice that would be refused later (an order waiting for approval)."""
    session = place.session
    missing = missing_fields(seller_of(await session.get(Business, 1)), buyer_name, buyer_address, gross_cents)
    if missing:
        raise InvoiceDataMissing(missing)


async def take_number(uow: UnitOfWork, year: int) -> int:
    """The year's next number: one atomic increment of the counter row, made first if the year is new."""
    session = uow.session
    await session.execute(insert_ignoring_conflicts(uow.dialect, InvoiceCounter.__table__, ["year"])
                          .values(year=year, last=0))
    taken = await session.execute(update(InvoiceCounter).where(InvoiceCounter.year == year)
                                  .values(last=InvoiceCounter.last + 1).returning(InvoiceCounter.last)
                                  .execution_options(synchronize_session=False))
    return taken.scalar_one()


async def buyer_language(where: Where, person_id: int | None, business: Business | None) -> str:
    chosen = await where.session.scalar(select(Person.language).where(Person.id == person_id)) if person_id else None
    return reply_language(chosen, business, where.config.default_language if where.config else "de")


async def billing_of(session: AsyncSession, person_id: int) -> tuple[str, str] | None:
    """The name and address a person gave with `billing`, if any."""
    row = await session.get(BillingAddress, person_id)
    return (row.name, row.address) if row else None


async def verified_email(session: AsyncSession, person_id: int | None) -> str | None:
    """The person's first verified email address (bare), where their invoices go."""
    if person_id is None:
        return None
    found = await session.scalar(select(Address.address).where(
        Address.person_id == person_id, Address.kind == "email", Address.verified).order_by(Address.id).limit(1))
    return found.split(":", 1)[1] if found else None


def pdf_words(lang: str, kind: str) -> dict[str, str]:
    words = {key: word(lang, f"invoice_pdf.{key}") for key in PDF_WORDS}
    words["title"] = word(lang, f"invoice_pdf.title_{kind}")
    return words


def render_files(invoice: Invoice) -> list[Attachment]:
    """The PDF and the EN 16931 XML of a stored invoice (CPU work: call it through asyncio.to_thread)."""
    # Imported here: fpdf2, lxml and drafthorse take about a second to import, which every process that
    # imports the handlers (the member-list reader's child process too) would pay otherwise.
    from handlers.invoices.pdf import render_pdf
    from handlers.invoices.xml import render_xml

    doc = document_of(invoice)
    words = pdf_words(doc.lang, doc.kind)
    # Both name the buyer. Without a buyer person (a school's licence) nobody is recorded: the XML's text is
    # searched when someone is erased.
    names = (invoice.buyer_person_id,) if invoice.buyer_person_id is not None else None
    return [Attachment(f"{invoice.number}.pdf", PDF_TYPE, render_pdf(doc, words), names),
            Attachment(f"{invoice.number}.xml", XML_TYPE, render_xml(doc, words["vat_zero"]), names)]


async def invoice_files(invoice: Invoice) -> list[Attachment]:
    """render_files in a worker thread, off the event loop."""
    return await asyncio.to_thread(render_files, invoice)


async def mail_invoice(place: Context | Where, invoice: Invoice, to: str | None = None, again: bool = False,
                       files: list[Attachment] | None = None) -> str | None:
    """Queue the invoice mail with its PDF and XML (`files`, rendered if not given) to `to` (default: the
    buyer's verified email); None if there is no address to send it to."""
    where = place if isinstance(place, Where) else Where.of(place, None, None)
    to = to or await verified_email(where.session, invoice.buyer_person_id)
    if to is None:
        return None
    business = await where.session.get(Business, 1)
    tz = business.timezone if business else "Europe/Berlin"
    rendered = render("invoice_mail", invoice.language, tz=tz, business=business,
                      invoice=invoice_view(invoice, invoice.language), again=again)
    domain = where.config.mail_domain if where.config else "frontdesk.local"
    files = files if files is not None else await invoice_files(invoice)
    await where.session.execute(OUTBOX, mail_row(where.now, domain, to, rendered, None, files))
    return to


def invoice_view(invoice: Invoice, lang: str) -> dict[str, Any]:
    """What templates show of an invoice: its facts, with money written for a reader of `lang`."""
    money = money_format(lang, invoice.currency)
    return {"number": invoice.number, "kind": invoice.kind, "corrects": invoice.corrects,
            "issue_date": invoice.issue_date, "buyer_name": invoice.buyer_name, "net": money(invoice.net_cents),
            "vat": money(invoice.vat_cents), "gross": money(invoice.gross_cents),
            "vat_percent": quantity_text(Decimal(invoice.vat_percent), lang), "source": invoice.source}
