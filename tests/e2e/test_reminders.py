"""Reminders over the real protocols: through the PTB Application and the fake Bot API with their buttons
(cancelling by the button works), and by mail through a real SMTP server with the invitation as a
text/calendar part; a bad reminder in the setup file stops `frontdesk setup`."""
from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.app import build_handlers
from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from bot.settings import Settings
from bot.telegram import TelegramTransport, build_application, start_telegram, stop_telegram
from handlers.jobs.runner import JobRunner
from handlers.router import Desk
from handlers.setup import apply_setup
from storage.models import Address, Appointment, Person, SlotClaim
from tests.conftest import inbound
from tests.e2e.test_console import frontdesk
from tests.fakebotapi import FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import ask, buttons, click, practice_setup, rows, to_chat
from tests.smtp import SmtpServer, smtp_server  # noqa: F401

EXAMPLE = Path(__file__).parents[2] / "examples" / "practice.toml"
UTC = timezone.utc
MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 08:00 in Vienna
TEN_TUESDAY = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # 10:00 in Vienna
LUKAS_CHAT, KIM = 1002, 2101
DESK = "Physio am Park <desk@physio.example>"


@dataclass
class Practice:
    desk: Desk
    worker: OutboxWorker
    fake: FakeBotApi
    smtp: SmtpServer

    async def run_jobs_at(self, moment: datetime) -> int:
        self.desk.clock.current = moment  # type: ignore[attr-defined]  # the FakeClock
        done = await JobRunner(self.desk, self.desk.jobs).run_due()
        await self.worker.drain()
        return done

    async def code_for(self, address: str) -> str:
        await self.worker.drain()
        return [m for m in self.smtp.messages if m["To"] == address][-1]["Subject"].split()[0]


@pytest.fixture
async def practice(fake_bot_api, smtp_server, store, config, clock):
    """The demo practice behind a running Telegram Application, with an outbox worker for mail and chat."""
    clock.current = MONDAY
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    settings = Settings(_env_file=None, telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        secret_key="x" * 32, telegram_rate_per_second=0, telegram_concurrency=4)
    desk = Desk(store, config, build_handlers(), clock)
    app = build_application(settings, desk)
    await start_telegram(app, settings)
    transports = {"email": SmtpTransport(smtp_server.url, DESK), "telegram": TelegramTransport(app.bot)}
    worker = OutboxWorker(store, transports, clock=clock)
    yield Practice(desk, worker, fake_bot_api, smtp_server)
    await worker.close()
    await stop_telegram(app)


def text_of(call) -> str:
    return call.params["text"].replace("\u202f", " ")


async def test_the_reminder_reaches_the_telegram_chat_with_buttons_and_its_cancel_button_works(practice, store):
    fake = practice.fake
    await ask(fake, KIM, "/language en")
    await ask(fake, KIM, "/email kim@example.com")
    await ask(fake, KIM, await practice.code_for("kim@example.com"))
    await ask(fake, KIM, "/book Massage 2026-12-08 10:00 Lukas Huber")
    [booked] = await ask(fake, KIM, await practice.code_for("kim@example.com"))
    assert "Booked!" in text_of(booked)
    [appointment] = await rows(store, Appointment)
    before = len(fake.calls_of("sendMessage", to_chat(KIM)))
    assert await practice.run_jobs_at(TEN_TUESDAY - timedelta(hours=24)) == 1
    calls = await fake.wait_for("sendMessage", to_chat(KIM), count=before + 1)
    reminder = calls[-1]
    assert "Reminder of your appointment" in text_of(reminder) and "Tuesday, December 8, 2026" in text_of(reminder)
    labels = [b["text"] for row in buttons(reminder) for b in row]
    assert labels == [f"Cancel #{appointment.id}", f"Move #{appointment.id}"]
    staff_before = len(fake.calls_of("sendMessage", to_chat(LUKAS_CHAT)))
    [cancelled] = await click(fake, KIM, reminder, f"Cancel #{appointment.id}")
    assert "Cancelled" in text_of(cancelled)
    [row] = await rows(store, Appointment)
    assert row.status == "cancelled" and await rows(store, SlotClaim) == []
    await practice.worker.drain()
    notes = await fake.wait_for("sendMessage", to_chat(LUKAS_CHAT), count=staff_before + 1)
    assert "Storniert vom Kunden" in text_of(notes[-1])
    assert await practice.run_jobs_at(TEN_TUESDAY - timedelta(minutes=90)) == 1  # only Lukas's agenda now
    assert len(fake.calls_of("sendMessage", to_chat(KIM))) == before + 2  # the reminder and the answer


async def test_the_email_reminder_is_a_strict_mail_with_the_invitation_as_a_calendar_part(practice, store, clock):
    async with store.uow() as uow:
        lea = Person(name="Lea Lind", language="en", created_at=clock.now())
        uow.session.add(lea)
        await uow.session.flush()
        uow.session.add(Address(address="email:lea@example.com", kind="email", person_id=lea.id, verified=True,
                                created_at=clock.now()))
        await uow.commit()
    [booked] = await practice.desk.handle(inbound("telegram:1001", f"/appoint #{lea.id} Massage 2026-12-08 10:00 Lukas",
                                                  clock=clock))
    assert booked.template == "calendar_appointed"
    [appointment] = await rows(store, Appointment)
    await practice.worker.drain()
    sent = len(practice.smtp.messages)
    assert await practice.run_jobs_at(TEN_TUESDAY - timedelta(hours=24)) == 1
    [raw] = practice.smtp.handler.raw[sent:]
    mail = email.message_from_bytes(raw, policy=email.policy.strict)
    assert mail["To"] == "lea@example.com" and mail["Subject"].startswith("Reminder: Massage")
    assert mail["Auto-Submitted"] == "auto-generated"
    text = mail.get_body(("plain",)).get_content()
    assert f"cancel {appointment.id}" in text and f"move {appointment.id} YYYY-MM-DD HH:MM" in text
    calendar = mail.get_body(("calendar",))
    assert calendar is not None and calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REQUEST"
    invitation = calendar.get_content()
    assert "METHOD:REQUEST" in invitation and f"UID:appointment-{appointment.id}@" in invitation
    assert "DTSTART:20261208T090000Z" in invitation


def test_a_bad_reminder_or_agenda_stops_frontdesk_setup_naming_file_line_key_and_value(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    env = {"FRONTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db"}
    for old, new, key, value in [('reminders = ["24h", "90m"]', 'reminders = ["24h", "3x"]', "reminders", "3x"),
                                 ('reminders = ["24h", "90m"]', 'reminders = ["0h"]', "reminders", "0h"),
                                 ('agenda = "07:30"', 'agenda = "25:00"', "agenda", "25:00")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text.replace(old, new), encoding="utf-8")
        line = next(n for n, content in enumerate(bad.read_text().splitlines(), 1) if content.startswith(key))
        result = frontdesk(tmp_path, "setup", str(bad), env=env)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"bad.toml:{line}:" in result.stderr and f' {key}: "{value}"' in result.stderr, result.stderr
