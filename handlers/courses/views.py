"""Courses as people read them, channel-free: the chat's `courses`, the homepage API and exports share this."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from handlers.courses import places
from handlers.courses.rules import Session, deadline, free_places
from storage.db import UnitOfWork
from storage.models import Course, CourseSession, Location


@dataclass(frozen=True)
class CourseView:
    """A course with what anyone may know of it (no personal data)."""

    id: int
    name: str
    location: str
    capacity: int
    free_places: int  # what a newcomer could have now (the waiting list comes first)
    price: str | None  # decimal text such as "120.00", as services keep it; None: no price given
    sessions: tuple[Session, ...]  # aware UTC (start, end), first first
    deadline: datetime  # joining and leaving end then
    taken: int  # places held or confirmed now
    waiting: int
    min_participants: int | None
    status: str  # open | cancelled

    @property
    def start(self) -> datetime:
        return self.sessions[0].start

    def bookable(self, now: datetime) -> bool:
        """Whether joining (and leaving) is still open."""
        return self.status == "open" and now < self.deadline


async def views_of(uow: UnitOfWork, courses: list[Course], now: datetime) -> list[CourseView]:
    """Views of these courses (those without sessions left out), in their order."""
    ids = [c.id for c in courses]
    sessions = await places.sessions_of(uow, ids)
    counted = await places.counts(uow, ids, now)
    names: dict[int, str] = {location_id: name for location_id, name in await uow.session.execute(
        select(Location.id, Location.name).where(Location.id.in_({c.location_id for c in courses})))}
    found = []
    for course in courses:
        dates = tuple(sessions[course.id])
        if not dates:
            continue
        live, waiting = counted[course.id]
        found.append(CourseView(
            course.id, course.name, names.get(course.location_id, "?"), course.capacity,
            free_places(course.capacity, live, waiting), course.price, dates,
            deadline(dates[0].start, course.booking_deadline_days), live, waiting, course.min_participants,
            course.status))
    return found


async def view_of(uow: UnitOfWork, course: Course, now: datetime) -> CourseView:
    """One course's view (a course always has sessions: setup and `course add` refuse it without)."""
    [found] = await views_of(uow, [course], now)
    return found


async def coming_courses(uow: UnitOfWork, now: datetime) -> list[CourseView]:
    """The open courses whose first session is still ahead, first first (the homepage API reads this)."""
    ahead = select(CourseSession.course_id).where(CourseSession.start_at > now)
    courses = list((await uow.session.scalars(select(Course).where(
        Course.status == "open", Course.id.in_(ahead)))).all())
    coming = [v for v in await views_of(uow, courses, now) if v.start > now]
    return sorted(coming, key=lambda v: (v.start, v.name))
