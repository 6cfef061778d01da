"""Places in the store: taking one with a conditional UPDATE, giving one back exactly once, the waiting list.

No check-then-write: `take` raises `course.taken` only WHERE `taken < capacity`, and a place goes back only
through a conditional UPDATE of its own status, so two transactions can never both give back one place.
The CHECK on the course row (0 ≤ taken ≤ capacity) is the last word. Every change to a course's places
first locks the course row (`lock`), so they queue in one order on PostgreSQL and never deadlock.
"""
from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, and_, case, func, or_, select, update

from handlers.courses.rules import Session
from storage.db import UnitOfWork
from storage.dialect import insert_ignoring_conflicts
from storage.models import Course, CoursePlace, CourseSession, name_key

HELD, CONFIRMED, WAITING = "held", "confirmed", "waiting"
LEFT, EXPIRED, CANCELLED = "left", "expired", "cancelled"
LIVE = (HELD, CONFIRMED)  # these take a place
JOINED = (HELD, CONFIRMED, WAITING)  # these are in the course or in line for it


def live_condition(now: datetime):
    """Places taken at `now`: confirmed, or held and not yet run out (an expired hold is free at once)."""
    return or_(CoursePlace.status == CONFIRMED,
               and_(CoursePlace.status == HELD, CoursePlace.hold_expires_at > now))


def still_in(place: CoursePlace, now: datetime) -> bool:
    """Whether a place still counts at `now`: confirmed, waiting, or held and not run out."""
    if place.status == HELD:
        return place.hold_expires_at is not None and place.hold_expires_at > now
    return place.status in JOINED


async def by_name(uow: UnitOfWork, name: str) -> Course | None:
    """The course of that name, in any case and spacing."""
    return await uow.session.scalar(select(Course).where(Course.name_key == name_key(name)))


async def lock(uow: UnitOfWork, course_id: int) -> Course:
    """The course row, fresh and locked until the transaction ends (SQLite: writers take turns anyway)."""
    return await uow.session.get_one(Course, course_id, with_for_update=True, populate_existing=True)


async def sessions_of(uow: UnitOfWork, course_ids: list[int]) -> dict[int, list[Session]]:
    """Each course's sessions, first first."""
    found: dict[int, list[Session]] = {i: [] for i in course_ids}
    if course_ids:
        rows = await uow.session.execute(
            select(CourseSession.course_id, CourseSession.start_at, CourseSession.end_at)
            .where(CourseSession.course_id.in_(course_ids)).order_by(CourseSession.start_at, CourseSession.id))
        for course_id, start, end in rows:
            found[course_id].append(Session(start, end))
    return found


async def _changed(uow: UnitOfWork, statement) -> int:
    result = cast(CursorResult, await uow.session.execute(statement.execution_options(synchronize_session=False)))
    return result.rowcount


async def take(uow: UnitOfWork, course_id: int) -> bool:
    """One place more, if one is free: the guard against overfilling, in one conditional UPDATE."""
    return await _changed(uow, update(Course).where(
        Course.id == course_id, Course.status == "open", Course.taken < Course.capacity)
        .values(taken=Course.taken + 1)) == 1


async def untake(uow: UnitOfWork, course_id: int) -> None:
    """One place fewer (only after a place's own status change said it held one)."""
    await _changed(uow, update(Course).where(Course.id == course_id).values(taken=Course.taken - 1))


async def give_back(uow: UnitOfWork, place: CoursePlace, status: str, now: datetime,
                    hold_until: datetime | None = None, ran_out: bool = False) -> bool:
    """End a live place as `status` and free its place, exactly once; False if it was no longer live.

    With `hold_until` only that hold ends (a later hold of the same row is another one); with `ran_out`
    only once that hold's time is over.
    """
    where = [CoursePlace.id == place.id, CoursePlace.status.in_(LIVE)]
    if hold_until is not None:
        where += [CoursePlace.status == HELD, CoursePlace.hold_expires_at == hold_until]
    if ran_out:
        where += [CoursePlace.status == HELD, CoursePlace.hold_expires_at <= now]
    if await _changed(uow, update(CoursePlace).where(*where).values(status=status, hold_expires_at=None)) != 1:
        return False
    await untake(uow, place.course_id)
    place.status, place.hold_expires_at = status, None
    return True


async def confirm(uow: UnitOfWork, place: CoursePlace, hold_until: datetime, now: datetime) -> bool:
    """Turn this hold, while it lasts, into a confirmed place; False if it ran out or ended otherwise."""
    if await _changed(uow, update(CoursePlace).where(
            CoursePlace.id == place.id, CoursePlace.status == HELD, CoursePlace.hold_expires_at == hold_until,
            CoursePlace.hold_expires_at > now).values(status=CONFIRMED, hold_expires_at=None, confirmed_at=now)) != 1:
        return False
    place.status, place.hold_expires_at, place.confirmed_at = CONFIRMED, None, now
    return True


async def move(uow: UnitOfWork, place: CoursePlace, was: str, **values) -> bool:
    """Change a place that still has status `was`; False if something else changed it first."""
    if await _changed(uow, update(CoursePlace).where(CoursePlace.id == place.id, CoursePlace.status == was)
                      .values(**values)) != 1:
        return False
    for key, value in values.items():
        setattr(place, key, value)
    return True


async def own(uow: UnitOfWork, course_id: int, person_id: int) -> CoursePlace | None:
    """The person's place row in the course (of any status), locked."""
    return await uow.session.scalar(select(CoursePlace).where(
        CoursePlace.course_id == course_id, CoursePlace.person_id == person_id)
        .with_for_update().execution_options(populate_existing=True))


async def add(uow: UnitOfWork, values: dict) -> CoursePlace | None:
    """A new place row; None if the person got one meanwhile (the unique (course, person) refused it)."""
    statement = insert_ignoring_conflicts(uow.dialect, CoursePlace.__table__, ["course_id", "person_id"])
    new_id = await uow.session.scalar(statement.returning(CoursePlace.__table__.c.id), values)
    return None if new_id is None else await uow.session.get(CoursePlace, new_id)


async def first_waiting(uow: UnitOfWork, course_id: int) -> CoursePlace | None:
    return await uow.session.scalar(select(CoursePlace).where(
        CoursePlace.course_id == course_id, CoursePlace.status == WAITING)
        .order_by(CoursePlace.waiting_since, CoursePlace.id).limit(1))


async def position(uow: UnitOfWork, place: CoursePlace) -> int:
    """Where a waiting place stands in line (1: next to be offered a place)."""
    ahead = await uow.session.scalar(select(func.count()).where(
        CoursePlace.course_id == place.course_id, CoursePlace.status == WAITING,
        or_(CoursePlace.waiting_since < place.waiting_since,
            and_(CoursePlace.waiting_since == place.waiting_since, CoursePlace.id < place.id))))
    return (ahead or 0) + 1


async def run_out(uow: UnitOfWork, course_id: int, now: datetime) -> list[CoursePlace]:
    """The course's holds that ran out and still count as taken."""
    return list((await uow.session.scalars(select(CoursePlace).where(
        CoursePlace.course_id == course_id, CoursePlace.status == HELD, CoursePlace.hold_expires_at <= now)
        .order_by(CoursePlace.id))).all())


async def counts(uow: UnitOfWork, course_ids: list[int], now: datetime) -> dict[int, tuple[int, int]]:
    """(live places, waiting) per course at `now`."""
    found = {i: (0, 0) for i in course_ids}
    if course_ids:
        live = func.sum(case((live_condition(now), 1), else_=0))
        waiting = func.sum(case((CoursePlace.status == WAITING, 1), else_=0))
        rows = await uow.session.execute(select(CoursePlace.course_id, live, waiting)
                                         .where(CoursePlace.course_id.in_(course_ids))
                                         .group_by(CoursePlace.course_id))
        found.update({course_id: (int(taken or 0), int(queue or 0)) for course_id, taken, queue in rows})
    return found
