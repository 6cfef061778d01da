"""`courses` (everyone) and `participants COURSE` (the course's staff), and the same lists as export rows."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from handlers.context import Context, Refusal
from handlers.courses import places
from handlers.courses.joining import named_course, quote
from handlers.courses.places import JOINED, WAITING
from handlers.courses.team import looks_after
from handlers.courses.views import CourseView, coming_courses, view_of
from handlers.messages import Reply
from storage.models import Address, Course, CoursePlace, Person

MAX_BUTTONS = 8
ORDER = {"confirmed": 0, "held": 1, "waiting": 2}
COURSE_FIELDS = ("name", "location", "start", "end", "sessions", "capacity", "taken", "free_places", "waiting",
                 "price", "deadline", "min_participants")
PARTICIPANT_FIELDS = ("name", "email", "status", "position", "since", "hold_until", "channel")


async def list_courses(ctx: Context, args: str) -> list[Reply]:
    """The coming courses with their dates, price and free places, and where the speaker stands in each."""
    views = await coming_courses(ctx.uow, ctx.now)
    mine = await standing(ctx, [v.id for v in views])
    joinable = [v for v in views if v.bookable(ctx.now) and v.id not in mine]
    choices = [ctx.choice("courses_label.join", f"join {quote(v.name)}", name=v.name) for v in joinable]
    return [ctx.say("courses_list", courses=views, mine=mine, now=ctx.now, choices=choices[:MAX_BUTTONS])]


async def standing(ctx: Context, course_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The speaker's place in each of these courses: status, hold end, position in line."""
    rows = (await ctx.session.scalars(select(CoursePlace).where(
        CoursePlace.course_id.in_(course_ids), CoursePlace.person_id == ctx.person.id,
        CoursePlace.status.in_(JOINED)))).all() if course_ids else []
    return {row.course_id: {"status": row.status, "until": row.hold_expires_at,
                            "position": await places.position(ctx.uow, row) if row.status == WAITING else None}
            for row in rows if places.still_in(row, ctx.now)}


async def participants(ctx: Context, args: str) -> list[Reply]:
    """`participants COURSE`: confirmed, held and waiting people, for admins and the staff of its location."""
    course = await named_course(ctx, args, "participants")
    if not await looks_after(ctx, course):
        raise Refusal("courses_not_yours", course=course.name)
    return [ctx.say("courses_participants", course=await view_of(ctx.uow, course, ctx.now),
                    people=await people_in(ctx, course))]


async def people_in(ctx: Context, course: Course) -> list[dict[str, Any]]:
    """Everyone with a place, a hold or a position in line, confirmed first, the waiting list in its order."""
    rows = (await ctx.session.execute(
        select(CoursePlace, Person.name).join(Person, Person.id == CoursePlace.person_id)
        .where(CoursePlace.course_id == course.id, CoursePlace.status.in_(JOINED)))).all()
    emails = {person_id: address for person_id, address in await ctx.session.execute(  # the newest one wins
        select(Address.person_id, Address.address).where(
            Address.person_id.in_([p.person_id for p, _ in rows]), Address.kind == "email", Address.verified)
        .order_by(Address.id))}
    ordered = sorted(rows, key=lambda r: (ORDER[r[0].status], r[0].waiting_since or r[0].created_at, r[0].id))
    people, waiting = [], 0
    for place, name in ordered:
        if not places.still_in(place, ctx.now):
            continue  # a hold that ran out, not yet given back
        waiting += place.status == WAITING
        email = emails.get(place.person_id)
        people.append({"name": name, "email": email.split(":", 1)[1] if email else None, "status": place.status,
                       "position": waiting if place.status == WAITING else None,
                       "since": place.confirmed_at or place.waiting_since or place.created_at,
                       "hold_until": place.hold_expires_at, "channel": place.channel})
    return people


# ---- export rows (for `export courses` and `export participants COURSE`) ---------------------------


async def course_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    """The coming courses as rows: one per course, sessions as a list of (start, end) pairs."""
    if args.strip():
        raise Refusal("courses_usage", word="courses")
    return [course_row(view) for view in await coming_courses(ctx.uow, ctx.now)]


def course_row(view: CourseView) -> dict[str, Any]:
    return {"name": view.name, "location": view.location, "start": view.start, "end": view.sessions[-1].end,
            "sessions": [f"{s.start.isoformat()}/{s.end.isoformat()}" for s in view.sessions],
            "capacity": view.capacity, "taken": view.taken, "free_places": view.free_places, "waiting": view.waiting,
            "price": Decimal(view.price) if view.price else None, "deadline": view.deadline,
            "min_participants": view.min_participants}


async def participant_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    """The people of one course as rows; only for admins and the staff of the course's location."""
    course = await named_course(ctx, args, "participants")
    if not await looks_after(ctx, course):
        raise Refusal("courses_not_yours", course=course.name)
    return await people_in(ctx, course)
