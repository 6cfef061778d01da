"""Credentials shown once, through the real PTB Application and the fake Bot API: the message goes away."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.settings import Settings
from bot.telegram import Removals, build_application, start_telegram, stop_telegram
from handlers import identity, members, welcome
from handlers.bootstrap import ensure_owners
from handlers.context import SystemClock
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import Address, Outbox, Removal
from tests.fakebotapi import Call, FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import to_chat

ADMIN, KIM = 1001, 2002


async def make_desk(store, config, show_seconds: int, file_seconds: int = 1) -> Desk:
    async with store.uow() as uow:
        await ensure_owners(uow, [f"telegram:{ADMIN}"], datetime.now(timezone.utc))
        await uow.commit()
    parts = (welcome.handlers(), identity.handlers(), members.account_handlers(show_seconds, file_seconds))
    return Desk(store, config, Handlers.combine(*parts))


@pytest.fixture
async def start_bot(fake_bot_api):
    """Start a real Application against the fake; every app is stopped after the test (once)."""
    apps = []

    async def start(desk: Desk):
        settings = Settings(_env_file=None, telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                            secret_key="x" * 32, telegram_rate_per_second=0, webhook_url="")
        app = build_application(settings, desk)
        apps.append(app)
        await start_telegram(app, settings)
        return app

    yield start
    for app in apps:
        if app.running:
            await stop_telegram(app)


async def send(fake: FakeBotApi, user_id: int, text: str, replies: int = 1) -> tuple[int, list[Call]]:
    """Send a message; returns its message id and the bot's next `replies` messages."""
    before = len(fake.calls_of("sendMessage", to_chat(user_id)))
    update = fake.push_message(user_id, text)
    calls = await fake.wait_for("sendMessage", to_chat(user_id), count=before + replies)
    return update["message"]["message_id"], calls[before:]


async def activated_member(fake: FakeBotApi, store) -> int:
    """Add Kim as the admin and let Kim accept the invitation in Telegram; returns Kim's member id."""
    await send(fake, ADMIN, "/member add Kim Novak kim@example.com phone=01 2345678")
    async with store.uow() as uow:
        text = await uow.session.scalar(select(Outbox.text).where(Outbox.recipient == "kim@example.com"))
        person_id = await uow.session.scalar(select(Address.person_id).where(
            Address.address == "email:kim@example.com"))
    payload = re.search(r"/start (acc-\S+)", text).group(1)
    _, [welcome_reply] = await send(fake, KIM, f"/start {payload}")
    assert "activated" in welcome_reply.params["text"]
    return person_id


def deleted(fake: FakeBotApi, chat_id: int, message_id: int):
    return lambda call: call.params.get("chat_id") == chat_id and call.params.get("message_id") == message_id


async def test_a_credential_message_is_deleted_after_its_time(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(await make_desk(sqlite_store, config, show_seconds=1))
    person_id = await activated_member(fake_bot_api, sqlite_store)
    asked, [shown] = await send(fake_bot_api, ADMIN, f"/credentials {person_id}")
    assert "disappears in 1 second," in shown.params["text"]
    assert not fake_bot_api.calls_of("deleteMessage")  # not at once: the admin has to read it
    message_id = shown.result["message_id"]
    await fake_bot_api.wait_for("deleteMessage", deleted(fake_bot_api, ADMIN, message_id), timeout=5)
    await fake_bot_api.wait_for("deleteMessage", deleted(fake_bot_api, ADMIN, asked), timeout=5)
    # ordinary replies stay
    kept = [c for c in fake_bot_api.calls_of("deleteMessage") if c.params["message_id"] != message_id]
    assert [c.params["message_id"] for c in kept] == [asked]


async def test_a_chosen_password_leaves_the_chat_with_the_answer(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(await make_desk(sqlite_store, config, show_seconds=1))
    person_id = await activated_member(fake_bot_api, sqlite_store)
    asked, [shown] = await send(fake_bot_api, ADMIN, f"/credentials {person_id} Blue!Harbour42")
    assert "Blue!Harbour42" in shown.params["text"]
    for message_id in (asked, shown.result["message_id"]):
        await fake_bot_api.wait_for("deleteMessage", deleted(fake_bot_api, ADMIN, message_id), timeout=5)


async def test_the_bulk_csv_file_is_removed_too(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(await make_desk(sqlite_store, config, show_seconds=1, file_seconds=1))
    await activated_member(fake_bot_api, sqlite_store)
    _, [summary, note] = await send(fake_bot_api, ADMIN, "/credentials all", replies=2)
    [document] = await fake_bot_api.wait_for("sendDocument", to_chat(ADMIN))
    assert document.params["document"].filename.endswith(".csv")
    for message in (note, document):
        await fake_bot_api.wait_for("deleteMessage", deleted(fake_bot_api, ADMIN, message.result["message_id"]),
                                    timeout=5)
    assert not fake_bot_api.calls_of("deleteMessage", deleted(fake_bot_api, ADMIN, summary.result["message_id"]))


async def test_when_telegram_refuses_the_delete_the_text_is_edited_away(fake_bot_api, start_bot, sqlite_store,
                                                                       config):
    await start_bot(await make_desk(sqlite_store, config, show_seconds=1))
    person_id = await activated_member(fake_bot_api, sqlite_store)
    fake_bot_api.fail_method("deleteMessage", 400, "Bad Request: message can't be deleted")
    _, [shown] = await send(fake_bot_api, ADMIN, f"/credentials {person_id}")
    message_id = shown.result["message_id"]
    [edit] = await fake_bot_api.wait_for("editMessageText", deleted(fake_bot_api, ADMIN, message_id), timeout=5)
    assert edit.params["text"] == "(entfernt) / (removed)"
    assert fake_bot_api.message(ADMIN, message_id)["text"] == "(entfernt) / (removed)"


async def test_stopping_the_bot_removes_what_still_waits(fake_bot_api, start_bot, sqlite_store, config):
    app = await start_bot(await make_desk(sqlite_store, config, show_seconds=3600))
    person_id = await activated_member(fake_bot_api, sqlite_store)
    _, [shown] = await send(fake_bot_api, ADMIN, f"/credentials {person_id}")
    assert not fake_bot_api.calls_of("deleteMessage")
    await stop_telegram(app)
    assert fake_bot_api.calls_of("deleteMessage", deleted(fake_bot_api, ADMIN, shown.result["message_id"]))


async def noted(store) -> set[tuple[int, int]]:
    """(chat, message) of every removal waiting in the database."""
    async with store.uow() as uow:
        return {(r.chat_id, r.message_id) for r in await uow.session.scalars(select(Removal))}


async def eventually(read, store, wanted, seconds: float = 5) -> bool:
    """Whether `read(store)` gives `wanted` within `seconds`."""
    for _ in range(int(seconds / 0.02)):
        if await read(store) == wanted:
            return True
        await asyncio.sleep(0.02)
    return await read(store) == wanted


async def test_what_must_go_away_is_noted_in_the_database_until_it_went(fake_bot_api, start_bot, store, config):
    app = await start_bot(await make_desk(store, config, show_seconds=3600))
    person_id = await activated_member(fake_bot_api, store)
    asked, [shown] = await send(fake_bot_api, ADMIN, f"/credentials {person_id}")
    # noted right after the sending, which the fake has already seen
    assert await eventually(noted, store, {(ADMIN, asked), (ADMIN, shown.result["message_id"])})
    await stop_telegram(app)
    assert await noted(store) == set()


async def test_a_removal_left_by_a_crashed_process_happens_when_the_bot_starts(fake_bot_api, start_bot, store,
                                                                                config):
    # What a process that died before its removals were due leaves behind: their rows.
    shown, later = 9001, 9002  # one is overdue by an hour, the other due in an hour
    now = datetime.now(timezone.utc)
    async with store.uow() as uow:
        uow.session.add_all([Removal(chat_id=ADMIN, message_id=shown, remove_at=now - timedelta(hours=1)),
                             Removal(chat_id=ADMIN, message_id=later, remove_at=now + timedelta(hours=1))])
        await uow.commit()
    await start_bot(await make_desk(store, config, show_seconds=60))
    await fake_bot_api.wait_for("deleteMessage", deleted(fake_bot_api, ADMIN, shown), timeout=5)
    assert await eventually(noted, store, {(ADMIN, later)})  # the row goes right after the message
    assert not fake_bot_api.calls_of("deleteMessage", deleted(fake_bot_api, ADMIN, later))


async def test_what_went_out_goes_away_even_when_the_file_could_not_be_sent(fake_bot_api, start_bot,
                                                                           sqlite_store, config):
    await start_bot(await make_desk(sqlite_store, config, show_seconds=1, file_seconds=1))
    await activated_member(fake_bot_api, sqlite_store)
    fake_bot_api.fail_method("sendDocument", 400, "Bad Request: file is too big")
    asked, [summary, note] = await send(fake_bot_api, ADMIN, "/credentials all", replies=2)
    # the note already went out before the file failed: it, and the question, must still go away
    for message_id in (note.result["message_id"], asked):
        await fake_bot_api.wait_for("deleteMessage", deleted(fake_bot_api, ADMIN, message_id), timeout=5)
    assert not fake_bot_api.calls_of("deleteMessage", deleted(fake_bot_api, ADMIN, summary.result["message_id"]))


class CountingBot:
    """Just enough of a Bot to see how often each message is deleted; each delete takes a moment."""

    def __init__(self):
        self.deleted: list[tuple[int, int]] = []
        self.edited: list[tuple[int, int]] = []

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        await asyncio.sleep(0.05)  # long enough for a second sweep to reach the same rows
        self.deleted.append((chat_id, message_id))
        return True

    async def edit_message_text(self, text: str, chat_id: int, message_id: int) -> bool:
        self.edited.append((chat_id, message_id))
        return True


async def test_the_timer_and_the_sweep_never_remove_the_same_message_twice(sqlite_store):
    removals = Removals(sqlite_store, SystemClock())
    bot = CountingBot()
    await removals.schedule(bot, ADMIN, [501, 502], 0)  # its timer fires at once
    await asyncio.gather(removals.sweep(bot), removals.sweep(bot))
    await asyncio.gather(*removals._tasks)
    assert sorted(bot.deleted) == [(ADMIN, 501), (ADMIN, 502)]
    assert bot.edited == []
    assert await noted(sqlite_store) == set()
