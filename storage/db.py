"""The async engine, the unit of work and schema migrations."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import TracebackType

from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.sqlite import async_creator

MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str, **kwargs) -> AsyncEngine:
    """Create the engine; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # `?search_path=NAME` picks a schema; asyncpg takes it as a server setting.
        search_path = parsed.query.get("search_path")
        if search_path:
            parsed = parsed.difference_update_query(["search_path"])
            kwargs.setdefault("connect_args", {}).setdefault("server_settings", {})["search_path"] = search_path
        engine = create_async_engine(parsed, **kwargs)
        _ping_after_idle(engine)
        return engine
    engine = create_async_engine(parsed, async_creator=async_creator(parsed, timeout=30), **kwargs)
    _sqlite_immediate_transactions(engine)
    return engine


IDLE_BEFORE_PING = 10.0  # seconds a pooled connection may rest and still be trusted without a round trip


def _ping_after_idle(engine: AsyncEngine) -> None:
    # pool_pre_ping costs three round trips (BEGIN, ";", ROLLBACK) on every checkout, as many as the rest of
    # a short message. A connection the server closed (a restart, pg_terminate_backend) is known to asyncpg
    # already and is replaced at no cost; one that went silent (a dropped network) can only be found by
    # asking, so only a connection that rested longer than IDLE_BEFORE_PING is pinged first.
    @event.listens_for(engine.sync_engine, "checkin")
    def on_checkin(dbapi_connection, record) -> None:
        record.info["rested_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_connection, record, proxy) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise exc.DisconnectionError("the server closed the connection")
        rested_since = record.info.get("rested_since")  # none yet: a new connection
        if rested_since is not None and time.monotonic() - rested_since > IDLE_BEFORE_PING:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as error:
                raise exc.DisconnectionError("the connection did not answer a ping") from error


def _sqlite_immediate_transactions(engine: AsyncEngine) -> None:
    # The sqlite3 driver would open a transaction only at the first write, so a read-then-write
    # would check outside the transaction. Taking the write lock at BEGIN closes that gap.
    # (WAL, foreign keys and the asynchronous busy wait are set up by storage.sqlite.)
    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection) -> None:
        # Straight to the driver's cursor: SQLAlchemy's statement machinery around a fixed BEGIN costs
        # more than SQLite takes to run it, on every unit of work.
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class UnitOfWork:
    """One transaction: `async with uow:` rolls back unless `await uow.commit()` was called."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions
        self.session: AsyncSession

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def __aenter__(self) -> "UnitOfWork":
        self.session = self._sessions()
        return self

    async def __aexit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # close() rolls back whatever was not committed, and leaves loaded rows readable.
        await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()

    async def flush(self) -> None:
        await self.session.flush()


class Store:
    """The engine plus a factory of units of work."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.sessions = session_factory(engine)

    @classmethod
    def from_url(cls, url: str, **kwargs) -> "Store":
        return cls(create_engine(url, **kwargs))

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Bring the schema up to date (Alembic, head)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _upgrade(connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run(coro):
    return asyncio.run(coro)
