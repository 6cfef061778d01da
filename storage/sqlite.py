"""SQLite for the async engine, run on the event loop's own thread.

SQLAlchemy's `sqlite+aiosqlite` dialect expects an aiosqlite connection, which runs every sqlite3 call
on a thread of its own. A statement costs SQLite about a microsecond; the hand-over to that thread and
back through the event loop costs about a hundred, and SQLAlchemy's adapter makes up to four hand-overs
per statement. That was most of what a message cost us. This module gives the dialect a connection with
the same coroutine interface that calls sqlite3 directly.

What the thread was for is waiting on another writer's lock without blocking the loop. That waiting is
done here instead, asynchronously: SQLite's own busy wait is off (timeout 0), and a statement that meets
a locked database sleeps on the loop and tries again, with growing pauses, until the engine's timeout.
A statement that meets the lock has had no effect, so trying it again is what SQLite's busy handler does
too. Every transaction starts with BEGIN IMMEDIATE (see storage.db), so the lock is met there, before
anything was done. Everything else a statement does is short: the longest (a 10 000-row import) takes
milliseconds.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL

FIRST_PAUSE, LONGEST_PAUSE = 0.001, 0.05  # seconds between tries on a locked database
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON")


def unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


def unicode_upper(value):
    return value.upper() if isinstance(value, str) else value


def locked(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "database is locked" in str(error)


class LoopConnection:
    """The part of aiosqlite's connection SQLAlchemy's adapter uses, answering from sqlite3 directly."""

    def __init__(self, connection: sqlite3.Connection, timeout: float):
        self._connection: sqlite3.Connection | None = connection  # the adapter tests this before commit/rollback
        self.timeout = timeout

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def run(self, call: Callable[[], Any]) -> Any:
        """Run one sqlite3 call; while another writer holds the lock, wait on the loop and try again."""
        pause, give_up = FIRST_PAUSE, time.monotonic() + self.timeout
        while True:
            try:
                return call()
            except sqlite3.OperationalError as error:
                if not locked(error) or time.monotonic() + pause > give_up:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)

    def cursor(self) -> "LoopCursor":
        return LoopCursor(self)

    async def commit(self) -> None:
        await self.run(self._conn.commit)

    async def rollback(self) -> None:
        await self.run(self._conn.rollback)

    async def create_function(self, *args, **kwargs) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate); closing twice is harmless."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class LoopCursor:
    """The part of aiosqlite's cursor SQLAlchemy uses; each statement is read whole when it runs."""

    arraysize = 1

    def __init__(self, connection: LoopConnection):
        self._connection = connection
        self.description: Sequence | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list = []

    async def __aenter__(self) -> "LoopCursor":
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._rows = []

    async def execute(self, sql: str, parameters: Any = ()) -> "LoopCursor":
        await self._connection.run(lambda: self._run(sql, parameters, many=False))
        return self

    async def executemany(self, sql: str, parameters: Any) -> "LoopCursor":
        await self._connection.run(lambda: self._run(sql, parameters, many=True))
        return self

    def _run(self, sql: str, parameters: Any, many: bool) -> None:
        cursor = self._connection._conn.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
            self.description = cursor.description
            self._rows = cursor.fetchall() if cursor.description else []
            self.rowcount, self.lastrowid = cursor.rowcount, cursor.lastrowid
        finally:
            cursor.close()

    async def fetchall(self) -> list:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list:
        size = size or self.arraysize
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def close(self) -> None:
        self._rows = []


def async_creator(url: URL, timeout: float = 30) -> Callable[[], Awaitable[LoopConnection]]:
    """What `create_async_engine(async_creator=…)` calls for a new connection to the database in `url`.

    Opening a file (and switching it to WAL) may wait on other processes, so that part runs in a thread.
    Transactions are begun explicitly (sqlite3's own implicit BEGIN is off).
    """
    args, kwargs = SQLiteDialect_pysqlite().create_connect_args(url)
    kwargs.update(check_same_thread=False, isolation_level=None, timeout=timeout)

    def open_database() -> sqlite3.Connection:
        [database] = args
        connection = sqlite3.connect(database, **kwargs)
        for pragma in PRAGMAS:
            connection.execute(pragma)
        # SQLite's own lower() and upper() change only ASCII letters; these change "Ö" as PostgreSQL does,
        # so case-insensitive search finds "Özdemir" by "özdemir" on both.
        connection.create_function("lower", 1, unicode_lower, deterministic=True)
        connection.create_function("upper", 1, unicode_upper, deterministic=True)
        connection.execute("PRAGMA busy_timeout=0")  # from here on the loop waits, not SQLite
        return connection

    async def connect() -> LoopConnection:
        return LoopConnection(await asyncio.to_thread(open_database), timeout)

    return connect
