"""Webhook mode through the real Application and the fake Bot API: what the route takes and refuses, a
redelivered update answered once, a button press, and answers queued in the outbox and sent at once."""
from __future__ import annotations

from datetime import datetime, timezone

import aiohttp
from sqlalchemy import func, select, text

from bot.telegram.inbox import MAX_CLAIMS
from storage.models import Outbox, TelegramUpdate
from tests.e2e.test_telegram import make_desk, start_bot  # noqa: F401 - start_bot is a fixture
from tests.fakebotapi import FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import button_data, to_chat
from tests.smtp import free_port
from tests.workers import wait_for

SECRET = "hook-secret"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


async def webhook(start_bot, store, config) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/hook"
    await start_bot(make_desk(store, config), webhook_url=url, webhook_listen=f"127.0.0.1:{port}",
                    webhook_secret=SECRET)
    return url


async def post(url: str, update: dict | bytes, headers: dict | None = None) -> int:
    async with aiohttp.ClientSession() as http:
        kwargs = {"data": update} if isinstance(update, bytes) else {"json": update}
        async with http.post(url, headers=HEADERS if headers is None else headers, **kwargs) as response:
            return response.status


async def test_a_redelivered_update_is_answered_once_and_before_the_next(fake_bot_api, start_bot, store, config):
    url = await webhook(start_bot, store, config)
    first = fake_bot_api.message_update(4101, "/help")
    assert await post(url, first) == 200
    assert await post(url, first) == 200  # Telegram did not hear the first 200 and posts it again
    assert await post(url, fake_bot_api.message_update(4101, "/language de")) == 200
    assert await post(url, first) == 200  # and once more, after it was answered
    calls = await fake_bot_api.wait_for("sendMessage", to_chat(4101), count=2)
    assert await post(url, fake_bot_api.message_update(4101, "/language en")) == 200
    calls = await fake_bot_api.wait_for("sendMessage", to_chat(4101), count=3)
    texts = [c.params["text"] for c in calls]
    assert len(texts) == 3 and "/help" in texts[0] and "/help" not in texts[1] + texts[2]
    await wait_for(lambda: all_sent(store, 3), "the outbox to record the answers as sent", seconds=10)
    async with store.uow() as uow:
        stored = (await uow.session.execute(select(TelegramUpdate.update_id, TelegramUpdate.body))).all()
        queued = (await uow.session.execute(select(Outbox.recipient, Outbox.status))).all()
    assert len(stored) == 3 and all(body == {} for _, body in stored)  # answered: no text kept
    assert queued == [("telegram:4101", "sent")] * 3


async def all_sent(store, count: int) -> bool:
    async with store.uow() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.status == "sent")) == count


async def test_a_button_press_through_the_webhook_is_answered_and_routed(fake_bot_api, start_bot, store, config):
    url = await webhook(start_bot, store, config)
    assert await post(url, fake_bot_api.message_update(4201, "/start")) == 200
    [welcome] = await fake_bot_api.wait_for("sendMessage", to_chat(4201))
    press = fake_bot_api.push_callback(4201, button_data(welcome, "Help"), welcome.result["message_id"])
    assert await post(url, press) == 200
    [_, help_text] = await fake_bot_api.wait_for("sendMessage", to_chat(4201), count=2)
    assert "/help" in help_text.params["text"]
    assert fake_bot_api.calls_of("answerCallbackQuery")


async def test_the_webhook_refuses_what_is_no_genuine_update(fake_bot_api: FakeBotApi, start_bot, sqlite_store, config):
    url = await webhook(start_bot, sqlite_store, config)
    update = fake_bot_api.message_update(4301, "/start")
    assert await post(url, update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}) == 403
    assert await post(url, b"{not json") == 400
    assert await post(url, {"message": update["message"]}) == 400  # no update_id
    assert await post(url, [update]) == 400
    assert await post(url, b"{" + b" " * (2 * 1024 * 1024) + b"}") == 413
    async with sqlite_store.uow() as uow:
        assert list(await uow.session.scalars(select(TelegramUpdate.update_id))) == []
    assert fake_bot_api.sent_texts(4301) == []


async def test_an_update_that_cannot_be_stored_is_not_acknowledged(fake_bot_api, start_bot, sqlite_store, config):
    url = await webhook(start_bot, sqlite_store, config)
    async with sqlite_store.uow() as uow:  # the database refuses the update (as a full or broken one would)
        await uow.session.execute(text("ALTER TABLE telegram_update RENAME TO telegram_update_away"))
        await uow.commit()
    assert await post(url, fake_bot_api.message_update(4401, "/start")) == 500  # Telegram posts it again


async def test_an_update_whose_claims_keep_running_out_is_dropped_and_its_sender_goes_on(
        fake_bot_api, start_bot, store, config):
    poison = fake_bot_api.message_update(4501, "/help")
    async with store.uow() as uow:  # five workers took it and died
        uow.session.add(TelegramUpdate(update_id=poison["update_id"], sender="telegram:4501", body=poison,
                                       received_at=datetime.now(timezone.utc), claims=MAX_CLAIMS))
        await uow.commit()
    url = await webhook(start_bot, store, config)
    assert await post(url, fake_bot_api.message_update(4501, "/language en")) == 200
    [answer] = await fake_bot_api.wait_for("sendMessage", to_chat(4501))
    assert "/help" not in answer.params["text"]
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(TelegramUpdate).where(
            TelegramUpdate.handled_at.is_(None))) == 0
