"""Shared fixtures: a migrated store on SQLite and on PostgreSQL, a movable clock, a desk."""
from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import make_url

from handlers.context import DeskConfig
from handlers.messages import Inbound
from storage.db import Store

PG_URL = os.environ.get("FRONTDESK_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SECRET = b"test-secret-key-0123456789abcdef"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None):
        self.current = start or datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)


_PG_SKIP: list[str | None] = []


async def postgres_skip_reason() -> str | None:
    """None if PostgreSQL answers, else the reason it does not (asked once per run)."""
    if not _PG_SKIP:
        import asyncpg

        url = make_url(PG_URL)
        try:
            conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                         database=url.database, timeout=3)
            await conn.close()
            _PG_SKIP.append(None)
        except Exception as exc:  # noqa: BLE001 - any failure means: skip, and say why
            _PG_SKIP.append(f"no PostgreSQL at {url.host}:{url.port or 5432} ({exc.__class__.__name__}: {exc})")
    return _PG_SKIP[0]


async def make_store(kind: str, tmp_path) -> tuple[Store, str, object]:
    """A migrated store on a fresh SQLite file or a fresh PostgreSQL schema; returns (store, url, cleanup)."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/frontdesk.db"
        store = Store.from_url(url)
        await store.migrate()

        async def cleanup():
            await store.dispose()

        return store, url, cleanup
    reason = await postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    import asyncpg

    schema = f"t_{secrets.token_hex(6)}"
    parsed = make_url(PG_URL)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                 database=parsed.database)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()
    url = PG_URL + ("&" if "?" in PG_URL else "?") + f"search_path={schema}"
    store = Store.from_url(url)
    await store.migrate()

    async def cleanup():
        await store.dispose()
        conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                     database=parsed.database)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()

    return store, url, cleanup


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_and_url(request, tmp_path):
    store, url, cleanup = await make_store(request.param, tmp_path)
    yield store, url
    await cleanup()


@pytest.fixture
async def store(store_and_url) -> Store:
    return store_and_url[0]


@pytest.fixture
async def sqlite_store(tmp_path):
    store, _, cleanup = await make_store("sqlite", tmp_path)
    yield store
    await cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config() -> DeskConfig:
    return DeskConfig(secret_key=SECRET, default_language="en", default_timezone="Europe/Vienna")


def inbound(sender: str, text: str = "", *, clock: FakeClock, choice: str | None = None, lang: str = "en") -> Inbound:
    return Inbound(channel=sender.split(":")[0], sender=sender, received_at=clock.now(), text=text, choice=choice,
                   language_hint=lang)
