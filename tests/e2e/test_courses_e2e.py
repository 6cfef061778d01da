"""Courses end to end: the real PTB Application against the fake Bot API (courses → join → code, a freed place
offered in the chat), and email through a real IMAP server in and a real SMTP server out (join by mail goes
through the round trip, then the place's code)."""
from __future__ import annotations

import email.policy
import re
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import build_handlers
from bot.mail.imap import ImapIntake
from bot.mail.intake import EmailEdge
from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from bot.settings import Settings
from bot.telegram import TelegramTransport, build_application, start_telegram, stop_telegram
from handlers.router import Desk
from handlers.setup import apply_setup, parse_setup
from storage.models import CoursePlace
from tests.conftest import FakeClock
from tests.fakebotapi import Call, FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import ask, click, to_chat
from tests.imap import imap_server  # noqa: F401
from tests.smtp import smtp_server  # noqa: F401

EXAMPLE = Path(__file__).parents[2] / "examples" / "practice.toml"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)  # 10:00 in Vienna
COURSE = """
[[courses]]
name = "Rückenfit"
location = "Linz"
sessions = ["2026-12-10 18:00-19:30", "2026-12-17 18:00-19:30"]
capacity = 1
price = "120.00"
"""
DESK = "Physio am Park <desk@physio.example>"
LUKAS_CHAT = 1002
KIM, LEA = 2101, 2102
CODE = re.compile(r"CONFIRM (\d{6})")


async def set_up(store, clock) -> None:
    clock.current = NOW
    async with store.uow() as uow:
        await apply_setup(uow, parse_setup(EXAMPLE.read_text() + COURSE, "practice.toml"), clock.now())
        await uow.commit()


def text_of(call: Call) -> str:
    return call.params["text"].replace("\u202f", " ")


def body(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content().replace("\u202f", " ")


async def statuses(store) -> dict[str, str]:
    async with store.uow() as uow:
        return {p.address: p.status for p in await uow.session.scalars(select(CoursePlace))}


# ---- Telegram --------------------------------------------------------------------------------


@pytest.fixture
async def bot(fake_bot_api, smtp_server, store, config, clock):
    """The practice with its course behind a running Telegram Application, and an outbox worker."""
    await set_up(store, clock)
    settings = Settings(_env_file=None, telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        secret_key="x" * 32, telegram_rate_per_second=0, telegram_concurrency=4)
    app = build_application(settings, Desk(store, config, build_handlers(), clock))
    await start_telegram(app, settings)
    transports = {"email": SmtpTransport(smtp_server.url, DESK), "telegram": TelegramTransport(app.bot)}
    worker = OutboxWorker(store, transports, clock=clock)
    yield worker
    await worker.close()
    await stop_telegram(app)


async def mailed_code(worker: OutboxWorker, smtp, address: str) -> str:
    """Deliver the outbox and read the code from the newest mail to `address` (in its subject and body)."""
    await worker.drain()
    mail = [m for m in smtp.messages if m["To"] == address][-1]
    code = mail["Subject"].split()[0]
    assert code.isdigit() and code in body(mail)
    return code


async def verified(fake: FakeBotApi, worker, smtp, user_id: int, address: str) -> None:
    await ask(fake, user_id, "/language en")
    await ask(fake, user_id, f"/email {address}")
    [done] = await ask(fake, user_id, await mailed_code(worker, smtp, address))
    assert "is confirmed" in text_of(done)


async def test_courses_then_join_then_the_mailed_code_gives_a_place(fake_bot_api, smtp_server, bot, store):
    await verified(fake_bot_api, bot, smtp_server, KIM, "kim@example.com")
    [listing] = await ask(fake_bot_api, KIM, "/courses")
    assert "Rückenfit · Linz · € 120.00" in text_of(listing) and "1 of 1 place free" in text_of(listing)
    [held] = await click(fake_bot_api, KIM, listing, "Join Rückenfit")
    assert "I am holding a place in Rückenfit (Linz) for you until 10:10 AM" in text_of(held)
    code = await mailed_code(bot, smtp_server, "kim@example.com")
    assert [m["Subject"] for m in smtp_server.messages if m["To"] == "kim@example.com"][-1] == (
        f"{code} is your code for the course Rückenfit")
    [confirmed] = await ask(fake_bot_api, KIM, code)
    assert "You have a place in Rückenfit (Linz)" in text_of(confirmed)
    await bot.drain()
    assert smtp_server.messages[-1]["Subject"] == "Your place: Rückenfit from Dec 10, 2026"
    [note] = await fake_bot_api.wait_for("sendMessage", to_chat(LUKAS_CHAT))
    assert "Neue Online-Anmeldung für Rückenfit" in note.params["text"]
    assert await statuses(store) == {f"telegram:{KIM}": "confirmed"}


async def test_a_place_given_back_is_offered_in_the_chat_of_the_first_in_line(fake_bot_api, smtp_server, bot, store):
    await verified(fake_bot_api, bot, smtp_server, KIM, "kim@example.com")
    await verified(fake_bot_api, bot, smtp_server, LEA, "lea@example.com")
    await ask(fake_bot_api, KIM, "/join Rückenfit")
    await ask(fake_bot_api, KIM, await mailed_code(bot, smtp_server, "kim@example.com"))
    [waiting] = await ask(fake_bot_api, LEA, "/join Rückenfit")
    assert "You are on the waiting list at number 1" in text_of(waiting)
    [left] = await ask(fake_bot_api, KIM, "/leave Rückenfit")
    assert "It goes to the next person on the waiting list" in text_of(left)
    await bot.drain()
    offer = [c for c in fake_bot_api.calls_of("sendMessage", to_chat(LEA)) if "has become free" in c.params["text"]]
    assert len(offer) == 1
    code = re.search(r"Send the code (\d{6}) here", offer[0].params["text"]).group(1)
    mail = [m for m in smtp_server.messages if m["To"] == "lea@example.com"][-1]
    assert mail["Subject"] == f"{code} is your code: a place in Rückenfit is free for you"
    [taken] = await ask(fake_bot_api, LEA, code)
    assert "You have a place in Rückenfit" in text_of(taken)
    assert await statuses(store) == {f"telegram:{KIM}": "left", f"telegram:{LEA}": "confirmed"}


# ---- email -----------------------------------------------------------------------------------


def mail(subject: str, body_text: str = "", sender: str = "Ben Ott <ben@example.org>") -> bytes:
    """A mail as a customer's client sends it."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, DESK, subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(body_text or "Sent from a test.")
    msg["Content-Language"] = "en"
    return msg.as_bytes(policy=email.policy.SMTP)


async def test_joining_by_mail_goes_through_the_round_trip_then_the_place_code(store, config, smtp_server,
                                                                             imap_server):
    clock = FakeClock(NOW)
    await set_up(store, clock)
    desk = Desk(store, config, build_handlers(), clock)
    transport = SmtpTransport(smtp_server.url, DESK, timeout=5)
    intake = ImapIntake(imap_server.url, EmailEdge(desk, store, clock), timeout=10)
    worker = OutboxWorker(store, {"email": transport}, clock)
    ben = "ben@example.org"

    async def exchange(raw: bytes) -> list[EmailMessage]:
        before = len([m for m in smtp_server.messages if m["To"] == ben])
        await imap_server.append(raw)
        await intake.sync_once()
        await worker.drain()
        return [m for m in smtp_server.messages if m["To"] == ben][before:]

    try:
        [round_trip] = await exchange(mail("JOIN Rückenfit"))
        trip_code = CODE.search(body(round_trip)).group(1)
        assert round_trip["Subject"].startswith(trip_code) and "JOIN Rückenfit" in body(round_trip)
        assert await statuses(store) == {}  # nothing changes before the mailbox is proven
        answers = await exchange(mail(f"Re: {round_trip['Subject']}", f"CONFIRM {trip_code}"))
        [code_mail] = [m for m in answers if "is your code for the course Rückenfit" in m["Subject"]]
        place_code = code_mail["Subject"].split()[0]
        assert place_code in body(code_mail)
        assert any("I am holding a place in Rückenfit" in body(m) for m in answers)
        assert await statuses(store) == {f"email:{ben}": "held"}
        answers = await exchange(mail(f"Re: {code_mail['Subject']}", place_code))  # just the digits
        assert any("You have a place in Rückenfit" in body(m) for m in answers)
        assert any(m["Subject"] == "Your place: Rückenfit from Dec 10, 2026" for m in answers)
        assert await statuses(store) == {f"email:{ben}": "confirmed"}
        [listing] = await exchange(mail("COURSES"))  # reads only: no round trip
        assert "You have a place" in body(listing)
    finally:
        await transport.close()
