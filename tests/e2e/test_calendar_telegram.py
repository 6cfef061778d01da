"""The staff calendar through the real PTB Application and the fake Bot API: typed words and button clicks."""
from __future__ import annotations

import base64
import io
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select

from bot.app import build_handlers
from handlers.appointments import claim
from handlers.router import Desk
from handlers.rules.availability import local_minute
from handlers.setup import apply_setup
from storage.models import Address, Appointment, Closure, Outbox, Person, Service
from tests.conftest import FakeClock
from tests.e2e.test_telegram import start_bot  # noqa: F401 - a fixture
from tests.fakebotapi import Upload, fake_bot_api  # noqa: F401
from tests.helpers import ask, button_data, buttons, click, practice_setup, to_chat

VIENNA = ZoneInfo("Europe/Vienna")
ANNA, LUKAS = 1001, 1002
TUESDAY = date(2026, 12, 8)


@pytest.fixture
async def practice(store, clock):
    """The demo practice, with Maria (email) and Otto (no email) booked with Lukas next Tuesday."""
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        maria = await customer(uow, clock, "Maria Muster", "maria@example.com")
        otto = await customer(uow, clock, "Otto Ohnemail")
        await appointment(uow, clock, maria, "Massage", 9 * 60, "confirmed")
        await appointment(uow, clock, otto, "Heilgymnastik", 14 * 60, "held")
        await uow.commit()
    return store


async def customer(uow, clock: FakeClock, name: str, email: str | None = None) -> int:
    person = Person(name=name, created_at=clock.now())
    uow.session.add(person)
    await uow.session.flush()
    if email:
        uow.session.add(Address(address=f"email:{email}", kind="email", person_id=person.id, verified=True,
                                created_at=clock.now()))
    return person.id


async def appointment(uow, clock: FakeClock, customer_id: int, service: str, minute: int, status: str,
                      day: date = TUESDAY) -> None:
    """An appointment in Lukas's calendar, claimed as the booking flow claims it."""
    lukas = await uow.session.scalar(select(Address.person_id).where(Address.address == f"telegram:{LUKAS}"))
    row = await uow.session.scalar(select(Service).where(Service.name == service))
    start = local_minute(day, minute, VIENNA)
    await claim(uow, Appointment(
        service_id=row.id, location_id=None, staff_id=lukas, customer_id=customer_id, start_at=start,
        end_at=start + timedelta(minutes=row.minutes), status=status, sequence=0, channel="telegram",
        created_by="test", created_at=clock.now(),
        hold_expires_at=clock.now() + timedelta(minutes=10) if status == "held" else None), clock.now())


def labels(call) -> list[str]:
    return [b["text"] for row in buttons(call) for b in row]


async def click_in(fake, user_id: int, message, label: str, lang: str):
    """Press a button from a client in language `lang` (the shared helper speaks English)."""
    before = len(fake.calls_of("sendMessage", to_chat(user_id)))
    fake.push_callback(user_id, button_data(message, label), message.result["message_id"], lang)
    return (await fake.wait_for("sendMessage", to_chat(user_id), count=before + 1))[before:]


async def test_day_shows_the_calendar_with_the_red_lock(fake_bot_api, start_bot, practice, config, clock):
    await start_bot(Desk(practice, config, build_handlers(), clock))
    [reply] = await ask(fake_bot_api, ANNA, f"/day {TUESDAY}")
    text = reply.params["text"]
    assert "Tuesday, December 8, 2026" in text
    assert "🔵 Massage · Maria Muster · Lukas Huber · ✓ confirmed" in text
    assert "🟢 Heilgymnastik · Otto Ohnemail · Lukas Huber · 🔒 held, waiting for the code" in text


async def test_off_asks_then_cancels_and_sends_the_personal_message(fake_bot_api, start_bot, practice, config, clock):
    await start_bot(Desk(practice, config, build_handlers(), clock))
    [question] = await ask(fake_bot_api, LUKAS, f"/off sick {TUESDAY}")
    assert "2 appointment(s) fall inside" in question.params["text"]
    assert labels(question) == ["Confirm", "Abort"]
    [closed] = await click(fake_bot_api, LUKAS, question, "Confirm")
    assert "2 appointment(s) cancelled" in closed.params["text"] and labels(closed) == ["No message"]
    [report] = await ask(fake_bot_api, LUKAS, "I am ill, sorry. Please book again next week.")
    text = report.params["text"]
    assert "1 customer(s) were told by email, with your message" in text
    assert "could NOT be told" in text and "Otto Ohnemail" in text
    async with practice.uow() as uow:
        statuses = set((await uow.session.scalars(select(Appointment.status))).all())
        closure = await uow.session.scalar(select(Closure))
        mail = await uow.session.scalar(select(Outbox).where(Outbox.recipient == "maria@example.com"))
    assert statuses == {"cancelled"} and closure.kind == "sick"
    assert "I am ill, sorry." in mail.text
    assert b"METHOD:CANCEL" in base64.b64decode(mail.attachments[0]["data"])


async def test_abort_by_button_changes_nothing(fake_bot_api, start_bot, practice, config, clock):
    await start_bot(Desk(practice, config, build_handlers(), clock))
    [question] = await ask(fake_bot_api, ANNA, f"/pause {TUESDAY} 08:00-18:00 alle", lang="de")
    assert labels(question) == ["Bestätigen", "Abbrechen"]
    [aborted] = await click_in(fake_bot_api, ANNA, question, "Abbrechen", "de")
    assert "nichts geändert" in aborted.params["text"]
    [stale] = await click_in(fake_bot_api, ANNA, question, "Bestätigen", "de")
    assert "nicht mehr offen" in stale.params["text"]
    async with practice.uow() as uow:
        assert await uow.session.scalar(select(Closure)) is None
        assert set((await uow.session.scalars(select(Appointment.status))).all()) == {"confirmed", "held"}


# ---- the week as a picture -----------------------------------------------------------------------


async def test_week_arrives_as_a_photo_with_the_text_as_its_caption(fake_bot_api, start_bot, practice, config, clock):
    await start_bot(Desk(practice, config, build_handlers(), clock))
    fake_bot_api.push_message(ANNA, f"/week {TUESDAY}")
    [photo] = await fake_bot_api.wait_for("sendPhoto", to_chat(ANNA))
    upload = photo.params["photo"]
    assert isinstance(upload, Upload) and upload.filename == "week-2026-12-07.png"
    picture = Image.open(io.BytesIO(upload.data))
    assert picture.format == "PNG" and picture.size == (2444, 1122)  # Anna's and Lukas's lanes, 08:00-19:00
    caption = photo.params["caption"]
    assert "Tuesday, December 8, 2026" in caption and "🔵 Massage · Maria Muster · Lukas Huber" in caption
    assert "🔒 held" in caption
    assert fake_bot_api.calls_of("sendMessage", to_chat(ANNA)) == []  # the text went only as the caption
    assert fake_bot_api.calls_of("sendDocument") == []


async def test_a_long_week_sends_the_photo_first_then_the_text(fake_bot_api, start_bot, practice, config, clock):
    async with practice.uow() as uow:
        otto = await uow.session.scalar(select(Person.id).where(Person.name == "Otto Ohnemail"))
        for day in (date(2026, 12, 10), date(2026, 12, 11)):  # Thursday and Friday, full
            for minute in range(8 * 60, 13 * 60, 45):
                await appointment(uow, clock, otto, "Heilgymnastik", minute, "confirmed", day)
        await uow.commit()
    await start_bot(Desk(practice, config, build_handlers(), clock))
    fake_bot_api.push_message(LUKAS, f"/woche {TUESDAY}", "de")
    [photo] = await fake_bot_api.wait_for("sendPhoto", to_chat(LUKAS))
    [text] = await fake_bot_api.wait_for("sendMessage", to_chat(LUKAS))
    assert "caption" not in photo.params  # over 1024 characters: no caption
    assert len(text.params["text"]) > 1024 and "Freitag, 11. Dezember 2026" in text.params["text"]
    assert photo.result["message_id"] < text.result["message_id"]  # the picture first
    assert photo.params["photo"].filename == "woche-2026-12-07.png"
    assert Image.open(io.BytesIO(photo.params["photo"].data)).size == (1268, 1096)  # his lane alone
