"""The email channel end to end: a real IMAP server (pymap) in, the desk, the outbox and a real SMTP server out.

Runs on SQLite and PostgreSQL. Mail is delivered into the IMAP server as an MTA would; the intake takes it,
and whatever we answer arrives at aiosmtpd.
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import build_handlers
from bot.mail.imap import ImapIntake
from bot.mail.intake import EmailEdge, Incoming
from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from handlers.appointments import claim
from handlers.messages import Inbound
from handlers.router import Desk
from handlers.setup import apply_setup
from storage.db import Store
from storage.models import (
    Address,
    Appointment,
    BillingAddress,
    Location,
    MailboxState,
    MailIntake,
    Outbox,
    Person,
    Service,
    Ticket,
    TicketMessage,
)
from tests.conftest import FakeClock
from tests.helpers import practice_setup
from tests.imap import ImapServer, imap_server  # noqa: F401
from tests.smtp import SmtpServer, smtp_server  # noqa: F401

ROOT = Path(__file__).parents[2]
CORPUS = Path(__file__).parents[3] / "shared" / "data" / "email-corpus"
MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
DESK = "Physio am Park <desk@physio.example>"
KIM = "kim@example.org"
CODE = re.compile(r"CONFIRM (\d{6})")


def mail(subject: str = "LANGUAGE", body: str = "", sender: str = f"Kim Ott <{KIM}>", *, message_id: str | None = "new",
         headers: dict | None = None, lang: str = "en") -> bytes:
    """A mail as a customer's client would send it (CRLF, 7-bit safe); the practice itself speaks German."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, DESK, subject
    if message_id:
        msg["Message-ID"] = make_msgid(domain="example.org") if message_id == "new" else message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body or "Sent from a test.")
    msg["Content-Language"] = lang  # after set_content, which drops Content-* headers
    return msg.as_bytes(policy=email.policy.SMTP)


@dataclass
class Rig:
    """The whole channel: IMAP server → intake → desk → outbox → SMTP server."""

    store: Store
    clock: FakeClock
    desk: Desk
    edge: EmailEdge
    imap: ImapServer
    smtp: SmtpServer
    intake: ImapIntake
    worker: OutboxWorker

    async def send(self, raw: bytes) -> int:
        return await self.imap.append(raw)

    async def deliver(self) -> int:
        """Take in all new mail, then send all answers; return how many answers went out."""
        await self.intake.sync_once()
        return await self.worker.drain()

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.smtp.messages if m["To"] == address]

    async def intake_rows(self) -> list[MailIntake]:
        async with self.store.uow() as uow:
            return list(await uow.session.scalars(select(MailIntake).order_by(MailIntake.id)))

    async def count(self, model, *where) -> int:
        async with self.store.uow() as uow:
            return await uow.session.scalar(select(func.count()).select_from(model).where(*where))


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


@pytest.fixture
async def rig(store, config, smtp_server, imap_server):  # noqa: F811 - fixtures imported above
    clock = FakeClock(MONDAY)
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    desk = Desk(store, config, build_handlers(), clock)
    edge = EmailEdge(desk, store, clock)
    transport = SmtpTransport(smtp_server.url, DESK, timeout=5)
    yield Rig(store, clock, desk, edge, imap_server, smtp_server, ImapIntake(imap_server.url, edge, timeout=10),
              OutboxWorker(store, {"email": transport}, clock))
    await transport.close()


async def kims_appointment(rig: Rig) -> int:
    """Kim (Telegram, with a verified email) has a confirmed massage with Lukas on Tuesday at 10:00."""
    now = rig.clock.now()
    async with rig.store.uow() as uow:
        kim = Person(name="Kim Ott", created_at=now)
        uow.session.add(kim)
        await uow.session.flush()
        for address in ("telegram:5001", f"email:{KIM}"):
            uow.session.add(Address(address=address, kind=address.split(":")[0], person_id=kim.id, verified=True,
                                    created_at=now))
        service = await uow.session.scalar(select(Service).where(Service.name == "Massage"))
        lukas = await uow.session.scalar(select(Address.person_id).where(Address.address == "telegram:1002"))
        linz = await uow.session.scalar(select(Location.id).where(Location.name == "Linz"))
        start = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)
        appointment = Appointment(
            service_id=service.id, location_id=linz, staff_id=lukas, customer_id=kim.id, start_at=start,
            end_at=start + timedelta(minutes=60), status="confirmed", sequence=0, channel="telegram",
            created_by="telegram:5001", created_at=now)
        await claim(uow, appointment, now)
        await uow.commit()
    return appointment.id


async def status_of(rig: Rig, appointment_id: int) -> str:
    async with rig.store.uow() as uow:
        return (await uow.session.get(Appointment, appointment_id)).status


# ---- commands by mail ------------------------------------------------------------------------


async def test_a_command_mail_gets_a_threaded_reply_and_is_flagged_seen(rig):
    first = mail("Re: AW: language", body="", message_id="<q1@example.org>", headers={"References": "<q0@example.org>"})
    uid = await rig.send(first)
    assert await rig.deliver() == 1
    [answer] = rig.mails_to(KIM)
    assert answer["Subject"] == "Re: language"
    assert answer["In-Reply-To"] == "<q1@example.org>"
    assert answer["References"] == "<q0@example.org> <q1@example.org>"
    assert (answer["Auto-Submitted"], answer["X-Auto-Response-Suppress"]) == ("auto-replied", "All")
    assert "reply with LANGUAGE de" in text_of(answer)  # a choice is a line to send back
    assert await rig.imap.seen() == {uid}
    [row] = await rig.intake_rows()
    assert (row.status, row.sender, row.uid, row.raw) == ("processed", f"email:{KIM}", uid, None)


async def test_the_first_line_is_a_command_when_the_subject_is_none(rig):
    await rig.send(mail("a question", body="\n\nlanguage de\n\n-- \nKim"))
    await rig.deliver()
    [answer] = rig.mails_to(KIM)
    assert "Deutsch" in text_of(answer)  # `language` is safe: it ran without a round trip


async def test_choices_become_lines_to_reply_with(rig):
    await rig.send(mail("LANGUAGE"))
    await rig.deliver()
    text = text_of(rig.mails_to(KIM)[0])
    assert "reply with LANGUAGE de" in text and "reply with LANGUAGE en" in text


async def test_a_spoofed_from_cannot_cancel_someones_appointment(rig):
    number = await kims_appointment(rig)
    # Someone else puts Kim's (verified) address on a mail.
    await rig.send(mail(f"CANCEL {number}", sender=f"Kim Ott <{KIM}>"))
    assert await rig.deliver() == 1
    assert await status_of(rig, number) == "confirmed"
    [code_mail] = rig.smtp.messages  # nothing but a code, and only to the real owner
    assert code_mail["To"] == KIM
    code = CODE.search(text_of(code_mail)).group(1)
    assert code_mail["Subject"].startswith(code) and f"CANCEL {number}" in text_of(code_mail)


async def test_the_owner_returns_the_code_and_the_command_runs(rig):
    number = await kims_appointment(rig)
    await rig.send(mail(f"CANCEL {number}"))
    await rig.deliver()
    code_mail = rig.mails_to(KIM)[-1]
    code = CODE.search(text_of(code_mail)).group(1)
    quoted = "\n".join(f"> {line}" for line in text_of(code_mail).splitlines())
    reply = mail(f"Re: {code_mail['Subject']}", body=f"CONFIRM {code}\n\nOn Mon, Kim wrote:\n{quoted}",
                 headers={"In-Reply-To": code_mail["Message-ID"]})
    await rig.send(reply)
    await rig.deliver()
    assert await status_of(rig, number) == "cancelled"
    answer = rig.mails_to(KIM)[-1]
    assert "cancel" in text_of(answer).lower() and answer["In-Reply-To"] in reply.decode()


async def test_a_wrong_code_runs_nothing(rig):
    number = await kims_appointment(rig)
    await rig.send(mail(f"CANCEL {number}"))
    await rig.deliver()
    code = CODE.search(text_of(rig.mails_to(KIM)[-1])).group(1)
    await rig.send(mail("Re: code", body=f"{(int(code) + 1) % 1_000_000:06d}"))
    await rig.deliver()
    assert await status_of(rig, number) == "confirmed"
    assert "not right" in text_of(rig.mails_to(KIM)[-1])


async def test_an_admin_word_needs_a_verified_admin_address(rig):
    await rig.send(mail("AUDIT", sender="Anna <anna@physio-am-park.example>"))  # verified by the setup file
    await rig.send(mail("AUDIT", sender="Anna <anna.berger@example.org>"))  # a stranger using her name
    await rig.deliver()
    assert "Audit log" in text_of(rig.mails_to("anna@physio-am-park.example")[0])  # hers: her (read-only) command runs
    # a stranger's admin word runs nothing: it is a plain request, so it becomes a ticket
    assert "ticket #T-1" in text_of(rig.mails_to("anna.berger@example.org")[0])


async def test_an_unverified_address_of_an_admin_gets_no_admin_rights(rig):
    async with rig.store.uow() as uow:
        anna = await uow.session.scalar(select(Address.person_id).where(Address.address == "telegram:1001"))
        uow.session.add(Address(address="email:anna.private@example.org", kind="email", person_id=anna,
                                verified=False, created_at=rig.clock.now()))
        await uow.commit()
    await rig.send(mail("AUDIT", sender="anna.private@example.org"))
    await rig.deliver()
    answer = text_of(rig.mails_to("anna.private@example.org")[0])
    assert "ticket #T-1" in answer and "Audit log" not in answer  # no admin rights: a ticket, not the log


async def test_booking_entirely_by_email_with_both_code_round_trips(rig):
    ben = "ben@example.org"
    await rig.send(mail("BOOK Massage at Linz with Lukas on 2026-12-08 at 10:00", sender=ben))
    await rig.deliver()
    round_trip = CODE.search(text_of(rig.mails_to(ben)[-1])).group(1)
    await rig.send(mail("Re: your code", body=f"CONFIRM {round_trip}", sender=ben))
    await rig.deliver()
    subjects = [m["Subject"] for m in rig.mails_to(ben)]
    booking_code = next(s.split()[0] for s in subjects[1:] if s.split()[0].isdigit())
    assert any("holding" in text_of(m) for m in rig.mails_to(ben))
    await rig.send(mail(f"Re: {booking_code}", body=booking_code, sender=ben))  # just the digits
    await rig.deliver()
    async with rig.store.uow() as uow:
        booked = await uow.session.scalar(select(Appointment).where(Appointment.created_by == f"email:{ben}"))
    assert (booked.status, booked.channel) == ("confirmed", "email")
    invite = rig.mails_to(ben)[-2:]
    assert any(part.get_content_type() == "text/calendar" for m in invite for part in m.walk())


async def test_a_member_list_mailed_in_is_checked_then_imported_when_the_code_comes_back(rig):
    lea, lea_mail = "telegram:2001", "lea@example.org"
    async with rig.store.uow() as uow:
        uow.session.add(Service(name="First Aid", minutes=480, price="49.90", kind="course"))
        await uow.commit()
    await rig.desk.handle(Inbound(channel="telegram", sender=lea, received_at=rig.clock.now(), text="/start"))
    async with rig.store.uow() as uow:
        person = await uow.session.scalar(select(Address.person_id).where(Address.address == lea))
        uow.session.add(Address(address=f"email:{lea_mail}", kind="email", person_id=person, verified=True,
                                created_at=rig.clock.now()))
        # 5 seats with the practice's 20 % VAT cost over 250 €: the invoice names the buyer's address
        uow.session.add(BillingAddress(person_id=person, name="Lea Berg", address="Weg 1\n4020 Linz\nAT",
                                       updated_at=rig.clock.now()))
        await uow.commit()
    await rig.desk.handle(Inbound(channel="telegram", sender=lea, received_at=rig.clock.now(),
                                  text='/group new "Team Süd" 5 group'))
    msg = email.message_from_bytes(mail("IMPORT Team Süd", body="The list is attached.", sender=lea_mail),
                                   policy=email.policy.default)
    members = "Name;E-Mail\nKim Meyer;kim.meyer@example.com\nLu Li;lu@example.com\nBo;not-an-email\n"
    msg.add_attachment(members.encode("utf-8"), maintype="text", subtype="csv", filename="members.csv")
    msg["Content-Language"] = "en"  # the body part took the first one along
    await rig.send(msg.as_bytes(policy=email.policy.SMTP))
    await rig.deliver()

    kept = rig.mails_to(lea_mail)[-1]  # anyone can write From: lea; the list is read once the code comes back
    assert "I read the list only when you reply" in text_of(kept).replace("\n", " ")
    assert "new members" not in text_of(kept) and not list(kept.iter_attachments())
    code = kept["Subject"].split()[0]
    await rig.send(mail(f"Re: {kept['Subject']}", body=code, sender=lea_mail,
                        headers={"In-Reply-To": kept["Message-ID"]}))
    await rig.deliver()

    checked = rig.mails_to(lea_mail)[-1]
    text = text_of(checked)
    assert "2 new members" in text and "1 invalid row" in text
    # the file name keeps its umlaut (RFC 2231), also for a strict reader
    raw = rig.smtp.handler.raw[next(i for i, m in enumerate(rig.smtp.messages) if m is checked)]
    strict = email.message_from_bytes(raw, policy=email.policy.strict)
    errors = [part for part in strict.iter_attachments() if part.get_filename() == "import-errors-Team-Süd.csv"]
    assert len(errors) == 1 and "not-an-email" in errors[0].get_content()
    code = re.search(r"with the code (\d{6})", text).group(1)
    assert await rig.count(Address, Address.address == "email:lu@example.com") == 0  # a check imports nothing

    await rig.send(mail(f"Re: {checked['Subject']}", body=code, sender=lea_mail,
                        headers={"In-Reply-To": checked["Message-ID"]}))
    await rig.deliver()
    assert "Imported 2 members" in text_of(rig.mails_to(lea_mail)[-1])
    for invited in ("kim.meyer@example.com", "lu@example.com"):
        [invitation] = rig.mails_to(invited)
        assert "Team Süd" in invitation["Subject"]


# ---- commands or tickets ---------------------------------------------------------------------

SUPPORT_MAILS = [  # (subject, body): people asking for help with words that start like commands
    ("Hilfe bei meiner Buchung", "Ich finde meinen Termin nicht mehr."),
    ("Help", "I cannot find my appointment, can you look?"),
    ("Book a table?", "Can I book for two people?"),
    ("Cancel my appointment please", "I am ill this week."),
    ("Termine im Januar", "Haben Sie im Januar noch Termine frei?"),
    ("Code doesn't work", "The code you sent me is not accepted."),
    ("Reset my password please", "I forgot it."),
    ("Question", "Help\nI cannot log in since yesterday."),
    ("Frage", "Stornieren geht nicht\nIch bekomme immer einen Fehler."),
    ("LANGUAGE", "Do you also speak French?"),
]


async def test_support_mail_starting_with_a_command_word_opens_a_ticket_and_keeps_the_body(rig):
    await kims_appointment(rig)
    for number, (subject, body) in enumerate(SUPPORT_MAILS):
        await rig.send(mail(subject, body=body, sender=f"c{number}@example.org"))
    await rig.deliver()
    assert await rig.count(Ticket) == len(SUPPORT_MAILS)
    async with rig.store.uow() as uow:
        kept = (await uow.session.scalars(select(TicketMessage.text).where(TicketMessage.direction == "in"))).all()
    for number, (_, body) in enumerate(SUPPORT_MAILS):
        [answer] = rig.mails_to(f"c{number}@example.org")  # the acknowledgement, and no command's answer
        assert "#T-" in text_of(answer) and "CONFIRM" not in text_of(answer)
        assert any(body in text for text in kept)
    assert await rig.count(Appointment, Appointment.status == "confirmed") == 1


async def test_the_acknowledgement_names_the_command_line_that_would_have_run(rig):
    number = await kims_appointment(rig)
    await rig.send(mail(f"CANCEL {number}", body="My husband will come instead, is that fine?"))
    await rig.send(mail("Cancel my appointment please", body="I am ill.", sender="ben@example.org"))
    await rig.deliver()
    assert await status_of(rig, number) == "confirmed"
    [kim] = rig.mails_to(KIM)
    assert "ticket #T-1" in text_of(kim)
    assert f"subject is only this line, with no other text: CANCEL {number}" in " ".join(text_of(kim).split())
    [ben] = rig.mails_to("ben@example.org")
    assert "If you meant a command (cancel an appointment: cancel ID [reason])" in text_of(ben)


async def test_the_german_acknowledgement_names_the_command_line_too(rig):
    await rig.send(mail("Sprache", body="Sprechen Sie auch Französisch?", lang="de"))
    await rig.deliver()
    text = text_of(rig.mails_to(KIM)[0])
    assert "Falls Sie den Befehl meinten" in text and "ohne weiteren Text: SPRACHE" in " ".join(text.split())


async def test_a_reply_on_a_ticket_thread_starting_with_a_command_word_joins_the_ticket(rig):
    number = await kims_appointment(rig)
    await rig.send(mail("Invoice", body="Where is my invoice for last week?"))
    await rig.deliver()
    [ack] = rig.mails_to(KIM)
    quoted = "\n".join(f"> {line}" for line in text_of(ack).splitlines())
    for body in (f"Cancel that, I found the receipt.\n\nOn Mon, desk wrote:\n{quoted}",
                 "Bookings look right now, thanks.", "Help\n\nThanks a lot!"):
        await rig.send(mail(f"Re: {ack['Subject']}", body=body, headers={"In-Reply-To": ack["Message-ID"]}))
    await rig.send(mail(f"Re: {ack['Subject']}", body="", headers={"In-Reply-To": ack["Message-ID"]}))
    await rig.deliver()
    assert await rig.count(Ticket) == 1
    assert await rig.count(TicketMessage, TicketMessage.direction == "in") == 5
    assert len(rig.mails_to(KIM)) == 1 and await status_of(rig, number) == "confirmed"


async def test_a_reply_on_a_ticket_thread_that_is_exactly_a_command_runs_it(rig):
    await rig.send(mail("Invoice", body="Where is my invoice?"))
    await rig.deliver()
    [ack] = rig.mails_to(KIM)
    await rig.send(mail(f"Re: {ack['Subject']}", body="language de\n\nOn Mon, desk wrote:\n> Hello",
                        headers={"In-Reply-To": ack["Message-ID"]}))
    await rig.deliver()
    assert "Deutsch" in text_of(rig.mails_to(KIM)[-1])
    assert await rig.count(TicketMessage, TicketMessage.direction == "in") == 1


async def test_the_code_mail_names_the_command_as_the_person_wrote_it(rig):
    number = await kims_appointment(rig)
    await rig.send(mail(f"stornieren {number}", lang="de"))
    await rig.deliver()
    code_mail = rig.mails_to(KIM)[-1]
    assert f"Code für STORNIEREN {number}" in code_mail["Subject"] and "CANCEL" not in text_of(code_mail)
    code = CODE.search(text_of(code_mail)).group(1)
    await rig.send(mail(f"Re: {code_mail['Subject']}", body=code, headers={"In-Reply-To": code_mail["Message-ID"]}))
    await rig.deliver()
    assert await status_of(rig, number) == "cancelled"


# ---- loops and abuse -------------------------------------------------------------------------


async def test_an_auto_reply_storm_gets_no_answers(rig):
    for number in range(20):
        await rig.send(mail("LANGUAGE" if number % 2 else f"Out of office {number}", body="I am away.",
                            headers={"Auto-Submitted": "auto-replied"}))
    await rig.deliver()
    assert rig.mails_to(KIM) == []
    assert await rig.count(Outbox, Outbox.recipient == KIM) == 0
    assert len(await rig.imap.seen()) == 20
    assert {row.status for row in await rig.intake_rows()} == {"processed"}


async def test_a_bounce_gets_no_answer(rig):
    bounce = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>\r\nTo: desk@physio.example\r\n"
        b"Return-Path: <>\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.org>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nLANGUAGE\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        b"Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n"
    )
    await rig.send(bounce)
    await rig.deliver()
    assert rig.smtp.messages == []
    assert await rig.count(Outbox, Outbox.channel == "email") == 0


async def test_answers_to_commands_and_codes_are_never_capped(rig):
    number = await kims_appointment(rig)
    for _ in range(12):
        await rig.send(mail("LANGUAGE"))
    await rig.send(mail("BOOKINGS"))
    await rig.send(mail(f"CANCEL {number}"))
    await rig.deliver()
    assert len(rig.mails_to(KIM)) == 14  # twelve answers, the list, the code
    code = CODE.search(text_of(rig.mails_to(KIM)[-1])).group(1)
    await rig.send(mail("Re: code", body=code))
    await rig.deliver()
    assert await status_of(rig, number) == "cancelled"
    assert "cancel" in text_of(rig.mails_to(KIM)[-1]).lower()


async def test_unasked_answers_are_capped_and_the_person_is_told_once(rig):
    for number in range(8):
        await rig.send(mail(f"Question {number}", body="Do you have parking near Linz?"))
    await rig.deliver()
    texts = [text_of(m) for m in rig.mails_to(KIM)]
    assert sum("ticket #T-" in t for t in texts) == 5  # five acknowledgements …
    assert sum("held back" in t for t in texts) == 1 and len(texts) == 6  # … then one notice, then quiet
    assert await rig.count(Ticket) == 8  # nothing is lost: every mail is a ticket
    await rig.send(mail("LANGUAGE"))  # a command is still answered
    await rig.deliver()
    assert len(rig.mails_to(KIM)) == 7
    rig.clock.advance(hours=1, minutes=1)
    await rig.send(mail("Question 9", body="And on Saturdays?"))
    await rig.deliver()
    assert "ticket #T-9" in text_of(rig.mails_to(KIM)[-1])


async def test_the_held_back_notice_is_in_the_persons_language(rig):
    for number in range(6):
        await rig.send(mail(f"Frage {number}", body="Gibt es Parkplätze?", lang="de"))
    await rig.deliver()
    assert "zurück" in text_of(rig.mails_to(KIM)[-1])


async def test_our_own_mail_coming_back_is_ignored(rig):
    await rig.send(mail("LANGUAGE"))
    await rig.deliver()
    ours = rig.smtp.handler.raw[0]
    await rig.send(ours)  # e.g. a forwarding rule sends it back
    await rig.deliver()
    assert len(rig.smtp.messages) == 1
    assert [row.status for row in await rig.intake_rows()] == ["processed", "ignored"]


# ---- odd mail --------------------------------------------------------------------------------


async def test_an_iso_8859_1_mail_is_read(rig):
    raw = ("From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <juergen@example.org>\r\nSubject: Termin f\xfcr M\xe4rz\r\n"
           "Message-ID: <latin1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\nGr\xfc\xdfe, ich h\xe4tte gern einen Termin.\r\n").encode("latin-1")
    await rig.send(raw)
    await rig.deliver()
    async with rig.store.uow() as uow:
        message = await uow.session.scalar(select(TicketMessage).where(TicketMessage.direction == "in"))
        person = await uow.session.scalar(select(Person).join(Address).where(
            Address.address == "email:juergen@example.org"))
    assert "Grüße, ich hätte gern einen Termin." in message.text
    assert person.name == "Jürgen Müller"
    assert rig.mails_to("juergen@example.org")  # the ticket's acknowledgement


async def test_an_html_only_mail_becomes_text(rig):
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = KIM, "Frage", "<html1@example.org>"
    msg.set_content("<html><body><p>Kann ich <b>morgen</b> kommen?</p><blockquote>old</blockquote></body></html>",
                    subtype="html")
    await rig.send(msg.as_bytes(policy=email.policy.SMTP))
    await rig.deliver()
    async with rig.store.uow() as uow:
        message = await uow.session.scalar(select(TicketMessage).where(TicketMessage.direction == "in"))
    assert "Kann ich morgen kommen?" in message.text and "<b>" not in message.text


async def test_a_30_mb_attachment_gets_a_polite_refusal(rig):
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = KIM, "Befund", "<big@example.org>"
    msg.set_content("Anbei mein Befund.")
    msg.add_attachment(os.urandom(30 * 1024 * 1024), maintype="application", subtype="pdf", filename="befund.pdf")
    uid = await rig.send(msg.as_bytes(policy=email.policy.SMTP))
    await rig.deliver()
    refusal = next(m for m in rig.mails_to(KIM) if "befund.pdf" in text_of(m))
    assert "zu groß" in text_of(refusal) and "befund.pdf (30 MB)" in text_of(refusal)  # no language given: German
    assert refusal["In-Reply-To"] == "<big@example.org>"
    async with rig.store.uow() as uow:
        message = await uow.session.scalar(select(TicketMessage).where(TicketMessage.direction == "in"))
    assert message.attachments == [] and "Anbei mein Befund." in message.text
    assert await rig.imap.seen() == {uid}


async def test_a_mail_without_message_id_is_processed_once_even_when_seen_twice(rig):
    raw = mail("a question", body="Do you have parking?", message_id=None)
    first, second = await rig.send(raw), await rig.send(raw)  # delivered twice, e.g. by two MX hosts
    await rig.deliver()
    assert await rig.count(Ticket) == 1 and await rig.count(MailIntake) == 1
    assert await rig.imap.seen() == {first, second}
    assert len(rig.mails_to(KIM)) == 1  # one acknowledgement


async def test_every_corpus_message_is_processed_ignored_or_kept_raw(rig):
    if not CORPUS.is_dir():
        pytest.skip(f"the email corpus is not at {CORPUS}")
    files = sorted(CORPUS.glob("msg_*.txt"))
    uids = {await rig.send(path.read_bytes()): path.name for path in files}
    assert await rig.intake.sync_once() == len(files)
    assert await rig.imap.seen() == set(uids)
    rows = await rig.intake_rows()
    assert rows and all(row.status in ("processed", "ignored", "failed") for row in rows)
    assert all(row.error and row.raw for row in rows if row.status == "failed")
    assert {row.uid for row in rows} <= set(uids)
    await rig.worker.drain()  # every answer can be built and sent


# ---- delivery and crashes --------------------------------------------------------------------


async def test_smtp_down_then_up_delivers_everything_once(rig):
    rig.smtp.stop()
    for _ in range(3):
        await rig.send(mail("LANGUAGE"))
    assert await rig.deliver() == 0
    rig.smtp.start()
    rig.clock.advance(minutes=1)
    assert await rig.worker.drain() == 3
    assert await rig.worker.drain() == 0
    assert len(rig.mails_to(KIM)) == 3


async def test_a_crash_between_commit_and_flag_has_no_duplicate_effects(rig):
    raw = mail("Parking?", body="Is there parking near Linz?")
    uid = await rig.send(raw)
    # The intake committed this mail's effects and died before flagging it …
    assert await rig.edge.take(Incoming(raw, "INBOX", await rig.imap.uidvalidity(), uid)) == "processed"
    assert await rig.imap.unseen() == {uid}
    # … and after the restart it only flags it.
    await rig.deliver()
    assert await rig.imap.seen() == {uid}
    assert await rig.count(Ticket) == 1 and await rig.count(TicketMessage, TicketMessage.direction == "in") == 1
    assert len(rig.mails_to(KIM)) == 1


async def test_a_new_uidvalidity_rescans_without_repeating_anything(rig):
    for subject in ("LANGUAGE", "Parking?"):
        await rig.send(mail(subject))
    await rig.deliver()
    before = len(rig.smtp.messages)
    await rig.imap.stop()
    await rig.imap.new_uidvalidity()  # same mails, new UIDs, flags lost
    await rig.imap.start()
    third = await rig.send(mail("LANGUAGE"))
    await rig.deliver()
    assert len(rig.smtp.messages) == before + 1  # only the new mail is answered
    assert await rig.imap.unseen() == set()
    async with rig.store.uow() as uow:
        state = await uow.session.get(MailboxState, "INBOX")
    assert (state.uidvalidity, state.last_uid) == (await rig.imap.uidvalidity(), third)


# ---- the running intake ----------------------------------------------------------------------


async def wait_until(condition, seconds: float = 10) -> float:
    """Poll an async condition; return how long it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await condition():
        assert loop.time() - started < seconds, "timed out"
        await asyncio.sleep(0.02)
    return loop.time() - started


async def running(intake: ImapIntake):
    stop = asyncio.Event()
    return stop, asyncio.create_task(intake.run(stop))


async def stopped(stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_idle_wakes_the_intake_when_mail_arrives(rig):
    intake = ImapIntake(rig.imap.url, rig.edge, poll_seconds=120, timeout=10)
    stop, task = await running(intake)
    try:
        await rig.send(mail("LANGUAGE"))
        await wait_until(lambda: rig.count(MailIntake))  # the first sync
        await asyncio.sleep(0.2)  # now it idles
        uid = await rig.send(mail("LANGUAGE"))
        took = await wait_until(lambda: has(rig.imap.seen(), uid))
    finally:
        await stopped(stop, task)
    assert took < 5  # far below the 120 s poll interval: IDLE woke it
    assert await rig.count(MailIntake) == 2


async def has(seen, uid) -> bool:
    return uid in await seen


async def test_without_idle_the_intake_polls(rig):
    plain = ImapServer(idle=False)
    await plain.start()
    intake = ImapIntake(plain.url, rig.edge, poll_seconds=0.2, timeout=10)
    stop, task = await running(intake)
    try:
        await asyncio.sleep(0.3)
        uid = await plain.append(mail("LANGUAGE"))
        await wait_until(lambda: has(plain.seen(), uid))
    finally:
        await stopped(stop, task)
        await plain.stop()


async def test_the_intake_reconnects_after_the_server_went_away(rig, caplog):
    caplog.set_level(logging.INFO, logger="bot.mail.imap")
    intake = ImapIntake(rig.imap.url, rig.edge, poll_seconds=120, timeout=10)
    stop, task = await running(intake)
    try:
        first = await rig.send(mail("LANGUAGE"))
        await wait_until(lambda: has(rig.imap.seen(), first))
        await rig.imap.stop()
        second = await rig.send(mail("LANGUAGE"))  # arrives while the intake cannot connect
        await asyncio.sleep(0.5)
        await rig.imap.start()
        await wait_until(lambda: has(rig.imap.seen(), second), seconds=15)
    finally:
        await stopped(stop, task)
    assert len([r for r in caplog.records if "IMAP intake connected" in r.getMessage()]) >= 2


@pytest.mark.parametrize("tls", [
    {"tls": True},  # STARTTLS when the server offers it: it refuses LOGIN before
    {"implicit_tls": True},  # imaps: TLS from the first byte
], ids=["starttls", "imaps"])
async def test_the_intake_speaks_tls(rig, tls):
    secure = ImapServer(**tls)
    await secure.start()
    try:
        uid = await secure.append(mail("LANGUAGE"))
        intake = ImapIntake(secure.url, rig.edge, ssl_context=secure.client_tls(), timeout=10)
        assert await intake.sync_once() == 1
        assert await secure.seen() == {uid}
    finally:
        await secure.stop()


async def test_done_mail_can_be_moved_to_a_folder(rig):
    await rig.imap.add_folder("Done")
    uid = await rig.send(mail("LANGUAGE"))
    intake = ImapIntake(rig.imap.url + "?move_to=Done", rig.edge, timeout=10)
    assert await intake.sync_once() == 1
    assert uid not in await rig.imap.flags()
    assert await rig.imap.folder_size("Done") == 1


async def test_a_booking_code_asked_for_in_telegram_is_confirmed_by_replying_to_its_mail(rig):
    await kims_appointment(rig)  # Kim: telegram:5001 with the verified address kim@example.org
    held = await rig.desk.handle(Inbound("telegram", "telegram:5001", rig.clock.now(), language_hint="en",
                                         text="/book Massage 2026-12-08 13:00 Lukas Huber"))
    assert "holding" in held[0].text
    await rig.worker.drain()
    code_mail = rig.mails_to(KIM)[-1]
    code = code_mail["Subject"].split()[0]
    await rig.send(mail(f"Re: {code_mail['Subject']}", body=f"{code}\n\n> {text_of(code_mail)[:60]}",
                        headers={"In-Reply-To": code_mail["Message-ID"]}))
    await rig.deliver()
    async with rig.store.uow() as uow:
        booked = await uow.session.scalar(select(Appointment).where(Appointment.created_by == "telegram:5001"))
    assert booked.status == "confirmed"
    answer = next(m for m in rig.mails_to(KIM) if m["In-Reply-To"] and m["Subject"] == f"Re: {code_mail['Subject']}")
    assert "Booked!" in text_of(answer)


async def test_frontdesk_run_takes_mail_in_and_stops_cleanly(imap_server, tmp_path):  # noqa: F811
    await imap_server.append(mail("LANGUAGE"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update({"PYTHONPATH": str(ROOT), "FRONTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/run.db",
           "FRONTDESK_SECRET_KEY": "a-test-secret-of-enough-length", "FRONTDESK_IMAP_URL": imap_server.url,
           "FRONTDESK_IMAP_POLL_SECONDS": "1", "FRONTDESK_OUTBOX_DIR": str(tmp_path / "outbox"),
           "FRONTDESK_LANGUAGE": "en"})  # PYTHONPATH: this checkout's code, whatever is installed
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_until(lambda: outbox_files(tmp_path / "outbox"), seconds=30)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, err.decode()[-2000:]
    assert "IMAP intake connected" in err.decode() and "frontdesk stopped" in err.decode()
    written = next((tmp_path / "outbox").glob("*.eml")).read_bytes()
    reply = email.message_from_bytes(written, policy=email.policy.default)
    assert reply["To"] == KIM and reply["Subject"] == "Re: LANGUAGE"
    assert await imap_server.seen()


async def outbox_files(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("*.eml"))


async def test_a_mail_too_large_to_fetch_is_read_by_its_headers_and_refused(rig):
    uid = await rig.send(mail("Befund", body="x" * 5000, lang="en"))
    intake = ImapIntake(rig.imap.url, rig.edge, timeout=10, max_fetch=4000)
    assert await intake.sync_once() == 1
    await rig.worker.drain()
    refusal = next(m for m in rig.mails_to(KIM) if "too large for us to read" in text_of(m))
    assert refusal["Subject"] == "Re: Befund" and refusal["In-Reply-To"]
    assert await rig.imap.seen() == {uid}
    [row] = await rig.intake_rows()
    assert row.status == "processed"
