"""Building and running the Telegram application: token, pools, rate limiter; webhook or long polling."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.settings import Settings, parse_listen
from bot.telegram.inbox import UpdateInbox
from bot.telegram.menu import CommandsFor, customer_menu, publish_commands
from bot.telegram.removals import Removals
from bot.telegram.updates import BotContext, SenderOrder, on_click, on_error, on_message
from bot.telegram.webhook import InboxWorker, Webhook
from handlers.router import Desk

POOL_HEADROOM = 4  # connections beyond the update concurrency: error messages, outbox, menu


def build_application(settings: Settings, desk: Desk, *, commands_for: CommandsFor | None = None) -> Application:
    """Build the PTB Application that carries updates to `desk` and its replies back."""
    app = application_builder(settings).build()
    app.bot_data["desk"] = desk
    app.bot_data["removals"] = Removals(desk.store, desk.clock)
    app.bot_data["typing_after"] = settings.telegram_typing_after_seconds
    app.bot_data["commands_for"] = commands_for or customer_menu(desk)
    app.add_handler(CallbackQueryHandler(on_click))
    # Only private chats: replies carry codes and bookings that a group must not read.
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE, on_message))
    app.add_error_handler(on_error)
    return app


def application_builder(settings: Settings) -> ApplicationBuilder:
    """Token, URLs, concurrency, connection pools and the rate limiter for outgoing calls, from the settings."""
    concurrency = max(1, settings.telegram_concurrency)
    builder = (
        Application.builder()
        .token(settings.telegram_token)
        .base_url(settings.telegram_api_url)
        .base_file_url(file_url(settings.telegram_api_url))
        .concurrent_updates(SenderOrder(concurrency))
        # Measured: concurrency above the pool size only queues for connections (PERFORMANCE.md).
        .connection_pool_size(concurrency + POOL_HEADROOM)
        .get_updates_connection_pool_size(1)
        .context_types(ContextTypes(context=BotContext))
        .post_init(publish_commands)
    )
    if settings.telegram_rate_per_second > 0:  # 0 turns the limiter off
        # One retry after a flood wait: the user would rather wait a second than get an error.
        # PTB types the builder's limiter arguments as None until a limiter is set: AIORateLimiter's are int.
        builder = builder.rate_limiter(AIORateLimiter(  # type: ignore[arg-type]
            overall_max_rate=settings.telegram_rate_per_second, overall_time_period=1, max_retries=1))
    return builder


def file_url(api_url: str) -> str:
    """The file download base that belongs to a Bot API base: …/bot → …/file/bot."""
    base = api_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("bot")] + "file/bot"
    return base + "/file/bot"


async def start_telegram(app: Application, settings: Settings) -> None:
    """Start taking updates: long polling, or a webhook server when FRONTDESK_WEBHOOK_URL is set."""
    await app.initialize()
    if app.post_init is not None:  # PTB calls post_init only from run_polling/run_webhook
        await app.post_init(app)
    allowed = [Update.MESSAGE, Update.CALLBACK_QUERY]
    updater = app.updater
    if updater is None:
        raise RuntimeError("the application was built without an updater, so it cannot take updates")
    if settings.webhook_url:
        await start_webhook(app, settings, allowed)
    else:
        await updater.start_polling(allowed_updates=allowed)
    await app.start()
    removals: Removals | None = app.bot_data.get("removals")  # an app not built here may have none
    if removals is not None:
        removals.start(app.bot)  # first of all, what a crash left waiting


async def start_webhook(app: Application, settings: Settings, allowed: list[str]) -> None:
    """Listen for Telegram's posts, register the URL with its secret, and answer what the inbox holds
    (also what other workers stored or left behind)."""
    desk: Desk = app.bot_data["desk"]
    inbox = UpdateInbox(desk.store, desk.clock, timedelta(seconds=settings.webhook_lease_seconds))
    worker = InboxWorker(app, inbox, settings.telegram_concurrency, settings.outbox_max_attempts)
    # Always with a secret: without one, anyone who finds the URL could post updates as anyone.
    hook = Webhook(inbox, settings.webhook_secret_token, urlsplit(settings.webhook_url).path, worker.wake)
    await hook.start(*parse_listen(settings.webhook_listen))
    app.bot_data["webhook"] = (hook, worker)
    await app.bot.set_webhook(settings.webhook_url, secret_token=settings.webhook_secret_token,
                              allowed_updates=allowed)
    worker.start()


async def stop_telegram(app: Application) -> None:
    """Stop taking updates, let running handlers finish, and close the connections."""
    if "webhook" in app.bot_data:
        hook, worker = app.bot_data.pop("webhook")
        await hook.close()
        await worker.stop()
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    removals: Removals | None = app.bot_data.get("removals")
    if removals is not None:
        await removals.stop(app.bot)  # after the handlers finished, before the connections close
    await app.shutdown()
