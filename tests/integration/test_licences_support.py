"""Support rule 7 of the licences: a ticket from a school contact's or a school's own address shows support the
school and its carrier (in English and German); a stranger's ticket shows none. SQLite and PostgreSQL."""
from __future__ import annotations

from handlers import admin, identity, invoices, licences, tickets, welcome
from handlers.messages import Attachment, Inbound, MailMeta
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import Ticket
from tests.helpers import rows
from tests.integration.test_licences import ADMIN, CARRIER, XLSX, licence_desk, load_directory, message, workbook


def mail(sender: str, subject: str, text: str, clock, number: int) -> Inbound:
    meta = MailMeta(message_id=f"<q{number}@nord.example>", subject=subject, in_reply_to=None, references=(),
                    body=text, automatic=False)
    return Inbound(channel="email", sender=f"email:{sender}", received_at=clock.now(), text=text, mail=meta)


async def support_desk(store, config, clock) -> Desk:
    """The licence desk of test_licences with tickets; Stadt Nord's licence for four of its schools."""
    desk = await licence_desk(store, config, clock)
    await load_directory(desk, clock)
    listed = workbook([("100", "GS Am Hafen", "Frau Adler", "adler@nord.example"),
                       ("101", "GS Lindenweg", "Herr Berg", "berg@nord.example"),
                       ("200", "Gymnasium Nord", "Frau Conrad", "conrad@nord.example"),
                       ("201", "Gymnasium West", "Herr Dorn", "dorn@nord.example")])
    await desk.handle(message(CARRIER, "/licence Mathe", clock, Attachment("liste.xlsx", XLSX, listed)))
    [ordered] = await desk.handle(message(CARRIER, "/licence Mathe confirm", clock))
    assert ordered.template == "licences_ordered", ordered.text
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                invoices.handlers(), licences.handlers(), tickets.handlers()), clock)


async def ticket_of(store, email: str) -> int:
    [ticket] = await rows(store, Ticket, Ticket.email == email)
    return ticket.id


async def test_a_school_contacts_ticket_names_the_school_and_its_carrier(store, config, clock):
    desk = await support_desk(store, config, clock)
    await desk.handle(mail("Adler@Nord.example", "Freischaltung", "Wie schalte ich die Schule frei?", clock, 1))
    await desk.handle(mail("gs3@nord.example", "Angebot", "Was kostet Mathe für uns?", clock, 2))
    await desk.handle(mail("someone@example.org", "Frage", "Haben Sie auch Englisch?", clock, 3))
    contact = (await rows(store, Ticket, Ticket.subject == "Freischaltung"))[0].id
    school = await ticket_of(store, "gs3@nord.example")
    stranger = await ticket_of(store, "someone@example.org")

    [shown] = await desk.handle(message(ADMIN, f"/ticket {contact}", clock))
    assert "School: GS Am Hafen (100), carrier: Stadt Nord · Frau Adler is its licence contact" in shown.text, \
        shown.text
    [own] = await desk.handle(message(ADMIN, f"/ticket {school}", clock))
    assert "School: GS Ost (102), carrier: Stadt Nord\n" in own.text, own.text
    assert "licence contact" not in own.text
    [none] = await desk.handle(message(ADMIN, f"/ticket {stranger}", clock))
    assert "School:" not in none.text and "Haben Sie auch Englisch?" in none.text

    german = Inbound(channel="telegram", sender=ADMIN, received_at=clock.now(), text=f"/ticket {contact}",
                     language_hint="de")
    await desk.handle(Inbound(channel="telegram", sender=ADMIN, received_at=clock.now(), text="/language de",
                              language_hint="de"))
    [deutsch] = await desk.handle(german)
    assert "Schule: GS Am Hafen (100), Träger: Stadt Nord · Frau Adler ist die Ansprechperson der Lizenz" \
        in deutsch.text, deutsch.text
