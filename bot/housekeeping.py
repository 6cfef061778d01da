"""Housekeeping: sweeping what grew old (what is due at a time, such as an invitation running out, is a job:
handlers/jobs).

- buttons older than CHOICE_DAYS are forgotten (pressing one then says it expired);
- conversations past their time are dropped (a new message would drop them anyway);
- handled Telegram updates older than UPDATE_DAYS are dropped (Telegram redelivers for at most a day).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult, delete

from bot.periodic import repeat
from handlers.context import Clock
from storage.db import Store
from storage.models import Choice, Conversation, TelegramUpdate

log = logging.getLogger(__name__)

CHOICE_DAYS = 30
UPDATE_DAYS = 2
INTERVAL_SECONDS = 300.0


@dataclass(frozen=True)
class Swept:
    choices: int
    conversations: int
    updates: int = 0


class Housekeeping:
    def __init__(self, store: Store, clock: Clock, choice_age: timedelta = timedelta(days=CHOICE_DAYS)):
        self.store = store
        self.clock = clock
        self.choice_age = choice_age

    async def run_once(self) -> Swept:
        """One round, in one short transaction."""
        now = self.clock.now()
        async with self.store.uow() as uow:
            # a DELETE's result is a cursor's, which has rowcount
            choices = cast(CursorResult, await uow.session.execute(
                delete(Choice).where(Choice.created_at < now - self.choice_age)))
            conversations = cast(CursorResult, await uow.session.execute(
                delete(Conversation).where(Conversation.expires_at <= now)))
            updates = cast(CursorResult, await uow.session.execute(
                delete(TelegramUpdate).where(TelegramUpdate.handled_at < now - timedelta(days=UPDATE_DAYS))))
            await uow.commit()
        swept = Swept(choices.rowcount, conversations.rowcount, updates.rowcount)
        if swept.choices or swept.conversations or swept.updates:
            log.info("housekeeping: %d old button(s), %d conversation(s) and %d handled update(s) dropped",
                     swept.choices, swept.conversations, swept.updates)
        return swept

    async def run(self, stop: asyncio.Event, interval: float = INTERVAL_SECONDS) -> None:
        """A round now and every `interval` seconds until `stop`."""
        await repeat(self.run_once, stop, interval, "housekeeping round")
