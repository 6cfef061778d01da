"""The outbox's Telegram transport: rows for telegram:<id> recipients go out through a bot."""
from __future__ import annotations

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, TelegramError

from bot.telegram.replies import recipient_chat, send_reply
from bot.transport import PermanentFailure, TemporaryFailure, row_choices
from handlers.messages import Attachment, Reply
from storage.models import Outbox


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
        reply = Reply(row.text, choices=row_choices(row),
                      attachments=[Attachment.from_stored(a) for a in row.attachments or []])
        try:
            await send_reply(self.bot, chat_id, reply)
        except TelegramError as exc:
            raise delivery_failure(exc) from exc

    async def close(self) -> None:
        """Release the bot's connections if this transport made the bot (the app closes its own)."""
        if self.owns_bot:
            await self.bot.shutdown()


def delivery_failure(exc: TelegramError) -> Exception:
    """Map a Bot API error to what the outbox worker does next: give up, or try again later."""
    # BadRequest and ChatMigrated are NetworkError subclasses in PTB, so they are checked first.
    if isinstance(exc, (Forbidden, BadRequest, ChatMigrated)):
        return PermanentFailure(f"{exc.__class__.__name__}: {exc}")  # blocked, chat not found: resending won't help
    if isinstance(exc, InvalidToken):
        return TemporaryFailure(f"InvalidToken: {exc}")  # a configuration fault, not the message's: keep it
    return TemporaryFailure(f"{exc.__class__.__name__}: {exc}")  # RetryAfter, TimedOut, NetworkError, 5xx
