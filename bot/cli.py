"""`frontdesk demo | run | chat --as ADDRESS | setup FILE | migrate` (also `python -m bot`)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.app import Runtime, demo_secret, open_runtime
from bot.console import AnnouncingTransport, Console, speaker_worker
from bot.housekeeping import Housekeeping
from bot.mail.smtp import EmlDirTransport, transport_for
from bot.periodic import repeat
from bot.settings import Settings, SettingsError, describe_invalid
from handlers.bootstrap import BootstrapError
from handlers.setup import SetupError, apply_setup, load_setup
from storage.db import Store

if TYPE_CHECKING:
    from bot.api import ApiServer
    from bot.metrics import MetricsServer

log = logging.getLogger("frontdesk")
DEMO_SPEAKER = "console:guest"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frontdesk", description="Front desk assistant over Telegram and email.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="local mode: SQLite, the demo practice, console chat, mail to ./frontdesk-outbox/")
    sub.add_parser("run", help="every configured channel, the scheduler, the outbox worker and the homepage API")
    chat = sub.add_parser("chat", help="the console channel against the configured database")
    chat.add_argument("--as", dest="speaker", default=DEMO_SPEAKER, help="address to speak as, e.g. telegram:1001")
    setup = sub.add_parser("setup", help="apply a setup file (idempotent) and print what changed")
    setup.add_argument("file", type=Path)
    sub.add_parser("migrate", help="bring the database schema up to date")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # one line naming the variable, not pydantic's report with the values
        return fail(f"configuration error: {describe_invalid(exc)}")
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command in ("demo", "chat") and logging.getLogger().level >= logging.INFO:
        # The schema steps are worth a line in a server's log, not on a newcomer's screen.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    commands = {"demo": demo, "run": run, "chat": chat, "setup": setup, "migrate": migrate}
    try:
        return asyncio.run(commands[args.command](settings, args))
    except (SettingsError, SetupError, BootstrapError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130


def fail(message: str) -> int:
    print(f"frontdesk: {message}", file=sys.stderr)
    return 2


async def demo(settings: Settings, args) -> int:
    """Local mode with the demo practice; piped input is read line by line and ends with exit 0.

    The only process of its world, so it delivers too: mail into the outbox folder, chat messages to
    their addressee when the console speaks as them."""
    if not settings.secret_key:
        settings.secret_key = demo_secret(Path(".frontdesk-secret"))
    example = resources.files("examples").joinpath("practice.toml")
    with resources.as_file(example) as path:
        runtime = await open_runtime(settings, {}, setup=path)
    return await console_session(runtime, DEMO_SPEAKER, deliver=True)


async def chat(settings: Settings, args) -> int:
    """The console beside `frontdesk run`: it shows its speaker's replies and leaves the outbox to run."""
    settings.require_secret()
    runtime = await open_runtime(settings, {})
    return await console_session(runtime, args.speaker, deliver=False)


async def console_session(runtime: Runtime, speaker: str, deliver: bool) -> int:
    settings, lang = runtime.settings, runtime.desk.config.default_language
    console = Console(runtime.desk, None, speaker, sys.stdout, lang, files=settings.files_dir)
    if deliver:
        mail = AnnouncingTransport(EmlDirTransport(settings.outbox_dir, settings.mail_from or "frontdesk@localhost"),
                                   sys.stdout, lang)
        console.worker = speaker_worker(runtime.store, console, mail, settings.outbox_max_attempts)
        console.jobs = runtime.jobs.run_due  # the only process of its world runs its reminders and agendas too
    try:
        await console.run(sys.stdin)
    finally:
        if console.worker is not None:
            await console.worker.close()
        await runtime.close()
    return 0


async def run(settings: Settings, args) -> int:
    """Every configured channel until SIGINT/SIGTERM, then a clean stop."""
    settings.require_secret()
    settings.require_mail_from()
    transports = {"email": transport_for(settings)}
    runtime = await open_runtime(settings, transports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    metrics = None
    try:  # metrics first: they observe the desk from its first message on
        metrics = await start_metrics_channel(runtime) if settings.metrics_listen else None
        telegram_app = await start_telegram_channel(runtime) if settings.telegram_token else None
    except BaseException:
        await stop_channels(None, None, metrics)
        await runtime.close()
        raise
    if telegram_app is None:
        log.warning("FRONTDESK_TELEGRAM_TOKEN is not set: Telegram is off")
    try:
        api = await start_api_channel(runtime) if settings.api_listen else None
    except BaseException:
        await stop_channels(telegram_app, None, metrics)
        await runtime.close()
        raise
    tasks = [asyncio.create_task(runtime.worker.run(stop)),
             asyncio.create_task(Housekeeping(runtime.store, runtime.clock).run(stop)),
             asyncio.create_task(repeat(runtime.jobs.run_due, stop, settings.jobs_poll_seconds, "job round"))]
    if runtime.intake is not None:
        tasks.append(asyncio.create_task(runtime.intake.run(stop)))  # beside the outbox worker; stops with it
    else:
        log.info("FRONTDESK_IMAP_URL is not set: no mail intake")
    log.info("frontdesk is running; stop with Ctrl-C or SIGTERM")
    await stop.wait()
    await asyncio.gather(*tasks)
    await stop_channels(telegram_app, api, metrics)
    await runtime.close()
    log.info("frontdesk stopped")
    return 0


async def start_api_channel(runtime: Runtime) -> ApiServer:
    from bot.api import start_api  # imported only when asked for, as Telegram is

    return await start_api(runtime.settings, runtime.desk)


async def start_metrics_channel(runtime: Runtime) -> MetricsServer:
    from bot.metrics import start_metrics  # prometheus_client only when asked for

    return await start_metrics(runtime.settings.metrics_listen, runtime.desk, runtime.intake)


async def stop_channels(telegram_app, api: ApiServer | None, metrics: MetricsServer | None = None) -> None:
    """Stop taking new work at the edges: the homepage API (running requests finish), then Telegram; the
    metrics last, so they see the stop."""
    if api is not None:
        await api.close()
    if telegram_app is not None:
        from bot.telegram import stop_telegram

        await stop_telegram(telegram_app)
    if metrics is not None:
        await metrics.close()


async def start_telegram_channel(runtime: Runtime):
    from bot.telegram import TelegramTransport, build_application, start_telegram

    app = build_application(runtime.settings, runtime.desk)
    runtime.transports["telegram"] = TelegramTransport(app.bot)
    try:
        await start_telegram(app, runtime.settings)
    except OSError as exc:  # the webhook cannot listen: the address is not ours, the port taken, the name unknown
        await app.shutdown()
        raise SettingsError(f"FRONTDESK_WEBHOOK_LISTEN {runtime.settings.webhook_listen!r}: cannot listen there "
                            f"({exc.strerror or exc})") from exc
    return app


async def setup(settings: Settings, args) -> int:
    """Apply a setup file and print what changed."""
    spec = load_setup(args.file)
    store = Store.from_url(settings.database_url)
    try:
        await store.migrate()
        async with store.uow() as uow:
            from handlers.context import SystemClock

            changes = await apply_setup(uow, spec, SystemClock().now())
            await uow.commit()
    finally:
        await store.dispose()
    print("\n".join(changes) if changes else f"{args.file}: no changes")
    return 0


async def migrate(settings: Settings, args) -> int:
    store = Store.from_url(settings.database_url)
    try:
        await store.migrate()
    finally:
        await store.dispose()
    print("database schema is up to date")
    return 0
