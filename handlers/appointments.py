"""Appointments in the store: what blocks a calendar, and claiming or releasing time atomically.

A check-then-insert is never trusted: the slot_claim primary key (staff, 5-minute cell) is what
refuses a second live appointment over the same time.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from handlers.context import table
from handlers.reminders.schedule import drop_reminders, move_reminders
from handlers.rules.availability import (
    Interval,
    StaffCalendar,
    cells,
    day_bounds,
    intersect,
    local_intervals,
    subtract,
)
from handlers.rules.holidays import effective_code, holiday_on, holidays_between
from storage.db import UnitOfWork
from storage.dialect import joined_strings
from storage.models import (
    Appointment,
    Business,
    Closure,
    Location,
    OpeningHours,
    SlotClaim,
    Staff,
    StaffHours,
    StaffService,
)

LIVE = ("held", "requested", "confirmed")


class SlotTaken(Exception):
    """Someone else holds or booked (part of) this time."""


def live_condition(now: datetime | BindParameter, status=Appointment.status,
                   hold_expires_at=Appointment.hold_expires_at):
    """Held appointments count only until their hold expires: past expiry the slot is free at once."""
    return or_(status.in_(("requested", "confirmed")), and_(status == "held", hold_expires_at > now))


def unindexed(column, dialect: str):
    """The column as SQLite's planner may not look it up by (a unary plus): one branch per dialect.

    Without statistics SQLite takes an OR of two status lookups for cheaper than a few dozen staff
    ranges, and then reads every confirmed appointment ever made. PostgreSQL weighs its statistics.
    """
    if dialect == "sqlite":
        return UnaryExpression(column, operator=custom_op("+"), type_=column.type)
    return column


@dataclass(frozen=True)
class DayPlan:
    """Everything needed to compute one service's slots on a range of days."""

    opening: dict[tuple[int, int], list[tuple[int, int]]]  # (location, weekday) → ranges
    staff_hours: dict[tuple[int, int, int], list[tuple[int, int]]]  # (staff, location, weekday) → ranges
    closures: list[tuple[int | None, datetime, datetime]]
    busy: dict[int, list[Interval]]
    holidays: Mapping[int, Mapping[date, str]] = field(default_factory=dict)  # location → its public holidays

    def calendars(self, day: date, tz: ZoneInfo, location_ids: list[int], staff_ids: list[int],
                  holidays: bool = True) -> list[StaffCalendar]:
        """Each staff member's bookable windows on `day` at the given locations, minus closures and (unless
        told otherwise) public holidays.

        This is the one place that decides what is open: the walk, the typed form, moves and the homepage's
        free times all read their slots from here.
        """
        weekday, bounds = day.weekday(), day_bounds(day, tz)
        local = _LocalRanges(day, tz)  # staff mostly share their hours: convert each range set once a day
        closures = [(who, s, e) for who, s, e in self.closures if e > bounds[0] and s < bounds[1]]
        open_here = [location for location in location_ids if not (holidays and self.closed_on(location, day))]
        shared: dict[tuple, list[Interval]] = {}  # (location, hours) → the open part of those hours that day
        out = []
        for staff in staff_ids:
            windows = []
            for location in open_here:
                own = self.staff_hours.get((staff, location, weekday))
                if own:
                    key = (location, tuple(map(tuple, own)))
                    if key not in shared:
                        shared[key] = intersect(local(self.opening.get((location, weekday), [])), local(own))
                    windows += shared[key]
            windows = subtract(sorted(windows), [(s, e) for who, s, e in closures if who in (None, staff)])
            if windows:
                out.append(StaffCalendar(staff, windows, self.busy.get(staff, [])))
        return out

    def closed_on(self, location: int, day: date) -> bool:
        """True if `day` is a public holiday at the location."""
        return day in self.holidays.get(location, {})

    def holiday_closes(self, day: date, tz: ZoneInfo, location_ids: list[int], staff_ids: list[int]) -> list[int]:
        """The locations whose public holiday alone keeps these staff from working on `day`; empty if they work
        somewhere, or would not work that day anyway (then the holiday is not the reason)."""
        if self.calendars(day, tz, location_ids, staff_ids):
            return []
        return [location for location in location_ids if self.closed_on(location, day)
                and self.calendars(day, tz, [location], staff_ids, holidays=False)]


class _LocalRanges:
    """Local minute ranges of one day as UTC intervals, each distinct range list converted once."""

    def __init__(self, day: date, tz: ZoneInfo):
        self.day, self.tz = day, tz
        self.done: dict[tuple[tuple[int, ...], ...], list[Interval]] = {}

    def __call__(self, ranges: list[tuple[int, int]]) -> list[Interval]:
        key = tuple(map(tuple, ranges))
        if key not in self.done:
            self.done[key] = local_intervals(self.day, ranges, self.tz)
        return self.done[key]


async def qualified_staff(uow: UnitOfWork, service_id: int) -> list[int]:
    rows = await uow.session.scalars(select(StaffService.person_id).where(StaffService.service_id == service_id))
    return sorted(rows.all())


async def location_ids(uow: UnitOfWork) -> list[int]:
    return list((await uow.session.scalars(select(Location.id).order_by(Location.id))).all())


def moment_text(column, dialect: str):
    """A UTC time column as "YYYY-MM-DD HH:MM:SS[.ffffff]" text, as the database holds it: one branch per dialect.

    A day list reads thousands of appointment times. SQLite keeps them as this text already, and turning it
    into numbers there (strftime) cost more than the scan; Python parses each distinct instant once.
    PostgreSQL writes it with to_char, which, unlike a cast, does not follow the session's DateStyle.
    """
    if dialect == "sqlite":
        return cast(column, String)
    return func.to_char(column, "YYYY-MM-DD HH24:MI:SS.US", type_=String)


# The statements every step of the walk that offers days or times runs, built once: building one anew
# costs about as much as SQLite takes to run it.
# The location's hours (no staff member) and the staff's in one statement.
# Core columns (a table's, not the model's): an ORM statement costs half as much again to run, and these
# rows are plain values.
_OPENING, _STAFF_HOURS, _CLOSURE = table(OpeningHours).c, table(StaffHours).c, table(Closure).c
_BUSINESS, _LOCATION, _APPOINTMENT = table(Business).c, table(Location).c, table(Appointment).c
HOURS = union_all(
    select(cast(null(), Integer), _OPENING.location_id, _OPENING.weekday, _OPENING.start_minute, _OPENING.end_minute),
    select(_STAFF_HOURS.person_id, _STAFF_HOURS.location_id, _STAFF_HOURS.weekday, _STAFF_HOURS.start_minute,
           _STAFF_HOURS.end_minute).where(_STAFF_HOURS.person_id.in_(bindparam("staff_ids", expanding=True))))
CLOSURES = select(_CLOSURE.staff_id, _CLOSURE.start_at, _CLOSURE.end_at).where(
    _CLOSURE.end_at > bindparam("start"), _CLOSURE.start_at < bindparam("end"),
    or_(_CLOSURE.staff_id.is_(None), _CLOSURE.staff_id.in_(bindparam("staff_ids", expanding=True))))
# One statement: the business's row has no location id, each location's row no language.
HOLIDAY_CODES = union_all(
    select(cast(null(), Integer), _BUSINESS.holidays, _BUSINESS.language).where(_BUSINESS.id == 1),
    select(_LOCATION.id, _LOCATION.holidays, cast(null(), String)))

async def load_plan(uow: UnitOfWork, staff_ids: list[int], start: datetime, end: datetime, now: datetime) -> DayPlan:
    """Opening hours, staff hours, closures and live appointments between start and end."""
    session = uow.session
    opening: defaultdict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    hours: defaultdict[tuple[int, int, int], list[tuple[int, int]]] = defaultdict(list)
    for staff, location, weekday, a, b in await session.execute(HOURS, {"staff_ids": staff_ids}):
        if staff is None:
            opening[(location, weekday)].append((a, b))
        else:
            hours[(staff, location, weekday)].append((a, b))
    closures: list[tuple[int | None, datetime, datetime]] = [(row[0], row[1], row[2]) for row in await session.execute(
        CLOSURES, {"staff_ids": staff_ids, "start": start, "end": end})]
    # Local days lie within a day of the UTC ones; a holiday outside the range is never asked for.
    holidays = await location_holidays(uow, (start - timedelta(days=1)).date(), (end + timedelta(days=1)).date())
    return DayPlan(dict(opening), dict(hours), closures, await load_busy(uow, staff_ids, start, end, now), holidays)


@dataclass(frozen=True)
class HolidayCodes:
    """Which public holidays apply where: the business's code, and each location's own or else the business's."""

    business: str | None
    language: str  # the business's: names shown to no one in particular
    locations: dict[int, str | None]

    def at(self, location_id: int | None) -> str | None:
        """The code at a location; None (an appointment without one) falls back to the business's."""
        return self.locations.get(location_id, self.business) if location_id is not None else self.business


async def holiday_codes(uow: UnitOfWork) -> HolidayCodes:
    """The business's holiday code and language, and each location's code."""
    rows = (await uow.session.execute(HOLIDAY_CODES)).all()
    business = next((row for row in rows if row[0] is None), None)
    code, language = (business[1], business[2]) if business else (None, "de")
    return HolidayCodes(code, language, {location: effective_code(own, code)
                                         for location, own, _ in rows if location is not None})


async def location_holidays(uow: UnitOfWork, first: date, last: date,
                            lang: str | None = None) -> dict[int, dict[date, str]]:
    """Each location's public holidays from `first` to `last` (local dates, both included), named in `lang`
    (None: the business's language). For views that mark them, e.g. a week picture that shades them."""
    codes = await holiday_codes(uow)
    return {location: holidays_between(code, first, last, lang or codes.language)
            for location, code in codes.locations.items()}


async def holiday_at(uow: UnitOfWork, location_id: int | None, day: date, lang: str) -> str | None:
    """The name of the public holiday on a local day at a location (None: where the business's code applies)."""
    return holiday_on((await holiday_codes(uow)).at(location_id), day, lang)


async def load_busy(uow: UnitOfWork, staff_ids: list[int], start: datetime, end: datetime,
                    now: datetime) -> dict[int, list[Interval]]:
    """Each staff member's live appointments overlapping [start, end), sorted by start.

    The scan runs along the (staff_id, end_at, …) index from `start` on, so years of past appointments stay out
    of it; on (staff_id, start_at) only `start_at < end` bounds the range, and no lower bound on the start is
    safe, since no appointment length is bounded. A day list reads thousands of appointments: one row of
    "start,end,start,end…" times per staff member spares the driver and the ORM a row each, and back-to-back
    appointments share their boundary instants, each parsed once.
    """
    rows = await uow.session.execute(busy_times(uow.dialect), dict(staff_ids=staff_ids, start=start, end=end, now=now))
    texts_of = {staff: joined.split(",") for staff, joined in rows}
    moments = {text: datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
               for text in set().union(*texts_of.values())}
    return {staff: intervals(texts, moments) for staff, texts in texts_of.items()}


@functools.cache
def busy_times(dialect: str):
    """load_busy's statement, built once per dialect."""
    start_text, end_text = (moment_text(column, dialect) for column in (_APPOINTMENT.start_at, _APPOINTMENT.end_at))
    return (select(_APPOINTMENT.staff_id, joined_strings(start_text + "," + end_text, ","))
            .where(_APPOINTMENT.staff_id.in_(bindparam("staff_ids", expanding=True)),
                   _APPOINTMENT.end_at > bindparam("start"), _APPOINTMENT.start_at < bindparam("end"),
                   live_condition(bindparam("now"), unindexed(_APPOINTMENT.status, dialect),
                                  _APPOINTMENT.hold_expires_at))
            .group_by(_APPOINTMENT.staff_id))

def intervals(texts: list[str], moments: dict[str, datetime]) -> list[Interval]:
    """[start, end, start, end…] times as sorted intervals; the order of an aggregate is not promised."""
    times = list(map(moments.__getitem__, texts))
    pairs = list(zip(times[::2], times[1::2]))
    starts = texts[::2]
    if starts != sorted(starts):  # times of one format sort as their text, faster than pairs of datetimes
        pairs.sort()
    return pairs


async def live_load(uow: UnitOfWork, staff_ids: list[int], start: datetime, end: datetime,
                    now: datetime) -> dict[int, int]:
    """How many live appointments each staff member has in a range (for fair assignment)."""
    rows = await uow.session.execute(
        select(Appointment.staff_id, func.count()).where(
            Appointment.staff_id.in_(staff_ids), Appointment.start_at >= start, Appointment.start_at < end,
            live_condition(now)).group_by(Appointment.staff_id))
    return dict(rows.all())


async def expire_stale_holds(uow: UnitOfWork, staff_id: int, start: datetime, end: datetime, now: datetime) -> None:
    """Free the cells of holds that expired over this time, in the caller's transaction.

    One conditional UPDATE decides which holds are stale: a hold confirmed at the same instant
    no longer matches `status = 'held'` when PostgreSQL re-checks the row, so it is never undone.
    """
    stale = (await uow.session.scalars(
        update(Appointment)
        .where(Appointment.staff_id == staff_id, Appointment.status == "held", Appointment.hold_expires_at <= now,
               Appointment.start_at < end, Appointment.end_at > start)
        .values(status="expired", closed_at=now, closed_by="hold expired")
        .returning(Appointment.id)
        .execution_options(synchronize_session=False))).all()
    if stale:
        await uow.session.execute(delete(SlotClaim).where(SlotClaim.appointment_id.in_(stale)))


async def lock_calendars(uow: UnitOfWork, staff_ids: list[int] | None, *, closing: bool) -> None:
    """Serialise online holds with closures on the staff rows, until commit.

    A hold takes a shared lock (holds do not wait for each other), a closure an exclusive one (None: every
    staff member), both in id order so they cannot deadlock. Whoever comes second reads after the first
    committed: a hold sees the new closure and is refused; a closure sees the new hold and lists it. On
    SQLite every write transaction is serialised already (BEGIN IMMEDIATE) and FOR UPDATE is not emitted.
    """
    query = select(Staff.person_id).order_by(Staff.person_id).with_for_update(read=not closing)
    if staff_ids is not None:
        query = query.where(Staff.person_id.in_(staff_ids))
    await uow.session.execute(query)


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
    """End a live appointment (cancelled, expired, rejected) and free its time and its reminders; the row
    stays for the record."""
    await uow.session.execute(delete(SlotClaim).where(SlotClaim.appointment_id == appointment.id))
    await drop_reminders(uow, appointment)  # before the status changes: only confirmed ones have any
    appointment.status, appointment.closed_by, appointment.closed_reason = status, by, reason
    appointment.closed_at = now
    appointment.hold_expires_at = None


async def move(uow: UnitOfWork, appointment: Appointment, start: datetime, now: datetime) -> None:
    """Move to a new start, atomically: old cells are freed and new ones claimed (the reminders follow), or
    SlotTaken and nothing changes."""
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
    appointment.sequence += 1  # safe from lost updates: callers hold the row lock (booking.managed)
    await move_reminders(uow, appointment, old[0], now)


def day_range(first: date, days: int, tz: ZoneInfo) -> Interval:
    return day_bounds(first, tz)[0], day_bounds(first + timedelta(days=days - 1), tz)[1]
