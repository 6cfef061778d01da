"""Mail that comes back: a contact's activation mail or a member's invitation refused by the SMTP server, or
reported undeliverable by a delivery status notification arriving in the real IMAP server (pymap). The hook
of the capability that sent the mail decides; a report naming a mail that is not ours changes nothing, and a
report is never answered. SQLite and PostgreSQL."""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from bot.mail.parse import parse
from bot.outbox import OutboxWorker
from handlers.messages import Attachment, Inbound
from storage.models import Address, Audit, LicenceSchool, MailIntake, Member, Outbox, School
from tests.e2e.test_email import Rig
from tests.e2e.test_licences_email import CARRIER_MAIL, NOW
from tests.e2e.test_licences_email import rig as licence_rig  # noqa: F401 - a fixture
from tests.e2e.test_licences_telegram import LISTED, XLSX, registration_list
from tests.helpers import rows
from tests.imap import imap_server  # noqa: F401 - a fixture
from tests.smtp import smtp_server  # noqa: F401 - a fixture

CARRIER = "telegram:1902"
ADMIN = "telegram:1901"
DAEMON = "MAILER-DAEMON@mx.nord.example"


@pytest.fixture
async def rig(licence_rig):  # noqa: F811 - the licence rig, its worker with the desk's bounce hooks
    """The licence rig; the carrier also chats by Telegram; the outbox worker knows the bounce hooks."""
    async with licence_rig.store.uow() as uow:
        person_id = await uow.session.scalar(
            select(Address.person_id).where(Address.address == f"email:{CARRIER_MAIL}"))
        uow.session.add(Address(address=CARRIER, kind="telegram", person_id=person_id, verified=True, created_at=NOW))
        await uow.commit()
    licence_rig.worker = OutboxWorker(licence_rig.store, licence_rig.worker.transports, licence_rig.clock,
                                      bounces=licence_rig.desk.bounces)
    return licence_rig


async def say(rig: Rig, sender: str, text: str, files: list[Attachment] | None = None) -> str:
    replies = await rig.desk.handle(Inbound(channel="telegram", sender=sender, received_at=rig.clock.now(), text=text,
                                            language_hint="en", attachments=files or []))
    return "\n".join(r.text for r in replies)


async def order(rig: Rig) -> None:
    """The carrier orders Mathe digital for the three listed schools; the activation mails go out."""
    listed = [Attachment("anmeldung.xlsx", XLSX, registration_list(LISTED))]
    assert "checked, nothing ordered yet" in await say(rig, CARRIER, "/licence Mathe digital", listed)
    assert "Ordered: licence #" in await say(rig, CARRIER, "/licence Mathe digital confirm")
    await rig.worker.drain()


def sent_to(rig: Rig, address: str) -> EmailMessage:
    [message] = [m for m in rig.smtp.messages if m["To"] == address]
    return message


def report(original_id: str, recipient: str, action: str = "failed", status: str = "5.1.1",
           headers_only: bool = True) -> bytes:
    """A delivery status notification as an MTA writes it (RFC 3464), returning the original's headers."""
    returned = "text/rfc822-headers" if headers_only else "message/rfc822"
    text = f"""From: Mail Delivery System <{DAEMON}>
To: desk@lernverlag.example
Subject: Undelivered Mail Returned to Sender
Message-ID: {make_msgid(domain="mx.nord.example")}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

Your message could not be delivered to {recipient}.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.nord.example

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected

--B1
Content-Type: {returned}

From: desk@lernverlag.example
To: {recipient}
Subject: Mathe digital
Message-ID: {original_id}

the text
--B1--
"""
    return text.replace("\n", "\r\n").encode()


async def states(rig: Rig) -> dict[str, tuple[str, str | None]]:
    async with rig.store.uow() as uow:
        found = await uow.session.execute(select(School.number, LicenceSchool.state, LicenceSchool.failure_reason)
                                          .join(School, School.id == LicenceSchool.school_id))
        return {number: (state, reason) for number, state, reason in found.all()}


async def test_a_reported_bounce_of_an_activation_mail_fails_the_school_and_licences_shows_why(rig):
    await order(rig)
    adler = sent_to(rig, "adler@nord.example")
    assert adler["X-Frontdesk-Purpose"] is None  # what the row is about stays with us
    mails_before = len(rig.smtp.messages)
    await rig.send(report(adler["Message-ID"], "adler@nord.example"))
    await rig.deliver()
    reason = "bounced: 5.1.1 550 5.1.1 <adler@nord.example>: Recipient address rejected"
    assert await states(rig) == {"100": ("failed", reason), "101": ("pending", None), "200": ("pending", None)}
    listing = await say(rig, CARRIER, "/licences")
    assert f"100 GS Am Hafen: failed ({reason})" in listing, listing
    assert "101 GS Lindenweg: pending" in listing
    assert len(rig.smtp.messages) == mails_before  # a report is never answered
    [intake] = await rows(rig.store, MailIntake)
    assert (intake.status, intake.error) == ("ignored", "delivery report: 5.1.1")
    [audit] = await rows(rig.store, Audit, Audit.action == "mail_bounced")
    assert audit.detail["message_id"] == adler["Message-ID"] and audit.subject == "email:adler@nord.example"


async def test_a_report_returning_the_whole_original_counts_too(rig):
    await order(rig)
    await rig.send(report(sent_to(rig, "conrad@nord.example")["Message-ID"], "conrad@nord.example",
                          status="5.2.2", headers_only=False))
    await rig.deliver()
    assert (await states(rig))["200"][0] == "failed"


async def test_forged_delayed_or_unknown_reports_change_nothing(rig):
    await order(rig)
    adler = sent_to(rig, "adler@nord.example")["Message-ID"]
    domain = adler.rsplit("@", 1)[1]
    await rig.send(report("<forged@nord.example>", "adler@nord.example"))  # not our Message-ID
    await rig.send(report(f"<never-sent@{domain}>", "adler@nord.example"))  # our domain, but no row of ours
    await rig.send(report(adler, "adler@nord.example", action="delayed", status="4.4.1"))  # not a failure
    await rig.deliver()
    assert {state for state, _ in (await states(rig)).values()} == {"pending"}
    assert await rows(rig.store, Audit, Audit.action == "mail_bounced") == []
    assert {i.status for i in await rows(rig.store, MailIntake)} <= {"processed", "ignored"}


async def test_a_refusal_at_delivery_fails_the_school_at_once(rig):
    rig.smtp.handler.refuse["berg@nord.example"] = "550 5.1.1 no such user"
    await order(rig)
    assert (await states(rig))["101"] == ("failed", "bounced: 550 5.1.1 no such user")
    assert (await states(rig))["100"] == ("pending", None)
    [row] = await rows(rig.store, Outbox, Outbox.recipient == "berg@nord.example")
    assert row.status == "given_up"


async def test_a_temporary_refusal_fails_nothing(rig):
    rig.smtp.handler.refuse["berg@nord.example"] = "450 4.2.0 mailbox busy"
    await order(rig)
    assert (await states(rig))["101"] == ("pending", None)


async def test_a_bounced_member_invitation_makes_the_member_failed(rig):
    assert "pending" in await say(rig, ADMIN, "/member add Kim Novak kim@example.com")
    await rig.worker.drain()
    invitation = sent_to(rig, "kim@example.com")
    await rig.send(report(invitation["Message-ID"], "kim@example.com", status="5.1.2"))
    await rig.deliver()
    person_id = (await rows(rig.store, Address, Address.address == "email:kim@example.com"))[0].person_id
    [member] = await rows(rig.store, Member, Member.person_id == person_id)
    assert (member.status, member.failure_reason) == (
        "failed", "bounced: 5.1.2 550 5.1.2 <kim@example.com>: Recipient address rejected")
    assert "failed – bounced: 5.1.2" in await say(rig, ADMIN, f"/member {person_id}")


async def test_a_refused_member_invitation_makes_the_member_failed(rig):
    rig.smtp.handler.refuse["kim@example.com"] = "550 5.1.1 user unknown"
    assert "pending" in await say(rig, ADMIN, "/member add Kim Novak kim@example.com")
    await rig.worker.drain()
    [member] = await rows(rig.store, Member)
    assert (member.status, member.failure_reason) == ("failed", "bounced: 550 5.1.1 user unknown")


def test_only_failed_delivery_status_reports_are_read_as_bounces():
    ours = "<abc@lernverlag.example>"
    assert parse(report(ours, "a@b.example")).report.original_id == ours
    assert parse(report(ours, "a@b.example", action="delayed")).report is None
    receipt = report(ours, "a@b.example").replace(b"report-type=delivery-status",
                                                  b"report-type=disposition-notification")
    assert parse(receipt).report is None
