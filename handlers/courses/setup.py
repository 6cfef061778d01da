"""[[courses]] of the setup file applied: courses added or brought in line by name, idempotently.

Courses missing from the file stay (people hold places in them), and a course cancelled in the chat stays
cancelled. A capacity below the places already held or confirmed is refused (the course row's CHECK would
refuse it too). A larger capacity is offered to the waiting list at the course's next join, leave or
hold running out.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from handlers.courses import places
from handlers.courses.rules import Session, deadline, session_times
from handlers.courses.timing import schedule_deadline
from handlers.setup.spec import CourseSpec, SetupError, SetupSpec
from storage.db import UnitOfWork
from storage.models import Course, CourseSession

SETUP = "setup"


async def apply_courses(uow: UnitOfWork, spec: SetupSpec, location_ids: dict[str, int], now: datetime,
                        changes: list[str]) -> None:
    """Every [[courses]] entry; one line per change into `changes`."""
    tz = ZoneInfo(spec.business.timezone)
    for course in spec.courses:
        times = session_times(list(course.sessions), tz)
        row = await places.by_name(uow, course.name)
        if row is None:
            row = await add(uow, course, location_ids[course.location], times, now)
            changes.append(f"+ course {course.name} ({len(times)} sessions, {course.capacity} places)")
        else:
            notes = await bring_in_line(uow, spec.filename, row, course, location_ids[course.location], times)
            if notes:
                changes.append(f"~ course {course.name}: {', '.join(notes)}")
        if row.status == "open":
            await schedule_deadline(uow, row, deadline(times[0].start, row.booking_deadline_days), now)


def values_of(spec: CourseSpec, location_id: int) -> dict:
    return {"location_id": location_id, "capacity": spec.capacity, "price": spec.price,
            "min_participants": spec.min_participants, "booking_deadline_days": spec.booking_deadline_days}


async def add(uow: UnitOfWork, spec: CourseSpec, location_id: int, times: list[Session], now: datetime) -> Course:
    row = Course(name=spec.name, taken=0, status="open", created_by=SETUP, created_at=now,
                 **values_of(spec, location_id))
    uow.session.add(row)
    await uow.session.flush()
    uow.session.add_all(CourseSession(course_id=row.id, start_at=s.start, end_at=s.end) for s in times)
    return row


async def bring_in_line(uow: UnitOfWork, filename: str, row: Course, spec: CourseSpec, location_id: int,
                        times: list[Session]) -> list[str]:
    """Set what differs; returns "field old → new" notes."""
    row = await places.lock(uow, row.id)
    if spec.capacity < row.taken:
        raise SetupError(f'{filename}: course "{spec.name}": capacity {spec.capacity} is below the {row.taken} '
                         "places already held or confirmed")
    notes = []
    for field, value in {"name": spec.name, **values_of(spec, location_id)}.items():
        if getattr(row, field) != value:
            notes.append(f"{field} {getattr(row, field)} → {value}")
            setattr(row, field, value)
    current = (await uow.session.execute(select(CourseSession.start_at, CourseSession.end_at).where(
        CourseSession.course_id == row.id).order_by(CourseSession.start_at))).all()
    if [tuple(r) for r in current] != [tuple(s) for s in times]:
        await uow.session.execute(delete(CourseSession).where(CourseSession.course_id == row.id))
        uow.session.add_all(CourseSession(course_id=row.id, start_at=s.start, end_at=s.end) for s in times)
        notes.append("sessions changed")
    return notes
