"""The same time booked through the page and through Telegram at the same moment: the database decides, and only
one of them holds it (the real PTB application over the fake Bot API, the page over HTTP; SQLite and PostgreSQL)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from bot.app import build_handlers
from bot.settings import Settings
from bot.telegram import build_application, start_telegram, stop_telegram
from handlers.appointments import live_condition
from handlers.router import Desk
from handlers.setup import apply_setup
from storage.models import Address, Appointment, Person
from tests.fakebotapi import fake_bot_api  # noqa: F401
from tests.helpers import ask, count, practice_setup
from tests.pageclient import PageVisitor, serve_page

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
TIMES = ("08:00", "09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00")


@pytest.fixture
async def both(fake_bot_api, store, config, clock):  # noqa: F811
    """The practice behind the Telegram application and the booking page at once."""
    clock.current = MONDAY
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    desk = Desk(store, config, build_handlers(), clock)
    settings = Settings(_env_file=None, telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        secret_key="x" * 32, telegram_rate_per_second=0, telegram_concurrency=8)
    app = build_application(settings, desk)
    await start_telegram(app, settings)
    server = await serve_page(desk)
    yield f"http://127.0.0.1:{server.port}"
    await server.close()
    await stop_telegram(app)


async def chat_customer(store, user_id: int, now: datetime) -> None:
    """A Telegram customer whose email address is proven already."""
    async with store.uow() as uow:
        person = Person(name=f"Chat {user_id}", created_at=now)
        uow.session.add(person)
        await uow.session.flush()
        uow.session.add_all([
            Address(address=f"telegram:{user_id}", kind="telegram", person_id=person.id, verified=True, created_at=now),
            Address(address=f"email:c{user_id}@example.com", kind="email", person_id=person.id, verified=True,
                    created_at=now)])
        await uow.commit()


async def later(seconds: float, step):
    """`step` a little later: each round starts the two at a different distance, so either may come first."""
    await asyncio.sleep(seconds)
    return await step


async def test_the_page_and_telegram_cannot_both_hold_one_time(both, fake_bot_api, store, clock):  # noqa: F811
    for n, minute in enumerate(TIMES):
        user = 3000 + n
        await chat_customer(store, user, clock.now())
        visitor = PageVisitor(both, clock, client=f"203.0.113.{n + 1}")
        choice = {"service": "Massage", "location": "Linz", "staff": "Lukas Huber", "day": "2026-12-08", "time": minute}
        form = (await visitor.form(**choice)).hidden
        clock.advance(seconds=5)
        page, [chat] = await asyncio.gather(
            visitor.post("/book/hold", {**form, "name": f"Web {n}", "email": f"w{n}@example.com"}),
            later(n % 4 * 0.01, ask(fake_bot_api, user, f"/book Massage 2026-12-08 {minute} Lukas Huber")))
        page_won, chat_won = page.status == 303, "I am holding" in chat.params["text"]
        assert page_won != chat_won, (minute, page.status, page.alerts, chat.params["text"])
        assert page_won or "was just taken" in page.alerts[0]
        assert chat_won or "was just taken" in chat.params["text"]
    assert await count(store, Appointment, live_condition(clock.now())) == len(TIMES)  # one per time, never two
