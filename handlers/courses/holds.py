"""Holds on places: each runs out by its job, is confirmed by its code, and a freed place goes to the first
person on the waiting list, who gets a hold and a code of their own."""
from __future__ import annotations

from datetime import datetime, timedelta

from handlers.context import Context
from handlers.courses import places
from handlers.courses.places import EXPIRED, HELD, WAITING
from handlers.courses.views import CourseView, view_of
from handlers.jobs.table import schedule
from handlers.rules import codes
from handlers.speaking import verified_email
from storage.models import Code, Course, CoursePlace, Person

PURPOSE = "course_place"  # the code that confirms a held place
HOLD_JOB = "course_hold_expires"  # a hold that ran out frees its place and offers it to the next in line


def target(place: CoursePlace) -> str:
    """What a place's code proves: this hold of this place (a later hold of the same row needs a new code)."""
    assert place.hold_expires_at is not None
    return f"place:{place.id}:{place.hold_expires_at.isoformat()}"


def read_target(text: str) -> tuple[int, datetime] | None:
    """The place id and hold end a code's target names."""
    kind, _, rest = text.partition(":")
    number, _, until = rest.partition(":")
    if kind != "place" or not number.isdigit():
        return None
    try:
        return int(number), datetime.fromisoformat(until)
    except ValueError:
        return None


def job_key(place: CoursePlace) -> str:
    """One job per hold; the course comes first, so cancelling a course drops all of its holds' jobs."""
    assert place.hold_expires_at is not None
    return f"course:{place.course_id}:place:{place.id}:{place.hold_expires_at.isoformat()}"


def hold_end(ctx: Context) -> datetime:
    """When a hold made now runs out (FRONTDESK_HOLD_SECONDS)."""
    return ctx.now + timedelta(seconds=ctx.config.hold_seconds)


async def schedule_expiry(ctx: Context, place: CoursePlace) -> None:
    """The job that frees the hold's place when it runs out, if its code has not come back by then."""
    assert place.hold_expires_at is not None
    await schedule(ctx.uow, HOLD_JOB, job_key(place), place.hold_expires_at, ctx.now,
                   {"place": place.id, "until": place.hold_expires_at.isoformat()})


async def offer_next(ctx: Context, course: Course) -> int:
    """Fill the course's free places from its waiting list, first in line first; how many were offered.

    Only while joining is open: after the deadline a freed place stays free.
    """
    view = await view_of(ctx.uow, course, ctx.now)
    offered = 0
    while view.bookable(ctx.now):
        place = await places.first_waiting(ctx.uow, course.id)
        if place is None or not await places.take(ctx.uow, course.id):
            break
        if not await places.move(ctx.uow, place, WAITING, status=HELD, hold_expires_at=hold_end(ctx)):
            await places.untake(ctx.uow, course.id)  # another change came first: the place goes back
            continue
        await schedule_expiry(ctx, place)
        await tell_offer(ctx, view, place)
        await ctx.audit("course_place_offered", f"course:{course.id}", place=place.id, person=place.person_id)
        offered += 1
    return offered


async def tell_offer(ctx: Context, view: CourseView, place: CoursePlace) -> None:
    """Mail the offer with its code (in the subject, as every code mail), and say so in the person's chat."""
    code = offer_code(ctx, place)
    person = await ctx.session.get_one(Person, place.person_id)
    lang = ctx.language_for(person.language)
    email = await verified_email(ctx.uow, place.person_id)
    if email is None and place.address.startswith("email:"):
        # Joined from the booking page and not proven yet: the offer's code is bound to that mailbox, so it
        # goes there (as the code of a hold asked for on the page does); only its owner can use it.
        email = place.address.split(":", 1)[1]
    if email is not None:
        await ctx.mail(email, "courses_offer_mail", lang=lang, code=code, course=view, until=place.hold_expires_at)
    await ctx.tell(place.person_id, "courses_offer", lang=lang, by_mail=False, code=code, course=view,
                   until=place.hold_expires_at, email=email)


def offer_code(ctx: Context, place: CoursePlace) -> str:
    """A code for an offered hold, bound to the address the person joined from: they redeem it there, or from
    any of their proven addresses. (Not `identity.issue_code`: the desk offers it, nobody asked for it.)"""
    code = codes.new_code()
    ctx.session.add(Code(address=place.address, purpose=PURPOSE, target=target(place), created_at=ctx.now,
                         expires_at=ctx.now + ctx.config.code_ttl, attempts=0,
                         digest=codes.digest(ctx.config.secret_key, PURPOSE, target(place), code)))
    return code


async def reclaim(ctx: Context, course: Course) -> int:
    """Give back every hold of the course that ran out (each exactly once), then offer what is free to the
    waiting list (also places a larger capacity freed); how many places were offered."""
    for place in await places.run_out(ctx.uow, course.id, ctx.now):
        if await places.give_back(ctx.uow, place, EXPIRED, ctx.now, ran_out=True):
            await ctx.audit("course_hold_expired", f"course:{course.id}", place=place.id, person=place.person_id)
    return await offer_next(ctx, course)
