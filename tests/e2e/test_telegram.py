"""The real PTB Application against a fake Bot API over HTTP: commands, buttons, menus, errors, webhook, outbox."""
from __future__ import annotations

import base64
import logging
import re
from datetime import datetime, timezone

import aiohttp
import pytest
from sqlalchemy import select
from telegram import Bot

from bot.settings import Settings
from bot.telegram import TelegramTransport, build_application, start_telegram, stop_telegram
from bot.telegram.app import file_url
from bot.telegram.replies import keyboard, split_text, utf16_len
from bot.transport import PermanentFailure, TemporaryFailure
from handlers import identity, welcome
from handlers.messages import Choice, Reply
from handlers.registry import Command, Handlers
from handlers.router import Desk
from storage.models import Address, Outbox
from templates import render
from tests.fakebotapi import Call, FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import ask, buttons, click, to_chat
from tests.smtp import free_port

LONG_LINE = "x" * 99  # with its newline, 100 characters


# ---- extra commands a test desk may carry --------------------------------------------------


async def long_text(ctx, args: str) -> list[Reply]:
    """Answer with 60 lines of 100 characters: more than one Telegram message holds."""
    return [Reply("\n".join(f"{i:02d}{LONG_LINE[2:]}" for i in range(60)))]


async def explode(ctx, args: str) -> list[Reply]:
    raise RuntimeError("boom")


async def echo_files(ctx, args: str) -> list[Reply]:
    """Name each attached file with its size, and send the files back."""
    attachments = list(ctx.inbound.attachments)
    names = ", ".join(f"{a.name}:{len(a.data)}:{a.mime}" for a in attachments) or "-"
    return [Reply(f"files {names}", attachments=attachments)]


async def tell_other(ctx, args: str) -> list[Reply]:
    return [Reply("for you", recipient="telegram:4242"), Reply("done")]


EXTRA = Handlers(commands=[
    Command("long", long_text), Command("boom", explode), Command("files", echo_files), Command("tell", tell_other),
])


def make_desk(store, config, *extra: Handlers) -> Desk:
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), *extra))


class BrokenDesk(Desk):
    """A desk whose failure escapes: the edge's own error handler must catch it."""

    async def handle(self, inbound):
        raise RuntimeError("desk unreachable")


def make_settings(fake: FakeBotApi, **overrides) -> Settings:
    values = dict(telegram_token="123:TEST", telegram_api_url=f"{fake.url}/bot", secret_key="x" * 32,
                  telegram_rate_per_second=0, telegram_concurrency=4, webhook_url="", webhook_secret="",
                  telegram_typing_after_seconds=0)
    return Settings(_env_file=None, **{**values, **overrides})


@pytest.fixture
async def start_bot(fake_bot_api):
    """Start a real Application against the fake; every started app is stopped after the test."""
    apps = []

    async def start(desk: Desk, **overrides):
        settings = make_settings(fake_bot_api, **overrides)
        app = build_application(settings, desk)
        apps.append(app)
        await start_telegram(app, settings)
        return app

    yield start
    for app in reversed(apps):
        await stop_telegram(app)


# ---- conversations through the real Application --------------------------------------------


async def test_start_greets_with_an_inline_keyboard(fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config))
    [reply] = await ask(fake_bot_api, 1001, "/start")
    assert "Welcome" in reply.params["text"]
    assert "parse_mode" not in reply.params
    labels = [b["text"] for row in buttons(reply) for b in row]
    assert labels == ["Help", "Verify my email", "Language"]
    assert all(len(b["callback_data"].encode()) <= 64 for row in buttons(reply) for b in row)
    assert fake_bot_api.calls_of("sendChatAction", lambda c: c.params == {"chat_id": 1001, "action": "typing"})


async def test_help_lists_the_commands_a_customer_may_use(fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config))
    [reply] = await ask(fake_bot_api, 1002, "/help")
    for command in ("/start", "/help", "/language", "/email", "/confirm"):
        assert command in reply.params["text"]


async def test_clicking_language_then_deutsch_switches_to_german(fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config))
    [welcome_message] = await ask(fake_bot_api, 1003, "/start")
    [question] = await click(fake_bot_api, 1003, welcome_message, "Language")
    assert "Which language" in question.params["text"]
    assert [[b["text"] for b in row] for row in buttons(question)] == [["Deutsch", "English"]]
    [answer] = await click(fake_bot_api, 1003, question, "Deutsch")
    assert answer.params["text"] == render("language_set", "de").text
    assert len(fake_bot_api.calls_of("answerCallbackQuery")) == 2
    [help_reply] = await ask(fake_bot_api, 1003, "/help")
    assert "Für alle" in help_reply.params["text"]


async def test_start_with_an_unknown_payload_still_greets(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config))
    [reply] = await ask(fake_bot_api, 1004, "/start somepayload")
    assert "link is not valid" in reply.params["text"]
    assert "Welcome" in reply.params["text"]


async def test_an_unknown_command_gets_a_hint(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config))
    [reply] = await ask(fake_bot_api, 1005, "/frobnicate now")
    assert reply.params["text"] == render("unknown", "en", word="frobnicate").text


async def test_a_german_client_is_answered_in_german(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config))
    [reply] = await ask(fake_bot_api, 1006, "/start", lang="de")
    assert "Willkommen" in reply.params["text"]


async def test_a_long_reply_is_split_into_messages_within_the_limit(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config, EXTRA))
    parts = await ask(fake_bot_api, 1007, "/long", replies=2)
    texts = [c.params["text"] for c in parts]
    assert all(len(t) <= 4096 for t in texts)
    assert "\n".join(texts) == (await long_text(None, ""))[0].text
    assert texts[0].endswith(LONG_LINE[2:])  # cut at a line end, not inside a line


async def test_a_document_reaches_the_handler_and_files_go_back_as_documents(
        fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config, EXTRA))
    fake_bot_api.push_document(1008, "members.csv", b"name;email\nKim;k@example.com\n", caption="/files")
    [reply] = await fake_bot_api.wait_for("sendMessage", to_chat(1008))
    assert reply.params["text"] == "files members.csv:29:text/csv"
    [document] = await fake_bot_api.wait_for("sendDocument", to_chat(1008))
    assert document.params["document"].filename == "members.csv"
    assert document.params["document"].data == b"name;email\nKim;k@example.com\n"


async def test_a_reply_addressed_to_another_chat_goes_there(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config, EXTRA))
    [done] = await ask(fake_bot_api, 1009, "/tell")
    assert done.params["text"] == "done"
    assert fake_bot_api.sent_texts(4242) == ["for you"]


# ---- menus, tolerance and errors -------------------------------------------------------------


async def test_the_menu_lists_customer_commands_per_language(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config, EXTRA))
    menus = {c.params.get("language_code"): c.params for c in fake_bot_api.calls_of("setMyCommands")}
    assert set(menus) == {None, "de", "en"}
    names = [c["command"] for c in menus["en"]["commands"]]
    assert names == ["start", "help", "language", "email", "confirm"]  # no help text, no menu entry: long, boom…
    assert menus["de"]["commands"][1] == {"command": "help", "description": "diese Liste"}
    assert menus["en"]["scope"] == {"type": "default"}


async def test_an_owner_gets_a_menu_of_owner_words_in_their_own_chat(fake_bot_api, start_bot, store, config):
    from handlers import admin
    from handlers.bootstrap import ensure_owners

    async with store.uow() as uow:
        await ensure_owners(uow, ["telegram:1001"], datetime.now(timezone.utc))
        await uow.commit()
    await start_bot(make_desk(store, config, admin.handlers()))
    [menu] = await fake_bot_api.wait_for("setMyCommands", lambda c: c.params.get("scope", {}).get("type") == "chat")
    assert menu.params["scope"] == {"type": "chat", "chat_id": 1001}
    assert "audit" in [c["command"] for c in menu.params["commands"]]
    customer = fake_bot_api.calls_of("setMyCommands", lambda c: c.params.get("scope", {}).get("type") == "default")
    assert customer and all("audit" not in [c["command"] for c in call.params["commands"]] for call in customer)


async def test_a_fast_answer_shows_no_typing(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config), telegram_typing_after_seconds=5)
    [reply] = await ask(fake_bot_api, 1011, "/start")
    assert "Welcome" in reply.params["text"]
    assert not fake_bot_api.calls_of("sendChatAction")


async def test_a_refused_menu_is_a_warning_and_the_bot_keeps_answering(
        fake_bot_api, start_bot, sqlite_store, config, caplog):
    fake_bot_api.fail_method("setMyCommands", 400, "Bad Request: method not allowed")
    fake_bot_api.fail_method("sendChatAction", 400, "Bad Request: not allowed here")
    with caplog.at_level(logging.WARNING, logger="bot.telegram"):
        await start_bot(make_desk(sqlite_store, config))
        [reply] = await ask(fake_bot_api, 1010, "/start")
    assert "Welcome" in reply.params["text"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("setMyCommands" in w and "method not allowed" in w.lower() for w in warnings)
    assert any("sendChatAction" in w for w in warnings)


async def test_a_failing_handler_gets_the_friendly_error(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config, EXTRA))
    [reply] = await ask(fake_bot_api, 1011, "/boom")
    assert reply.params["text"] == render("error", "en").text


async def test_a_failure_in_the_edge_is_logged_with_its_traceback_and_the_user_told(
        fake_bot_api, start_bot, sqlite_store, config, caplog):
    await start_bot(BrokenDesk(sqlite_store, config, Handlers()))
    [reply] = await ask(fake_bot_api, 1012, "/start", lang="de")
    assert reply.params["text"] == render("error", "de").text
    [record] = [r for r in caplog.records if r.name == "bot.telegram" and r.levelno == logging.ERROR]
    assert "desk unreachable" in str(record.exc_info[1])


async def test_a_rate_limited_bot_still_answers(fake_bot_api, start_bot, sqlite_store, config):
    await start_bot(make_desk(sqlite_store, config), telegram_rate_per_second=50)
    [reply] = await ask(fake_bot_api, 1013, "/start")
    assert "Welcome" in reply.params["text"]


# ---- webhook mode --------------------------------------------------------------------------


async def test_webhook_takes_updates_with_the_secret_and_refuses_others(
        fake_bot_api, start_bot, sqlite_store, config):
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/hook"
    await start_bot(make_desk(sqlite_store, config), webhook_url=url, webhook_listen=f"127.0.0.1:{port}",
                    webhook_secret="s3cret-token")
    [registered] = fake_bot_api.calls_of("setWebhook")
    assert registered.params["url"] == url and registered.params["secret_token"] == "s3cret-token"
    async with aiohttp.ClientSession() as http:
        for headers in ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {}):
            update = fake_bot_api.message_update(2001, "/start")
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 403
        update = fake_bot_api.message_update(2002, "/start")
        async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}) as resp:
            assert resp.status == 200
    [reply] = await fake_bot_api.wait_for("sendMessage", to_chat(2002))
    assert "Welcome" in reply.params["text"]
    assert fake_bot_api.sent_texts(2001) == []
    assert not fake_bot_api.calls_of("getUpdates")


async def test_webhook_without_a_configured_secret_still_requires_one(fake_bot_api, start_bot, sqlite_store, config):
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/hook"
    await start_bot(make_desk(sqlite_store, config), webhook_url=url, webhook_listen=f"127.0.0.1:{port}",
                    webhook_secret="")
    [registered] = fake_bot_api.calls_of("setWebhook")
    token = registered.params.get("secret_token") or ""
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,256}", token)  # registered with Telegram, unguessable
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": ""}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            forged = fake_bot_api.message_update(2101, "/start")
            async with http.post(url, json=forged, headers=headers) as response:
                assert response.status == 403, headers
        genuine = fake_bot_api.message_update(2102, "/start")
        async with http.post(url, json=genuine, headers={"X-Telegram-Bot-Api-Secret-Token": token}) as response:
            assert response.status == 200
    [reply] = await fake_bot_api.wait_for("sendMessage", to_chat(2102))
    assert "Welcome" in reply.params["text"]
    assert fake_bot_api.sent_texts(2101) == []
    async with sqlite_store.uow() as uow:  # the forged sender left no trace: no person, no address
        known = set(await uow.session.scalars(select(Address.address)))
    assert "telegram:2102" in known and "telegram:2101" not in known


def test_the_derived_webhook_secret_is_the_same_for_every_process_sharing_the_key():
    one, other = (Settings(_env_file=None, secret_key="k" * 32) for _ in range(2))
    assert one.webhook_secret_token == other.webhook_secret_token  # a second process does not lock out the first
    assert one.webhook_secret_token != Settings(_env_file=None, secret_key="j" * 32).webhook_secret_token
    assert "k" * 16 not in one.webhook_secret_token
    assert Settings(_env_file=None, secret_key="k" * 32, webhook_secret="chosen-1").webhook_secret_token == "chosen-1"
    keyless = Settings(_env_file=None, secret_key="")
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,256}", keyless.webhook_secret_token)
    assert keyless.webhook_secret_token == keyless.webhook_secret_token  # one per process, kept


# ---- the outbox transport ------------------------------------------------------------------


def outbox_row(recipient: str, text: str, attachments: list | None = None) -> Outbox:
    now = datetime.now(timezone.utc)
    return Outbox(channel="telegram", recipient=recipient, subject=None, text=text, headers={},
                  attachments=attachments or [], status="pending", attempts=0, next_attempt_at=now, created_at=now)


@pytest.fixture
async def transport(fake_bot_api):
    bot = Bot("123:TEST", base_url=f"{fake_bot_api.url}/bot", base_file_url=file_url(f"{fake_bot_api.url}/bot"))
    await bot.initialize()
    transport = TelegramTransport(bot, owns_bot=True)
    yield transport
    await transport.close()


async def test_transport_sends_an_outbox_row_to_the_chat(fake_bot_api, transport):
    ics = {"name": "visit.ics", "type": "text/calendar", "data": base64.b64encode(b"BEGIN:VCALENDAR").decode()}
    await transport.send(outbox_row("telegram:3001", "Your appointment moved.", [ics]))
    assert fake_bot_api.sent_texts(3001) == ["Your appointment moved."]
    [document] = fake_bot_api.calls_of("sendDocument", to_chat(3001))
    assert document.params["document"].data == b"BEGIN:VCALENDAR"


async def test_transport_splits_a_long_row(fake_bot_api, transport):
    await transport.send(outbox_row("telegram:3002", "word " * 2000))
    parts = fake_bot_api.sent_texts(3002)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == ("word " * 2000).strip()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # raised inside PTB's RetryAfter
@pytest.mark.parametrize(("code", "description", "failure"), [
    (403, "Forbidden: bot was blocked by the user", PermanentFailure),
    (400, "Bad Request: chat not found", PermanentFailure),
    (429, "Too Many Requests: retry after 3", TemporaryFailure),
    (502, "Bad Gateway", TemporaryFailure),
])
async def test_transport_maps_bot_api_errors(fake_bot_api, transport, code, description, failure):
    fake_bot_api.fail_method("sendMessage", code, description, retry_after=3 if code == 429 else None)
    with pytest.raises(failure):
        await transport.send(outbox_row("telegram:3003", "Hello"))


async def test_transport_refuses_a_recipient_that_is_not_a_chat(transport):
    with pytest.raises(PermanentFailure):
        await transport.send(outbox_row("email:kim@example.com", "Hello"))


# ---- pure pieces -----------------------------------------------------------------------------


def test_split_text_keeps_a_short_text_whole():
    assert split_text("  Hello\nthere  ") == ["Hello\nthere"]
    assert split_text("   ") == []


def test_split_text_prefers_newlines_then_spaces_then_a_hard_cut():
    lines = "\n".join(["a" * 60] * 3)
    assert split_text(lines, limit=130) == ["\n".join(["a" * 60] * 2), "a" * 60]
    assert split_text("aaa bbb ccc", limit=8) == ["aaa bbb", "ccc"]
    assert split_text("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_text_counts_emoji_as_telegram_does():
    parts = split_text("😀" * 3000)
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parts) == "😀" * 3000


def test_keyboard_puts_short_labels_two_to_a_row_and_long_ones_alone():
    short = keyboard([Choice("Deutsch", "language de", "k1"), Choice("English", "language en", "k2"),
                      Choice("Later", "x", "k3")])
    assert [[b.text for b in row] for row in short.inline_keyboard] == [["Deutsch", "English"], ["Later"]]
    long = keyboard([Choice("Verify my email", "email", "k1"), Choice("Help", "help", "k2")])
    assert [[b.callback_data for b in row] for row in long.inline_keyboard] == [["k1"], ["k2"]]


def test_keyboard_leaves_out_buttons_without_a_usable_key():
    assert keyboard([Choice("No key", "help")]) is None
    assert keyboard([Choice("Too long", "help", "k" * 65)]) is None


def test_file_url_follows_the_api_url():
    assert file_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_url("http://127.0.0.1:8081/bot/") == "http://127.0.0.1:8081/file/bot"

