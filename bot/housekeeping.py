"""Housekeeping: what happens because time passed, not because someone wrote.

- invitations that ran out make their members failed (the admin's lists say why);
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
from handlers.members.membership import expire_invitations
from storage.db import Store
from storage.models import Choice, Conversation

log = logging.getLogger(__name__)

CHOICE_DAYS = 30
INTERVAL_SECONDS = 300.0


@dataclass(frozen=True)
class Swept:
    invitations: int
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
            invitations = await expire_invitations(uow, now)
            # a DELETE's result is a cursor's, which has rowcount
            choices = cast(CursorResult, await uow.session.execute(
                delete(Choice).where(Choice.created_at < now - self.choice_age)))
            conversations = cast(CursorResult, await uow.session.execute(
                delete(Conversation).where(Conversation.expires_at <= now)))
            await uow.commit()
        swept = Swept(invitations, choices.rowcount, conversations.rowcount)
        if any((swept.invitations, swept.choices, swept.conversations)):
            log.info("housekeeping: %d invitation(s) expired, %d old button(s) and %d conversation(s) dropped",
                     swept.invitations, swept.choices, swept.conversations)
        return swept

    async def run(self, stop: asyncio.Event, interval: float = INTERVAL_SECONDS) -> None:
        """A round now and every `interval` seconds until `stop`."""
        await repeat(self.run_once, stop, interval, "housekeeping round")
