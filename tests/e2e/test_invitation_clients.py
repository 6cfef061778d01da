"""Calendar invitations as Outlook and Gmail need them: booked, moved and cancelled by Telegram and by email.

The practice runs as `frontdesk run` wires it (the real PTB Application against the fake Bot API, the IMAP
intake against pymap, the outbox against aiosmtpd). Every mail is read back from the SMTP server with Python's
email package in strict mode, and its calendar with two parsers that share nothing with the icalendar package
that writes it: vobject and ics. A Berlin practice open on Sundays books on both DST days of 2026, on each side
of the switch, so a wrong offset shows as a wrong hour. Runs on SQLite and PostgreSQL.
"""
from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import make_msgid, parsedate_to_datetime
from zoneinfo import ZoneInfo

import ics
import pytest
import vobject
from sqlalchemy import select

from bot.app import Runtime, open_runtime
from bot.cli import start_telegram_channel
from bot.mail.smtp import SmtpTransport
from bot.settings import Settings
from bot.telegram import stop_telegram
from storage.models import Address, Appointment, Person
from tests.conftest import FakeClock
from tests.fakebotapi import FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import ask
from tests.imap import ImapServer, imap_server  # noqa: F401
from tests.smtp import SmtpServer, smtp_server  # noqa: F401

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 3, 23, 8, 0, tzinfo=timezone.utc)
BUSINESS, DESK = "Praxis Mitte", "termine@praxis-mitte.example"
SETUP = """
[business]
name = "Praxis Mitte"
timezone = "Europe/Berlin"
language = "de"
booking_mode = "direct"
slot_minutes = 15
min_notice_minutes = 60
max_days_ahead = 240

[[locations]]
name = "Mitte"
hours.sun = ["00:00-23:00"]

[[services]]
name = "Massage"
minutes = 60

[[staff]]
name = "Lukas Huber"
role = "provider"
telegram = 1002
email = "lukas@praxis-mitte.example"
services = ["Massage"]
hours.Mitte.sun = ["00:00-23:00"]
"""
FILE = {"de": "termin.ics", "en": "appointment.ics"}
SUBJECT = {"de": ("Gebucht:", "Verschoben:", "Storniert:"), "en": ("Booked:", "Moved:", "Cancelled:")}
CODE_SUBJECT = re.compile(r"^(\d{6})\b")

# Local times on the DST days, with the UTC instants worked out by hand (CET = UTC+1, CEST = UTC+2):
# 2026-03-29 the clocks jump from 02:00 to 03:00, 2026-10-25 they fall back from 03:00 to 02:00.
SPRING_BEFORE = ("2026-03-29 01:00", datetime(2026, 3, 29, 0, 0, tzinfo=timezone.utc))
SPRING_AFTER = ("2026-03-29 04:00", datetime(2026, 3, 29, 2, 0, tzinfo=timezone.utc))
AUTUMN_BEFORE = ("2026-10-25 01:00", datetime(2026, 10, 24, 23, 0, tzinfo=timezone.utc))
AUTUMN_AFTER = ("2026-10-25 04:00", datetime(2026, 10, 25, 3, 0, tzinfo=timezone.utc))


@dataclass
class Practice:
    runtime: Runtime
    clock: FakeClock
    smtp: SmtpServer
    imap: ImapServer
    fake: FakeBotApi

    def strict_mails_to(self, address: str) -> list[EmailMessage]:
        """Every mail the SMTP server got for `address`, read in strict mode (any defect raises)."""
        mails = [email.message_from_bytes(raw, policy=email.policy.strict) for raw in self.smtp.handler.raw]
        return [m for m in mails if m["To"].addresses[0].addr_spec == address]

    async def appointment(self, customer: str) -> Appointment:
        async with self.runtime.store.uow() as uow:
            person = await uow.session.scalar(select(Address.person_id).where(Address.address == customer))
            return await uow.session.scalar(select(Appointment).where(Appointment.customer_id == person))

    async def name_of(self, address: str) -> str | None:
        async with self.runtime.store.uow() as uow:
            person = await uow.session.scalar(select(Address.person_id).where(Address.address == address))
            return (await uow.session.get_one(Person, person)).name


@pytest.fixture
async def practice(store_and_url, smtp_server, imap_server, fake_bot_api, tmp_path):  # noqa: F811
    _, url = store_and_url
    setup = tmp_path / "practice.toml"
    setup.write_text(SETUP, encoding="utf-8")
    clock = FakeClock(MONDAY)
    settings = Settings(_env_file=None, database_url=url, secret_key="x" * 32, mail_from=f"{BUSINESS} <{DESK}>",
                        language="de", timezone="Europe/Berlin", imap_url=imap_server.url,
                        telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        telegram_rate_per_second=0, telegram_concurrency=4)
    runtime = await open_runtime(settings, {"email": SmtpTransport(smtp_server.url, settings.mail_from, timeout=5)},
                                 clock, setup=setup)
    app = await start_telegram_channel(runtime)
    yield Practice(runtime, clock, smtp_server, imap_server, fake_bot_api)
    await stop_telegram(app)
    await runtime.close()


# ---- reading what arrived -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """What one parser read from an invitation."""

    method: str
    uid: str
    sequence: int
    status: str
    start: datetime
    end: datetime
    stamp: datetime
    organizer: str
    organizer_name: str
    attendee: str
    attendee_name: str
    partstat: str | None


def read_with_vobject(text: str) -> tuple[Event, str | None]:
    """The event as vobject reads it, and the ATTENDEE's RSVP."""
    calendar = vobject.readOne(text)
    [event] = calendar.contents["vevent"]
    [attendee] = event.contents["attendee"]
    [organizer] = event.contents["organizer"]
    [rsvp] = attendee.params.get("RSVP", [None])
    return Event(
        calendar.method.value, event.uid.value, int(event.sequence.value), event.status.value,
        event.dtstart.value, event.dtend.value, event.dtstamp.value,
        organizer.value.lower().removeprefix("mailto:"), organizer.params["CN"][0],
        attendee.value.lower().removeprefix("mailto:"), attendee.params["CN"][0],
        attendee.params.get("PARTSTAT", [None])[0]), rsvp


def read_with_ics(text: str) -> Event:
    """The event as the ics package reads it (it keeps SEQUENCE among the lines it does not model)."""
    calendar = ics.Calendar(text)
    [event] = calendar.events
    [attendee] = event.attendees
    [sequence] = [line.value for line in event.extra if line.name == "SEQUENCE"]
    return Event(
        calendar.method, event.uid, int(sequence), event.status, event.begin.datetime, event.end.datetime,
        event.created.datetime,  # ics 0.7 reads DTSTAMP into `created`
        event.organizer.email.lower(), event.organizer.common_name,
        attendee.email.lower(), attendee.common_name, attendee.partstat)


def check_zones(text: str) -> None:
    """Every time is UTC (`Z`) or names a TZID that a VTIMEZONE of the same file defines; none floats."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    zones = set(re.findall(r"^TZID:(.+?)\r?$", unfolded, re.MULTILINE))
    [event] = re.findall(r"^BEGIN:VEVENT\r?$.*?^END:VEVENT\r?$", unfolded, re.MULTILINE | re.DOTALL)
    times = re.findall(r"^(DTSTART|DTEND|DTSTAMP)((?:;[^:]*)?):(.+?)\r?$", event, re.MULTILINE)
    assert {name for name, _, _ in times} == {"DTSTART", "DTEND", "DTSTAMP"}
    for _, params, value in times:
        tzid = re.search(r";TZID=([^;:]+)", params)
        assert value.endswith("Z") or (tzid and tzid.group(1).strip('"') in zones), (params, value)


def invitation(msg: EmailMessage, lang: str) -> str:
    """Check the iMIP shape Outlook and Gmail act on and return the calendar text.

    multipart/mixed: [multipart/alternative: [text/plain, (text/html), text/calendar; method=…; charset=utf-8],
    application/ics attached under the translated file name, holding the same calendar].
    """
    assert msg.get_content_type() == "multipart/mixed"
    alternative, *attached = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    parts = alternative.get_payload()
    assert parts[0].get_content_type() == "text/plain" and parts[-1].get_content_type() == "text/calendar"
    part = parts[-1]
    assert part.get_param("charset").lower() == "utf-8" and part.get_param("method") in ("REQUEST", "CANCEL")
    assert part["Content-Disposition"] is None  # shown as the invitation, not as a file
    text = part.get_content()
    assert re.search(rf"^METHOD:{part.get_param('method')}\r?$", text, re.MULTILINE)
    [copy] = attached
    assert (copy.get_content_type(), copy.get_filename(), copy.get_param("name")) == (
        "application/ics", FILE[lang], FILE[lang])
    assert copy.get_content().decode("utf-8").replace("\r\n", "\n") == text.replace("\r\n", "\n")
    msg.as_bytes().decode("ascii")  # 7-bit clean on the wire
    return text


def check_invitations(mails: list[EmailMessage], lang: str, customer: str, name: str,
                      starts: tuple[datetime, datetime], locals_: tuple[str, str]) -> None:
    """Confirmation, move, cancellation: one event (same UID, rising SEQUENCE) at the booked local times."""
    assert [m["Subject"].split()[0] for m in mails] == list(SUBJECT[lang])
    events = []
    for msg in mails:
        text = invitation(msg, lang)
        check_zones(text)
        first, rsvp = read_with_vobject(text)
        second = read_with_ics(text)
        assert first == second  # two independent readers agree on every field
        assert rsvp == "FALSE"  # settled, nobody is asked to answer (ics 0.7 reads any RSVP value as true)
        assert first.stamp == parsedate_to_datetime(msg["Date"])  # DTSTAMP: when this version was sent
        assert first.organizer == msg["From"].addresses[0].addr_spec == DESK and first.organizer_name == BUSINESS
        assert (first.attendee, first.attendee_name) == (customer, name)
        events.append(first)
    assert [e.method for e in events] == ["REQUEST", "REQUEST", "CANCEL"]
    assert [e.status for e in events] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    assert [e.partstat for e in events] == ["ACCEPTED", "ACCEPTED", None]
    assert len({e.uid for e in events}) == 1
    assert events[0].sequence < events[1].sequence < events[2].sequence
    booked, moved = starts
    assert [e.start for e in events] == [booked, moved, moved]
    assert all(e.end - e.start == timedelta(hours=1) for e in events)
    # what the customer booked, on the wall clock in Berlin
    assert [e.start.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M") for e in events] == [
        locals_[0], locals_[1], locals_[1]]


# ---- Telegram ---------------------------------------------------------------------------------------------


async def mailed_code(practice: Practice, address: str) -> str:
    await practice.runtime.worker.drain()
    [code] = CODE_SUBJECT.match(practice.strict_mails_to(address)[-1]["Subject"]).groups()
    return code


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_a_telegram_customer_gets_one_event_confirmed_moved_and_cancelled(practice, lang):
    user, address = (2101, "kim@example.com")
    fake, customer = practice.fake, f"telegram:{user}"
    await ask(fake, user, "/name Kim Weiß", lang=lang)
    await ask(fake, user, f"/email {address}", lang=lang)
    await ask(fake, user, await mailed_code(practice, address), lang=lang)
    await ask(fake, user, f"/book Massage {SPRING_BEFORE[0]} Lukas Huber", lang=lang)
    practice.clock.advance(minutes=2)
    await ask(fake, user, await mailed_code(practice, address), lang=lang)
    await practice.runtime.worker.drain()
    number = (await practice.appointment(customer)).id
    practice.clock.advance(hours=3)
    await ask(fake, user, f"/move {number} {AUTUMN_AFTER[0]}", lang=lang)
    await practice.runtime.worker.drain()
    practice.clock.advance(days=1)
    await ask(fake, user, f"/cancel {number}", lang=lang)
    await practice.runtime.worker.drain()

    assert (await practice.appointment(customer)).status == "cancelled"
    mails = [m for m in practice.strict_mails_to(address) if m.get_content_type() == "multipart/mixed"]
    check_invitations(mails, lang, address, "Kim Weiß", (SPRING_BEFORE[1], AUTUMN_AFTER[1]),
                      (SPRING_BEFORE[0], AUTUMN_AFTER[0]))


# ---- email ------------------------------------------------------------------------------------------------


def customer_mail(subject: str, sender: str, lang: str, body: str = "", in_reply_to: str | None = None) -> bytes:
    """A mail as a customer's client sends it: the language in Content-Language, CRLF, 7-bit safe."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, f"{BUSINESS} <{DESK}>", subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    msg.set_content(body or "Sent from a test.")
    msg["Content-Language"] = lang
    return msg.as_bytes(policy=email.policy.SMTP)


async def deliver(practice: Practice, raw: bytes) -> None:
    """Into the IMAP server as an MTA would; the intake takes it in, the outbox sends the answers."""
    await practice.imap.append(raw)
    intake = practice.runtime.intake
    assert intake is not None
    await intake.sync_once()
    await practice.runtime.worker.drain()


async def by_mail(practice: Practice, command: str, sender: str, address: str, lang: str) -> None:
    """Mail `command`; answer each code that comes back with its digits, until the invitation arrives."""
    seen = len(practice.strict_mails_to(address))
    await deliver(practice, customer_mail(command, sender, lang))
    answered: set[str] = set()
    for _ in range(3):
        new = practice.strict_mails_to(address)[seen:]
        if any(m.get_content_type() == "multipart/mixed" for m in new):
            return
        codes = [(found.group(1), m) for m in new if (found := CODE_SUBJECT.match(m["Subject"]))]
        code, asking = [(code, m) for code, m in codes if code not in answered][-1]
        answered.add(code)
        practice.clock.advance(minutes=1)
        await deliver(practice, customer_mail(f"Re: {asking['Subject']}", sender, lang, code, asking["Message-ID"]))
    raise AssertionError(f"no invitation after {command!r}")


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_an_email_customer_gets_one_event_confirmed_moved_and_cancelled(practice, lang):
    address = "ben@example.org"
    sender = f"Ben Åkesson <{address}>"
    await by_mail(practice, f"BOOK Massage {SPRING_AFTER[0]} Lukas Huber", sender, address, lang)
    number = (await practice.appointment(f"email:{address}")).id
    practice.clock.advance(hours=3)
    await by_mail(practice, f"MOVE {number} {AUTUMN_BEFORE[0]}", sender, address, lang)
    practice.clock.advance(days=1)
    await by_mail(practice, f"CANCEL {number}", sender, address, lang)

    assert (await practice.appointment(f"email:{address}")).status == "cancelled"
    mails = [m for m in practice.strict_mails_to(address) if m.get_content_type() == "multipart/mixed"]
    assert await practice.name_of(f"email:{address}") == "Ben Åkesson"  # the display name of the first mail
    check_invitations(mails, lang, address, "Ben Åkesson", (SPRING_AFTER[1], AUTUMN_BEFORE[1]),
                      (SPRING_AFTER[0], AUTUMN_BEFORE[0]))
