"""FRONTDESK_METRICS_LISTEN end to end: messages through the real PTB Application and the fake Bot API, a mail
through the IMAP intake, then a scrape over HTTP read with prometheus_client's own parser; /healthz before and
after the database is gone; `frontdesk run` serving them and refusing a bad address."""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import time
from datetime import timedelta

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from bot.app import Runtime, open_runtime
from bot.cli import start_telegram_channel, stop_channels
from bot.metrics import BacklogCollector, Metrics, start_metrics
from bot.settings import Settings
from bot.telegram import build_application, start_telegram, stop_telegram
from handlers import identity, welcome
from handlers.jobs.table import schedule
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.router import Desk
from storage.models import Job, Outbox
from templates import render
from tests.conftest import PG_URL, FakeClock, postgres_skip_reason
from tests.fakebotapi import FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import ask, raw_mail
from tests.imap import ImapServer, imap_server  # noqa: F401
from tests.smtp import free_port

CODE = re.compile(r"\b(\d{6})\b")


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics, parsed: {(sample name, sorted labels): value}."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        body = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


async def health(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as response:
        return response.status, await response.text()


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


class Database:
    """A database of the test's own, which the test can make disappear."""

    def __init__(self, kind: str, tmp_path):
        self.kind, self.folder = kind, tmp_path / "db"
        self.name = f"fdm_{secrets.token_hex(5)}"

    async def create(self) -> str:
        if self.kind == "sqlite":
            self.folder.mkdir()
            return f"sqlite+aiosqlite:///{self.folder}/frontdesk.db"
        reason = await postgres_skip_reason()
        if reason:
            pytest.skip(reason)
        await self._admin(f'CREATE DATABASE "{self.name}"')
        return str(make_url(PG_URL).set(database=self.name).render_as_string(hide_password=False))

    async def remove(self, runtime: Runtime) -> None:
        """PostgreSQL: the database is dropped under the open pool. SQLite: the file's folder goes, and the pool
        lets go of its open handles (an open SQLite handle keeps reading a deleted file)."""
        if self.kind == "sqlite":
            shutil.rmtree(self.folder)
            await runtime.store.dispose()
        else:
            await self._admin(f'DROP DATABASE "{self.name}" WITH (FORCE)')

    async def cleanup(self) -> None:
        if self.kind != "sqlite":
            await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def _admin(self, statement: str) -> None:
        import asyncpg

        url = make_url(PG_URL)
        conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request, tmp_path):
    db = Database(request.param, tmp_path)
    yield db
    await db.cleanup()


async def test_a_scrape_counts_messages_codes_backlog_and_intake_lag(database, fake_bot_api, imap_server,
                                                                     tmp_path):
    url = await database.create()
    clock = FakeClock()
    port = free_port()
    settings = Settings(_env_file=None, database_url=url, secret_key="x" * 32, mail_from="Desk <desk@example.org>",
                        language="en", imap_url=imap_server.url, metrics_listen=f"127.0.0.1:{port}",
                        telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        telegram_rate_per_second=0, telegram_concurrency=4)
    opened = time.monotonic()
    runtime = await open_runtime(settings, {}, clock)
    intake_made = time.monotonic()
    # No cache here, so each scrape reads what the test just did (the cache has a test of its own below).
    metrics = await start_metrics(settings.metrics_listen, runtime.desk, runtime.intake, cache_seconds=0)
    app = await start_telegram_channel(runtime)
    metrics_url = f"http://127.0.0.1:{port}"
    try:
        await ask(fake_bot_api, 501, "/start")
        await ask(fake_bot_api, 501, "/help")
        await ask(fake_bot_api, 501, "/frobnicate")  # no such word: one "other" label
        await ask(fake_bot_api, 501, "/email")  # opens the email conversation ...
        await ask(fake_bot_api, 501, "kim@example.org")  # ... whose step mails a code
        async with runtime.store.uow() as uow:
            [code_mail] = (await uow.session.scalars(select(Outbox).where(Outbox.recipient == "kim@example.org"))).all()
        right = CODE.search(code_mail.subject or "")
        assert right is not None
        wrong = f"{(int(right.group(1)) + 1) % 1_000_000:06d}"
        [wrong_answer] = await ask(fake_bot_api, 501, wrong)
        assert wrong_answer.params["text"] == render("code_wrong", "en", left=4).text
        await ask(fake_bot_api, 501, "/confirm abc")  # a malformed code: the handler refuses
        async with runtime.store.uow() as uow:
            now = clock.now()
            uow.session.add_all([
                Outbox(channel="email", recipient="a@example.org", text="old", status="pending", attempts=0,
                       next_attempt_at=now, created_at=now - timedelta(seconds=90)),
                Outbox(channel="email", recipient="b@example.org", text="lost", status="given_up", attempts=8,
                       next_attempt_at=now, created_at=now - timedelta(hours=2)),
                Job(kind="test", key="failed", due_at=now - timedelta(hours=1), payload={}, attempts=5,
                    created_at=now, failed_at=now),
            ])
            await schedule(uow, "test", "due", now - timedelta(minutes=1), now)
            await schedule(uow, "test", "later", now + timedelta(hours=1), now)
            await uow.commit()
        await imap_server.append(raw_mail(body="HELP", subject="help", sender="Kim <kim@example.org>"))
        started_before_sync = time.monotonic()
        lag_before = value(await scrape(metrics_url), "frontdesk_mail_intake_lag_seconds")
        scraped_at = time.monotonic()
        assert lag_before is not None and started_before_sync - intake_made <= lag_before <= scraped_at - opened
        assert await runtime.intake.sync_once() == 1  # type: ignore[union-attr]

        samples = await scrape(metrics_url)
        assert value(samples, "frontdesk_handled_total", channel="telegram", outcome="answered") == 6
        assert value(samples, "frontdesk_handled_total", channel="telegram", outcome="refused") == 1
        assert value(samples, "frontdesk_handled_total", channel="telegram", outcome="error") is None
        assert value(samples, "frontdesk_handled_total", channel="email", outcome="answered") == 1
        for route, count in {"start": 1, "help": 2, "other": 1, "email": 1, "flow:email": 1, "confirm": 2}.items():
            assert value(samples, "frontdesk_handler_seconds_count", route=route) == count, route
            assert value(samples, "frontdesk_handler_seconds_bucket", route=route, le="+Inf") == count, route
        assert 0 < value(samples, "frontdesk_handler_seconds_sum", route="start") < 60
        assert value(samples, "frontdesk_code_attempts_refused_total") == 1
        assert value(samples, "frontdesk_outbox_pending") == 3  # the code mail, the old one, the answer to HELP
        assert value(samples, "frontdesk_outbox_failed") == 1
        assert value(samples, "frontdesk_outbox_oldest_pending_seconds") == 90
        assert value(samples, "frontdesk_jobs_due") == 1
        assert value(samples, "frontdesk_jobs_failed") == 1
        assert value(samples, "frontdesk_database_up") == 1
        lag_after = value(samples, "frontdesk_mail_intake_lag_seconds")
        assert lag_after is not None and lag_after <= time.monotonic() - started_before_sync
        assert all(name.startswith("frontdesk_") for name, _ in samples)

        assert await health(metrics_url) == (200, "ok\n")
        await database.remove(runtime)
        status, body = await health(metrics_url)
        assert status == 503 and "database" in body
        gone = await scrape(metrics_url)  # still served, saying so, with the counters kept
        assert value(gone, "frontdesk_database_up") == 0 and value(gone, "frontdesk_outbox_pending") is None
        assert value(gone, "frontdesk_code_attempts_refused_total") == 1
    finally:
        await stop_channels(app, None, metrics)
        await runtime.close()


async def test_a_scrape_storm_reads_the_backlog_once_per_cache_time(database, tmp_path):
    """Scrapes within CACHE_SECONDS see the first read; the one after it sees the new row."""
    url = await database.create()
    clock = FakeClock()
    settings = Settings(_env_file=None, database_url=url, secret_key="x" * 32)
    runtime = await open_runtime(settings, {}, clock)
    ticks = [100.0]
    backlog = BacklogCollector(runtime.store, clock, cache_seconds=5, timer=lambda: ticks[0])
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if "outbox" in statement:
            statements.append(statement)

    event.listen(runtime.store.engine.sync_engine, "before_cursor_execute", count)
    try:
        await asyncio.gather(*(backlog.refresh() for _ in range(20)))
        assert len(statements) == 1  # twenty scrapes at once, one read
        assert backlog.backlog is not None and backlog.backlog.outbox_pending == 0
        async with runtime.store.uow() as uow:
            uow.session.add(Outbox(channel="email", recipient="a@example.org", text="x", status="pending",
                                   attempts=0, next_attempt_at=clock.now(), created_at=clock.now()))
            await uow.commit()
        statements.clear()
        ticks[0] += 4.9
        await backlog.refresh()
        assert statements == [] and backlog.backlog.outbox_pending == 0
        ticks[0] += 0.2
        await backlog.refresh()
        assert len(statements) == 1 and backlog.backlog is not None and backlog.backlog.outbox_pending == 1
    finally:
        event.remove(runtime.store.engine.sync_engine, "before_cursor_execute", count)
        await runtime.close()


# ---- frontdesk run ---------------------------------------------------------------------------------------


def run_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update(FRONTDESK_SECRET_KEY="k" * 32, FRONTDESK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/run.db",
               FRONTDESK_MAIL_FROM="desk@example.org", **extra)
    return env


async def test_frontdesk_run_serves_metrics_and_health_until_stopped(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = run_env(tmp_path, FRONTDESK_METRICS_LISTEN=f"127.0.0.1:{port}")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        for _ in range(300):
            assert process.returncode is None, "frontdesk run stopped early"
            try:
                if await health(url) == (200, "ok\n"):
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.2)
        samples = await scrape(url)
        assert value(samples, "frontdesk_outbox_pending") == 0 and value(samples, "frontdesk_database_up") == 1
        assert all(name.startswith("frontdesk_") for name, _ in samples)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert f"metrics listening on 127.0.0.1:{port}" in stderr.decode()


@pytest.mark.parametrize(("listen", "says"), [
    ("localhost", "must be HOST:PORT"), ("127.0.0.1:99999", "must be HOST:PORT"), ("taken", "cannot listen there")])
async def test_frontdesk_run_names_a_metrics_address_it_cannot_use(tmp_path, listen, says):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if listen == "taken":
            listen = f"127.0.0.1:{taken.getsockname()[1]}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=tmp_path, env=run_env(tmp_path, FRONTDESK_METRICS_LISTEN=listen),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(process.communicate(), 90)
    last = stderr.decode().strip().splitlines()[-1]
    assert process.returncode == 2 and b"Traceback" not in stderr
    assert last.startswith("frontdesk: ") and "FRONTDESK_METRICS_LISTEN" in last and says in last, last


# ---- errors, counted once -------------------------------------------------------------------------------


async def explode(ctx, args: str) -> list[Reply]:
    raise RuntimeError("boom")


async def refuse_to_read(desk, inbound):
    """A preparer that fails: the message fails before any handler runs."""
    if inbound.text == "/unreadable":
        raise OSError("cannot read the upload")
    return inbound


async def test_a_failing_handler_and_a_failure_around_it_are_each_one_error(fake_bot_api, store, config):
    metrics = Metrics()
    desk = Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), Handlers(
        commands=[Command("boom", explode)], preparers=[refuse_to_read])))
    desk.observer = metrics
    settings = Settings(_env_file=None, telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        secret_key="x" * 32, telegram_rate_per_second=0, telegram_concurrency=4)
    app = build_application(settings, desk)
    await start_telegram(app, settings)
    try:
        for text in ("/boom", "/unreadable", "/help"):
            [reply] = await ask(fake_bot_api, 601, text)
            assert (reply.params["text"] == render("error", "en").text) == (text != "/help")
    finally:
        await stop_telegram(app)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in
               text_string_to_metric_families(generate_latest(metrics.registry).decode()) for s in family.samples}
    assert value(samples, "frontdesk_handled_total", channel="telegram", outcome="error") == 2
    assert value(samples, "frontdesk_handled_total", channel="telegram", outcome="answered") == 1
    assert value(samples, "frontdesk_handler_seconds_count", route="boom") == 1  # in the handler: by its word
    assert value(samples, "frontdesk_handler_seconds_count", route="other") == 1  # before any handler ran
    assert value(samples, "frontdesk_handler_seconds_count", route="help") == 1
