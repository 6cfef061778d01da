"""A carrier's licence order by email end to end: the Excel list attached to `LICENCE PRODUCT` in a real IMAP
server (pymap), the dry run answered over a real SMTP server (aiosmtpd), `LICENCE PRODUCT CONFIRM` waits for the
code, and the returned code orders. Every delivered mail is read in the strict policy. SQLite and PostgreSQL."""
from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone
from email.message import EmailMessage

import pytest

from bot.app import build_handlers
from bot.mail.imap import ImapIntake
from bot.mail.intake import EmailEdge
from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from handlers.messages import Attachment, Inbound
from handlers.router import Desk
from handlers.setup import apply_setup
from handlers.setup.read import load_setup
from storage.models import Address, Licence, LicenceBatch, Person
from tests.conftest import FakeClock
from tests.e2e.test_email import Rig, mail
from tests.e2e.test_licences_telegram import DIRECTORY, EXAMPLE, LISTED, registration_list
from tests.helpers import add_admin, rows
from tests.imap import imap_server  # noqa: F401 - a fixture
from tests.smtp import smtp_server  # noqa: F401 - a fixture

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
DESK = "Lernverlag Nord <desk@lernverlag.example>"
ADMIN = "telegram:1901"
CARRIER_MAIL = "schulamt@nord.example"
SENDER = f"Schulamt Nord <{CARRIER_MAIL}>"


@pytest.fixture
async def rig(store, config, smtp_server, imap_server):  # noqa: F811 - fixtures imported above
    """The publisher of examples/publisher.toml with its directory loaded, and a carrier known by a verified
    email address only."""
    clock = FakeClock(NOW)
    async with store.uow() as uow:
        await apply_setup(uow, load_setup(EXAMPLE), clock.now())
        person = Person(name="Schulamt Nord", created_at=NOW)
        uow.session.add(person)
        await uow.session.flush()
        uow.session.add(Address(address=f"email:{CARRIER_MAIL}", kind="email", person_id=person.id, verified=True,
                                created_at=NOW))
        await uow.commit()
    await add_admin(store, ADMIN, NOW)
    desk = Desk(store, config, build_handlers(), clock)
    for text, files in (("/schools", [Attachment("schulen.csv", "text/csv", DIRECTORY)]), ("/schools confirm", [])):
        [reply] = await desk.handle(Inbound(channel="telegram", sender=ADMIN, received_at=NOW, text=text,
                                            language_hint="en", attachments=files))
    assert "5 schools added" in reply.text
    edge = EmailEdge(desk, store, clock)
    transport = SmtpTransport(smtp_server.url, DESK, timeout=5)
    yield Rig(store, clock, desk, edge, imap_server, smtp_server, ImapIntake(imap_server.url, edge, timeout=10),
              OutboxWorker(store, {"email": transport}, clock))
    await transport.close()


def with_list(subject: str, data: bytes) -> bytes:
    """The carrier's mail: the command in the subject, a line of text, the workbook attached."""
    msg = email.message_from_bytes(mail(subject, body="Anbei unsere Anmeldeliste.", sender=SENDER),
                                   policy=email.policy.default)
    msg.add_attachment(data, maintype="application", subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       filename="Anmeldeliste Schulen.xlsx")
    msg["Content-Language"] = "en"
    return msg.as_bytes(policy=email.policy.SMTP)


def strict_to(rig: Rig, address: str) -> list[EmailMessage]:
    """Every mail delivered to `address`, read again from its bytes in the strict policy."""
    read = [email.message_from_bytes(raw, policy=email.policy.strict) for raw in rig.smtp.handler.raw]
    return [m for m in read if m["To"] == address]


def text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


async def test_a_carrier_orders_by_mail_with_the_list_attached_and_the_code_returned(rig):
    await rig.send(with_list("LICENCE Mathe digital", registration_list(LISTED)))
    assert await rig.deliver() == 1
    [dry] = strict_to(rig, CARRIER_MAIL)
    body = text(dry)
    assert "Licence Mathe digital for Stadt Nord (checked, nothing ordered yet)" in body, body
    for number, school, contact, address in LISTED:
        assert f"- {number} {school} " in body and f"{contact} <{address}>" in body
    assert "Grundschule: 2 of 3 listed — eligible" in body and "Yearly total: 3 × €80.00 = €240.00" in body
    assert 'Send "licence Mathe digital confirm" to order.' in body
    assert await rows(rig.store, Licence) == []
    [batch] = await rows(rig.store, LicenceBatch, LicenceBatch.kind == "licence")
    assert (batch.status, batch.uploaded_by, batch.filename) == ("dry_run", f"email:{CARRIER_MAIL}",
                                                                 "Anmeldeliste Schulen.xlsx")

    await rig.send(mail("LICENCE Mathe digital CONFIRM", sender=SENDER, message_id="<order@nord.example>"))
    await rig.deliver()
    asked = strict_to(rig, CARRIER_MAIL)[-1]
    code = asked["Subject"].split()[0]
    assert code.isdigit() and len(code) == 6 and "LICENCE Mathe digital CONFIRM" in text(asked)
    assert await rows(rig.store, Licence) == []  # a From: line orders nothing

    quoted = "".join(f"> {line}\n" for line in text(asked).splitlines())
    await rig.send(mail(f"Re: {asked['Subject']}", body=f"{code}\n\nOn Tue, the desk wrote:\n{quoted}",
                        sender=SENDER, headers={"In-Reply-To": asked["Message-ID"]}))
    await rig.deliver()
    ordered = strict_to(rig, CARRIER_MAIL)[-1]
    assert "Ordered: licence #" in text(ordered) and "3 schools" in text(ordered), text(ordered)
    assert ordered["In-Reply-To"] is not None
    [licence] = await rows(rig.store, Licence)
    assert (licence.carrier, licence.status) == ("Stadt Nord", "active")
    [batch] = await rows(rig.store, LicenceBatch, LicenceBatch.kind == "licence")
    assert batch.status == "done"
    for _, _, _, address in LISTED:
        [activation] = strict_to(rig, address)
        assert activation["Subject"].split()[0].isdigit() and "Mathe digital" in activation["Subject"]


async def test_a_wrong_code_orders_nothing(rig):
    await rig.send(with_list("LICENCE Mathe digital", registration_list(LISTED)))
    await rig.deliver()
    await rig.send(mail("LICENCE Mathe digital CONFIRM", sender=SENDER))
    await rig.deliver()
    code = strict_to(rig, CARRIER_MAIL)[-1]["Subject"].split()[0]
    await rig.send(mail("Re: code", body=f"{(int(code) + 1) % 1_000_000:06d}", sender=SENDER))
    await rig.deliver()
    assert "not right" in text(strict_to(rig, CARRIER_MAIL)[-1])
    assert await rows(rig.store, Licence) == []
    assert [b.status for b in await rows(rig.store, LicenceBatch, LicenceBatch.kind == "licence")] == ["dry_run"]
