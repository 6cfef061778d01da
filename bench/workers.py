"""bench/load.py --workers N: N `python -m bot run` processes in webhook mode take the customers' updates.

Not a bench of its own. The workers share the bench's PostgreSQL schema, each listening on its own port
with the same webhook URL and secret, as README "Running several workers" says; the front of
tests/workers.py posts each update to the next worker and to another one when a post fails, as a reverse
proxy and Telegram's redelivery would. The workers reach the fake Bot API and the SMTP server of the bench
process over the loopback, with the production defaults for everything the bench does not name.
"""
from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.workers import Front, Worker, end_all, wait_for

SECRET = "bench-webhook-secret"
START_WAIT = 60.0  # seconds for every worker to say it runs
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Webhooks:
    """The updates go to the workers as Telegram's webhook posts, through the front."""

    front: Front
    http: aiohttp.ClientSession
    workers: list[Worker]

    async def deliver(self, update: dict) -> None:
        await self.front.post(self.http, update)

    def cpu(self) -> float:
        """CPU seconds the workers have used so far (Linux: from /proc), 0 where that cannot be read."""
        total = 0
        for worker in self.workers:
            assert worker.process is not None
            try:
                fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return 0.0
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICKS


@asynccontextmanager
async def webhook_workers(count: int, database_url: str, api_url: str, smtp_url: str, mail_from: str,
                          folder: Path) -> AsyncIterator[Webhooks]:
    """Start `count` workers and yield their delivery; stop them on the way out, however it is taken."""
    workers = [Worker(database_url, folder, f"worker-{n}", api_url, SECRET, smtp_url=smtp_url, mail_from=mail_from,
                      owners="") for n in range(count)]
    for worker in workers:  # the tests' quick job polling and short leases are not what runs in production
        for key in ("FRONTDESK_JOBS_POLL_SECONDS", "FRONTDESK_JOBS_LEASE_SECONDS", "FRONTDESK_LANGUAGE"):
            worker.env.pop(key, None)
    try:
        for worker in workers:
            await worker.start()
        try:
            await wait_for(lambda: all_running(workers), f"{count} workers to run", seconds=START_WAIT)
        except AssertionError as exc:  # a worker that ended early or never ran: its log says why
            raise SystemExit(f"{exc}\n{logs(workers)}") from None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            yield Webhooks(Front([w.port for w in workers], SECRET), http, workers)
    finally:
        await end_all(workers)


async def all_running(workers: list[Worker]) -> bool:
    return all([await w.running() for w in workers])


def logs(workers: list[Worker]) -> str:
    return "\n".join(f"--- {w.log.name}\n{w.text()[-2000:]}" for w in workers)
