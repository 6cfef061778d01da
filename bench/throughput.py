"""Messages per second through the real PTB Application and a fake Bot API over loopback: bare echo vs. the full desk.

    python bench/throughput.py [--messages 5000] [--users 500] [--concurrency 16]
                               [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Both runs poll the fake with getUpdates (batches of up to 100) and use the same PTB settings: the
concurrency and connection pools of `bot.telegram.app.application_builder`, and no rate limiter, since
this measures our code, not Telegram's limits. The clock runs from the first pushed update until the
fake has recorded the N-th sendMessage. Each user's messages alternate `/language de` and
`/language en`; in the full run each one loads the speaker (the first creates the person and the
address), writes the person's language and an audit row, renders a template and commits.
The last line printed is `ratio full/echo: X.XX` (the full run on SQLite).

The fake Bot API (tests/fakebotapi.py) runs in this process and event loop, so its own cost (about a
tenth of the echo run's CPU) counts in both runs. It needs the test extras (`pip install -e ".[test]"`).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/throughput.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, MessageHandler, filters  # noqa: E402

from bot.app import open_runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.telegram import application_builder, build_application, start_telegram, stop_telegram  # noqa: E402
from storage.models import Address, Audit  # noqa: E402
from templates import LANGUAGES, render  # noqa: E402
from tests.fakebotapi import FakeBotApi  # noqa: E402

PRACTICE = ROOT / "examples" / "practice.toml"
FIRST_USER_ID = 10_000_000  # far from the demo staff's Telegram ids (1001–1003)
WARMUP_USER_ID = 9_000_000
RUN_TIMEOUT = 80.0  # seconds per timed run: echo and full together stay under three minutes
POSTGRES_TIMEOUT = 160.0  # the optional PostgreSQL run: a server round trip per statement is slower
ERROR_TEXTS = {render("error", lang).text for lang in LANGUAGES}

Plan = Sequence[tuple[int, str]]  # (Telegram user id, text), in push order


class CountingBotApi(FakeBotApi):
    """The fake Bot API, counting sendMessage replies and noting when the expected number has arrived."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sent = self.errors = self.expected = 0
        self.finished_at = self.finished_cpu = 0.0
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        """Count replies from zero and set `done` at the `count`-th."""
        self.sent = self.errors = 0
        self.expected = count
        self.done.clear()

    async def _send_message(self, params: dict) -> dict:
        result = await super()._send_message(params)
        self.sent += 1
        self.errors += params["text"] in ERROR_TEXTS
        if self.sent == self.expected:
            self.finished_at, self.finished_cpu = time.perf_counter(), time.process_time()
            self.done.set()
        return result


@dataclass
class Timing:
    seconds: float  # wall clock, first push to the last reply
    cpu: float  # CPU seconds of the whole process in that time (all threads, the in-process fake included)


@dataclass
class Result:
    name: str
    messages: int
    timing: Timing
    note: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.timing.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.timing.cpu / self.messages


# ---- what is sent --------------------------------------------------------------------------------


def language_plan(messages: int, users: int, first_id: int = FIRST_USER_ID) -> list[tuple[int, str]]:
    """Round-robin over the users; each user's messages alternate `/language de` and `/language en`."""
    return [(first_id + i % users, "/language de" if (i // users) % 2 == 0 else "/language en")
            for i in range(messages)]


async def drive(fake: CountingBotApi, plan: Plan, timeout: float) -> Timing:
    """Queue every message of the plan at once; time it until the last reply was sent."""
    updates = [fake.message_update(user_id, text, "en") for user_id, text in plan]
    fake.expect(len(updates))
    started, started_cpu = time.perf_counter(), time.process_time()
    for update in updates:
        fake.push_update(update)
    try:
        await asyncio.wait_for(fake.done.wait(), timeout)
    except TimeoutError:
        raise SystemExit(f"only {fake.sent} of {len(updates)} replies within {timeout:.0f} s "
                         f"({fake.sent / timeout:.0f} messages/s)") from None
    return Timing(fake.finished_at - started, fake.finished_cpu - started_cpu)


# ---- the two applications ------------------------------------------------------------------------


def bench_settings(fake: FakeBotApi, concurrency: int, database_url: str = "") -> Settings:
    """The same PTB settings for both runs; rate limiter off (0): we measure our code, not Telegram's limits."""
    values = dict(telegram_token="123:BENCH", telegram_api_url=f"{fake.url}/bot", secret_key=secrets.token_hex(32),
                  telegram_rate_per_second=0, telegram_concurrency=concurrency, webhook_url="", owners="")
    if database_url:
        values["database_url"] = database_url
    return Settings(_env_file=None, **values)


async def echo(update: Update, context) -> None:
    """Send the text straight back."""
    await context.bot.send_message(update.effective_message.chat_id, update.effective_message.text)


def echo_application(settings: Settings) -> Application:
    """A bare Application with frontdesk's builder settings, answering every private message with its text."""
    app = application_builder(settings).post_init(None).build()  # no menu to publish
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE, echo))
    return app


async def timed(fake: CountingBotApi, app: Application, settings: Settings, plan: Plan, warmup: Plan,
                timeout: float = RUN_TIMEOUT) -> Timing:
    """Start the app, send a short untimed warm-up, then time the plan; the app is stopped in any case."""
    await start_telegram(app, settings)
    try:
        if warmup:
            await drive(fake, warmup, timeout)
        return await drive(fake, plan, timeout)
    except BaseException:
        abandon_backlog(app)
        raise
    finally:
        await stop_telegram(app)


def abandon_backlog(app: Application) -> None:
    """Cancel the updates taken but not answered: Application.stop() would first work through all of them."""
    # With concurrent updates PTB turns every fetched update into a task at once, under this name.
    name = f"Application:{app.bot.id}:process_concurrent_update"
    warnings.filterwarnings("ignore", "coroutine 'Application.process_update' was never awaited", RuntimeWarning)
    for task in asyncio.all_tasks():
        if task.get_name() == name:
            task.cancel()


async def run_echo(plan: Plan, warmup: Plan, concurrency: int) -> Result:
    """The baseline: PTB and the fake Bot API, no frontdesk code."""
    fake = CountingBotApi()
    await fake.start()
    try:
        settings = bench_settings(fake, concurrency)
        timing = await timed(fake, echo_application(settings), settings, plan, warmup)
        return Result("echo", len(plan), timing, batches(fake))
    finally:
        await fake.stop()


async def run_full(plan: Plan, warmup: Plan, concurrency: int, database_url: str, name: str) -> Result:
    """The real frontdesk Application and Desk over a migrated store with the demo practice applied."""
    fake = CountingBotApi()
    await fake.start()
    try:
        settings = bench_settings(fake, concurrency, database_url)
        runtime = await open_runtime(settings, {}, setup=PRACTICE)
        try:
            app = build_application(settings, runtime.desk)
            timeout = RUN_TIMEOUT if runtime.store.dialect == "sqlite" else POSTGRES_TIMEOUT
            timing = await timed(fake, app, settings, plan, warmup, timeout)
            note = batches(fake) + "; " + await full_run_checks(runtime.store, fake, len(plan) + len(warmup))
        finally:
            await runtime.close()
        return Result(name, len(plan), timing, note)
    finally:
        await fake.stop()


def batches(fake: FakeBotApi) -> str:
    """How the fake served the updates: getUpdates calls that returned some, and their mean size."""
    sizes = [len(c.result) for c in fake.calls_of("getUpdates") if c.result]
    return f"{sum(sizes)} updates in {len(sizes)} getUpdates batches (mean {sum(sizes) / max(1, len(sizes)):.0f})"


async def full_run_checks(store, fake: CountingBotApi, messages: int) -> str:
    """Confirm every message was a real write: one language_set audit row each, and no error replies."""
    async with store.uow() as uow:
        audits = await uow.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "language_set"))
        people = await uow.session.scalar(select(func.count()).select_from(Address).where(Address.kind == "telegram"))
    if audits != messages or fake.errors:
        raise SystemExit(f"full run did not do its writes: {audits} language_set audit rows for {messages} "
                         f"messages, {fake.errors} error replies")
    return f"{audits} language_set audit rows, {people} Telegram addresses (3 are demo staff), 0 error replies"


# ---- the stores ----------------------------------------------------------------------------------


class PostgresSchema:
    """Create the schema named by `?search_path=` (a fresh one if none is named) and drop it afterwards."""

    def __init__(self, url: str):
        parsed = make_url(url)
        self.schema = parsed.query.get("search_path") or f"bench_{secrets.token_hex(4)}"
        self.url = parsed.update_query_dict({"search_path": self.schema}).render_as_string(hide_password=False)
        self.connect = dict(host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username,
                            password=parsed.password, database=parsed.database)

    async def _execute(self, sql: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(**self.connect, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def __aenter__(self) -> str:
        # A schema that already exists is refused rather than reused: it is dropped at the end.
        await self._execute(f'CREATE SCHEMA "{self.schema}"')
        return self.url

    async def __aexit__(self, *exc) -> None:
        await self._execute(f'DROP SCHEMA "{self.schema}" CASCADE')


# ---- main ----------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> list[Result]:
    """Echo and full on SQLite, alternating, `--rounds` times; then full on PostgreSQL if a URL was given."""
    plan = language_plan(args.messages, args.users)
    warmup = language_plan(args.warmup, args.warmup, WARMUP_USER_ID)
    results = []
    for _ in range(args.rounds):
        if args.only in (None, "echo"):
            results.append(report(await run_echo(plan, warmup, args.concurrency)))
        if args.only in (None, "full"):
            with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as tmp:
                url = f"sqlite+aiosqlite:///{tmp}/bench.db"
                results.append(report(await run_full(plan, warmup, args.concurrency, url, "full")))
    if args.database_url:
        async with PostgresSchema(args.database_url) as url:
            results.append(report(await run_full(plan, warmup, args.concurrency, url, "full (postgresql)")))
    return results


def report(result: Result) -> Result:
    print(f"{result.name}: {result.rate:.0f} messages/s ({result.messages} messages in {result.timing.seconds:.2f} s,"
          f" {result.cpu_ms:.2f} ms CPU per message)", flush=True)
    if result.note:
        print(f"  {result.note}", flush=True)
    return result


def summary(results: list[Result]) -> list[str]:
    """Ratios to the echo run (medians over rounds); the line for the full run on SQLite comes last."""
    runs: dict[str, list[Result]] = {}
    for result in results:
        runs.setdefault(result.name, []).append(result)
    if "echo" not in runs:
        return []
    rate = {name: statistics.median(r.rate for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r.cpu_ms for r in rs) for name, rs in runs.items()}
    lines = [f"{name}: median {rate[name]:.0f} messages/s over {len(rs)} rounds"
             for name, rs in runs.items() if len(rs) > 1]
    for name in runs:
        if name.startswith("full"):
            # CPU per message moves less than wall time when other processes share the machine.
            lines.append(f"CPU per message, echo/{name}: {cpu['echo'] / cpu[name]:.2f}")
    for name in runs:
        if name.startswith("full "):
            lines.append(f"ratio {name.replace('full ', 'full')}/echo: {rate[name] / rate['echo']:.2f}")
    if "full" in runs:
        pairs = zip(runs["echo"], runs["full"])  # each round's pair ran back to back
        lines.append(f"ratio full/echo: {statistics.median(f.rate / e.rate for e, f in pairs):.2f}")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per run (default 5000)")
    parser.add_argument("--users", type=int, default=500, help="distinct Telegram users (default 500)")
    parser.add_argument("--concurrency", type=int, default=Settings.model_fields["telegram_concurrency"].default,
                        help="FRONTDESK_TELEGRAM_CONCURRENCY for both runs (default: the setting's default)")
    parser.add_argument("--rounds", type=int, default=1, help="echo+full pairs; ratios are medians (default 1)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed messages before each run (default 50)")
    parser.add_argument("--database-url", default="",
                        help="also run the full run here, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test"
                             "?search_path=SCHEMA (the schema is created and dropped; a fresh name if none)")
    parser.add_argument("--only", choices=("echo", "full"), help="run only this one (for profiling)")
    args = parser.parse_args(argv)
    if args.messages < 1 or not 1 <= args.users <= args.messages:
        parser.error("need 1 ≤ --users ≤ --messages")
    if args.rounds < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--rounds and --concurrency must be at least 1, --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"{args.messages} messages from {args.users} users, concurrency {args.concurrency}, "
          f"getUpdates batches of up to 100, rate limiter off", flush=True)
    results = asyncio.run(bench(args))
    for line in summary(results):
        print(line)


if __name__ == "__main__":
    main()
