"""The Telegram edge: updates become Inbounds for the desk, and its Replies become messages. Nothing else."""
from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
    User,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackContext,
    CallbackQueryHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)

from bot.settings import Settings
from bot.transport import PermanentFailure, TemporaryFailure
from handlers.context import Clock
from handlers.messages import Attachment, Choice, Inbound, Reply
from handlers.router import Desk
from storage.db import Store
from storage.models import Outbox, Removal
from templates import LANGUAGES, has_word, render, word

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # Bot API limit per message
MAX_CALLBACK_DATA = 64  # Bot API limit for callback_data, in bytes
MAX_DESCRIPTION = 256  # Bot API limit for a menu command's description
COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")  # what setMyCommands accepts
SHORT_LABEL = 14  # buttons sit two to a row when every label is at most this long
POOL_HEADROOM = 4  # connections beyond the update concurrency: error messages, outbox, menu

# (command, description) pairs for the menu, per language.
CommandsFor = Callable[[str], Iterable[tuple[str, str]]]


class BotContext(CallbackContext[ExtBot, dict, dict, dict]):
    """PTB's callback context, plus the desk the edge hands updates to."""

    @property
    def desk(self) -> Desk:
        """The router every update goes to."""
        return self.bot_data["desk"]

    @property
    def removals(self) -> "Removals":
        """Where messages that must go away are noted."""
        return self.bot_data["removals"]


# ---- building and running ------------------------------------------------------------------


def build_application(settings: Settings, desk: Desk, *, commands_for: CommandsFor | None = None) -> Application:
    """Build the PTB Application that carries updates to `desk` and its replies back."""
    app = application_builder(settings).build()
    app.bot_data["desk"] = desk
    app.bot_data["removals"] = Removals(desk.store, desk.clock)
    app.bot_data["typing_after"] = settings.telegram_typing_after_seconds
    app.bot_data["commands_for"] = commands_for or customer_menu(desk)
    app.add_handler(CallbackQueryHandler(on_click))
    # Only private chats: replies carry codes and bookings that a group must not read.
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE, on_message))
    app.add_error_handler(on_error)
    return app


def application_builder(settings: Settings) -> ApplicationBuilder:
    """Token, URLs, concurrency, connection pools and the rate limiter for outgoing calls, from the settings."""
    concurrency = max(1, settings.telegram_concurrency)
    builder = (
        Application.builder()
        .token(settings.telegram_token)
        .base_url(settings.telegram_api_url)
        .base_file_url(file_url(settings.telegram_api_url))
        .concurrent_updates(SenderOrder(concurrency))
        # Measured: concurrency above the pool size only queues for connections (PERFORMANCE.md).
        .connection_pool_size(concurrency + POOL_HEADROOM)
        .get_updates_connection_pool_size(1)
        .context_types(ContextTypes(context=BotContext))
        .post_init(publish_commands)
    )
    if settings.telegram_rate_per_second > 0:  # 0 turns the limiter off
        # One retry after a flood wait: the user would rather wait a second than get an error.
        builder = builder.rate_limiter(AIORateLimiter(overall_max_rate=settings.telegram_rate_per_second,
                                                      overall_time_period=1, max_retries=1))
    return builder


class SenderOrder(BaseUpdateProcessor):
    """One sender's updates one at a time, in the order they came; different senders in parallel,
    at most `max_concurrent_updates` at once.

    PTB takes one of the overall slots before it hands an update here. The first update of a sender
    keeps its slot and then runs that sender's later updates, one after the other, until none are left.
    A later update only joins its sender's line and gives its slot back at once: a chat that sends
    many messages holds one slot, not all of them. Lines are taken in the order the updates arrived,
    since PTB starts a task per update in that order and its slots are handed out first come, first served.
    """

    def __init__(self, max_concurrent_updates: int):
        super().__init__(max_concurrent_updates)
        self._lines: dict[Hashable, deque[Awaitable]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable) -> None:
        key = sender_key(update)
        if key is None:
            await coroutine
            return
        line = self._lines.get(key)
        if line is not None:  # this sender's updates are being run: this one comes after the others
            line.append(coroutine)
            return
        line = self._lines[key] = deque([coroutine])
        try:
            while line:
                try:
                    await line[0]
                except Exception:  # noqa: BLE001 - PTB's own error handling ran already; the next update still comes
                    log.exception("Telegram update of %s failed", key)
                finally:
                    line.popleft()
        finally:
            del self._lines[key]
            for left in line:  # only when cancelled: never awaited, closed without a warning
                close = getattr(left, "close", None)
                if close is not None:
                    close()

    async def initialize(self) -> None:
        """Nothing to set up: lines exist only while a sender has updates."""

    async def shutdown(self) -> None:
        """Nothing to free: PTB waits for the running updates before it shuts the processor down."""


def sender_key(update: object) -> Hashable | None:
    """Whose turn an update waits for: its user (messages and button presses alike), else its chat."""
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return ("user", update.effective_user.id)
    if update.effective_chat is not None:
        return ("chat", update.effective_chat.id)
    return None


def file_url(api_url: str) -> str:
    """The file download base that belongs to a Bot API base: …/bot → …/file/bot."""
    base = api_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("bot")] + "file/bot"
    return base + "/file/bot"


async def start_telegram(app: Application, settings: Settings) -> None:
    """Start taking updates: long polling, or a webhook server when FRONTDESK_WEBHOOK_URL is set."""
    await app.initialize()
    if app.post_init is not None:  # PTB calls post_init only from run_polling/run_webhook
        await app.post_init(app)
    allowed = [Update.MESSAGE, Update.CALLBACK_QUERY]
    if settings.webhook_url:
        # Always with a secret: without one, anyone who finds the URL could post updates as anyone.
        host, port = listen_address(settings.webhook_listen)
        await app.updater.start_webhook(
            listen=host, port=port, url_path=urlsplit(settings.webhook_url).path.lstrip("/"),
            webhook_url=settings.webhook_url, secret_token=settings.webhook_secret_token,
            allowed_updates=allowed,
        )
    else:
        await app.updater.start_polling(allowed_updates=allowed)
    await app.start()
    removals: Removals | None = app.bot_data.get("removals")  # an app not built here may have none
    if removals is not None:
        removals.start(app.bot)  # first of all, what a crash left waiting


async def stop_telegram(app: Application) -> None:
    """Stop taking updates, let running handlers finish, and close the connections."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    removals: Removals | None = app.bot_data.get("removals")
    if removals is not None:
        await removals.stop(app.bot)  # after the handlers finished, before the connections close
    await app.shutdown()


def listen_address(listen: str) -> tuple[str, int]:
    """'0.0.0.0:8443' or '[::]:8443' → (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


# ---- the menu ------------------------------------------------------------------------------


def customer_menu(desk: Desk) -> CommandsFor:
    """The menu a plain customer sees: the commands everyone and customers may use, with their help line."""
    def commands(lang: str) -> list[tuple[str, str]]:
        allowed = desk.allowed_commands({"everyone", "customer"})
        return [(c.word, word(lang, f"help.{c.word}")) for c in allowed if has_word(lang, f"help.{c.word}")]
    return commands


def bot_commands(pairs: Iterable[tuple[str, str]]) -> list[BotCommand]:
    """Keep what the Bot API accepts: lowercase names of 1–32 characters, descriptions of 1–256."""
    return [BotCommand(name, description[:MAX_DESCRIPTION]) for name, description in pairs
            if COMMAND_NAME.match(name) and description.strip()]


async def publish_commands(app: Application) -> None:
    """Set the command menu for German, English, and everyone else (the desk's default language)."""
    commands_for: CommandsFor = app.bot_data["commands_for"]
    default = app.bot_data["desk"].config.default_language
    for lang in (None, *LANGUAGES):
        commands = bot_commands(commands_for(lang or default))
        await tolerate(app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=lang),
                       f"setMyCommands ({lang or 'default'})")
    await publish_role_menus(app, default)


async def publish_role_menus(app: Application, default: str) -> None:
    """Give staff, admins, support and managers a menu of what their roles may use, in their own chat."""
    desk: Desk = app.bot_data["desk"]
    for address, roles, lang in await desk.chat_roles():
        chat_id = address.split(":", 1)[1]
        if not chat_id.lstrip("-").isdigit():
            continue
        lang = lang or default
        pairs = [(c.word, word(lang, f"help.{c.word}")) for c in desk.allowed_commands(roles)
                 if has_word(lang, f"help.{c.word}")]
        await tolerate(app.bot.set_my_commands(bot_commands(pairs), scope=BotCommandScopeChat(int(chat_id))),
                       f"setMyCommands (chat {chat_id})")


async def tolerate(call: Awaitable, what: str) -> None:
    """Await a call whose failure costs only a nicety (menu, typing, spinner): log a warning and go on."""
    try:
        await call
    except TelegramError as exc:
        log.warning("%s failed, carrying on: %s", what, exc)


# ---- updates in ----------------------------------------------------------------------------


async def typing_after(chat, delay: float) -> None:
    """Show "typing…" once `delay` seconds have passed."""
    await asyncio.sleep(delay)
    await tolerate(chat.send_action(ChatAction.TYPING), "sendChatAction")


async def on_message(update: Update, context: BotContext) -> None:
    """Turn a message into an Inbound and send back what the desk answers."""
    message = update.effective_message
    if message.from_user is None:
        return
    # "Typing…" only when the desk is slow: most answers come before a chat action would show, and
    # sending one for every message costs as much CPU as the answer itself.
    delay = context.bot_data.get("typing_after", 1.0)
    typing = asyncio.create_task(typing_after(message.chat, delay))
    try:
        replies = await context.desk.handle(await inbound_from_message(message))
    finally:
        if delay > 0:
            typing.cancel()
        else:
            await typing
    seconds = shown_once(replies)
    try:
        await send_replies(context.bot, message.chat_id, replies, context.removals)
    finally:
        # The question goes with the answer (it may hold a chosen password), even when sending failed.
        if seconds is not None:
            await context.removals.schedule(context.bot, message.chat_id, [message.message_id], seconds)


async def on_click(update: Update, context: BotContext) -> None:
    """Answer the button press (that stops the client's spinner), then route the picked choice."""
    query = update.callback_query
    await tolerate(query.answer(), "answerCallbackQuery")
    inbound = Inbound(
        channel="telegram", sender=f"telegram:{query.from_user.id}", received_at=datetime.now(timezone.utc),
        choice=query.data or "", language_hint=query.from_user.language_code,
        display_name=query.from_user.full_name,
    )
    replies = await context.desk.handle(inbound)
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    await send_replies(context.bot, chat_id, replies, context.removals)


async def inbound_from_message(message: Message) -> Inbound:
    """The channel-free form of a Telegram message: sender, text (or caption), documents, language."""
    user: User = message.from_user
    return Inbound(
        channel="telegram", sender=f"telegram:{user.id}", received_at=message.date,
        text=message.text or message.caption or "", attachments=await download_attachments(message),
        language_hint=user.language_code, display_name=user.full_name,
    )


async def download_attachments(message: Message) -> tuple[Attachment, ...]:
    """Fetch a sent document's bytes; a failed download leaves it out rather than failing the message."""
    document = message.document
    if document is None:
        return ()
    try:
        data = bytes(await (await document.get_file()).download_as_bytearray())
    except TelegramError as exc:  # e.g. "file is too big": the Bot API serves at most 20 MB
        log.warning("could not download %s from %s: %s", document.file_name, message.chat_id, exc)
        return ()
    return (Attachment(document.file_name or "document", document.mime_type or "application/octet-stream", data),)


async def on_error(update: object, context: BotContext) -> None:
    """Log the failure with its traceback, and tell the user in their language that it went wrong."""
    log.error("Telegram update %s failed", getattr(update, "update_id", "?"), exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    user = update.effective_user
    hint = ((user.language_code if user else None) or "")[:2]
    lang = hint if hint in LANGUAGES else context.desk.config.default_language
    await tolerate(context.bot.send_message(update.effective_chat.id, render("error", lang).text),
                   "sending the error message")


# ---- replies out ---------------------------------------------------------------------------


async def send_replies(bot: Bot, chat_id: int, replies: Iterable[Reply], removals: "Removals") -> None:
    """Send each reply to its recipient: this chat, or another Telegram chat the reply names."""
    for reply in replies:
        target = recipient_chat(reply.recipient, chat_id)
        if target is None:
            log.warning("a reply for %s cannot go out through Telegram; dropped", reply.recipient)
        elif target == chat_id:
            await send_reply(bot, target, reply, removals)
        else:  # the speaker's own action already happened; someone else's blocked chat must not undo that
            await tolerate(send_reply(bot, target, reply, removals), f"sending a reply to {reply.recipient}")


def recipient_chat(recipient: str | None, default: int) -> int | None:
    """The chat id of a `telegram:<id>` recipient, `default` for none, None for other channels."""
    if recipient is None:
        return default
    kind, _, ident = recipient.partition(":")
    if kind != "telegram" or not ident.lstrip("-").isdigit():
        return None
    return int(ident)


async def send_reply(bot: Bot, chat_id: int, reply: Reply, removals: "Removals | None" = None) -> None:
    """Send one reply as plain text (split at the limit), its buttons under the last part, then its files;
    a reply shown once is noted in `removals` (the outbox never sends one)."""
    if reply.ephemeral_seconds is not None and removals is None:
        raise ValueError("a reply shown once needs somewhere to note its removal")
    sent: list[Message] = []
    try:
        await send_parts(bot, chat_id, reply, sent)
    finally:
        # Also when a later part or file failed: what did go out must not stay visible for good.
        if reply.ephemeral_seconds is not None and sent:
            await removals.schedule(bot, chat_id, [m.message_id for m in sent], reply.ephemeral_seconds)


async def send_parts(bot: Bot, chat_id: int, reply: Reply, sent: list[Message]) -> None:
    """Send the reply's text parts and files, adding each message to `sent` as soon as it went out."""
    parts = split_text(reply.text)
    markup = keyboard(reply.choices)
    if markup is not None and not parts:
        log.warning("buttons without text cannot be sent to %s; dropped", chat_id)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        sent.append(await bot.send_message(chat_id, part, reply_markup=markup if last else None))
    for attachment in reply.attachments:
        sent.append(await bot.send_document(chat_id, InputFile(attachment.data, filename=attachment.name)))


def keyboard(choices: Iterable[Choice]) -> InlineKeyboardMarkup | None:
    """Choices as inline buttons: two to a row when all labels are short, else one per row."""
    buttons = [InlineKeyboardButton(c.label, callback_data=c.key) for c in choices if usable_key(c)]
    if not buttons:
        return None
    width = 2 if all(len(b.text) <= SHORT_LABEL for b in buttons) else 1
    return InlineKeyboardMarkup([buttons[i:i + width] for i in range(0, len(buttons), width)])


def usable_key(choice: Choice) -> bool:
    """A button needs the router's key, and callback_data holds at most 64 bytes."""
    if choice.key and len(choice.key.encode()) <= MAX_CALLBACK_DATA:
        return True
    log.warning("button %r has no usable key (%r); left out", choice.label, choice.key)
    return False


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts in."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut text into messages of at most `limit` characters, at a newline where possible, else at a space."""
    parts, rest = [], text.strip()
    while rest:
        end = fitting_prefix(rest, limit)
        if end < len(rest):
            end = cut_point(rest, end)
        parts.append(rest[:end].rstrip())
        rest = rest[end:].strip()
    return [p for p in parts if p]


def fitting_prefix(text: str, limit: int) -> int:
    """How many leading characters fit; counted in UTF-16 units, as Telegram does (an emoji counts two)."""
    end = min(len(text), limit)
    while (excess := utf16_len(text[:end]) - limit) > 0:
        end -= max(1, excess // 2)
    return end


def cut_point(text: str, end: int) -> int:
    """The best place to cut before `end`: the last newline, else the last space, in the second half."""
    for separator in ("\n", " "):
        cut = text.rfind(separator, 0, end + 1)
        if cut > end // 2:
            return cut
    return end


# ---- shown once: messages that go away -------------------------------------------------------

SWEEP_SECONDS = 5.0  # how often due removals are looked for (each one also has its own timer)


def shown_once(replies: Iterable[Reply]) -> int | None:
    """The shortest time any of the replies may stay visible, or None if all may stay."""
    times = [r.ephemeral_seconds for r in replies if r.ephemeral_seconds is not None]
    return min(times) if times else None


class Removals:
    """Messages that must go away after their time (credentials are shown once).

    Each is written to the database as soon as it was sent, and timed in memory for punctuality.
    A sweep every few seconds, and one at start, removes whatever is due, also what a crashed process
    left behind. A message is deleted first and its row after, so a crash in between only means a
    second, harmless try. Rows being removed are claimed in memory, so the timer and the sweep never
    both work on the same one.
    """

    def __init__(self, store: Store, clock: Clock):
        self.store = store
        self.clock = clock
        self._tasks: set[asyncio.Task] = set()  # a task nobody references can vanish
        self._sweeper: asyncio.Task | None = None
        self._removing: set[int] = set()  # row ids this process is removing right now

    async def schedule(self, bot: Bot, chat_id: int, message_ids: list[int], seconds: int) -> None:
        """Note the messages for removal after `seconds`, then time it."""
        remove_at = self.clock.now() + timedelta(seconds=seconds)
        async with self.store.uow() as uow:
            rows = [Removal(chat_id=chat_id, message_id=m, remove_at=remove_at) for m in message_ids]
            uow.session.add_all(rows)
            await uow.commit()
        task = asyncio.create_task(self._remove_after(bot, [row.id for row in rows], seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self, bot: Bot) -> None:
        """Sweep now and every SWEEP_SECONDS."""
        self._sweeper = asyncio.create_task(self._sweep_forever(bot))

    async def stop(self, bot: Bot) -> None:
        """Remove at once everything still waiting: a stopping bot must not leave credentials behind."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.sweep(bot, everything=True)
        except Exception:  # noqa: BLE001 - the database is gone: the rows stay, and go at the next start
            log.exception("could not remove the shown-once messages while stopping")

    async def sweep(self, bot: Bot, everything: bool = False) -> int:
        """Remove the messages whose time has come (all of them with `everything`); return how many."""
        query = select(Removal).order_by(Removal.id)
        if not everything:
            query = query.where(Removal.remove_at <= self.clock.now())
        async with self.store.uow() as uow:
            rows = list(await uow.session.scalars(query))
        await self._remove(bot, rows)
        return len(rows)

    async def _sweep_forever(self, bot: Bot) -> None:
        while True:
            try:
                await self.sweep(bot)
            except Exception:  # noqa: BLE001 - a database hiccup: the next sweep tries again
                log.exception("sweeping shown-once messages failed")
            await asyncio.sleep(SWEEP_SECONDS)

    async def _remove_after(self, bot: Bot, row_ids: list[int], seconds: int) -> None:
        await asyncio.sleep(seconds)
        async with self.store.uow() as uow:
            rows = list(await uow.session.scalars(select(Removal).where(Removal.id.in_(row_ids))))
        await self._remove(bot, rows)

    async def _remove(self, bot: Bot, rows: list[Removal]) -> None:
        """Remove the rows' messages, then the rows; rows another task is already removing are skipped."""
        # Claiming happens without an await in between, so two tasks cannot both claim a row.
        claimed = [row for row in rows if row.id not in self._removing]
        self._removing.update(row.id for row in claimed)
        try:
            due = await self._still_noted(claimed)  # another task may have finished them meanwhile
            for row in due:
                await remove_message(bot, row.chat_id, row.message_id)
            if due:
                async with self.store.uow() as uow:
                    await uow.session.execute(delete(Removal).where(Removal.id.in_([row.id for row in due])))
                    await uow.commit()
        finally:
            self._removing.difference_update(row.id for row in claimed)

    async def _still_noted(self, rows: list[Removal]) -> list[Removal]:
        """The rows that are still in the database: the rest were removed since they were read."""
        if not rows:
            return []
        async with self.store.uow() as uow:
            present = set(await uow.session.scalars(
                select(Removal.id).where(Removal.id.in_([row.id for row in rows]))))
        return [row for row in rows if row.id in present]


async def remove_message(bot: Bot, chat_id: int, message_id: int) -> None:
    """Delete a message; if Telegram refuses, blank the text instead (files and others' messages cannot be)."""
    try:
        await bot.delete_message(chat_id, message_id)
    except TelegramError as exc:
        log.warning("could not delete shown-once message %s in %s: %s", message_id, chat_id, exc)
        removed = " / ".join(render("accounts_removed", lang).text for lang in LANGUAGES)
        await tolerate(bot.edit_message_text(removed, chat_id=chat_id, message_id=message_id),
                       "blanking a shown-once message")


# ---- the outbox --------------------------------------------------------------------------------


class TelegramTransport:
    """Delivers outbox rows for `telegram:<id>` recipients through a bot (usually the running app's)."""

    def __init__(self, bot: Bot, *, owns_bot: bool = False):
        self.bot = bot
        self.owns_bot = owns_bot

    async def send(self, row: Outbox) -> None:
        """Send the row's text (split at the limit) and files, or raise Temporary/PermanentFailure."""
        chat_id = recipient_chat(row.recipient, 0)
        if not chat_id:
            raise PermanentFailure(f"not a Telegram chat: {row.recipient!r}")
        reply = Reply(row.text, attachments=[outbox_attachment(a) for a in row.attachments or []])
        try:
            await send_reply(self.bot, chat_id, reply)
        except TelegramError as exc:
            raise delivery_failure(exc) from exc

    async def close(self) -> None:
        """Release the bot's connections if this transport made the bot (the app closes its own)."""
        if self.owns_bot:
            await self.bot.shutdown()


def outbox_attachment(item: dict) -> Attachment:
    """An outbox attachment ({name, type, data as base64}) as the message model has it."""
    return Attachment(item["name"], item.get("type") or "application/octet-stream", base64.b64decode(item["data"]))


def delivery_failure(exc: TelegramError) -> Exception:
    """Map a Bot API error to what the outbox worker does next: give up, or try again later."""
    # BadRequest and ChatMigrated are NetworkError subclasses in PTB, so they are checked first.
    if isinstance(exc, (Forbidden, BadRequest, ChatMigrated)):
        return PermanentFailure(f"{exc.__class__.__name__}: {exc}")  # blocked, chat not found: resending won't help
    if isinstance(exc, InvalidToken):
        return TemporaryFailure(f"InvalidToken: {exc}")  # a configuration fault, not the message's: keep it
    return TemporaryFailure(f"{exc.__class__.__name__}: {exc}")  # RetryAfter, TimedOut, NetworkError, 5xx
