"""Public holidays through the real PTB Application and the fake Bot API: the walk's day buttons skip them."""
from __future__ import annotations

from datetime import datetime, timezone

from bot.app import build_handlers
from handlers.router import Desk
from handlers.setup import apply_setup
from tests.e2e.test_telegram import start_bot  # noqa: F401 - a fixture
from tests.fakebotapi import Call, fake_bot_api  # noqa: F401
from tests.helpers import ask, buttons, click, practice_setup

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
KIM = 2101


def labels(call: Call) -> list[str]:
    return [b["text"] for row in buttons(call) for b in row]


async def test_the_walk_offers_no_button_for_the_holiday_in_linz(fake_bot_api, start_bot, store, config, clock):
    clock.current = MONDAY
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(holidays=True), clock.now())  # as shipped: holidays = "AT-4"
        await uow.commit()
    await start_bot(Desk(store, config, build_handlers(), clock))
    [services] = await ask(fake_bot_api, KIM, "/book")
    [where] = await click(fake_bot_api, KIM, services, "Massage")
    [whom] = await click(fake_bot_api, KIM, where, "Linz")
    [days] = await click(fake_bot_api, KIM, whom, "Lukas Huber")
    offered = labels(days)
    assert offered[:2] == ["Thu 10 Dec", "Fri 11 Dec"]  # Tuesday 8 December is Mariä Empfängnis
    assert "Tue 8 Dec" not in offered and "Fri 25 Dec" not in offered
    [refused] = await ask(fake_bot_api, KIM, "/book Massage 2026-12-08 10:00 Lukas Huber")
    assert "public holiday (Immaculate Conception)" in refused.params["text"]
    assert labels(refused)[0] == "Thu 10 Dec"
