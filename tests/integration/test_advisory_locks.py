"""serialize(): PostgreSQL's transaction-scoped advisory locks, several in one round trip, each once per transaction."""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text

from storage.dialect import serialize
from tests.conftest import make_store
from tests.helpers import Statements

TRY = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, 0))")


@pytest.fixture
async def pg_store(tmp_path):
    store, _, cleanup = await make_store("postgresql", tmp_path)
    yield store
    await cleanup()


def advisory(statement: str) -> bool:
    return "advisory" in statement


def names(*parts: str) -> list[str]:
    """Names no other test on this server uses (advisory locks are server-wide)."""
    tag = secrets.token_hex(4)
    return [f"test:{tag}:{part}" for part in parts]


async def free(store, name: str) -> bool:
    """Whether another transaction could take `name` now (it takes it only for a moment)."""
    async with store.uow() as other:
        return bool(await other.session.scalar(TRY, {"name": name}))


async def test_several_names_are_locked_in_one_statement_until_the_transaction_ends(pg_store):
    a, b, c = names("a", "b", "c")
    async with pg_store.uow() as uow:
        with Statements(pg_store, advisory) as seen:
            await serialize(uow.session, b, a)
        assert len(seen) == 1
        assert not await free(pg_store, a) and not await free(pg_store, b)
        assert await free(pg_store, c)
        await uow.commit()
    assert await free(pg_store, a) and await free(pg_store, b)


async def test_a_name_held_is_not_locked_again_in_its_transaction_but_in_the_next(pg_store):
    a, b = names("a", "b")
    async with pg_store.uow() as uow:
        with Statements(pg_store, advisory) as seen:
            await serialize(uow.session, a, b)
            await serialize(uow.session, a)  # held: nothing to send
            await serialize(uow.session, b, a)
        assert len(seen) == 1
        await uow.commit()  # the locks are gone with the transaction …
        assert await free(pg_store, a)
        with Statements(pg_store, advisory) as seen:
            await serialize(uow.session, a)  # … so the session's next transaction takes it anew
        assert len(seen) == 1 and not await free(pg_store, a)
        await uow.commit()


async def test_a_lock_taken_in_a_savepoint_is_taken_again_after_it(pg_store):
    a, = names("a")
    async with pg_store.uow() as uow:
        await uow.session.execute(text("SELECT 1"))
        savepoint = await uow.session.begin_nested()
        await serialize(uow.session, a)
        await savepoint.rollback()  # PostgreSQL lets go of locks taken in a rolled back savepoint
        with Statements(pg_store, advisory) as seen:
            await serialize(uow.session, a)
        assert len(seen) == 1 and not await free(pg_store, a)
