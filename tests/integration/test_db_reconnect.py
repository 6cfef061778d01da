"""PostgreSQL connections the pool holds may die (a restart, an administrator, a dropped network): the next
unit of work gets a live one."""
from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import Store
from tests.conftest import PG_URL, postgres_skip_reason

PID = text("SELECT pg_backend_pid()")


@pytest.fixture
async def named_store():
    """A store on PostgreSQL whose connections carry a name of their own, to end just those."""
    reason = await postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    name = f"frontdesk-test-{secrets.token_hex(4)}"
    store = Store.from_url(PG_URL, connect_args={"server_settings": {"application_name": name}})
    yield store, name
    await store.dispose()


async def admin_fetchval(sql: str, *args):
    url = make_url(PG_URL)
    conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def terminate(name: str) -> int:
    """End every server process of connections named `name`, waiting until each has exited."""
    return await admin_fetchval("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                                "FROM pg_stat_activity WHERE application_name = $1", name)


async def pooled_pids(store: Store, count: int) -> set[int]:
    """Put `count` connections in the pool (units of work open at once) and return their server processes."""
    uows = [store.uow() for _ in range(count)]
    pids = set()
    for uow in uows:
        await uow.__aenter__()
        pids.add(await uow.session.scalar(PID))
    for uow in uows:
        await uow.__aexit__(None, None, None)
    return pids


async def test_units_of_work_go_on_after_the_server_ended_the_pooled_connections(named_store):
    store, name = named_store
    pids = await pooled_pids(store, 2)
    assert len(pids) == 2
    assert await terminate(name) == 2
    await asyncio.sleep(0.2)  # the server's goodbye comes over loopback; the client reads it between tasks
    for _ in range(3):
        async with store.uow() as uow:
            pid = await uow.session.scalar(PID)
            await uow.commit()
        assert pid not in pids
