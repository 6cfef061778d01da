"""A writer that waits for another one waits on the event loop: everything else keeps running.

On SQLite the statements run on the loop's own thread (storage.sqlite), so this is where a blocking
wait would show; on PostgreSQL asyncpg waits on the loop anyway, and the same test holds.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from storage.db import Store
from storage.models import MailboxState
from storage.sqlite import async_creator


class Ticker:
    """Counts how often the loop gets round to it: a blocked loop does not tick."""

    def __init__(self):
        self.ticks = 0
        self.task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    def stop(self) -> None:
        self.task.cancel()


async def test_a_second_writer_waits_on_the_loop_and_then_writes(store: Store):
    async with store.uow() as uow:
        uow.session.add(MailboxState(mailbox="INBOX", uidvalidity=1, last_uid=0))
        await uow.commit()
    first_wrote, first_may_commit = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with store.uow() as uow:
            await uow.session.execute(update(MailboxState).values(last_uid=MailboxState.last_uid + 1))
            first_wrote.set()
            await first_may_commit.wait()  # holds its transaction open across an await
            await uow.commit()

    async def second() -> None:
        await first_wrote.wait()
        async with store.uow() as uow:
            await uow.session.execute(update(MailboxState).values(last_uid=MailboxState.last_uid + 10))
            await uow.commit()

    ticker = Ticker()
    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_wrote.wait()
    await asyncio.sleep(0.2)
    ticks_while_waiting = ticker.ticks
    assert not tasks[1].done(), "the second writer must wait for the first"
    first_may_commit.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    ticker.stop()

    assert ticks_while_waiting >= 10, "the loop was blocked while the second writer waited"
    async with store.uow() as uow:
        assert await uow.session.scalar(select(MailboxState.last_uid)) == 11


async def test_sqlite_gives_up_after_its_timeout_with_the_usual_error(sqlite_store: Store, tmp_path):
    """SQLite only: the timeout of its lock wait. Another process (here a plain sqlite3 connection)
    holds the write lock; our BEGIN tries again on the loop until the timeout, then says "locked"."""
    url = make_url(str(sqlite_store.engine.url))
    holder = sqlite3.connect(url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    connection = await async_creator(url, timeout=0.3)()
    ticker = Ticker()
    started = time.monotonic()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await connection.cursor().execute("BEGIN IMMEDIATE")
        waited = time.monotonic() - started
        assert 0.2 <= waited < 2
        assert ticker.ticks >= 10, "the loop was blocked during the wait"

        holder.execute("COMMIT")  # once the other writer is done, the same connection goes ahead
        cursor = connection.cursor()
        await cursor.execute("BEGIN IMMEDIATE")
        await cursor.execute("SELECT count(*) FROM mailbox_state")
        assert await cursor.fetchall() == [(0,)]
        await connection.rollback()
    finally:
        ticker.stop()
        holder.close()
        await connection.close()


async def test_sqlite_waits_for_a_writer_in_another_engine(sqlite_store: Store):
    """SQLite only: two engines on one file (as two processes would be) take turns without an error."""
    other = Store.from_url(str(sqlite_store.engine.url))
    try:
        async with sqlite_store.uow() as uow:
            uow.session.add(MailboxState(mailbox="INBOX", uidvalidity=1, last_uid=0))
            await uow.commit()

        async def bump(target: Store, times: int) -> None:
            for _ in range(times):
                async with target.uow() as uow:
                    await uow.session.execute(update(MailboxState).values(last_uid=MailboxState.last_uid + 1))
                    await asyncio.sleep(0)  # let the other engine try its BEGIN while this one holds the lock
                    await uow.commit()

        await asyncio.wait_for(asyncio.gather(bump(sqlite_store, 30), bump(other, 30)), 30)
        async with sqlite_store.uow() as uow:
            assert await uow.session.scalar(select(MailboxState.last_uid)) == 60
    finally:
        await other.dispose()
