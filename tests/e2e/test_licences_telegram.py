"""A carrier's licence order through the real PTB Application and the fake Bot API: the directory and the Excel
registration list arrive as documents, the dry run's button orders, the outbox delivers the activation mails
to a real SMTP server, and a contact's reply to one of them activates the school. SQLite and PostgreSQL."""
from __future__ import annotations

import email
import email.policy
import io
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import select

from bot.app import build_handlers
from bot.mail.intake import EmailEdge, Incoming
from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from handlers.router import Desk
from handlers.setup import apply_setup
from handlers.setup.read import load_setup
from storage.models import Address, Licence, LicenceSchool, School
from tests.conftest import FakeClock
from tests.e2e.test_telegram import start_bot  # noqa: F401 - a fixture
from tests.fakebotapi import fake_bot_api  # noqa: F401 - a fixture
from tests.helpers import add_admin, ask, buttons, click, person_of, rows, to_chat
from tests.smtp import smtp_server  # noqa: F401 - a fixture

EXAMPLE = Path(__file__).parents[2] / "examples" / "publisher.toml"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
ADMIN, CARRIER = 1801, 1802
CARRIER_MAIL = "schulamt@nord.example"
DESK_MAIL = "Lernverlag Nord <desk@lernverlag.example>"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DIRECTORY = (
    "Schulnummer;Name;Schulform;Träger;E-Mail\n"
    "100;GS Am Hafen;Grundschule;Stadt Nord;gs1@nord.example\n"
    "101;GS Lindenweg;Grundschule;Stadt Nord;gs2@nord.example\n"
    "102;GS Ost;Grundschule;Stadt Nord;gs3@nord.example\n"
    "200;Gymnasium Nord;Gymnasium;Stadt Nord;gy1@nord.example\n"
    "300;GS Süd;Grundschule;Stadt Süd;gs@sued.example\n"
).encode()
LISTED = [("100", "GS Am Hafen", "Frau Adler", "adler@nord.example"),
          ("101", "GS Lindenweg", "Herr Berg", "berg@nord.example"),
          ("200", "Gymnasium Nord", "Frau Conrad", "conrad@nord.example")]


def registration_list(rows_: list[tuple]) -> bytes:
    book = Workbook()
    book.active.append(("Schulnummer", "Schulname", "Ansprechpartner", "E-Mail"))
    for row in rows_:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def publisher(store, config, clock) -> Desk:
    """The example publisher as set up from examples/publisher.toml, an admin and a carrier with a verified email."""
    async with store.uow() as uow:
        await apply_setup(uow, load_setup(EXAMPLE), clock.now())
        await uow.commit()
    await add_admin(store, f"telegram:{ADMIN}", clock.now())
    return Desk(store, config, build_handlers(), clock)


async def document(fake, user_id: int, name: str, data: bytes, mime: str, caption: str):
    """Send a document with a caption and wait for the bot's next message to that chat."""
    sent = len(fake.calls_of("sendMessage", to_chat(user_id)))
    fake.push_document(user_id, name, data, mime, caption=caption)
    return (await fake.wait_for("sendMessage", to_chat(user_id), count=sent + 1, timeout=60))[sent]


def strict(raw: bytes) -> EmailMessage:
    """A delivered mail read in the strict policy: a malformed header or part raises."""
    return email.message_from_bytes(raw, policy=email.policy.strict)


def reply_to(original: EmailMessage, sender: str, body: str) -> bytes:
    """The contact's answer as a mail client writes it: Re: subject, threaded, the code in the text."""
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, original["From"]
    msg["Subject"] = f"Re: {original['Subject']}"
    msg["Message-ID"] = make_msgid(domain="nord.example")
    msg["In-Reply-To"] = original["Message-ID"]
    msg["References"] = original["Message-ID"]
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


async def test_a_carrier_orders_by_telegram_and_a_school_activates_by_replying_to_its_mail(
        fake_bot_api, start_bot, store, config, smtp_server):  # noqa: F811 - fixtures imported above
    clock = FakeClock(NOW)
    desk = await publisher(store, config, clock)
    await start_bot(desk)
    await ask(fake_bot_api, CARRIER, "/start")
    async with store.uow() as uow:
        uow.session.add(Address(address=f"email:{CARRIER_MAIL}", kind="email", verified=True, created_at=NOW,
                                person_id=await uow.session.scalar(select(Address.person_id).where(
                                    Address.address == f"telegram:{CARRIER}"))))
        await uow.commit()

    checked = await document(fake_bot_api, ADMIN, "schulen.csv", DIRECTORY, "text/csv", "/schools")
    assert "5 new schools" in checked.params["text"], checked.params["text"]
    [applied] = await click(fake_bot_api, ADMIN, checked, "Apply the directory")
    assert "5 schools added" in applied.params["text"]

    dry = await document(fake_bot_api, CARRIER, "anmeldung.xlsx", registration_list(LISTED), XLSX,
                         "/licence Mathe digital")
    text = dry.params["text"]
    assert "Licence Mathe digital for Stadt Nord (checked, nothing ordered yet)" in text, text
    assert "- 100 GS Am Hafen (Grundschule), Frau Adler <adler@nord.example>" in text
    assert "Grundschule: 2 of 3 listed — eligible" in text and "Gymnasium: 1 of 1 listed — eligible" in text
    assert "Yearly total: 3 × €80.00 = €240.00" in text
    assert await rows(store, Licence) == []  # nothing before the button
    assert [b["text"] for row in buttons(dry) for b in row] == ["Order"]

    [ordered] = await click(fake_bot_api, CARRIER, dry, "Order")
    assert "Ordered: licence #" in ordered.params["text"] and "3 schools" in ordered.params["text"]
    [licence] = await rows(store, Licence)
    assert licence.buyer_person_id == await person_of(store, f"telegram:{CARRIER}")

    transport = SmtpTransport(smtp_server.url, DESK_MAIL, timeout=5)
    try:
        worker = OutboxWorker(store, {"email": transport}, clock)
        await worker.drain()
        delivered = {strict(raw)["To"]: strict(raw) for raw in smtp_server.handler.raw}
        assert {"adler@nord.example", "berg@nord.example", "conrad@nord.example"} <= set(delivered)
        activation = delivered["adler@nord.example"]
        code = activation["Subject"].split()[0]
        assert code.isdigit() and len(code) == 6
        assert "GS Am Hafen" in activation["Subject"] and "Mathe digital" in activation["Subject"]
        body = activation.get_body(("plain",)).get_content()
        assert f"mit dem Code {code}" in body  # the publisher speaks German
        assert "schulberatung@lernverlag.example" in body

        edge = EmailEdge(desk, store, clock)
        quoted = "".join(f"> {line}\n" for line in body.splitlines())
        answer = reply_to(activation, "Frau Adler <adler@nord.example>", f"{code}\n\nAm 01.12.2026 schrieb "
                          f"Lernverlag Nord:\n{quoted}")
        assert await edge.take(Incoming(answer)) == "processed"
        await worker.drain()
    finally:
        await transport.close()
    states = {school.number: entry.state for entry, school in [
        (e, s) for e in await rows(store, LicenceSchool) for s in await rows(store, School) if s.id == e.school_id]}
    assert states == {"100": "activated", "101": "pending", "200": "pending"}
    confirmation = [strict(raw) for raw in smtp_server.handler.raw if strict(raw)["To"] == "adler@nord.example"][-1]
    assert "GS Am Hafen" in confirmation.get_body(("plain",)).get_content()
    assert confirmation["In-Reply-To"] is not None

    [listing] = await ask(fake_bot_api, CARRIER, "/licences")
    assert "100 GS Am Hafen: activated" in listing.params["text"]
    assert "101 GS Lindenweg: pending" in listing.params["text"]
