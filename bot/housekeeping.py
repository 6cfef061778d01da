"""Housekeeping: sweeping what grew old (what is due at a time, such as an invitation running out, is a job:
handlers/jobs).

- buttons older than CHOICE_DAYS are forgotten (pressing one then says it expired);
- conversations past their time are dropped (a new message would drop them anyway).
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
from storage.models import Choice, Conversation

log = logging.getLogger(__name__)

CHOICE_DAYS = 30
INTERVAL_SECONDS = 300.0


@dataclass(frozen=True)
class Swept:
    choices: int
    conversations: int


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
            await uow.commit()
        swept = Swept(choices.rowcount, conversations.rowcount)
        if swept.choices or swept.conversations:
            log.info("housekeeping: %d old button(s) and %d conversation(s) dropped", swept.choices,
                     swept.conversations)
        return swept

    async def run(self, stop: asyncio.Event, interval: float = INTERVAL_SECONDS) -> None:
        """A round now and every `interval` seconds until `stop`."""
        await repeat(self.run_once, stop, interval, "housekeeping round")
