"""Bot API calls whose failure costs only a nicety (menu, typing, spinner), and the edge's logger."""
from __future__ import annotations

import logging
from collections.abc import Awaitable

from telegram.error import TelegramError

log = logging.getLogger(__package__)  # the whole Telegram edge logs as "bot.telegram"


async def tolerate(call: Awaitable, what: str) -> None:
    """Await a call whose failure costs only a nicety (menu, typing, spinner): log a warning and go on."""
    try:
        await call
    except TelegramError as exc:
        log.warning("%s failed, carrying on: %s", what, exc)
