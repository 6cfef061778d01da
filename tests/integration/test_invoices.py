"""Invoices against a real store (SQLite and PostgreSQL): gapless numbers under concurrency, refusals that
name what is missing, credit notes, and the `invoices`, `invoice NUMBER` and `billing` words by chat and mail."""
from __future__ import annotations

import asyncio
import base64
import io
from datetime import date, datetime, timezone

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from handlers import admin, identity, invoices, welcome
from handlers.bootstrap import ensure_owners
from handlers.invoices import CREDIT_NOTE, InvoiceDataMissing, Line, issue_invoice
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import Address, Audit, BillingAddress, Invoice, InvoiceCounter, Outbox, Person
from tests.conftest import FakeClock, inbound
from tests.helpers import count, rows, set_business

OWNER = "telegram:1001"
KIM, KIM_MAIL = "telegram:2001", "kim@example.com"
LEA = "telegram:3001"
BUYER_ADDRESS = "Schulstraße 1\n12345 Musterstadt"


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    """An owner; Kim (Telegram, verified email); Lea (Telegram only); a business with VAT 19 %."""
    async with store.uow() as uow:
        await ensure_owners(uow, [OWNER], clock.now())
        await uow.commit()
    await set_business(store, vat_percent="19")
    made = Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                invoices.handlers()), clock)
    for sender in (KIM, LEA):
        await made.handle(inbound(sender, "/start", clock=clock))
    async with store.uow() as uow:
        kim = await person(uow, KIM)
        uow.session.add(Address(address=f"email:{KIM_MAIL}", kind="email", person_id=kim, verified=True,
                                created_at=clock.now()))
        await uow.commit()
    return made


async def person(uow, address: str) -> int:
    return await uow.session.scalar(select(Address.person_id).where(Address.address == address))


async def issue(store, clock, buyer: str = KIM, kind: str = "invoice", corrects: str | None = None,
                commit: bool = True, lines: list[Line] | None = None) -> Invoice:
    """An invoice issued as a job does it: with its own unit of work and clock."""
    async with store.uow() as uow:
        invoice = await issue_invoice(uow, buyer_person_id=await person(uow, buyer), buyer_name="Schule am Park",
                                      buyer_address=BUYER_ADDRESS, lines=lines or [Line("Lizenz", 2, 10_000)],
                                      kind=kind, corrects=corrects, source="test", now=clock.now())
        if commit:
            await uow.commit()
        return invoice


async def say(desk: Desk, sender: str, text: str) -> list:
    return await desk.handle(inbound(sender, text, clock=desk.clock))


# ---- numbers ------------------------------------------------------------------------------------

async def test_concurrent_issues_get_consecutive_numbers_without_gaps_or_duplicates(desk, store, clock):
    made = await asyncio.gather(*(issue(store, clock) for _ in range(6)))
    numbers = sorted(invoice.number for invoice in made)
    assert numbers == [f"R-2026-{n:06d}" for n in range(1, 7)]
    assert [i.sequence for i in await rows(store, Invoice)] == list(range(1, 7))
    [counter] = await rows(store, InvoiceCounter)
    assert (counter.year, counter.last) == (2026, 6)


async def test_a_rolled_back_issue_gives_its_number_back(desk, store, clock):
    await issue(store, clock)
    assert (await issue(store, clock, commit=False)).number == "R-2026-000002"
    assert (await issue(store, clock)).number == "R-2026-000002"  # no gap: the number came back
    assert await count(store, Invoice) == 2


async def test_numbers_restart_each_year_in_the_business_time_zone(desk, store, clock):
    await issue(store, clock)
    late = FakeClock(datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc))  # already 1 January 2027 in Berlin
    first = await issue(store, late)
    assert (first.number, first.issue_date) == ("R-2027-000001", date(2027, 1, 1))


async def test_a_missing_tax_id_fails_naming_it_and_takes_no_number(desk, store, clock):
    await set_business(store, tax_id=None, iban=None)
    with pytest.raises(InvoiceDataMissing) as error:
        await issue(store, clock)
    assert error.value.missing == ["tax_id", "iban"] and "tax_id, iban" in str(error.value)
    assert await count(store, Invoice) == 0 and await count(store, Outbox, Outbox.recipient == KIM_MAIL) == 0
    await set_business(store)
    assert (await issue(store, clock)).number == "R-2026-000001"


async def test_a_large_invoice_without_the_buyers_address_fails_naming_it(desk, store, clock):
    async with store.uow() as uow:
        with pytest.raises(InvoiceDataMissing) as error:
            await issue_invoice(uow, buyer_person_id=None, buyer_name="", buyer_address=" ",
                                lines=[Line("Lizenz", 3, 10_000)], source="test", now=clock.now())
    assert error.value.missing == ["buyer_name", "buyer_address"]


# ---- issuing ------------------------------------------------------------------------------------

async def test_an_issued_invoice_is_stored_audited_and_mailed_with_pdf_and_xml(desk, store, clock):
    invoice = await issue(store, clock)
    assert (invoice.net_cents, invoice.vat_cents, invoice.gross_cents, invoice.vat_percent) == (
        20_000, 3_800, 23_800, "19")
    assert invoice.seller["tax_id"] == "DE123456789" and invoice.language == "en"
    [mail] = await rows(store, Outbox, Outbox.recipient == KIM_MAIL)
    assert mail.subject == "Invoice R-2026-000001 from Akademie" and "Total: €238.00" in mail.text
    assert [a["name"] for a in mail.attachments] == ["R-2026-000001.pdf", "R-2026-000001.xml"]
    pdf = base64.b64decode(mail.attachments[0]["data"])
    assert "R-2026-000001" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    [audit] = await rows(store, Audit, Audit.action == "invoice_issued")
    assert audit.subject == "R-2026-000001" and audit.detail["gross_cents"] == 23_800


async def test_a_credit_note_refers_to_the_invoice_it_corrects_with_negative_amounts(desk, store, clock):
    invoice = await issue(store, clock)
    note = await issue(store, clock, kind=CREDIT_NOTE, corrects=invoice.number)
    assert (note.number, note.kind, note.corrects, note.gross_cents) == ("R-2026-000002", "credit_note",
                                                                         "R-2026-000001", -23_800)
    for wrong in ("R-2026-000099", note.number):  # none of ours, or itself a credit note
        with pytest.raises(ValueError):
            await issue(store, clock, kind=CREDIT_NOTE, corrects=wrong)
    with pytest.raises(ValueError):
        await issue(store, clock, corrects=invoice.number)  # an invoice corrects nothing
    assert await count(store, Invoice) == 2
    [counter] = await rows(store, InvoiceCounter)
    assert counter.last == 2


async def test_the_database_refuses_a_second_invoice_with_the_same_number(desk, store, clock):
    invoice = await issue(store, clock)
    with pytest.raises(IntegrityError):
        async with store.uow() as uow:
            uow.session.add(Invoice(**{c: getattr(invoice, c) for c in (
                "number", "year", "kind", "issued_at", "issue_date", "buyer_name", "buyer_address", "seller", "lines",
                "currency", "vat_percent", "net_cents", "vat_cents", "gross_cents", "source", "language")},
                sequence=99))
            await uow.commit()


# ---- the words, by chat -------------------------------------------------------------------------

async def test_invoices_lists_the_askers_own_and_all_for_an_admin(desk, store, clock):
    await issue(store, clock)
    await issue(store, clock, buyer=LEA)
    [mine] = await say(desk, KIM, "/invoices")
    assert "R-2026-000001" in mine.text and "R-2026-000002" not in mine.text and "€238.00" in mine.text
    assert [c.label for c in mine.choices] == ["Send R-2026-000001"]
    [everyone] = await say(desk, OWNER, "/invoices")
    assert "All invoices" in everyone.text and "R-2026-000001" in everyone.text and "R-2026-000002" in everyone.text
    [none] = await say(desk, "telegram:9009", "/rechnungen")
    assert none.template == "invoices_list" and "no invoices yet" in none.text


async def test_invoice_number_sends_pdf_and_xml_into_the_chat_and_to_the_verified_address(desk, store, clock):
    invoice = await issue(store, clock)
    [reply] = await say(desk, KIM, f"/invoice {invoice.number.lower()}")
    assert [a.name for a in reply.attachments] == ["R-2026-000001.pdf", "R-2026-000001.xml"]
    assert f"A copy went to {KIM_MAIL}" in reply.text
    mails = await rows(store, Outbox, Outbox.recipient == KIM_MAIL)
    assert len(mails) == 2 and "as you asked" in mails[1].text and len(mails[1].attachments) == 2
    [lea] = await say(desk, LEA, f"/invoice {invoice.number}")  # someone else's looks like none
    assert lea.template == "invoices_unknown" and not lea.attachments
    [owner] = await say(desk, OWNER, f"/invoice {invoice.number}")  # admins see all; no email: chat only
    assert len(owner.attachments) == 2 and "no copy was mailed" in owner.text
    assert (await say(desk, KIM, "/invoice 42"))[0].template == "invoices_usage"
    assert (await say(desk, KIM, "/invoice R-2026-000099"))[0].template == "invoices_unknown"
    assert await count(store, Outbox, Outbox.recipient == KIM_MAIL) == 2  # the refusals sent nothing


async def test_german_readers_get_the_words_in_german(desk, store, clock):
    await issue(store, clock)
    async with store.uow() as uow:
        kim = await uow.session.get(Person, await person(uow, KIM))
        kim.language = "de"
        await uow.commit()
    [listing] = await say(desk, KIM, "/rechnungen")
    assert "Ihre Rechnungen" in listing.text and "238,00\xa0€" in listing.text
    [reply] = await say(desk, KIM, "/rechnung R-2026-000001")
    assert "Hier ist die Rechnung R-2026-000001" in reply.text


# ---- the words, by email ------------------------------------------------------------------------

async def test_by_email_the_answer_itself_carries_the_files(desk, store, clock):
    invoice = await issue(store, clock)
    [listing] = await say(desk, f"email:{KIM_MAIL}", "invoices")
    assert "R-2026-000001" in listing.text
    [reply] = await say(desk, f"email:{KIM_MAIL}", f"INVOICE {invoice.number}")
    assert [a.mime for a in reply.attachments] == ["application/pdf", "application/xml"]
    assert f"A copy went to {KIM_MAIL}" in reply.text
    assert await count(store, Outbox, Outbox.recipient == KIM_MAIL) == 1  # only the first mail: no duplicate
    [stranger] = await say(desk, "email:mallory@example.com", f"invoice {invoice.number}")
    assert stranger.template == "invoices_unknown" and not stranger.attachments


# ---- billing ------------------------------------------------------------------------------------

async def test_billing_keeps_the_address_for_later_invoices_and_refuses_a_bad_one(desk, store, clock):
    assert "no billing address yet" in (await say(desk, LEA, "/billing"))[0].text
    [bad] = await say(desk, LEA, "/billing Schule am Park; Parkweg")
    assert bad.template == "billing_invalid" and await count(store, BillingAddress) == 0
    [saved] = await say(desk, LEA, "/billing Schule am Park; Parkweg 3; 12345 Musterstadt")
    assert "Schule am Park" in saved.text and "12345 Musterstadt" in saved.text
    [changed] = await say(desk, LEA, "/rechnungsadresse Schule am See; Seeweg 1; 54321 Seestadt")
    assert changed.template == "billing_set"
    [row] = await rows(store, BillingAddress)
    assert (row.name, row.address) == ("Schule am See", "Seeweg 1\n54321 Seestadt")
    assert "Seeweg 1" in (await say(desk, LEA, "/billing"))[0].text


@pytest.mark.parametrize("address", ["Parkweg\x0b 3; 12345 Musterstadt", "Parkweg 3\x00; 12345 Musterstadt",
                                     "Parkweg 3 \u202eTROP; 12345 Musterstadt", "Park\u2028weg 3; 12345 Musterstadt"])
async def test_billing_refuses_an_address_with_characters_an_invoice_cannot_carry(desk, store, clock, address):
    [bad] = await say(desk, LEA, f"/billing Schule am Park; {address}")
    assert bad.template == "billing_invalid" and await count(store, BillingAddress) == 0


async def test_markup_in_a_billing_address_is_text_in_the_invoice_files(desk, store, clock):
    [saved] = await say(desk, LEA, "/billing Müller & Söhne <GmbH>; Parkweg 3 ]]> <x/>; 12345 Musterstadt")
    assert saved.template == "billing_set"
    [row] = await rows(store, BillingAddress)
    async with store.uow() as uow:
        invoice = await issue_invoice(uow, buyer_person_id=row.person_id, buyer_name=row.name,
                                      buyer_address=row.address, lines=[Line("Lizenz", 1, 10_000)], source="test",
                                      now=clock.now())
        await uow.commit()
    pdf, xml = invoices.render_files(invoice)
    assert "Müller & Söhne <GmbH>".encode() in xml.data.replace(b"&amp;", b"&").replace(b"&lt;", b"<").replace(
        b"&gt;", b">") and b"<x/>" not in xml.data
    assert "Müller & Söhne <GmbH>" in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()


async def test_billing_by_email_waits_for_the_code_sent_to_that_mailbox(desk, store, clock):
    [asked] = await say(desk, f"email:{KIM_MAIL}", "billing Kim Meyer; Weg 1; 12345 Ort")
    assert asked.template == "mail_command_code"  # the answer mail carries the code in its subject
    assert await count(store, BillingAddress) == 0  # a From: line proves nothing yet
    [done] = await say(desk, f"email:{KIM_MAIL}", asked.subject.split()[0])
    assert done.template == "billing_set", (asked.text, done.text)
    [row] = await rows(store, BillingAddress)
    assert (row.name, row.address) == ("Kim Meyer", "Weg 1\n12345 Ort")


async def test_help_lists_the_invoice_words_for_everyone(desk):
    [help_] = await say(desk, LEA, "/help")
    assert "invoices — your invoices" in help_.text and "invoice — an invoice again" in help_.text
    assert "billing — the name and address on your invoices" in help_.text


async def test_the_setup_file_gives_the_business_its_invoice_data(store, clock):
    from handlers.setup import apply_setup, load_setup
    from tests.helpers import PRACTICE as EXAMPLE
    async with store.uow() as uow:
        await apply_setup(uow, load_setup(EXAMPLE), clock.now())
        await uow.commit()
    async with store.uow() as uow:
        issued = await issue_invoice(uow, buyer_person_id=None, buyer_name="Kim", buyer_address="Weg 1, 4020 Linz, AT",
                                     lines=[Line("Massage", 1, 6000)], source="test", now=clock.now(),
                                     buyer_reference=" 04011000-1234512345-06 ")
        await uow.commit()
    assert issued.buyer_reference == "04011000-1234512345-06"
    assert issued.seller == {"name": "Physio am Park", "address": "Parkstraße 1, 4020 Linz, AT",
                             "tax_id": "ATU12345678", "iban": "AT611904300234573201", "bic": "BKAUATWW"}
    assert (issued.vat_percent, issued.gross_cents, issued.language) == ("20", 7200, "de")
