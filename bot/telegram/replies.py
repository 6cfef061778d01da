"""Replies out: each reply to its chat as plain text split at Telegram's limit, buttons, then files."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile

from bot.telegram.calls import tolerate
from bot.telegram.removals import Removals
from handlers.messages import Attachment, Choice, Reply

log = logging.getLogger(__package__)  # the whole Telegram edge logs as "bot.telegram"

MAX_TEXT = 4096  # Bot API limit per message
MAX_CAPTION = 1024  # Bot API limit for a photo's caption
MAX_PHOTO_BYTES, MAX_PHOTO_SIDES = 10 * 1024 * 1024, 10_000  # Bot API limits for sendPhoto
MAX_CALLBACK_DATA = 64  # Bot API limit for callback_data, in bytes
SHORT_LABEL = 14  # buttons sit two to a row when every label is at most this long


async def send_replies(bot: Bot, chat_id: int, replies: Iterable[Reply], removals: Removals) -> None:
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


async def send_reply(bot: Bot, chat_id: int, reply: Reply, removals: Removals | None = None) -> None:
    """Send one reply as plain text (split at the limit), its buttons under the last part, then its files;
    a reply shown once is noted in `removals` (the outbox never sends one)."""
    if reply.ephemeral_seconds is not None and removals is None:
        raise ValueError("a reply shown once needs somewhere to note its removal")
    sent: list[int] = []
    try:
        await send_parts(bot, chat_id, reply, sent)
    finally:
        # Also when a later part or file failed: what did go out must not stay visible for good.
        if reply.ephemeral_seconds is not None and sent and removals is not None:  # None refused above
            await removals.schedule(bot, chat_id, sent, reply.ephemeral_seconds)


async def send_parts(bot: Bot, chat_id: int, reply: Reply, sent: list[int]) -> None:
    """Send the reply's text parts and files, adding each message's id to `sent` as soon as it went out.

    A picture goes first, as a photo, with the text as its caption when that fits; the other files follow
    the text as documents."""
    parts = split_text(reply.text)
    rows = keyboard_rows(reply.choices)
    picture = next((a for a in reply.attachments if is_photo(a)), None)
    if picture is not None and await send_picture(bot, chat_id, picture, parts, rows, sent):
        parts, rows = [], None  # the text went as the caption, with the buttons
    if rows is not None and not parts:
        log.warning("buttons without text cannot be sent to %s; dropped", chat_id)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        sent.append(await post_text(bot, chat_id, part, rows if last else None))
    for attachment in reply.attachments:
        if attachment is not picture:
            message = await bot.send_document(chat_id, InputFile(attachment.data, filename=attachment.name))
            sent.append(message.message_id)


async def post_text(bot: Bot, chat_id: int, text: str, rows: list[list[dict]] | None) -> int:
    """sendMessage, and the id of the message sent.

    The same request Bot.send_message makes (through the bot's own _post: its defaults, rate limiter and
    errors), without building the keyboard as PTB objects and without parsing the returned Message back:
    those cost about as much CPU as the request itself, and only the id is kept."""
    data: dict[str, object] = {"chat_id": chat_id, "text": text}
    if rows is not None:
        data["reply_markup"] = {"inline_keyboard": rows}
    result = await bot._post("sendMessage", data)  # noqa: SLF001 - Bot.send_message's own path, minus the parse
    return int(result["message_id"])


async def send_picture(bot: Bot, chat_id: int, picture: Attachment, parts: list[str],
                       rows: list[list[dict]] | None, sent: list[int]) -> bool:
    """Send a picture as a photo, the text as its caption if it is one part that fits; True if it was."""
    caption = parts[0] if len(parts) == 1 and utf16_len(parts[0]) <= MAX_CAPTION else None
    markup = as_markup(rows) if caption and rows else None
    message = await bot.send_photo(chat_id, InputFile(picture.data, filename=picture.name), caption=caption,
                                   reply_markup=markup)
    sent.append(message.message_id)
    return caption is not None


def is_photo(attachment: Attachment) -> bool:
    """A PNG Telegram takes as a photo: at most 10 MB, width + height at most 10 000 pixels, neither side
    more than 20 times the other. Any other picture goes as a document."""
    size = png_size(attachment.data) if attachment.mime == "image/png" else None
    if size is None or len(attachment.data) > MAX_PHOTO_BYTES:
        return False
    width, height = size
    return 0 < width + height <= MAX_PHOTO_SIDES and max(width, height) <= 20 * min(width, height)


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header chunk; None if the bytes are no PNG."""
    if len(data) < 24 or not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def keyboard(choices: Iterable[Choice]) -> InlineKeyboardMarkup | None:
    """Choices as inline buttons: two to a row when all labels are short, else one per row."""
    rows = keyboard_rows(choices)
    return None if rows is None else as_markup(rows)


def as_markup(rows: list[list[dict]]) -> InlineKeyboardMarkup:
    """Keyboard rows as PTB's objects, for the calls that take only those (sendPhoto)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in rows])


def keyboard_rows(choices: Iterable[Choice]) -> list[list[dict]] | None:
    """The rows of `keyboard` as the Bot API's JSON has them (what sendMessage takes)."""
    buttons = [{"text": c.label, "callback_data": c.key} for c in choices if usable_key(c)]
    if not buttons:
        return None
    width = 2 if all(len(b["text"]) <= SHORT_LABEL for b in buttons) else 1
    return [buttons[i:i + width] for i in range(0, len(buttons), width)]


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
