"""What the HTTP edges share (the homepage API, metrics): an app listening on HOST:PORT, and the database
check behind their /healthz."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from storage.db import Store

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 5.0  # seconds the database has to answer SELECT 1
SHUTDOWN_TIMEOUT = 5.0  # seconds running requests get at a stop
STORE = web.AppKey("store", Store)


async def database_answers(store: Store) -> bool:
    """Whether the database answers SELECT 1 within HEALTH_TIMEOUT; the log says why not."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            async with store.uow() as uow:
                await uow.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means: not healthy, and the log says why
        log.warning("health check: the database does not answer (%s: %s)", type(exc).__name__, exc)
        return False
    return True


class Listener:
    """An app listening on HOST:PORT until closed (port 0: any free port, see `port`)."""

    def __init__(self, app: web.Application, name: str):
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        self.name = name

    async def listen(self, host: str, port: int) -> None:
        """Listen; an OSError says why it cannot (the address is not ours, the port taken, the name unknown)."""
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, host, port).start()
        except BaseException:
            await self.runner.cleanup()
            raise
        log.info("%s listening on %s:%d", self.name, host, self.port)

    @property
    def port(self) -> int:
        return int(self.runner.addresses[0][1])

    async def close(self) -> None:
        await self.runner.cleanup()
