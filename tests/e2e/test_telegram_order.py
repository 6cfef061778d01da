"""The real PTB Application against the fake Bot API: one chat's updates in order, other chats alongside."""
from __future__ import annotations

import asyncio

from handlers import identity, welcome
from handlers.registry import Handlers
from handlers.router import Desk
from templates import render
from tests.e2e.test_telegram import make_desk, start_bot  # noqa: F401 - start_bot is a fixture
from tests.fakebotapi import FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import to_chat


def push_batch(fake: FakeBotApi, *messages: tuple[int, str]) -> list[int]:
    """Queue several messages with no await in between, so one getUpdates returns them all; their ids."""
    return [fake.push_update(fake.message_update(user_id, text))["update_id"] for user_id, text in messages]


def in_one_batch(fake: FakeBotApi, update_ids: list[int]) -> bool:
    """Whether one getUpdates answer carried all these updates."""
    return any({u["update_id"] for u in call.result or []} >= set(update_ids)
               for call in fake.calls_of("getUpdates"))


class HeldDesk(Desk):
    """A desk that keeps "/hold" waiting, before its unit of work, until the test lets it go; it counts
    how many messages it was handling at once."""

    def __init__(self, store, config):
        super().__init__(store, config, Handlers.combine(welcome.handlers(), identity.handlers()))
        self.release = asyncio.Event()
        self.inside = self.most_inside = 0
        self.held = 0

    async def handle(self, inbound):
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            if inbound.text == "/hold":
                self.held += 1
                await self.release.wait()
            return await super().handle(inbound)
        finally:
            self.inside -= 1


async def test_one_chats_batch_is_answered_in_order_and_in_the_language_asked_for(
        fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config), telegram_concurrency=8)
    sent = push_batch(fake_bot_api, (3001, "/language en"), (3001, "/help"), (3001, "/language de"), (3001, "/help"))
    calls = await fake_bot_api.wait_for("sendMessage", to_chat(3001), count=4)
    texts = [call.params["text"] for call in calls]
    assert in_one_batch(fake_bot_api, sent)
    assert len(texts) == 4
    assert texts[0] == render("language_set", "en").text
    assert "For everyone" in texts[1] and "Für alle" not in texts[1]
    assert texts[2] == render("language_set", "de").text
    assert "Für alle" in texts[3] and "For everyone" not in texts[3]


async def test_a_slow_chat_holds_up_only_its_own_later_messages(fake_bot_api, start_bot, store, config):
    desk = HeldDesk(store, config)
    await start_bot(desk, telegram_concurrency=8)
    try:
        sent = push_batch(fake_bot_api, (3101, "/hold"), (3101, "/help"), (3102, "/help"))
        # The other chat is answered while the first one's "/hold" still waits: chats run side by side.
        [other] = await fake_bot_api.wait_for("sendMessage", to_chat(3102), timeout=20)
        waiting = fake_bot_api.calls_of("sendMessage", to_chat(3101))  # its "/help" waits behind "/hold"
    finally:
        desk.release.set()  # also when the wait failed: a held update would keep the application from stopping
    assert "For everyone" in other.params["text"]
    assert in_one_batch(fake_bot_api, sent)
    assert waiting == []
    first, second = await fake_bot_api.wait_for("sendMessage", to_chat(3101), count=2, timeout=20)
    assert '"hold"' in first.params["text"]  # the unknown word's hint
    assert "For everyone" in second.params["text"]


async def test_one_slot_serves_many_chats_in_turn(fake_bot_api, start_bot, store, config):
    """With FRONTDESK_TELEGRAM_CONCURRENCY=1 every chat is still answered, each in its own order."""
    await start_bot(make_desk(store, config), telegram_concurrency=1)
    push_batch(fake_bot_api, (3201, "/language de"), (3202, "/language en"), (3201, "/help"), (3202, "/help"))
    german = await fake_bot_api.wait_for("sendMessage", to_chat(3201), count=2)
    english = await fake_bot_api.wait_for("sendMessage", to_chat(3202), count=2)
    assert german[0].params["text"] == render("language_set", "de").text and "Für alle" in german[1].params["text"]
    assert english[0].params["text"] == render("language_set", "en").text
    assert "For everyone" in english[1].params["text"]


async def test_a_chat_with_many_waiting_messages_takes_one_slot_of_the_bound(fake_bot_api, start_bot, store, config):
    """FRONTDESK_TELEGRAM_CONCURRENCY=2: two held chats fill both slots, a third chat waits for one; a chat's
    messages queued behind its held one take no slot."""
    desk = HeldDesk(store, config)
    await start_bot(desk, telegram_concurrency=2)
    try:
        push_batch(fake_bot_api, (3301, "/hold"), *[(3301, "/help")] * 3, (3302, "/help"))
        [other] = await fake_bot_api.wait_for("sendMessage", to_chat(3302), timeout=20)
        push_batch(fake_bot_api, (3303, "/hold"), (3304, "/help"))
        for _ in range(2000):  # until both held messages are in (20 s at most)
            if desk.held == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # time enough for a third message to start, if the bound let it
        most, waiting = desk.most_inside, fake_bot_api.calls_of("sendMessage", to_chat(3304))
    finally:
        desk.release.set()
    assert "For everyone" in other.params["text"]
    assert most == 2 and waiting == []
    await fake_bot_api.wait_for("sendMessage", to_chat(3301), count=4, timeout=20)
    await fake_bot_api.wait_for("sendMessage", to_chat(3304), timeout=20)
    assert desk.most_inside == 2
