"""Background rounds: do something now and every few seconds until asked to stop."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def repeat(round_: Callable[[], Awaitable], stop: asyncio.Event, interval: float, what: str) -> None:
    """Run `round_` now and every `interval` seconds until `stop` is set; a failed round waits for the next
    (the process outlives a database restart or a bug in one round)."""
    while not stop.is_set():
        try:
            await round_()
        except Exception:  # noqa: BLE001 - see above
            log.exception("%s failed; trying again in %.1f s", what, interval)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
