"""`course add …` and `course cancel NAME` (admins): a course from the chat, and calling one off."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal
from handlers.courses import places
from handlers.courses.holds import HOLD_JOB
from handlers.courses.joining import named_course
from handlers.courses.places import CANCELLED, JOINED
from handlers.courses.rules import BadValue, NewCourse, Session, parse_new_course, session_times
from handlers.courses.timing import DEADLINE_JOB, schedule_deadline
from handlers.courses.views import view_of
from handlers.jobs.table import drop
from handlers.messages import Reply
from handlers.rules.names import name_problem
from handlers.rules.words import fold, hhmm, split_first
from storage.models import Course, CoursePlace, CourseSession, Location

NAME_LIMIT = 120
ADD, CANCEL = ("add", "neu"), ("cancel", "absagen")


async def course_command(ctx: Context, args: str) -> list[Reply]:
    """`course add NAME LOCATION CAPACITY YYYY-MM-DD HH:MM-HH:MM[,…] [price=…] [min=…] [deadline=…]`,
    `course cancel NAME`."""
    word, rest = split_first(args)
    if word.lower() in ADD:
        return await add_course(ctx, rest)
    if word.lower() in CANCEL:
        return await cancel_course(ctx, rest)
    raise Refusal("courses_admin_usage")


def bad_input(bad: BadValue) -> Refusal:
    return Refusal("courses_bad_input", field=bad.field, value=bad.value[:120], problem=bad.problem)


async def add_course(ctx: Context, args: str) -> list[Reply]:
    """A new course at a known location, all of its sessions ahead."""
    try:
        new = parse_new_course(args)
    except BadValue as bad:
        raise bad_input(bad) from None
    problem = name_problem(new.name, NAME_LIMIT)
    if problem:
        raise bad_input(BadValue("name", new.name, problem))
    location = await location_named(ctx, new.location)
    sessions = session_times(new.sessions, ZoneInfo(ctx.tz))
    if sessions[0].start <= ctx.now:
        first = new.sessions[0]
        raise bad_input(BadValue("session", f"{first.day} {hhmm(first.start)}-{hhmm(first.end)}", "past"))
    course = await insert_course(ctx, new, location.id, sessions)
    view = await view_of(ctx.uow, course, ctx.now)
    await schedule_deadline(ctx.uow, course, view.deadline, ctx.now)
    await ctx.audit("course_added", f"course:{course.id}", name=course.name, capacity=course.capacity,
                    sessions=len(sessions))
    return [ctx.say("courses_added", course=view)]


async def location_named(ctx: Context, name: str) -> Location:
    rows = (await ctx.session.scalars(select(Location).order_by(Location.name))).all()
    found = next((row for row in rows if fold(row.name) == fold(name)), None)
    if found is None:
        raise Refusal("courses_unknown_location", value=name[:120], locations=[row.name for row in rows])
    return found


async def insert_course(ctx: Context, new: NewCourse, location_id: int, sessions: list[Session]) -> Course:
    """The course row and its sessions; a name taken in any case is refused (by the unique name key)."""
    if await places.by_name(ctx.uow, new.name) is not None:
        raise Refusal("courses_exists", value=new.name)
    course = Course(name=new.name, location_id=location_id, capacity=new.capacity, taken=0, price=new.price,
                    min_participants=new.min_participants, booking_deadline_days=new.deadline_days, status="open",
                    created_by=ctx.sender, created_at=ctx.now)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(course)
            await ctx.session.flush()
    except IntegrityError:  # added by someone else at this moment
        raise Refusal("courses_exists", value=new.name) from None
    ctx.session.add_all(CourseSession(course_id=course.id, start_at=s.start, end_at=s.end) for s in sessions)
    await ctx.session.flush()
    return course


async def cancel_course(ctx: Context, args: str) -> list[Reply]:
    """Call a course off: every place, hold and waiting position ends, and each person is told."""
    course = await places.lock(ctx.uow, (await named_course(ctx, args, "course cancel")).id)
    if course.status != "open":
        raise Refusal("courses_closed", course=await view_of(ctx.uow, course, ctx.now), cancelled=True)
    view = await view_of(ctx.uow, course, ctx.now)
    affected = (await ctx.session.execute(select(CoursePlace.person_id, CoursePlace.status).where(
        CoursePlace.course_id == course.id, CoursePlace.status.in_(JOINED)))).all()
    await ctx.session.execute(update(CoursePlace).where(CoursePlace.course_id == course.id,
                                                        CoursePlace.status.in_(JOINED))
                              .values(status=CANCELLED, hold_expires_at=None)
                              .execution_options(synchronize_session=False))
    await ctx.session.execute(update(Course).where(Course.id == course.id, Course.status == "open")
                              .values(status="cancelled", taken=0, cancelled_at=ctx.now)
                              .execution_options(synchronize_session=False))
    for kind in (HOLD_JOB, DEADLINE_JOB):
        await drop(ctx.uow, kind, f"course:{course.id}:")
    told = 0
    for person_id, status in affected:
        told += await ctx.tell(person_id, "courses_cancelled_notice", course=view, was=status)
    await ctx.audit("course_cancelled", f"course:{course.id}", people=len(affected), told=told)
    return [ctx.say("courses_cancelled", course=view, people=len(affected), told=told)]
