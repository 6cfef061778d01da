"""Appointments in the store: what blocks a calendar, and claiming or releasing time atomically.

A check-then-insert is never trusted: the slot_claim primary key (staff, 5-minute cell) is what
refuses a second live appointment over the same time.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from handlers.availability import (
    Interval, StaffCalendar, cells, day_bounds, intersect, local_intervals, subtract,
)
from storage.db import UnitOfWork
from storage.models import Appointment, Closure, Location, OpeningHours, SlotClaim, StaffHours, StaffService

LIVE = ("held", "requested", "confirmed")


class SlotTaken(Exception):
    """Someone else holds or booked (part of) this time."""


def live_condition(now: datetime):
    """Held appointments count only until their hold expires: past expiry the slot is free at once."""
    return or_(Appointment.status.in_(("requested", "confirmed")),
               and_(Appointment.status == "held", Appointment.hold_expires_at > now))


@dataclass(frozen=True)
class DayPlan:
    """Everything needed to compute one service's slots on a range of days."""

    opening: dict[tuple[int, int], list[tuple[int, int]]]  # (location, weekday) → ranges
    staff_hours: dict[tuple[int, int, int], list[tuple[int, int]]]  # (staff, location, weekday) → ranges
    closures: list[tuple[int | None, datetime, datetime]]
    busy: dict[int, list[Interval]]

    def calendars(self, day: date, tz: ZoneInfo, location_ids: list[int], staff_ids: list[int]) -> list[StaffCalendar]:
        """Each staff member's bookable windows on `day` at the given locations, minus closures."""
        weekday, bounds = day.weekday(), day_bounds(day, tz)
        out = []
        for staff in staff_ids:
            windows = []
            for location in location_ids:
                opening = local_intervals(day, self.opening.get((location, weekday), []), tz)
                own = local_intervals(day, self.staff_hours.get((staff, location, weekday), []), tz)
                windows += intersect(opening, own)
            mine = [(s, e) for who, s, e in self.closures if who in (None, staff) and e > bounds[0] and s < bounds[1]]
            windows = subtract(sorted(windows), mine)
            if windows:
                out.append(StaffCalendar(staff, windows, self.busy.get(staff, [])))
        return out


async def qualified_staff(uow: UnitOfWork, service_id: int) -> list[int]:
    rows = await uow.session.scalars(select(StaffService.person_id).where(StaffService.service_id == service_id))
    return sorted(rows.all())


async def location_ids(uow: UnitOfWork) -> list[int]:
    return list((await uow.session.scalars(select(Location.id).order_by(Location.id))).all())


async def load_plan(uow: UnitOfWork, staff_ids: list[int], start: datetime, end: datetime, now: datetime) -> DayPlan:
    """Opening hours, staff hours, closures and live appointments between start and end."""
    session = uow.session
    opening = defaultdict(list)
    for row in await session.scalars(select(OpeningHours)):
        opening[(row.location_id, row.weekday)].append((row.start_minute, row.end_minute))
    hours = defaultdict(list)
    for row in await session.scalars(select(StaffHours).where(StaffHours.person_id.in_(staff_ids))):
        hours[(row.person_id, row.location_id, row.weekday)].append((row.start_minute, row.end_minute))
    closures = [(c.staff_id, c.start_at, c.end_at) for c in await session.scalars(
        select(Closure).where(Closure.end_at > start, Closure.start_at < end,
                              or_(Closure.staff_id.is_(None), Closure.staff_id.in_(staff_ids))))]
    busy = defaultdict(list)
    rows = await session.execute(
        select(Appointment.staff_id, Appointment.start_at, Appointment.end_at)
        .where(Appointment.staff_id.in_(staff_ids), Appointment.end_at > start, Appointment.start_at < end,
               live_condition(now))
        .order_by(Appointment.start_at))
    for staff, s, e in rows:
        busy[staff].append((s, e))
    return DayPlan(dict(opening), dict(hours), closures, dict(busy))


async def live_load(uow: UnitOfWork, staff_ids: list[int], start: datetime, end: datetime, now: datetime) -> dict[int, int]:
    """How many live appointments each staff member has in a range (for fair assignment)."""
    rows = await uow.session.execute(
        select(Appointment.staff_id, func.count()).where(
            Appointment.staff_id.in_(staff_ids), Appointment.start_at >= start, Appointment.start_at < end,
            live_condition(now)).group_by(Appointment.staff_id))
    return dict(rows.all())


async def expire_stale_holds(uow: UnitOfWork, staff_id: int, start: datetime, end: datetime, now: datetime) -> None:
    """Free the cells of holds that expired over this time, in the caller's transaction."""
    stale = (await uow.session.scalars(select(Appointment.id).where(
        Appointment.staff_id == staff_id, Appointment.status == "held", Appointment.hold_expires_at <= now,
        Appointment.start_at < end, Appointment.end_at > start))).all()
    if stale:
        await uow.session.execute(delete(SlotClaim).where(SlotClaim.appointment_id.in_(stale)))
        await uow.session.execute(update(Appointment).where(Appointment.id.in_(stale))
                                  .values(status="expired", closed_at=now, closed_by="hold expired"))


async def claim(uow: UnitOfWork, appointment: Appointment, now: datetime) -> None:
    """Claim the appointment's cells or raise SlotTaken; a savepoint keeps the caller's transaction usable."""
    await expire_stale_holds(uow, appointment.staff_id, appointment.start_at, appointment.end_at, now)
    session = uow.session
    try:
        async with session.begin_nested():
            if appointment.id is None:
                session.add(appointment)
                await session.flush()
            await session.execute(insert(SlotClaim), [
                {"staff_id": appointment.staff_id, "cell": cell, "appointment_id": appointment.id}
                for cell in cells(appointment.start_at, appointment.end_at)])
    except IntegrityError as exc:
        raise SlotTaken() from exc


async def release(uow: UnitOfWork, appointment: Appointment, status: str, by: str, reason: str | None,
                  now: datetime) -> None:
    """End a live appointment (cancelled, expired, rejected) and free its time; the row stays for the record."""
    await uow.session.execute(delete(SlotClaim).where(SlotClaim.appointment_id == appointment.id))
    appointment.status, appointment.closed_by, appointment.closed_reason = status, by, reason
    appointment.closed_at = now
    appointment.hold_expires_at = None


async def move(uow: UnitOfWork, appointment: Appointment, start: datetime, now: datetime) -> None:
    """Move to a new start, atomically: old cells are freed and new ones claimed, or SlotTaken and nothing changes."""
    length = appointment.end_at - appointment.start_at
    old = (appointment.start_at, appointment.end_at)
    session = uow.session
    try:
        async with session.begin_nested():
            await session.execute(delete(SlotClaim).where(SlotClaim.appointment_id == appointment.id))
            appointment.start_at, appointment.end_at = start, start + length
            await claim(uow, appointment, now)
    except SlotTaken:
        appointment.start_at, appointment.end_at = old
        raise
    appointment.sequence += 1


def day_range(first: date, days: int, tz: ZoneInfo) -> Interval:
    return day_bounds(first, tz)[0], day_bounds(first + timedelta(days=days - 1), tz)[1]
