"""What runs at a time for courses: a hold running out (its place goes to the next in line) and the
booking deadline (a course below its minimum is flagged to the admins)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from handlers.context import Context
from handlers.courses import places
from handlers.courses.holds import HOLD_JOB, offer_next
from handlers.courses.places import CONFIRMED, EXPIRED
from handlers.courses.team import tell_admins
from handlers.courses.views import view_of
from handlers.jobs.table import Due, schedule
from storage.db import UnitOfWork
from storage.models import Course, CoursePlace

DEADLINE_JOB = "course_deadline"


async def schedule_deadline(uow: UnitOfWork, course: Course, deadline: datetime, now: datetime) -> None:
    """Check the course's numbers at its deadline, if it has a minimum and the deadline is ahead. A deadline
    that moves gets a job of its own; the old one then finds its time no longer the course's and does nothing."""
    if course.min_participants is not None and deadline > now:
        await schedule(uow, DEADLINE_JOB, f"course:{course.id}:deadline:{deadline.isoformat()}", deadline, now,
                       {"course": course.id, "deadline": deadline.isoformat()})


async def run_hold_expiry(ctx: Context, due: Due) -> str | None:
    """The hold's time is over: its place goes back (once: a join may have taken it back first), and on to
    the waiting list."""
    place = await ctx.session.get(CoursePlace, due.payload.get("place", 0))
    if place is None:
        return "the place is gone"
    course = await places.lock(ctx.uow, place.course_id)
    await ctx.session.refresh(place)
    until = datetime.fromisoformat(due.payload["until"])
    if not await places.give_back(ctx.uow, place, EXPIRED, ctx.now, hold_until=until, ran_out=True):
        return f"the hold had ended already ({place.status})"
    await ctx.audit("course_hold_expired", f"course:{course.id}", place=place.id, person=place.person_id)
    await offer_next(ctx, course)
    return None


async def run_deadline(ctx: Context, due: Due) -> str | None:
    """At the booking deadline: too few confirmed participants for the course's minimum is told to the admins."""
    course = await ctx.session.get(Course, due.payload.get("course", 0))
    if course is None or course.status != "open":
        return "the course was cancelled"
    view = await view_of(ctx.uow, course, ctx.now)
    if view.deadline.isoformat() != due.payload.get("deadline"):
        return "the course's dates or deadline changed; the job for the new deadline checks it"
    if course.min_participants is None:
        return "the course has no minimum any more"
    confirmed = await ctx.session.scalar(select(func.count()).where(
        CoursePlace.course_id == course.id, CoursePlace.status == CONFIRMED)) or 0
    if confirmed >= course.min_participants:
        return f"{confirmed} confirmed, the minimum is {course.min_participants}"
    told = await tell_admins(ctx, "courses_below_minimum", course=view, confirmed=confirmed)
    await ctx.audit("course_below_minimum", f"course:{course.id}", confirmed=confirmed,
                    minimum=course.min_participants, told=told)
    return None


JOBS = {HOLD_JOB: run_hold_expiry, DEADLINE_JOB: run_deadline}
