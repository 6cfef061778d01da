"""The composition root: settings → store → handlers → desk → outbox worker → channels."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

from bot.mail.imap import ImapIntake
from bot.mail.intake import EmailEdge
from bot.outbox import OutboxWorker
from bot.settings import Settings, SettingsError
from bot.transport import Transport
from handlers import (
    admin,
    booking,
    calendar,
    courses,
    customers,
    exports,
    identity,
    invoices,
    licences,
    members,
    privacy,
    tickets,
    welcome,
)
from handlers.bootstrap import ensure_owners
from handlers.context import Clock, DeskConfig, SystemClock
from handlers.jobs import commands as jobs
from handlers.jobs.runner import JobRunner
from handlers.registry import Handlers
from handlers.reminders import kinds as reminders
from handlers.router import Desk
from handlers.setup import apply_setup, load_setup
from storage.db import Store

log = logging.getLogger(__name__)


def build_handlers() -> Handlers:
    """Every capability, listed explicitly: adding one is adding a line here."""
    return Handlers.combine(
        welcome.handlers(),
        identity.handlers(),
        admin.handlers(),
        tickets.handlers(),
        booking.handlers(),
        calendar.handlers(),
        customers.handlers(),
        members.group_handlers(),
        members.account_handlers(),
        courses.handlers(),
        jobs.handlers(),
        exports.handlers(),
        privacy.handlers(),
        reminders.handlers(),
        invoices.handlers(),
        licences.handlers(),
    )


def desk_config(settings: Settings) -> DeskConfig:
    domain = settings.mail_from.rpartition("@")[2].strip(">").strip() or "frontdesk.local"
    return DeskConfig(
        secret_key=settings.secret_key.encode(),
        default_language=settings.language,
        default_timezone=settings.timezone,
        code_ttl=timedelta(seconds=settings.code_ttl_seconds),
        code_max_per_hour=settings.code_max_per_hour,
        hold_seconds=settings.hold_seconds,
        mail_domain=domain,
        mail_from=parseaddr(settings.mail_from)[1] or "frontdesk@localhost",  # as transport_for sends it
    )


@dataclass
class Runtime:
    settings: Settings
    store: Store
    desk: Desk
    worker: OutboxWorker
    jobs: JobRunner
    transports: dict[str, Transport] = field(default_factory=dict)
    intake: ImapIntake | None = None  # set when FRONTDESK_IMAP_URL is
    clock: Clock = field(default_factory=SystemClock)  # the one the desk and the edges read

    async def close(self) -> None:
        for transport in set(self.transports.values()):
            await transport.close()
        await self.store.dispose()


async def open_runtime(settings: Settings, transports: dict[str, Transport], clock: Clock | None = None,
                       setup: Path | None = None) -> Runtime:
    """Migrate, apply the setup file and owners, and wire the desk and the outbox worker."""
    clock = clock or SystemClock()
    store = Store.from_url(settings.database_url)
    await store.migrate()
    changes = await apply_start_configuration(store, settings, setup or settings.setup, clock)
    for line in changes:
        log.info("setup: %s", line)
    desk = Desk(store, desk_config(settings), build_handlers(), clock)
    worker = OutboxWorker(store, transports, clock=clock, max_attempts=settings.outbox_max_attempts,
                          bounces=desk.bounces)
    runner = JobRunner(desk, desk.jobs, max_attempts=settings.jobs_max_attempts,
                       lease=timedelta(seconds=settings.jobs_lease_seconds))
    return Runtime(settings, store, desk, worker, runner, transports, build_intake(settings, desk, store, clock),
                   clock)


def build_intake(settings: Settings, desk: Desk, store: Store, clock: Clock) -> ImapIntake | None:
    """The IMAP intake when FRONTDESK_IMAP_URL is set; a malformed URL fails at start, naming the variable."""
    if not settings.imap_url:
        return None
    try:
        return ImapIntake(settings.imap_url, EmailEdge(desk, store, clock), poll_seconds=settings.imap_poll_seconds)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


async def apply_start_configuration(store: Store, settings: Settings, setup: Path | None, clock: Clock) -> list[str]:
    """The setup file (if any) and FRONTDESK_OWNERS, in one transaction."""
    async with store.uow() as uow:
        changes = []
        if setup is not None:
            changes += await apply_setup(uow, load_setup(Path(setup)), clock.now())
        changes += await ensure_owners(uow, settings.owner_addresses, clock.now())
        await uow.commit()
    return changes


def demo_secret(path: Path) -> str:
    """Local mode makes its own key once and keeps it beside the database."""
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key
