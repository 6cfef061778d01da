"""Email verification end to end: the real Telegram Application, a fake Bot API and a real SMTP server."""
from __future__ import annotations

from sqlalchemy import select

from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from storage.models import Address
from tests.e2e.test_telegram import make_desk, start_bot  # noqa: F401 - start_bot is a fixture
from tests.fakebotapi import fake_bot_api  # noqa: F401
from tests.helpers import ask, click
from tests.smtp import smtp_server  # noqa: F401


async def test_a_telegram_user_verifies_an_email_with_the_code_from_the_mail(
        fake_bot_api, start_bot, smtp_server, store, config):
    desk = make_desk(store, config)
    await start_bot(desk)
    worker = OutboxWorker(store, {"email": SmtpTransport(smtp_server.url, "Physio <desk@example.com>")})
    welcome = (await ask(fake_bot_api, 501, "/start"))[0]
    asked = (await click(fake_bot_api, 501, welcome, "Verify my email"))[0]
    assert "email address" in asked.params["text"]
    sent = (await ask(fake_bot_api, 501, "Kim.Ott@Example.org"))[0]
    assert "kim.ott@example.org" in sent.params["text"]

    assert await worker.drain() == 1
    mail = smtp_server.messages[-1]
    code = mail["Subject"].split()[0]
    assert len(code) == 6 and code in mail.get_body(("plain",)).get_content()
    assert mail["To"] == "kim.ott@example.org" and mail["Auto-Submitted"] == "auto-generated"

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert "not right" in (await ask(fake_bot_api, 501, wrong))[0].params["text"]
    assert "is confirmed" in (await ask(fake_bot_api, 501, code))[0].params["text"]
    async with store.uow() as uow:
        row = await uow.session.scalar(select(Address).where(Address.address == "email:kim.ott@example.org"))
        assert row is not None and row.verified
    await worker.close()


async def test_six_wrong_codes_in_telegram_void_the_code(fake_bot_api, start_bot, smtp_server, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config))
    await ask(fake_bot_api, 502, "/email ana@example.org")
    worker = OutboxWorker(sqlite_store, {"email": SmtpTransport(smtp_server.url, "desk@example.com")})
    await worker.drain()
    code = smtp_server.messages[-1]["Subject"].split()[0]
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    answers = [(await ask(fake_bot_api, 502, f"/confirm {wrong}"))[0].params["text"] for _ in range(6)]
    assert "last try" in answers[4] and "no code waiting" in answers[5]
    assert "no code waiting" in (await ask(fake_bot_api, 502, code))[0].params["text"]
    await worker.close()
