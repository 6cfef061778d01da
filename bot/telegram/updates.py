"""Updates in: messages and button presses become Inbounds for the desk, one sender at a time (SenderOrder)."""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Hashable
from datetime import datetime, timezone
from typing import TypeVar

from telegram import CallbackQuery, Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import BaseUpdateProcessor, CallbackContext, ExtBot

from bot.telegram.calls import tolerate
from bot.telegram.removals import Removals, shown_once
from bot.telegram.replies import send_replies
from handlers.messages import Attachment, Inbound
from handlers.router import Desk
from templates import LANGUAGES, render

T = TypeVar("T")
log = logging.getLogger(__package__)  # the whole Telegram edge logs as "bot.telegram"


class BotContext(CallbackContext[ExtBot, dict, dict, dict]):
    """PTB's callback context, plus the desk the edge hands updates to."""

    @property
    def desk(self) -> Desk:
        """The router every update goes to."""
        return self.bot_data["desk"]

    @property
    def removals(self) -> Removals:
        """Where messages that must go away are noted."""
        return self.bot_data["removals"]


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


async def typing_after(chat, delay: float) -> None:
    """Show "typing…" once `delay` seconds have passed."""
    await asyncio.sleep(delay)
    await tolerate(chat.send_action(ChatAction.TYPING), "sendChatAction")


async def while_typing(chat, delay: float, answer: Awaitable[T]) -> T:
    """Await the desk's answer, showing "typing…" in the chat once `delay` seconds have passed.

    Only when the desk is slow: most answers come before a chat action would show, and sending one for
    every message costs as much CPU as the answer itself."""
    typing = asyncio.create_task(typing_after(chat, delay))
    try:
        return await answer
    finally:
        if delay > 0:
            typing.cancel()
        else:
            await typing


async def on_message(update: Update, context: BotContext) -> None:
    """Turn a message into an Inbound and send back what the desk answers."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    replies = await while_typing(message.chat, context.bot_data.get("typing_after", 1.0),
                                 context.desk.handle(await inbound_from_message(message)))
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
    if query is None:
        return
    await tolerate(query.answer(), "answerCallbackQuery")
    replies = await context.desk.handle(inbound_from_click(query))
    await send_replies(context.bot, click_chat(query), replies, context.removals)


def inbound_from_click(query: CallbackQuery) -> Inbound:
    """The channel-free form of a button press: the sender and the key of the choice picked."""
    return Inbound(
        channel="telegram", sender=f"telegram:{query.from_user.id}", received_at=datetime.now(timezone.utc),
        choice=query.data or "", language_hint=query.from_user.language_code,
        display_name=query.from_user.full_name,
    )


def click_chat(query: CallbackQuery) -> int:
    """Where a button press is answered: the chat of the message that carried the button."""
    return query.message.chat.id if query.message is not None else query.from_user.id


async def inbound_from_message(message: Message) -> Inbound:
    """The channel-free form of a Telegram message: sender, text (or caption), documents, language."""
    user = message.from_user
    if user is None:  # on_message passes only messages with a sender
        raise ValueError("a message without a sender")
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
