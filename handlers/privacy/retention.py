"""`[business] retention_days`: a daily job deletes processed raw mails and closed tickets older than that.

The job reschedules its next run itself, at night in the business's time zone, keyed by that local day:
applying the setup file schedules the same key, so the chain is never doubled. With the setting off the
job does nothing and schedules nothing; setting it again (setup apply) starts a new chain.
Mails that failed stay: they wait for a person (bot/mail/intake.py keeps them raw for that).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, delete

from handlers.context import Context, table
from handlers.jobs.table import Due, schedule
from handlers.privacy.rules import next_retention_run, retention_key
from storage.db import UnitOfWork
from storage.models import MailIntake, Ticket

log = logging.getLogger(__name__)

RETENTION_JOB = "privacy_retention"
DONE_MAILS = ("processed", "ignored")  # taken in and finished with; a failed one waits for a person


async def schedule_retention(uow: UnitOfWork, zone: str, now: datetime) -> datetime | None:
    """Schedule the next nightly run unless it is there already; its time when it was added."""
    due = next_retention_run(now, zone)
    added = await schedule(uow, RETENTION_JOB, retention_key(due, zone), due, now)
    return due if added else None


async def run_retention(ctx: Context, due: Due) -> str | None:
    """Delete what is older than the business keeps, say so in the log and the audit, then plan the next run."""
    days = ctx.business.retention_days if ctx.business else None
    if not days:
        return "retention_days is off"
    cutoff = ctx.now - timedelta(days=days)
    mails, tickets = await delete_old(ctx.uow, cutoff)
    log.info("retention: %d mail(s) and %d closed ticket(s) older than %d days deleted", mails, tickets, days)
    await ctx.audit("retention_deleted", None, mails=mails, tickets=tickets, days=days, before=cutoff.isoformat())
    await schedule_retention(ctx.uow, ctx.tz, ctx.now)
    return None


async def delete_old(uow: UnitOfWork, cutoff: datetime) -> tuple[int, int]:
    """Delete processed mails received and closed tickets last changed before `cutoff`; how many of each.

    A ticket's messages go with it (ON DELETE CASCADE). One conditional DELETE decides: a ticket reopened
    at this moment no longer matches `status = 'closed'` when PostgreSQL re-checks the row, so it stays."""
    m, t = table(MailIntake).c, table(Ticket).c
    mails = cast(CursorResult, await uow.session.execute(
        delete(table(MailIntake)).where(m.status.in_(DONE_MAILS), m.received_at < cutoff)))
    tickets = cast(CursorResult, await uow.session.execute(
        delete(table(Ticket)).where(t.status == "closed", t.updated_at < cutoff)))
    return mails.rowcount, tickets.rowcount
