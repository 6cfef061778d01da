"""PostgreSQL connections the pool holds may die (a restart, an administrator, a dropped network): the next
unit of work gets a live one."""
from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import storage.db
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


class Relay:
    """A TCP relay to PostgreSQL that can cut its connections the way a dropped network does: the client is
    told nothing until it next sends something, and then its connection breaks."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.cut = False
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _link(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection(*self.target)
        cut_when_linked = self.cut
        await asyncio.gather(self._pump(client_in, server_out, client_out, cut_when_linked),
                             self._pump(server_in, client_out, None, cut_when_linked), return_exceptions=True)

    async def _pump(self, source, sink, client_out, cut_when_linked: bool) -> None:
        try:
            while data := await source.read(65536):
                if self.cut and not cut_when_linked:
                    if client_out is not None:  # the client spoke on a cut line: now it learns
                        client_out.transport.abort()
                    sink.transport.abort()
                    return
                sink.write(data)
                await sink.drain()
        finally:
            if not (self.cut and not cut_when_linked):
                sink.close()


async def test_a_connection_that_rested_is_pinged_and_replaced_when_the_network_dropped_it(monkeypatch):
    reason = await postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    url = make_url(PG_URL)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    await relay.start()
    monkeypatch.setattr(storage.db, "IDLE_BEFORE_PING", 0.0)  # every connection counts as rested
    store = Store.from_url(url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False))
    try:
        pids = await pooled_pids(store, 2)
        relay.cut = True  # the pooled connections look alive to the client, and are not
        for _ in range(3):
            async with store.uow() as uow:
                pid = await uow.session.scalar(PID)
            assert pid not in pids
    finally:
        await store.dispose()
        await relay.stop()
