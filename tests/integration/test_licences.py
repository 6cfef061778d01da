"""Licences for school carriers end to end against a real store (SQLite and PostgreSQL): the directory, a dry
run with eligibility and credits, the order, activation by code, and the term's jobs on the FakeClock."""
from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from handlers import admin, identity, invoices, licences, welcome
from handlers.jobs.runner import JobRunner
from handlers.messages import Attachment, Inbound
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import Address, Invoice, Job, Licence, LicenceSchool, Outbox, Product, School
from tests.helpers import add_admin, rows, set_business

ADMIN, CARRIER, OTHER = "telegram:1001", "telegram:2001", "telegram:3001"
CARRIER_MAIL = "buyer@nord.example"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DIRECTORY = (
    "Schulnummer;Name;Schulform;Träger;E-Mail;Produkt;Lizenz bis;Lizenz bezahlt\n"
    "100;GS Am Hafen;Grundschule;Stadt Nord;gs1@nord.example;;;\n"
    "101;GS Lindenweg;Grundschule;Stadt Nord;gs2@nord.example;Mathe;2027-06-30;120,00\n"
    "102;GS Ost;Grundschule;Stadt Nord;gs3@nord.example;;;\n"
    "200;Gymnasium Nord;Gymnasium;Stadt Nord;gy1@nord.example;;;\n"
    "201;Gymnasium West;Gymnasium;Stadt Nord;gy2@nord.example;;;\n"
    "300;GS Süd;Grundschule;Stadt Süd;gs@sued.example;;;\n"
    "301;Bad Row;Grundschule;Stadt Süd;not-an-email;;;\n"
).encode()


def workbook(rows_: list[tuple]) -> bytes:
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(("Schulnummer", "Schulname", "Ansprechpartner", "E-Mail"))
    for row in rows_:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def message(sender: str, text: str, clock, *files: Attachment) -> Inbound:
    return Inbound(channel=sender.split(":")[0], sender=sender, received_at=clock.now(), text=text,
                   language_hint="en", attachments=list(files))


async def licence_desk(store, config, clock) -> Desk:
    await set_business(store, vat_percent="19")
    await add_admin(store, ADMIN, clock.now())
    async with store.uow() as uow:
        uow.session.add(Product(name="Mathe", price_per_school="80.00", single_price="120.00", term_months=12,
                                renewal_notice_days=42, invoice_after_days=7))
        await uow.commit()
    desk = Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                invoices.handlers(), licences.handlers()), clock)
    for who in (CARRIER, OTHER):
        await desk.handle(message(who, "/start", clock))
    async with store.uow() as uow:
        buyer = await uow.session.scalar(select(Address.person_id).where(Address.address == CARRIER))
        uow.session.add(Address(address=f"email:{CARRIER_MAIL}", kind="email", person_id=buyer, verified=True,
                                created_at=clock.now()))
        await uow.commit()
    await desk.handle(message(CARRIER, "/billing Stadt Nord Schulamt; Rathausplatz 1; 20095 Hamburg", clock))
    return desk


async def load_directory(desk: Desk, clock) -> None:
    [checked] = await desk.handle(message(ADMIN, "/schools", clock, Attachment("schulen.csv", "text/csv", DIRECTORY)))
    assert "7 rows, 6 new schools, 0 to update, 1 rows with errors" in checked.text
    assert checked.attachments and b"not-an-email" in checked.attachments[0].data
    [done] = await desk.handle(message(ADMIN, "/schools confirm", clock))
    assert "6 schools added" in done.text


async def test_the_directory_is_checked_first_and_applied_on_confirm(store, config, clock):
    desk = await licence_desk(store, config, clock)
    [checked] = await desk.handle(message(ADMIN, "/schools", clock, Attachment("schulen.csv", "text/csv", DIRECTORY)))
    assert await rows(store, School) == []  # nothing before confirm
    await desk.handle(message(ADMIN, "/schools confirm", clock))
    single = {s.number: s for s in await rows(store, School)}["101"]
    assert (single.single_product, single.single_until, single.single_paid_cents) == ("Mathe", date(2027, 6, 30), 12000)
    [again] = await desk.handle(message(ADMIN, "/schools", clock, Attachment("schulen.csv", "text/csv", DIRECTORY)))
    assert "0 new schools, 6 to update" in again.text
    [refused] = await desk.handle(message(CARRIER, "/schools", clock, Attachment("s.csv", "text/csv", DIRECTORY)))
    assert refused.template == "not_allowed"


async def test_exactly_half_of_a_type_is_refused_naming_what_is_missing(store, config, clock):
    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    half = workbook([("100", "GS Am Hafen", "Frau A", "a@nord.example"), ("101", "GS Lindenweg", "Herr B",
                     "b@nord.example"), ("200", "Gymnasium Nord", "Frau C", "c@nord.example")])
    [dry] = await desk.handle(message(CARRIER, "/licence Mathe", clock, Attachment("liste.xlsx", XLSX, half)))
    assert "Grundschule: 2 of 3 listed — eligible" in dry.text
    assert "Gymnasium: 1 of 2 listed — not eligible: 1 more needed" in dry.text
    assert not dry.choices
    [no] = await desk.handle(message(CARRIER, "/licence Mathe confirm", clock))
    assert no.template == "licences_changed" and await rows(store, Licence) == []


async def test_an_order_activates_schools_invoices_credits_notices_and_renews(store, config, clock):
    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    good = workbook([("100", "GS Am Hafen", "Frau A", "a@nord.example"), ("101", "GS Lindenweg", "Herr B",
                     "b@nord.example"), ("200", "Gymnasium Nord", "Frau C", "c@nord.example"),
                     ("201", "Gymnasium West", "Herr D", "d@nord.example"), ("999", "Unbekannt", "X", "x@x.example")])
    [dry] = await desk.handle(message(CARRIER, "/licence mathe", clock, Attachment("liste.xlsx", XLSX, good)))
    # 2027-06-30 is 211 days away of a 365-day term: 120.00 × 211 / 365 = 69.37
    assert "Yearly total: 4 × €80.00 = €320.00" in dry.text and "- 101: €69.37" in dry.text
    assert "1 rows with errors" in dry.text and await rows(store, Licence) == []
    [ordered] = await desk.handle(message(CARRIER, "/licence Mathe confirm", clock))
    assert ordered.template == "licences_ordered", ordered.text
    [row] = await rows(store, Licence)
    assert (row.starts_on, row.ends_on, row.carrier) == (date(2026, 12, 1), date(2027, 12, 1), "Stadt Nord")
    mails = [m for m in await rows(store, Outbox) if m.recipient == "a@nord.example"]
    code = re.search(r"\b(\d{6})\b", mails[0].subject).group(1)
    [ok] = await desk.handle(message("email:a@nord.example", code, clock))
    assert ok.template == "licences_activated", ok.text
    [listing] = await desk.handle(message(CARRIER, "/licences", clock))
    assert "100 GS Am Hafen: activated" in listing.text and "101 GS Lindenweg: pending" in listing.text
    [theirs] = await desk.handle(message(OTHER, "/licences", clock))
    assert "No licences" in theirs.text
    [refused] = await desk.handle(message(OTHER, f"/licence cancel {row.id}", clock))
    assert refused.template == "licences_not_yours"

    runner = JobRunner(desk, desk.jobs)
    clock.advance(days=7)
    await runner.run_due()
    invoice, credit = sorted(await rows(store, Invoice), key=lambda i: i.sequence)
    assert invoice.net_cents == 32000 and invoice.buyer_name == "Stadt Nord Schulamt"
    assert credit.kind == "credit_note" and credit.corrects == invoice.number and credit.net_cents == -6937
    clock.advance(days=365 - 42 - 7)  # 2027-10-20 08:00 local: the notice
    await runner.run_due()
    notices = [m for m in await rows(store, Outbox) if "renews on" in (m.subject or m.text)]
    assert notices and "€320.00" in notices[0].text and f"licence cancel {row.id}" in notices[0].text
    clock.advance(days=42)
    await runner.run_due()
    [renewed] = await rows(store, Licence)
    assert (renewed.term, renewed.ends_on) == (2, date(2028, 12, 1))
    clock.advance(days=7)
    await runner.run_due()
    assert len(await rows(store, Invoice)) == 3  # the renewal invoice, no second credit
    [states] = [{s.state for s in await rows(store, LicenceSchool)}]
    assert states == {"activated", "failed"}  # invitations ran out after 30 days


async def test_a_cancelled_licence_ends_at_the_term_without_renewal_or_invoice(store, config, clock):
    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    good = workbook([("200", "Gymnasium Nord", "Frau C", "c@nord.example"),
                     ("201", "Gymnasium West", "Herr D", "d@nord.example")])
    await desk.handle(message(CARRIER, "/licence Mathe", clock, Attachment("liste.xlsx", XLSX, good)))
    await desk.handle(message(CARRIER, "/licence Mathe confirm", clock))
    [row] = await rows(store, Licence)
    [done] = await desk.handle(message(CARRIER, f"/licence cancel {row.id}", clock))
    assert done.template == "licences_cancelled"
    assert any(m.recipient == CARRIER_MAIL and "cancelled" in m.subject for m in await rows(store, Outbox))
    runner = JobRunner(desk, desk.jobs)
    clock.advance(days=366)
    await runner.run_due()
    [ended] = await rows(store, Licence)
    assert ended.status == "ended" and ended.live is None
    assert len(await rows(store, Invoice)) == 1  # the first term's only
    assert not [m for m in await rows(store, Outbox) if "renews on" in (m.subject or "")]
    assert {j.kind for j in await rows(store, Job) if j.done_at is None} <= {"licence_expiry"}


async def test_bad_lists_and_products_get_a_clear_answer_and_change_nothing(store, config, clock):
    import io

    from openpyxl import Workbook

    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    book = Workbook()
    book.active.append(("Schulnummer", "Schulname", "Ansprechpartner", "E-Mail"))
    book.active.append(("100", "=A2", "Frau A", "a@nord.example"))
    formulas = io.BytesIO()
    book.save(formulas)
    book.active["B2"] = "GS"
    book.active.merge_cells("C2:D2")
    merged = io.BytesIO()
    book.save(merged)
    csv = b"Schulnummer;Schulname;Ansprechpartner;E-Mail\n100;GS;A;a@nord.example\n"
    mixed = workbook([("100", "GS Am Hafen", "A", "a@nord.example"), ("300", "GS Sued", "B", "b@sued.example")])
    answers = {}
    for name, data in (("formulas", formulas.getvalue()), ("merged", merged.getvalue()), ("csv", csv),
                       ("mixed", mixed)):
        kind, suffix = ("text/csv", "csv") if name == "csv" else (XLSX, "xlsx")
        upload = Attachment(f"{name}.{suffix}", kind, data)
        [answers[name]] = await desk.handle(message(CARRIER, "/licence Mathe", clock, upload))
    assert "formulas" in answers["formulas"].text and "merged cells" in answers["merged"].text
    assert "must be an Excel file" in answers["csv"].text and "Stadt Nord, Stadt Süd" in answers["mixed"].text
    [unknown] = await desk.handle(message(CARRIER, "/licence Physik", clock, Attachment("l.xlsx", XLSX, mixed)))
    assert 'no product "Physik"' in unknown.text and "Mathe" in unknown.text
    [nothing] = await desk.handle(message(CARRIER, "/licence Mathe confirm", clock))
    assert nothing.template == "licences_nothing" and await rows(store, Licence) == []
