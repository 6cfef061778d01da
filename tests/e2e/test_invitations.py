"""Calendar invitations as Outlook and Gmail need them, from the chat through the outbox to a real SMTP server.

Each mail is read back with Python's email package in strict mode and each calendar with vobject, an
independent iCalendar parser. Runs on SQLite and PostgreSQL.
"""
from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import vobject
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from bot.app import Runtime, open_runtime
from bot.mail.smtp import SmtpTransport
from bot.settings import Settings
from handlers.appointments import claim
from handlers.messages import Inbound
from handlers.setup import apply_setup
from storage.db import MIGRATIONS
from storage.models import Address, Appointment, Installation, Person, Service
from tests.conftest import FakeClock
from tests.helpers import practice_setup
from tests.smtp import smtp_server  # noqa: F401

EXAMPLE = Path(__file__).parents[2] / "examples" / "practice.toml"
MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
BUSINESS = "Physio am Park"  # from the demo practice
KIM, KIM_MAIL = "telegram:2101", "kim@example.com"


class Practice:
    """The demo practice as `frontdesk run` wires it, with FRONTDESK_MAIL_FROM set to `mail_from`."""

    def __init__(self, runtime: Runtime, clock: FakeClock, smtp):
        self.runtime, self.clock, self.smtp = runtime, clock, smtp

    async def say(self, sender: str, text: str, display_name: str | None = None) -> str:
        inbound = Inbound(channel="telegram", sender=sender, received_at=self.clock.now(), text=text,
                          language_hint="en", display_name=display_name)
        replies = await self.runtime.desk.handle(inbound)
        await self.runtime.worker.drain()
        return "\n".join(reply.text for reply in replies)

    def last_code(self, address: str) -> str:
        subject = [m for m in self.smtp.messages if m["To"] == address][-1]["Subject"]
        return subject.split()[0]


async def practice(url: str, smtp, clock: FakeClock, mail_from: str, setup: Path | None = None) -> Practice:
    settings = Settings(_env_file=None, database_url=url, secret_key="x" * 32, mail_from=mail_from,
                        language="en", timezone="Europe/Vienna")
    transport = SmtpTransport(smtp.url, settings.mail_from, timeout=5)
    return Practice(await open_runtime(settings, {"email": transport}, clock, setup=setup), clock, smtp)


def invitations(smtp, address: str) -> list[tuple[EmailMessage, vobject.base.Component]]:
    """Every mail to `address` that carries a calendar, read strictly, with its calendar."""
    found = []
    for raw in smtp.handler.raw:
        msg = email.message_from_bytes(raw, policy=email.policy.strict)  # raises on any defect
        if msg["To"] == address and any(p.get_content_type() == "text/calendar" for p in msg.walk()):
            found.append((msg, imip_calendar(msg)))
    return found


def imip_calendar(msg: EmailMessage) -> vobject.base.Component:
    """Check the iMIP shape (RFC 6047) and return the calendar, parsed by vobject."""
    assert msg.get_content_type() == "multipart/mixed"
    alternative, *attached = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, part = alternative.get_payload()
    assert plain.get_content_type() == "text/plain" and plain.get_content().strip()
    assert part.get_content_type() == "text/calendar" and part.get_param("charset") == "utf-8"
    assert part["Content-Disposition"] is None  # shown as the invitation, not as a file
    calendar = vobject.readOne(part.get_content())
    assert calendar.method.value == part.get_param("method")
    [copy] = [p for p in attached if p.get_filename() == "appointment.ics"]
    assert copy.get_content().decode("utf-8").replace("\r\n", "\n") == part.get_content().replace("\r\n", "\n")
    for text_part in msg.walk():
        if text_part.get_content_maintype() == "text":
            assert text_part.get_param("charset") == "utf-8"
    msg.as_bytes().decode("ascii")  # 7-bit clean on the wire
    return calendar


def check_parties(msg: EmailMessage, calendar, partstat: str | None) -> None:
    """ORGANIZER is the From: address with the business's name; ATTENDEE is the customer's verified address."""
    event = calendar.vevent
    sender = msg["From"].addresses[0].addr_spec
    assert event.organizer.value.lower() == f"mailto:{sender}"
    assert event.organizer.params["CN"] == [BUSINESS]
    [attendee] = event.contents["attendee"]
    assert attendee.value.lower() == f"mailto:{KIM_MAIL}"
    assert attendee.params["CN"] == ["Kim Weiß"]
    assert attendee.params["RSVP"] == ["FALSE"]
    assert attendee.params.get("PARTSTAT") == ([partstat] if partstat else None)


async def test_an_invitation_keeps_its_uid_when_the_sender_address_changes(store_and_url, smtp_server):  # noqa: F811
    store, url = store_and_url
    clock = FakeClock(MONDAY)
    desk = await practice(url, smtp_server, clock, f"{BUSINESS} <desk@physio.example>", setup=EXAMPLE)
    assert "Kim Weiß" in await desk.say(KIM, "/name Kim Weiß")
    await desk.say(KIM, f"/email {KIM_MAIL}")
    assert "is confirmed" in await desk.say(KIM, desk.last_code(KIM_MAIL))
    assert "I am holding" in await desk.say(KIM, "/book Massage 2026-12-11 10:00 Lukas Huber")  # 8 Dec: a holiday
    booked = await desk.say(KIM, desk.last_code(KIM_MAIL))
    number = int(re.search(r"\(#(\d+)\)", booked).group(1))
    await desk.runtime.close()

    # The operator moves to another sender address; the customer's calendar must still follow.
    desk = await practice(url, smtp_server, clock, f"{BUSINESS} <termine@neu.example>")
    assert "is now on" in await desk.say(KIM, f"/move {number} 2026-12-10 09:00")
    assert "Cancelled" in await desk.say(KIM, f"/cancel {number}")
    await desk.runtime.close()

    sent = invitations(smtp_server, KIM_MAIL)
    assert [calendar.method.value for _, calendar in sent] == ["REQUEST", "REQUEST", "CANCEL"]
    assert [msg["From"].addresses[0].addr_spec for msg, _ in sent] == [
        "desk@physio.example", "termine@neu.example", "termine@neu.example"]
    for (msg, calendar), partstat in zip(sent, ["ACCEPTED", "ACCEPTED", None]):
        check_parties(msg, calendar, partstat)
    uids = {calendar.vevent.uid.value for _, calendar in sent}
    assert len(uids) == 1
    async with store.uow() as uow:
        key = (await uow.session.scalar(select(Installation.key)))
    assert uids == {f"appointment-{number}@{key}.frontdesk"}
    assert [int(calendar.vevent.sequence.value) for _, calendar in sent] == [0, 1, 2]
    assert [calendar.vevent.status.value for _, calendar in sent] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    moved = sent[1][1].vevent
    assert moved.dtstart.value == datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc)


async def test_the_installation_id_is_random_and_made_once(store_and_url, smtp_server):  # noqa: F811
    store, url = store_and_url
    async with store.uow() as uow:
        rows = (await uow.session.scalars(select(Installation))).all()
    assert [row.id for row in rows] == [1] and re.fullmatch(r"[0-9a-f]{32}", rows[0].key)
    desk = await practice(url, smtp_server, FakeClock(MONDAY), f"{BUSINESS} <desk@physio.example>")
    await desk.runtime.close()  # a second start migrates again and keeps the id
    async with store.uow() as uow:
        assert (await uow.session.scalars(select(Installation.key))).all() == [rows[0].key]


def downgrade(connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_appointments_invited_before_the_upgrade_keep_their_event(store_and_url, smtp_server):  # noqa: F811
    store, url = store_and_url
    clock = FakeClock(MONDAY)
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        kim = Person(name="Kim Weiß", created_at=clock.now())
        uow.session.add(kim)
        await uow.session.flush()
        for address in (KIM, f"email:{KIM_MAIL}"):
            uow.session.add(Address(address=address, kind=address.split(":")[0], person_id=kim.id, verified=True,
                                    created_at=clock.now()))
        await uow.commit()
    async with store.engine.begin() as connection:  # an installation from before the random id
        await connection.run_sync(downgrade, "0007")
    async with store.uow() as uow:  # only tables the later schema steps leave alone are touched here
        massage = await uow.session.scalar(select(Service.id).where(Service.name == "Massage"))
        lukas = await uow.session.scalar(select(Address.person_id).where(Address.address == "telegram:1002"))
        start = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)
        old = Appointment(service_id=massage, location_id=1, staff_id=lukas, customer_id=kim.id, start_at=start,
                          end_at=start + timedelta(hours=1), status="confirmed", sequence=0, channel="telegram",
                          created_by=KIM, created_at=clock.now())
        await claim(uow, old, clock.now())
        await uow.commit()

    desk = await practice(url, smtp_server, clock, f"{BUSINESS} <desk@physio.example>")  # upgrades
    assert "Cancelled" in await desk.say(KIM, f"/cancel {old.id}")
    await desk.runtime.close()
    [(_, calendar)] = invitations(smtp_server, KIM_MAIL)
    # the name its first invitation gave it (under the mail domain), so the customer's calendar drops it
    assert calendar.vevent.uid.value == f"appointment-{old.id}@physio.example"
    async with store.uow() as uow:
        assert (await uow.session.get(Installation, 1)).first_appointment == old.id + 1
