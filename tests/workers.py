"""`python -m bot run` processes against one database, and the front that spreads webhook posts over them.

Shared by the process tests (tests/e2e/test_reminder_processes.py, test_webhook_workers.py) and by
bench/load.py --workers: a worker is a real process with its log in a file, the front is what a reverse
proxy does for Telegram (each post to the next worker, to another one when a worker fails).
"""
from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from tests.smtp import free_port

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_URL = "https://desk.example.com/tg/hook"
STOP_WAIT = 30.0  # seconds a worker has after SIGTERM before it gets SIGKILL


async def wait_for(check, what: str, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Process:
    """`python -m bot run` against the given database, its log in a file."""

    def __init__(self, url: str, tmp_path: Path, name: str):
        self.log = tmp_path / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        self.env.update({"PYTHONPATH": str(ROOT), "FRONTDESK_DATABASE_URL": url,
                         "FRONTDESK_SECRET_KEY": "a-test-secret-of-enough-length",
                         "FRONTDESK_OUTBOX_DIR": str(tmp_path / "outbox"), "FRONTDESK_LANGUAGE": "en",
                         "FRONTDESK_JOBS_POLL_SECONDS": "0.2", "FRONTDESK_JOBS_LEASE_SECONDS": "1"})
        self.cwd = tmp_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=self.cwd, env=self.env, stdout=log, stderr=log)

    async def running(self) -> bool:
        if self.process is not None and self.process.returncode is not None:
            raise AssertionError(f"the process ended early:\n{self.text()[-3000:]}")
        return "frontdesk is running" in self.text()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout=STOP_WAIT)

    async def end(self) -> None:
        """Stop it however things went: SIGTERM, then SIGKILL if it has not ended after STOP_WAIT."""
        if self.process is None or self.process.returncode is not None:
            return
        try:
            await self.stop()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        except BaseException:  # cancelled while waiting (Ctrl-C): leave no process behind
            if self.process.returncode is None:
                self.process.kill()
            raise


class Worker(Process):
    """A `run` process in webhook mode, listening on its own port, sending to the fake Bot API at `api_url`."""

    def __init__(self, url: str, tmp_path: Path, name: str, api_url: str, secret: str, **settings: str):
        super().__init__(url, tmp_path, name)
        self.port = free_port()
        self.env.update({
            "FRONTDESK_TELEGRAM_TOKEN": "123:TEST", "FRONTDESK_TELEGRAM_API_URL": f"{api_url}/bot",
            "FRONTDESK_WEBHOOK_URL": WEBHOOK_URL,
            "FRONTDESK_WEBHOOK_LISTEN": f"127.0.0.1:{self.port}", "FRONTDESK_WEBHOOK_SECRET": secret,
            "FRONTDESK_TELEGRAM_RATE_PER_SECOND": "0"})
        self.env.update({f"FRONTDESK_{key.upper()}": value for key, value in settings.items()})


async def end_all(processes) -> None:
    """Stop every process that was started, each on its own so that one slow to stop delays none of the others."""
    await asyncio.gather(*(p.end() for p in processes), return_exceptions=True)
    for p in processes:  # a cancelled gather may have left one: it must not outlive us
        if p.process is not None and p.process.returncode is None:
            p.process.kill()
            await p.process.wait()


class Front:
    """What sits in front of the workers: each update to the next worker, to another one on failure."""

    def __init__(self, ports: list[int], secret: str):
        self.ports = ports
        self.headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        self.turn = itertools.count()
        self.failures = 0
        self.posted = 0

    async def post(self, http: aiohttp.ClientSession, update: dict) -> None:
        while True:
            port = self.ports[next(self.turn) % len(self.ports)]
            try:
                async with http.post(f"http://127.0.0.1:{port}/tg/hook", json=update,
                                     headers=self.headers) as response:
                    if response.status == 200:
                        self.posted += 1
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            self.failures += 1
            await asyncio.sleep(0.05)
