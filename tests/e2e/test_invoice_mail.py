"""A seat order's invoice end to end: bought in chat, approved by an admin, delivered by the outbox over SMTP
to a real aiosmtpd server, and read there with Python's email package in its strict policy: a PDF that pypdf
reads and an XML that the EN 16931 schema accepts. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import email
import email.policy
import io
import re
from pathlib import Path

import drafthorse
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import select

from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from handlers import admin, identity, invoices, members, welcome
from handlers.bootstrap import ensure_owners
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import Address, Invoice, SeatOrder, Service
from tests.conftest import inbound
from tests.helpers import rows, set_business
from tests.smtp import smtp_server  # noqa: F401 - a fixture

OWNER, BUYER, BUYER_MAIL = "telegram:1001", "telegram:2001", "buyer@example.com"
XSD = Path(drafthorse.__file__).parent / "schema" / "Factur-X_1.0.07_EN16931.xsd"


async def seat_desk(store, config, clock) -> Desk:
    """An owner, a course at 49.90 (net, VAT 19 %), and a buyer with a verified email and a billing address."""
    async with store.uow() as uow:
        await ensure_owners(uow, [OWNER], clock.now())
        uow.session.add(Service(name="First Aid", minutes=480, price="49.90", kind="course"))
        await uow.commit()
    await set_business(store, vat_percent="19")
    desk = Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                members.group_handlers(), invoices.handlers()), clock)
    await desk.handle(inbound(BUYER, "/start", clock=clock))
    async with store.uow() as uow:
        buyer = await uow.session.scalar(select(Address.person_id).where(Address.address == BUYER))
        uow.session.add(Address(address=f"email:{BUYER_MAIL}", kind="email", person_id=buyer, verified=True,
                                created_at=clock.now()))
        await uow.commit()
    return desk


def attachments_of(raw: bytes) -> dict[str, bytes]:
    """The mail read in the strict policy (a malformed header or part raises), its attachments by name."""
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    assert message.get_body(("plain",)) is not None
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


async def test_an_approved_seat_order_mails_its_invoice_as_pdf_and_xml_over_smtp(store, config, clock,
                                                                                 smtp_server):  # noqa: F811
    desk = await seat_desk(store, config, clock)
    [quote] = await desk.handle(inbound(BUYER, '/group new "Team Nord" 30', clock=clock))
    assert "30 × €49.90 = €1,497.00 plus 19 % VAT" in quote.text
    [asked] = await desk.handle(inbound(BUYER, '/group new "Team Nord" 30 group', clock=clock))
    assert asked.template == "invoices_missing" and "billing" in asked.text  # 1 497 € names the buyer
    await desk.handle(inbound(BUYER, "/billing Nord GmbH; Hafenweg 2; 20095 Hamburg", clock=clock))
    [pending] = await desk.handle(inbound(BUYER, '/group new "Team Nord" 30 group', clock=clock))
    assert "wait for our approval" in pending.text
    [waiting] = await rows(store, SeatOrder)  # (PostgreSQL spent an id on the refused order)
    [done] = await desk.handle(inbound(OWNER, f"/order approve {waiting.id}", clock=clock))
    assert "R-2026-000001" in done.text and BUYER_MAIL in done.text

    transport = SmtpTransport(smtp_server.url, "Akademie <desk@akademie.example>", timeout=5)
    try:
        await OutboxWorker(store, {"email": transport}, clock).drain()
    finally:
        await transport.close()
    [index] = [i for i, m in enumerate(smtp_server.messages) if m["To"] == BUYER_MAIL]
    message = smtp_server.messages[index]
    assert "Invoice R-2026-000001" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "Net: €1,497.00" in text and "VAT 19 %: €284.43" in text and "Total: €1,781.43" in text
    files = attachments_of(smtp_server.handler.raw[index])
    assert sorted(files) == ["R-2026-000001.pdf", "R-2026-000001.xml"]

    pdf = PdfReader(io.BytesIO(files["R-2026-000001.pdf"]))
    page = pdf.pages[0].extract_text().replace("\xa0", " ")
    for part in ("Invoice R-2026-000001", "Nord GmbH", "20095 Hamburg", "DE123456789", "€1,781.43",
                 "Course seat: First Aid (group Team Nord)"):
        assert part in page, part
    xml = files["R-2026-000001.xml"]
    etree.XMLSchema(etree.parse(str(XSD))).assertValid(etree.fromstring(xml))
    assert re.search(rb"<ram:GrandTotalAmount>1781.43</ram:GrandTotalAmount>", xml)

    [order] = await rows(store, SeatOrder)
    [invoice] = await rows(store, Invoice)
    assert (order.invoice_number, invoice.source, invoice.buyer_name) == ("R-2026-000001", f"seat_order:{order.id}",
                                                                          "Nord GmbH")


async def test_a_direct_seat_order_without_invoice_data_is_refused_naming_the_keys(store, config, clock):
    desk = await seat_desk(store, config, clock)
    await set_business(store, tax_id=None, bic=None)
    [refused] = await desk.handle(inbound(BUYER, '/group new "Team Süd" 2 group', clock=clock))
    assert refused.template == "invoices_missing"
    assert "tax_id (VAT id or tax number), bic" in refused.text
    assert await rows(store, SeatOrder) == [] and await rows(store, Invoice) == []
