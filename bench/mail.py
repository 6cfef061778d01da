"""Mail throughput on loopback: `python bench/mail.py [--mails N] [--database-url URL]`.

1. Intake: N mails in a real IMAP server (pymap, in its own process) → the intake → tickets (one new ticket,
   its acknowledgement and a support notification per mail), in mails/s and statements per mail. Target
   ≥ 400/s on SQLite, ≥ 250/s on PostgreSQL. For comparison, N more mails into intake records only (no
   handler): the intake's own cost.
2. Delivery: N outbox mails to aiosmtpd through the outbox worker, one reused SMTP connection against one
   connection per mail (the baseline), in mails/s and as a ratio; then the same through the SMTP transport
   alone, without the database; delivery ÷ SMTP alone should be ≥ 0.9.

Everything runs on 127.0.0.1 against a fresh SQLite file (or the given database) and ends within two minutes.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import sys
import tempfile
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test servers live in tests/

from sqlalchemy import delete, event, func, select  # noqa: E402

from bench.throughput import PostgresSchema  # noqa: E402
from bot.app import build_handlers  # noqa: E402
from bot.mail.imap import ImapIntake  # noqa: E402
from bot.mail.intake import EmailEdge  # noqa: E402
from bot.mail.smtp import SmtpTransport  # noqa: E402
from bot.outbox import OutboxWorker  # noqa: E402
from handlers import identity, welcome  # noqa: E402
from handlers.context import DeskConfig  # noqa: E402
from handlers.registry import Handlers  # noqa: E402
from handlers.router import Desk  # noqa: E402
from handlers.setup import apply_setup, load_setup  # noqa: E402
from storage.db import Store  # noqa: E402
from storage.models import MailboxState, Outbox, Ticket  # noqa: E402
from tests.conftest import FakeClock  # noqa: E402
from tests.imap import ImapServer  # noqa: E402
from tests.smtp import SmtpServer  # noqa: E402

SENDER = "Physio am Park <desk@physio.example>"
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)
BUDGET = 115.0  # seconds; the whole run stays under two minutes …
INTAKE_LIMIT, DELIVERY_LIMIT = 35.0, 12.0  # … because each phase stops at its limit and reports what it did


def customer_mail(number: int) -> bytes:
    """A question from a new customer: no command, so it opens a ticket."""
    msg = EmailMessage()
    msg["From"] = f"Kundin {number} <kundin{number}@example.org>"
    msg["To"], msg["Subject"], msg["Message-ID"] = SENDER, f"Frage {number}", make_msgid(domain="example.org")
    msg.set_content(f"Guten Tag,\n\nhaben Sie am Samstag geöffnet? ({number})\n\nDanke\n-- \nKundin {number}\n")
    return msg.as_bytes()


async def open_store(url: str | None) -> Store:
    store = Store.from_url(url or f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-mail-')}/bench.db")
    await store.migrate()
    async with store.uow() as uow:
        await apply_setup(uow, load_setup(ROOT / "examples" / "practice.toml"), NOW)
        await uow.commit()
    return store


async def count(store: Store, model, *where) -> int:
    async with store.uow() as uow:
        return await uow.session.scalar(select(func.count()).select_from(model).where(*where))


def deadline(seconds: float) -> asyncio.Event:
    """An event that is set after `seconds`."""
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, event.set)
    return event


def serve_imap(pipe: Connection, mails: int, first: int) -> None:
    """The IMAP server's own process (a real server is one): load the mails, serve, report what is \\Seen."""
    async def serve() -> None:
        server = ImapServer()
        await server.start()
        for number in range(first, first + mails):
            await server.append(customer_mail(number))
        pipe.send(server.url)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # serves until asked
        pipe.send(len(await server.seen()))
        await server.stop()

    asyncio.run(serve())


class Statements:
    """Counts the statements the engine sends (BEGIN and SAVEPOINTs too; COMMIT is no statement here)."""

    def __init__(self, store: Store):
        self.engine = store.engine.sync_engine
        self.count = 0

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args) -> None:
        self.count += 1


async def bench_intake(store: Store, mails: int, handlers: Handlers, first: int = 0) -> tuple[int, float, int]:
    """(mails taken, mails per second, statements) from an IMAP server in another process through the intake."""
    clock = FakeClock(NOW)
    desk = Desk(store, DeskConfig(secret_key=b"bench-secret-key-0123456789abcdef"), handlers, clock)
    pipe, child_end = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_imap, args=(child_end, mails, first), daemon=True)
    server.start()
    try:
        url = await asyncio.to_thread(pipe.recv)
        intake = ImapIntake(url, EmailEdge(desk, store, clock), timeout=60)
        async with intake.connect() as connection:
            with Statements(store) as statements:
                started = time.perf_counter()
                taken = await intake.sync(connection, deadline(INTAKE_LIMIT))
                elapsed = time.perf_counter() - started
        pipe.send("seen?")
        assert await asyncio.to_thread(pipe.recv) == taken
    finally:
        server.join(timeout=10)
        server.kill()
    return taken, taken / elapsed, statements.count


class OneConnectionPerMail:
    """The baseline: connect, send one mail, quit."""

    def __init__(self, url: str):
        self.url = url

    async def send(self, row: Outbox) -> None:
        transport = SmtpTransport(self.url, SENDER, timeout=10)
        try:
            await transport.send(row)
        finally:
            await transport.close()

    async def close(self) -> None:
        """Nothing stays open."""


def bench_mail(n: int) -> Outbox:
    """One mail as the delivery benchmarks send it, through the outbox or the transport alone."""
    return Outbox(channel="email", recipient=f"c{n}@example.org", subject="Ihr Termin am Dienstag",
                  text="Grüße aus dem Park – bis Dienstag!", html="<p>Grüße aus dem Park – bis Dienstag!</p>",
                  message_id=f"<bench{n}@physio.example>", headers={}, attachments=[], status="pending",
                  attempts=0, next_attempt_at=NOW, created_at=NOW)


async def queue_mails(store: Store, mails: int, first: int = 0) -> None:
    async with store.uow() as uow:
        uow.session.add_all([bench_mail(n) for n in range(first, first + mails)])
        await uow.commit()


async def bench_delivery(store: Store, mails: int, per_mail: bool) -> tuple[int, float]:
    """(mails sent, mails per second) from the outbox through the worker to aiosmtpd."""
    smtp = SmtpServer()
    smtp.start()
    transport = OneConnectionPerMail(smtp.url) if per_mail else SmtpTransport(smtp.url, SENDER, timeout=10)
    try:
        await queue_mails(store, mails)
        worker = OutboxWorker(store, {"email": transport}, FakeClock(NOW), batch=50)
        stop, sent = deadline(DELIVERY_LIMIT), 0
        started = time.perf_counter()
        while not stop.is_set() and sent < mails:
            sent += await worker.deliver_due()
        elapsed = time.perf_counter() - started
    finally:
        await transport.close()
        smtp.stop()
        await clear_outbox(store)
    assert sent == len(smtp.messages), (sent, len(smtp.messages))
    return sent, sent / elapsed


async def bench_smtp_only(mails: int, per_mail: bool) -> float:
    """Mails per second through the transport alone (no database): the connection's share."""
    smtp = SmtpServer()
    smtp.start()
    transport = OneConnectionPerMail(smtp.url) if per_mail else SmtpTransport(smtp.url, SENDER, timeout=10)
    rows = [bench_mail(n) for n in range(mails)]  # the same mails as through the outbox: a fair ratio
    try:
        started = time.perf_counter()
        for row in rows:
            await transport.send(row)
        elapsed = time.perf_counter() - started
    finally:
        await transport.close()
        smtp.stop()
    return mails / elapsed


async def bench_in_turns(store: Store, mails: int, rounds: int = 5) -> tuple[float, float]:
    """(through the outbox, through SMTP alone) in mails/s, a reused connection each, measured in turns of
    mails/rounds: a load that comes and goes on a shared machine then hits both alike."""
    smtp = SmtpServer()
    smtp.start()
    via_outbox, alone = (SmtpTransport(smtp.url, SENDER, timeout=10) for _ in range(2))
    worker = OutboxWorker(store, {"email": via_outbox}, FakeClock(NOW), batch=50)
    chunk = max(mails // rounds, 1)
    outbox_time = alone_time = 0.0
    try:
        for turn in range(rounds):
            await queue_mails(store, chunk, first=turn * chunk)
            started, sent = time.perf_counter(), 0
            while sent < chunk:
                sent += await worker.deliver_due()
            outbox_time += time.perf_counter() - started
            rows = [bench_mail(n) for n in range(turn * chunk, (turn + 1) * chunk)]
            started = time.perf_counter()
            for row in rows:
                await alone.send(row)
            alone_time += time.perf_counter() - started
    finally:
        await via_outbox.close()
        await alone.close()
        smtp.stop()
        await clear_outbox(store)
    return chunk * rounds / outbox_time, chunk * rounds / alone_time


def line(what: str, done: int, wanted: int, rate: float, note: str = "") -> str:
    cut = "" if done == wanted else f"  (stopped at the time limit after {done} of {wanted})"
    return f"{what:<48} {rate:7.0f} mails/s{note}{cut}"


async def report_intake(store: Store, mails: int) -> None:
    """Into tickets (the target), then into bare intake records (the intake's own share)."""
    taken, rate, statements = await bench_intake(store, mails, build_handlers())
    assert await count(store, Ticket) == taken
    target = "  (target ≥ 400 SQLite, ≥ 250 PostgreSQL)"
    print(line(f"intake: IMAP → tickets ({mails} mails)", taken, mails, rate, target))
    print(f"{'intake: statements per mail (→ tickets)':<48} {statements / max(taken, 1):7.1f}")
    await forget_mailboxes(store)  # the second server is another mailbox, not a changed UIDVALIDITY
    records_only = Handlers.combine(welcome.handlers(), identity.handlers())  # no email fallback
    taken, rate, _ = await bench_intake(store, mails, records_only, first=mails)
    print(line("intake: IMAP → intake records only (no handler)", taken, mails, rate))


async def report_delivery(store: Store, mails: int) -> None:
    """Through the outbox worker, reused connection against one per mail; then SMTP alone."""
    await clear_outbox(store)
    sent, reused = await bench_delivery(store, mails, per_mail=False)
    print(line("delivery via outbox, one reused connection", sent, mails, reused))
    sent, baseline = await bench_delivery(store, mails, per_mail=True)
    print(line("delivery via outbox, a connection per mail", sent, mails, baseline, "  (baseline)"))
    print(f"{'ratio reused / per mail (via outbox)':<48} {reused / baseline:7.2f}×")
    smtp_reused, smtp_each = await bench_smtp_only(mails, False), await bench_smtp_only(mails, True)
    print(f"{'SMTP alone: reused / per mail':<48} {smtp_reused:7.0f} / {smtp_each:.0f} mails/s "
          f"= {smtp_reused / smtp_each:.2f}×")
    via_outbox, alone = await bench_in_turns(store, mails)
    print(f"{'in turns: via outbox / SMTP alone':<48} {via_outbox:7.0f} / {alone:.0f} mails/s")
    print(f"{'outbox delivery ÷ SMTP alone (in turns)':<48} {via_outbox / alone:7.2f}  (target ≥ 0.9)")


async def main(mails: int, url: str | None) -> None:
    started = time.perf_counter()
    if url is not None and url.startswith("postgresql"):
        async with PostgresSchema(url) as own:  # a schema of its own, dropped at the end
            await measure(mails, own)
    else:
        await measure(mails, url)
    print(f"total {time.perf_counter() - started:.1f} s")


async def measure(mails: int, url: str | None) -> None:
    store = await open_store(url)
    try:
        await report_intake(store, mails)
        await report_delivery(store, mails)
    finally:
        await store.dispose()


async def forget_mailboxes(store: Store) -> None:
    """Drop the remembered UIDVALIDITY and UID: the next server is a different mailbox."""
    async with store.uow() as uow:
        await uow.session.execute(delete(MailboxState))
        await uow.commit()


async def clear_outbox(store: Store) -> None:
    """The intake's acknowledgements are not part of the delivery benchmark."""
    async with store.uow() as uow:
        await uow.session.execute(delete(Outbox))
        await uow.commit()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--database-url", "--database", dest="database",
                        help="SQLAlchemy async URL (default: a fresh SQLite file); on PostgreSQL a schema of its own "
                             "is made and dropped")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(asyncio.wait_for(main(options.mails, options.database), BUDGET))
