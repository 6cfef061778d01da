"""Booking through the real PTB Application and a fake Bot API, with codes read from a real SMTP server."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.app import build_handlers
from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from bot.settings import Settings
from bot.telegram import TelegramTransport, build_application, start_telegram, stop_telegram
from handlers.router import Desk
from handlers.setup import apply_setup
from tests.fakebotapi import Call, FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import ask, click, practice_setup, to_chat
from tests.smtp import smtp_server  # noqa: F401

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
LUKAS_CHAT = 1002  # from the demo practice
KIM, LEA = 2101, 2102


@pytest.fixture
async def practice(fake_bot_api, smtp_server, store, config, clock):
    """The demo practice behind a running Telegram Application, with an outbox worker for mail and chat."""
    clock.current = MONDAY
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    settings = Settings(_env_file=None, telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        secret_key="x" * 32, telegram_rate_per_second=0, telegram_concurrency=4)
    app = build_application(settings, Desk(store, config, build_handlers(), clock))
    await start_telegram(app, settings)
    worker = OutboxWorker(store, {"email": SmtpTransport(smtp_server.url, "Physio am Park <desk@physio.example>"),
                                  "telegram": TelegramTransport(app.bot)}, clock=clock)
    yield worker
    await worker.close()
    await stop_telegram(app)


def text_of(call: Call) -> str:
    return call.params["text"].replace("\u202f", " ")


def labels(call: Call) -> list[str]:
    return [b["text"] for row in call.params.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def mailed_code(worker: OutboxWorker, smtp, address: str) -> str:
    """Deliver the outbox and read the code from the newest mail the SMTP server got for `address`."""
    await worker.drain()
    mail = [m for m in smtp.messages if m["To"] == address][-1]
    code = mail["Subject"].split()[0]
    assert code.isdigit() and code in mail.get_body(("plain",)).get_content()
    return code


async def verified(fake, worker, smtp, user_id: int, address: str) -> None:
    await ask(fake, user_id, f"/email {address}")
    [done] = await ask(fake, user_id, await mailed_code(worker, smtp, address))
    assert "is confirmed" in text_of(done)


async def test_a_customer_books_with_buttons_and_confirms_with_the_mailed_code(fake_bot_api, smtp_server, practice):
    await verified(fake_bot_api, practice, smtp_server, KIM, "kim@example.com")
    [services] = await ask(fake_bot_api, KIM, "/book")
    [where] = await click(fake_bot_api, KIM, services, "Massage")
    [whom] = await click(fake_bot_api, KIM, where, "Linz")
    [days] = await click(fake_bot_api, KIM, whom, "Lukas Huber")
    [times] = await click(fake_bot_api, KIM, days, "Tue 8 Dec")
    [held] = await click(fake_bot_api, KIM, times, "10:00")
    assert "I am holding Massage" in text_of(held) and "until 8:10 AM" in text_of(held)
    [booked] = await ask(fake_bot_api, KIM, await mailed_code(practice, smtp_server, "kim@example.com"))
    assert "Booked! Massage on Tuesday, December 8, 2026 at 10:00 AM with Lukas Huber" in text_of(booked)
    await practice.drain()
    confirmation = smtp_server.messages[-1]
    assert confirmation["Subject"].startswith("Booked: Massage")
    invite = confirmation.get_body(("calendar",))  # iMIP: an alternative of the text, not a file
    assert invite.get_param("method") == "REQUEST" and "METHOD:REQUEST" in invite.get_content()
    [note] = await fake_bot_api.wait_for("sendMessage", to_chat(LUKAS_CHAT))
    assert "Neue Online-Buchung" in note.params["text"]


async def test_a_slot_picked_from_an_old_keyboard_is_just_taken(fake_bot_api, smtp_server, practice):
    await verified(fake_bot_api, practice, smtp_server, KIM, "kim@example.com")
    await verified(fake_bot_api, practice, smtp_server, LEA, "lea@example.com")
    [old_keyboard] = await ask(fake_bot_api, LEA, "/book Massage at Linz with Lukas Huber on 2026-12-08")
    [held] = await ask(fake_bot_api, KIM, "/book Massage 2026-12-08 10:00 Lukas Huber")
    assert "I am holding" in text_of(held)
    [taken] = await click(fake_bot_api, LEA, old_keyboard, "10:00")
    assert "was just taken" in text_of(taken)
    assert "09:00" in labels(taken) and "10:00" not in labels(taken)
    [other] = await click(fake_bot_api, LEA, taken, "11:00")
    assert "I am holding Massage on Tuesday, December 8, 2026 at 11:00 AM" in text_of(other)
