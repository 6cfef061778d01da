"""Shown once: messages that must go away after their time (credentials), kept in the database."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select
from telegram import Bot
from telegram.error import TelegramError

from bot.telegram.calls import tolerate
from handlers.context import Clock
from handlers.messages import Reply
from storage.db import Store
from storage.models import Removal
from templates import LANGUAGES, render

log = logging.getLogger(__package__)  # the whole Telegram edge logs as "bot.telegram"

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
