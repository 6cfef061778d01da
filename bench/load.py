"""N Telegram users book at once through the real PTB Application and a fake Bot API: steps/s and reply latency.

    python bench/load.py [--users 200] [--think-ms 2000] [--seed 7] [--profile FILE]
                         [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test [--workers 2]]

The practice of bench/availability.py (20 staff, 3 locations, Mon–Sat hours, three services) on a fixed
clock, Monday 16 March 2026 06:00, with no appointments yet, and `--users` customers who each have a
Telegram chat and a confirmed mail address. Every customer walks the `book` flow with buttons as a person
would: /book → a service → a location → a staff member or "any" → a day → a time, picking at random among
the buttons the bot offers. The hold mails the booking code: the outbox worker (polling every second, as
`frontdesk run` does) sends it to an aiosmtpd server in this process, and the customer types the code from
the mail's subject. A time someone else took meanwhile is answered with other times, and the customer
picks again. Before each step a customer thinks for `--think-ms` ± 50 % (0: none) and waits for the bot's
answer; the first step comes after a random part of one think time, so that the customers do not all
start in the same millisecond (with 0 they do).

Reply latency runs from handing an update to the fake until the fake records the chat's answering
sendMessage. Throughput is steps (answered updates) per second of the walking phase. Two warm-up
customers walk first, one after the other, without thinking; the second one's reply latency (warm, alone)
is the baseline of the same run. At the end the database is asked for overlapping live appointments of
one staff member (there must be none) and for the customers' confirmed bookings. The last line printed
is `p95 reply latency: X ms`.

How an update reaches the bot is one small class; the customers' walk only hands updates to it and waits
for the answer. By default (`Polling`) one Application in this process long-polls the fake. With
`--workers N` (PostgreSQL only) N `python -m bot run` processes in webhook mode answer instead
(bench/workers.py): they reach the fake Bot API and the SMTP server here over the loopback, they read
the system's clock (the practice's weekly hours lie ahead all the same), CPU is counted for this process
and the workers together, and `--profile` sees this process only. Needs the test extras (`pip install -e ".[test]"`).
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import random
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/load.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bench.answers import Answer, AnsweringBotApi, Mailbox  # noqa: E402
from bench.availability import NOW, STAFF, double_bookings, practice_rows  # noqa: E402
from bench.throughput import PostgresSchema  # noqa: E402
from bench.workers import webhook_workers  # noqa: E402
from bot.app import Runtime, open_runtime  # noqa: E402
from bot.mail.smtp import SmtpTransport  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.telegram import TelegramTransport, build_application, start_telegram, stop_telegram  # noqa: E402
from storage.db import Store  # noqa: E402
from storage.models import (  # noqa: E402
    Address,
    Appointment,
    Business,
    Location,
    OpeningHours,
    Person,
    Service,
    Staff,
    StaffHours,
    StaffService,
)
from templates import LANGUAGES, render  # noqa: E402
from tests.fakebotapi import FakeBotApi  # noqa: E402
from tests.smtp import SmtpServer  # noqa: E402

FIRST_USER_ID = 20_000_000  # Telegram ids, far from any other bench's
FIRST_PERSON_ID = 100_000  # above the practice's staff and customers
WARMUP = 2  # customers walking before the others, one after the other: a cold one, then the baseline
MAX_CLICKS = 12  # a walk that has not held a slot after this many buttons gives up
REPLY_WAIT = 60.0  # seconds for one answer before the bench stops as failed
MAIL_WAIT = 30.0  # seconds for the code mail after the hold
STEPS = ["service", "location", "staff", "day", "time", "time again"]  # what the n-th button press picks
TIME_LABEL = re.compile(r"\d:\d\d")  # a time button reads "10:00" (callback data are the router's opaque keys)
MAIL_FROM = "Bench Practice <desk@bench.example>"
ERROR_TEXTS = {render("error", lang).text for lang in LANGUAGES}
TABLES = {"business": Business, "location": Location, "opening_hours": OpeningHours, "service": Service,
          "person": Person, "staff": Staff, "staff_hours": StaffHours, "staff_service": StaffService}


class FixedClock:
    """The bench's moment: Monday 06:00 of the practice's first week, so the days ahead are empty."""

    def now(self):
        return NOW


# ---- how an update reaches the bot -----------------------------------------------------------------


class Delivery(Protocol):
    async def deliver(self, update: dict) -> None:
        """Hand one update to the bot; its answer comes back through the fake Bot API."""


@dataclass
class Polling:
    """One in-process Application takes the updates from the fake with getUpdates."""

    fake: FakeBotApi

    async def deliver(self, update: dict) -> None:
        self.fake.push_update(update)


# ---- the customers ---------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered step
    by_step: dict[str, list[float]] = field(default_factory=dict)  # the same, by the walk's step
    code_waits: list[float] = field(default_factory=list)  # seconds from the hold's answer to the code mail
    errors: int = 0  # answers with the generic error text
    taken: int = 0  # a picked time answered with other times: someone was quicker
    booked: int = 0  # walks that typed their code and were answered without an error
    stuck: int = 0  # walks that held nothing after MAX_CLICKS buttons, or got no code mail


@dataclass
class Customer:
    """One person walking the booking flow; talks to the bot only through `delivery` and the fake's answers."""

    number: int
    fake: AnsweringBotApi
    delivery: Delivery
    mailbox: Mailbox
    tally: Tally
    think: float  # seconds
    rng: random.Random

    @property
    def user_id(self) -> int:
        return FIRST_USER_ID + self.number

    @property
    def email(self) -> str:
        return email_of(self.number)

    async def walk(self) -> None:
        """Book one appointment with buttons and the mailed code, thinking before each step."""
        await asyncio.sleep(self.rng.uniform(0, self.think))
        answer = await self.say("/book", "/book")
        for clicks in range(MAX_CLICKS):
            if answer.text in ERROR_TEXTS or not answer.buttons:
                break
            await self.pause()
            label, data = self.rng.choice(answer.buttons)
            answer = await self.tap(answer, data, STEPS[min(clicks, len(STEPS) - 1)])
            self.tally.taken += bool(TIME_LABEL.search(label) and answer.buttons)
        if answer.text in ERROR_TEXTS:
            return
        if answer.buttons:
            self.tally.stuck += 1
            return
        await self.confirm(answer)

    async def confirm(self, held: Answer) -> None:
        """Wait for the code mail, then type the code."""
        try:
            code, arrived = await asyncio.wait_for(self.mailbox.code_for(self.email), MAIL_WAIT)
        except TimeoutError:
            self.tally.stuck += 1
            return
        self.tally.code_waits.append(max(0.0, arrived - held.at))
        await self.pause()
        answer = await self.say(code, "code")
        self.tally.booked += answer.text not in ERROR_TEXTS

    async def pause(self) -> None:
        if self.think:
            await asyncio.sleep(self.think * self.rng.uniform(0.5, 1.5))

    async def say(self, text: str, step: str) -> Answer:
        return await self.step(self.fake.message_update(self.user_id, text, "en"), step)

    async def tap(self, answer: Answer, data: str, step: str) -> Answer:
        return await self.step(self.fake.callback_update(self.user_id, data, answer.message_id, "en"), step)

    async def step(self, update: dict, step: str) -> Answer:
        """Deliver one update and wait for the chat's answer; its latency goes into the tally."""
        answer = self.fake.expect(self.user_id)
        sent = time.perf_counter()
        await self.delivery.deliver(update)
        try:
            got = await asyncio.wait_for(answer, REPLY_WAIT)
        except TimeoutError:
            raise SystemExit(f"customer {self.number}: no answer within {REPLY_WAIT:.0f} s") from None
        self.tally.latencies.append(got.at - sent)
        self.tally.by_step.setdefault(step, []).append(got.at - sent)
        self.tally.errors += got.text in ERROR_TEXTS
        return got


def email_of(number: int) -> str:
    return f"customer{number}@bench.example"


# ---- the practice and its customers ----------------------------------------------------------------


async def seed(store: Store, customers: int) -> None:
    """The practice of bench/availability.py, and `customers` people with a Telegram chat and a confirmed mail."""
    people = [{"id": FIRST_PERSON_ID + n, "name": f"Bench Customer {n}", "language": "en", "created_at": NOW}
              for n in range(customers)]
    addresses = [{"address": address, "kind": kind, "person_id": FIRST_PERSON_ID + n, "verified": True,
                  "created_at": NOW}
                 for n in range(customers)
                 for kind, address in (("telegram", f"telegram:{FIRST_USER_ID + n}"),
                                       ("email", f"email:{email_of(n)}"))]
    async with store.uow() as uow:
        for name, rows in practice_rows(STAFF).items():
            await uow.session.execute(insert(TABLES[name]), rows)
        await uow.session.execute(insert(Person), people)
        await uow.session.execute(insert(Address), addresses)
        if store.dialect == "postgresql":  # rows inserted with their ids leave the sequences behind
            for table in ("business", "location", "service", "person"):
                await uow.session.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        await uow.commit()


async def confirmed_bookings(store: Store, first: int, customers: int) -> int:
    """Confirmed appointments of customers `first` … `first + customers - 1`, counted by the database."""
    async with store.uow() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Appointment).where(
            Appointment.status == "confirmed", Appointment.customer_id >= FIRST_PERSON_ID + first,
            Appointment.customer_id < FIRST_PERSON_ID + first + customers)) or 0


# ---- one run -------------------------------------------------------------------------------------


@dataclass
class Result:
    users: int
    tally: Tally
    alone: Tally  # one warm customer walking alone, without thinking: the baseline of the same run
    seconds: float  # the timed customers' walks, first step to last answer
    cpu: float  # CPU seconds of the whole process meanwhile (the fake, SMTP server and SQLite included), and workers
    confirmed: int  # by the database
    doubled: int  # overlapping live pairs, by the database
    unasked: int
    database: str
    workers: int = 0  # webhook worker processes; 0: the Application polls in this process

    @property
    def steps(self) -> int:
        return len(self.tally.latencies)


def bench_settings(fake: FakeBotApi, database_url: str) -> Settings:
    """The production defaults for concurrency and pools; the rate limiter off: we measure our code."""
    return Settings(_env_file=None, telegram_token="123:BENCH", telegram_api_url=f"{fake.url}/bot",
                    secret_key=secrets.token_hex(32), telegram_rate_per_second=0, webhook_url="", owners="",
                    mail_from=MAIL_FROM, database_url=database_url)


async def walk_all(customers: list[Customer]) -> None:
    await asyncio.gather(*(c.walk() for c in customers))


async def run(users: int, think: float, seed_value: int, database_url: str, profile: str = "") -> Result:
    """Seed, start the Application and the outbox worker, let the warm-up and then the customers walk."""
    fake = AnsweringBotApi()
    await fake.start()
    smtp = SmtpServer()
    mailbox = smtp.handler = Mailbox(asyncio.get_running_loop())
    smtp.start()
    try:
        settings = bench_settings(fake, database_url)
        runtime = await open_runtime(settings, {"email": SmtpTransport(smtp.url, settings.mail_from)},
                                     clock=FixedClock())
        try:
            await seed(runtime.store, WARMUP + users)
            return await walk_with(runtime, fake, mailbox, users, think, seed_value, profile)
        finally:
            await runtime.close()
    finally:
        smtp.stop()
        await fake.stop()


async def walk_with(runtime: Runtime, fake: AnsweringBotApi, mailbox: Mailbox, users: int, think: float,
                    seed_value: int, profile: str) -> Result:
    app = build_application(runtime.settings, runtime.desk)
    runtime.transports["telegram"] = TelegramTransport(app.bot)
    await start_telegram(app, runtime.settings)
    stop = asyncio.Event()
    outbox = asyncio.create_task(runtime.worker.run(stop))
    try:
        walked = await timed_walks(Polling(fake), fake, mailbox, users, think, seed_value, profile)
    finally:
        stop.set()
        await outbox
        await stop_telegram(app)
    return await result_of(runtime.store, fake, users, walked)


@dataclass
class Walked:
    tally: Tally
    alone: Tally
    seconds: float
    cpu: float


async def timed_walks(delivery: Delivery, fake: AnsweringBotApi, mailbox: Mailbox, users: int, think: float,
                      seed_value: int, profile: str, other_cpu: Callable[[], float] = lambda: 0.0) -> Walked:
    """The warm-up customers one after the other, then the timed ones at once; `other_cpu` counts workers."""
    rng = random.Random(seed_value)
    for n in range(WARMUP):  # the last one's walk, alone and warm, is the baseline
        alone = Tally()
        await Customer(n, fake, delivery, mailbox, alone, 0.0, rng).walk()
    tally = Tally()
    customers = [Customer(WARMUP + n, fake, delivery, mailbox, tally, think, random.Random(rng.random()))
                 for n in range(users)]
    profiler = cProfile.Profile() if profile else None
    started, started_cpu = time.perf_counter(), time.process_time() + other_cpu()
    if profiler:
        profiler.enable()
    await walk_all(customers)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    return Walked(tally, alone, time.perf_counter() - started, time.process_time() + other_cpu() - started_cpu)


async def result_of(store: Store, fake: AnsweringBotApi, users: int, walked: Walked, workers: int = 0) -> Result:
    return Result(users, walked.tally, walked.alone, walked.seconds, walked.cpu,
                  await confirmed_bookings(store, WARMUP, users), await double_bookings(store), fake.unasked,
                  await describe_database(store), workers)


async def run_workers(workers: int, users: int, think: float, seed_value: int, database_url: str,
                      profile: str = "") -> Result:
    """Seed, start the webhook workers, let the warm-up and then the customers walk; stop them however it ends."""
    fake = AnsweringBotApi()
    await fake.start()
    smtp = SmtpServer()
    mailbox = smtp.handler = Mailbox(asyncio.get_running_loop())
    smtp.start()
    store = Store.from_url(database_url)
    try:
        await store.migrate()
        await seed(store, WARMUP + users)
        with tempfile.TemporaryDirectory(prefix="frontdesk-workers-") as folder:
            async with webhook_workers(workers, database_url, fake.url, smtp.url, MAIL_FROM, Path(folder)) as hooks:
                walked = await timed_walks(hooks, fake, mailbox, users, think, seed_value, profile, hooks.cpu)
        return await result_of(store, fake, users, walked, workers)
    finally:
        await store.dispose()
        smtp.stop()
        await fake.stop()


async def describe_database(store: Store) -> str:
    async with store.uow() as uow:
        if store.dialect == "sqlite":
            return f"SQLite {await uow.session.scalar(text('SELECT sqlite_version()'))} (WAL, a temp file)"
        return f"PostgreSQL {await uow.session.scalar(text('SHOW server_version'))}"


# ---- the report ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0…1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def report(result: Result, think_ms: int) -> list[str]:
    t, ms = result.tally, [1000 * s for s in result.tally.latencies]
    workers = f", {result.workers} webhook workers" if result.workers else ""
    whose = "this process and the workers" if result.workers else "the whole process"
    lines = [
        f"{result.users} users walking /book → service → location → staff → day → time → code, think "
        f"{think_ms} ms ± 50 %, on {result.database}{workers}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        f"throughput: {result.steps} steps in {result.seconds:.2f} s = {result.steps / result.seconds:.1f} steps/s "
        f"({1000 * result.cpu / max(1, result.steps):.2f} ms CPU per step, {whose})",
        f"bookings: {t.booked} of {result.users} walks completed, {result.confirmed} confirmed in the database; "
        f"{t.taken} times taken by someone quicker, {t.stuck} walks stuck",
        f"error replies: {t.errors}; messages nobody waited for: {result.unasked}",
    ]
    if t.code_waits:
        lines.append(f"code mail after the hold: median {1000 * statistics.median(t.code_waits):.0f} ms "
                     f"(the outbox worker polls every second)")
    lines.append("reply latency by step, median/p95 ms: " + ", ".join(
        f"{step} {1000 * statistics.median(s):.0f}/{1000 * percentile(s, 0.95):.0f}" for step, s in t.by_step.items()))
    lines.append(f"double bookings (overlapping live pairs, by query): {result.doubled}")
    lines.append(f"reply latency: p50 {percentile(ms, 0.5):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
                 f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms")
    alone = [1000 * s for s in result.alone.latencies]
    p95, baseline = percentile(ms, 0.95), statistics.median(alone)
    lines.append(f"baseline, one customer walking alone: median {baseline:.1f} ms, max {max(alone):.1f} ms "
                 f"→ ratio p95 / alone median {p95 / baseline:.1f}")
    lines.append(f"p95 reply latency: {p95:.1f} ms")
    return lines


async def bench(args: argparse.Namespace) -> Result:
    # SIGTERM (a timeout, `kill`) unwinds like Ctrl-C does, so that the workers are stopped on the way out.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    if args.database_url:
        async with PostgresSchema(args.database_url) as url:
            if args.workers > 1:
                return await run_workers(args.workers, args.users, args.think_ms / 1000, args.seed, url, args.profile)
            return await run(args.users, args.think_ms / 1000, args.seed, url, args.profile)
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as folder:
        url = f"sqlite+aiosqlite:///{folder}/bench.db"
        return await run(args.users, args.think_ms / 1000, args.seed, url, args.profile)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200, help="customers walking at once (default 200)")
    parser.add_argument("--think-ms", type=int, default=2000,
                        help="think time before each step, ± 50 %% (default 2000; 0: none)")
    parser.add_argument("--seed", type=int, default=7, help="for the customers' choices and think times")
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL instead of a temporary SQLite file, e.g. "
                             "postgresql+asyncpg://postgres@127.0.0.1:5432/test (a fresh schema, dropped after)")
    parser.add_argument("--profile", default="", metavar="FILE",
                        help="cProfile the timed walks (the event loop's thread only) into FILE, for pstats")
    parser.add_argument("--workers", type=int, default=1,
                        help="N ≥ 2: N `python -m bot run` webhook workers answer (needs --database-url)")
    args = parser.parse_args(argv)
    if args.workers < 1 or (args.workers > 1 and not args.database_url.startswith("postgresql")):
        parser.error("--workers N ≥ 2 needs --database-url postgresql+asyncpg://…")
    if args.users < 1 or args.think_ms < 0:
        parser.error("need --users ≥ 1 and --think-ms ≥ 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = asyncio.run(bench(args))
    except asyncio.CancelledError:
        raise SystemExit(128 + signal.SIGTERM) from None
    for line in report(result, args.think_ms):
        print(line, flush=True)
    if result.doubled or not result.steps:
        raise SystemExit(f"{result.doubled} double bookings, {result.steps} steps")


if __name__ == "__main__":
    main()
