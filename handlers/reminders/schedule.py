"""Scheduling reminders and agendas as jobs: the one place each event (confirmed, moved, ended; an agenda
set, changed or sent) touches the job table.

Every path that confirms an appointment calls `schedule_reminders`; handlers.appointments calls
`drop_reminders` when it ends one (cancelled, rejected, expired) and `move_reminders` when it moves one.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, delete, select

from handlers.context import table
from handlers.jobs.table import drop, schedule
from handlers.reminders.rules import (
    DEFAULT_REMINDERS,
    agenda_due,
    agenda_key,
    first_agenda_day,
    reminder_key,
    reminders_ahead,
    utc_text,
)
from storage.db import UnitOfWork
from storage.models import Appointment, Business, Job, Staff

REMINDER = "reminder"
AGENDA = "agenda"


async def reminder_labels(uow: UnitOfWork) -> list[str]:
    """The business's reminders ("24h", "90m"); the default before any setup."""
    business = await uow.session.get(Business, 1)
    return list(business.reminders) if business is not None else list(DEFAULT_REMINDERS)


async def schedule_reminders(uow: UnitOfWork, appointment: Appointment, now: datetime) -> int:
    """A job for each reminder of a confirmed appointment that is still ahead; how many were added.

    Jobs are unique per (kind, key) and the key names the appointment, offset and start: calling this
    twice, or from two workers, adds each reminder once.
    """
    if appointment.status != "confirmed":
        return 0
    added = 0
    for label, due in reminders_ahead(appointment.start_at, await reminder_labels(uow), now):
        payload = {"appointment": appointment.id, "offset": label, "start": utc_text(appointment.start_at)}
        added += await schedule(uow, REMINDER, reminder_key(appointment.id, label, appointment.start_at), due, now,
                                payload)
    return added


async def drop_reminders(uow: UnitOfWork, appointment: Appointment, start: datetime | None = None) -> int:
    """Forget the reminders of a confirmed appointment (starting at `start`, its own start by default) that
    have not gone out; how many went. Exact keys, not a prefix: the key index finds them among years of
    done jobs. One left behind by a change of the business's reminders is skipped when it comes due."""
    if appointment.status != "confirmed":  # only confirmed appointments have reminders
        return 0
    start = start or appointment.start_at
    keys = [reminder_key(appointment.id, label, start) for label in await reminder_labels(uow)]
    if not keys:
        return 0
    jobs = table(Job).c
    gone = cast(CursorResult, await uow.session.execute(delete(table(Job)).where(
        jobs.kind == REMINDER, jobs.key.in_(keys), jobs.done_at.is_(None), jobs.failed_at.is_(None))))
    return gone.rowcount


async def move_reminders(uow: UnitOfWork, appointment: Appointment, old_start: datetime, now: datetime) -> None:
    """The reminders follow the appointment to its new start (those already sent stay on record)."""
    await drop_reminders(uow, appointment, old_start)
    await schedule_reminders(uow, appointment, now)


async def remind_upcoming(uow: UnitOfWork, now: datetime) -> int:
    """Schedule the reminders every upcoming confirmed appointment lacks (after the business changed its
    reminders); ones no longer configured are skipped when they come due."""
    upcoming = await uow.session.scalars(select(Appointment).where(
        Appointment.status == "confirmed", Appointment.start_at > now))
    return sum([await schedule_reminders(uow, appointment, now) for appointment in upcoming.all()])


# ---- the daily agenda -----------------------------------------------------------------------------


async def schedule_agenda(uow: UnitOfWork, staff_id: int, minute: int, tz: ZoneInfo, now: datetime,
                          earliest: date) -> date:
    """Make sure the next agenda from `earliest` on is scheduled; returns its day.

    A day whose job exists and waits is the next one already. A day whose job ran (or gave up) is skipped:
    nobody gets a day's agenda twice, also when its time changes after it went out.
    """
    day = first_agenda_day(minute, tz, now, earliest)
    for _ in range(3):
        key = agenda_key(staff_id, day)
        payload = {"staff": staff_id, "day": day.isoformat(), "minute": minute, "tz": tz.key}
        if await schedule(uow, AGENDA, key, agenda_due(day, minute, tz), now, payload):
            return day
        if await waiting(uow, AGENDA, key):
            return day
        day = first_agenda_day(minute, tz, now, day + timedelta(days=1))
    raise RuntimeError(f"no free day for the agenda of staff {staff_id}")  # three done days ahead: impossible


async def waiting(uow: UnitOfWork, kind: str, key: str) -> bool:
    jobs = table(Job).c
    return await uow.session.scalar(select(jobs.id).where(
        jobs.kind == kind, jobs.key == key, jobs.done_at.is_(None), jobs.failed_at.is_(None))) is not None


async def agenda_in_line(uow: UnitOfWork, staff_id: int, minute: int | None, tz: ZoneInfo, now: datetime) -> bool:
    """After the setup was applied: the waiting agenda job matches the staff member's time and the business's
    time zone, or there is none when the agenda is off. True if anything changed."""
    jobs = table(Job).c
    pending = (await uow.session.execute(select(jobs.payload).where(
        jobs.kind == AGENDA, jobs.key.startswith(f"{staff_id}:", autoescape=True), jobs.done_at.is_(None),
        jobs.failed_at.is_(None)))).scalars().all()
    if minute is None:
        return await drop(uow, AGENDA, f"{staff_id}:") > 0
    if len(pending) == 1 and pending[0].get("minute") == minute and pending[0].get("tz") == tz.key:
        return False
    await drop(uow, AGENDA, f"{staff_id}:")
    await schedule_agenda(uow, staff_id, minute, tz, now, now.astimezone(tz).date())
    return True


async def agendas_in_line(uow: UnitOfWork, now: datetime) -> list[int]:
    """`agenda_in_line` for every staff member; returns whose agenda job changed."""
    business = await uow.session.get(Business, 1)
    if business is None:
        return []
    tz = ZoneInfo(business.timezone)
    changed = []
    for staff_id, minute in (await uow.session.execute(select(Staff.person_id, Staff.agenda_minute)
                                                       .order_by(Staff.person_id))).all():
        if await agenda_in_line(uow, staff_id, minute, tz, now):
            changed.append(staff_id)
    return changed
