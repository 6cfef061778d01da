"""`join` and `leave`, and what a place's code does when it comes back (or is guessed wrong too often)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from handlers import identity
from handlers.context import Context, Refusal
from handlers.courses import places
from handlers.courses.holds import PURPOSE, hold_end, offer_next, read_target, reclaim, schedule_expiry, target
from handlers.courses.places import CONFIRMED, EXPIRED, HELD, JOINED, LEFT, WAITING
from handlers.courses.team import tell_course_staff
from handlers.courses.views import CourseView, coming_courses, view_of
from handlers.members.rules import quote
from handlers.messages import Reply
from handlers.notices import customer_language
from handlers.rules.words import unquote
from handlers.speaking import verified_email
from storage.models import Code, Course, CoursePlace, Person


async def named_course(ctx: Context, args: str, word: str) -> Course:
    """The course the arguments name; refuse a missing or unknown name, listing the coming courses."""
    name = unquote(args)
    if not name:
        raise Refusal("courses_usage", word=word)
    course = await places.by_name(ctx.uow, name)
    if course is None:
        raise Refusal("courses_unknown", value=name[:120], courses=[v.name for v in await coming_courses(
            ctx.uow, ctx.now)])
    return course


async def course_named(uow, args: str) -> bool:
    """By email, `join` and `leave` are commands only when they name a course ("Join us for dinner" is not)."""
    name = unquote(args)
    return bool(name) and await places.by_name(uow, name) is not None


def refuse_closed(view: CourseView, now: datetime) -> None:
    if view.status != "open":
        raise Refusal("courses_closed", course=view, cancelled=True)
    if not view.bookable(now):
        raise Refusal("courses_closed", course=view, cancelled=False)


# ---- join ------------------------------------------------------------------------------------


async def join(ctx: Context, args: str) -> list[Reply]:
    """`join COURSE`: hold a place and mail its code, or, when the course is full, queue on its waiting list."""
    course = await places.lock(ctx.uow, (await named_course(ctx, args, "join")).id)
    refuse_closed(await view_of(ctx.uow, course, ctx.now), ctx.now)
    email = await verified_email(ctx.uow, ctx.person.id)
    if email is None:
        await identity.ask_email_first(ctx, f"join {quote(course.name)}", "courses_continue",
                                       "courses_label.continue")
        return [ctx.say("courses_need_email", course=course.name)]
    await reclaim(ctx, course)  # holds that ran out go back, to the waiting list first
    place = await places.own(ctx.uow, course.id, ctx.person.id)
    if place is not None and place.status in JOINED:
        # An answer, not a refusal: what `reclaim` just offered (perhaps to this very person) stays.
        return [await already(ctx, course, place)]
    if await places.take(ctx.uow, course.id):
        return await held(ctx, course, await placed(ctx, course, place, HELD), email)
    place = await placed(ctx, course, place, WAITING)
    await ctx.audit("course_waiting", f"course:{course.id}", place=place.id)
    return [ctx.say("courses_waiting", course=await view_of(ctx.uow, course, ctx.now),
                    position=await places.position(ctx.uow, place))]


async def placed(ctx: Context, course: Course, place: CoursePlace | None, status: str) -> CoursePlace:
    """The speaker's place row, new or reused, now with `status` (held until the hold time, or waiting)."""
    values = dict(status=status, address=ctx.sender, channel=ctx.inbound.channel, confirmed_at=None,
                  hold_expires_at=hold_end(ctx) if status == HELD else None,
                  waiting_since=ctx.now if status == WAITING else None)
    if place is None:
        place = await places.add(ctx.uow, dict(course_id=course.id, person_id=ctx.person.id, created_at=ctx.now,
                                               **values))
    elif not await places.move(ctx.uow, place, place.status, **values):
        place = None
    if place is None:  # the same person joined from another address at this moment; that one counts
        raise Refusal("courses_busy", course=course.name)
    return place


async def held(ctx: Context, course: Course, place: CoursePlace, email: str) -> list[Reply]:
    """Mail the place's code (in the subject and the body) in the same transaction as the hold."""
    await schedule_expiry(ctx, place)
    # Older codes stay valid: each proves only its own hold, and one may hold places in several courses.
    code = await identity.issue_code(ctx, PURPOSE, target(place), retire_older=False)
    view = await view_of(ctx.uow, course, ctx.now)
    await ctx.mail(email, "courses_code_mail", code=code, course=view, until=place.hold_expires_at)
    await ctx.audit("course_place_held", f"course:{course.id}", place=place.id,
                    until=place.hold_expires_at.isoformat() if place.hold_expires_at else None)
    return [ctx.say("courses_held", course=view, email=email, until=place.hold_expires_at)]


async def already(ctx: Context, course: Course, place: CoursePlace) -> Reply:
    """What the speaker has in the course already: a place, a hold, or a position on the waiting list."""
    position = await places.position(ctx.uow, place) if place.status == WAITING else None
    return ctx.say("courses_already", course=await view_of(ctx.uow, course, ctx.now), status=place.status,
                   until=place.hold_expires_at, position=position)


# ---- leave -----------------------------------------------------------------------------------


async def leave(ctx: Context, args: str) -> list[Reply]:
    """`leave COURSE`: give the place back before the deadline (it goes to the waiting list), or leave the line."""
    course = await places.lock(ctx.uow, (await named_course(ctx, args, "leave")).id)
    view = await view_of(ctx.uow, course, ctx.now)
    place = await places.own(ctx.uow, course.id, ctx.person.id)
    if place is None or place.status not in JOINED:
        raise Refusal("courses_not_joined", course=view)
    was = place.status
    if was == WAITING:
        if not await places.move(ctx.uow, place, WAITING, status=LEFT):
            raise Refusal("courses_busy", course=course.name)
    elif not view.bookable(ctx.now):
        raise Refusal("courses_leave_too_late", course=view, deadline=view.deadline)
    elif not await places.give_back(ctx.uow, place, LEFT, ctx.now):
        raise Refusal("courses_busy", course=course.name)
    await ctx.audit("course_left", f"course:{course.id}", place=place.id, was=was)
    if was == CONFIRMED:
        await tell_course_staff(ctx, course, "courses_participant_left", course=view,
                                who=await shown_name(ctx, place.person_id))
    offered = await reclaim(ctx, course)  # the place given back, and any hold that ran out, go down the line
    return [ctx.say("courses_left", course=view, was=was, offered=offered)]


async def shown_name(ctx: Context, person_id: int) -> str:
    person = await ctx.session.get_one(Person, person_id)
    return person.name or await verified_email(ctx.uow, person_id) or f"#{person_id}"


# ---- the code comes back -------------------------------------------------------------------


async def code_place(ctx: Context, code: Code) -> tuple[CoursePlace, Course, datetime] | None:
    """The place and (locked) course a code was issued for, with the end of the hold it proves."""
    found = read_target(code.target)
    place = await ctx.session.get(CoursePlace, found[0]) if found else None
    if found is None or place is None:
        return None
    course = await places.lock(ctx.uow, place.course_id)
    await ctx.session.refresh(place)
    return place, course, found[1]


async def place_confirmed(ctx: Context, code: Code) -> list[Reply]:
    """The right code while the hold lasts: the place is confirmed; the course's staff hear of it."""
    loaded = await code_place(ctx, code)
    if loaded is None:
        return [ctx.say("courses_not_held")]
    place, course, until = loaded
    if code.address == ctx.sender:  # the code reached the address it was mailed to: it is proven (the booking
        await identity.prove_sender(ctx)  # page's addresses are proven only so; chat addresses are already)
    if not await places.confirm(ctx.uow, place, until, ctx.now):
        return await too_late(ctx, course, place, until)
    view = await view_of(ctx.uow, course, ctx.now)
    email = await verified_email(ctx.uow, place.person_id)
    if email is not None:
        person = await ctx.session.get_one(Person, place.person_id)
        await ctx.mail(email, "courses_confirmed_mail", lang=customer_language(ctx, person), course=view)
    await tell_course_staff(ctx, course, "courses_new_participant", course=view,
                            who=await shown_name(ctx, place.person_id), channel=place.channel)
    await ctx.audit("course_place_confirmed", f"course:{course.id}", place=place.id)
    return [ctx.say("courses_confirmed", course=view, email=email)]


async def too_late(ctx: Context, course: Course, place: CoursePlace, until: datetime) -> list[Reply]:
    """The code came after its hold ran out: free the place (if it still counts) and pass it on."""
    if await places.give_back(ctx.uow, place, EXPIRED, ctx.now, hold_until=until, ran_out=True):
        await ctx.audit("course_hold_expired", f"course:{course.id}", place=place.id, reason="code came too late")
        await offer_next(ctx, course)
    elif place.status != EXPIRED:  # left, cancelled, or held again under a newer code
        return [ctx.say("courses_not_held")]
    return [ctx.say("courses_hold_expired", course=await view_of(ctx.uow, course, ctx.now))]


async def place_exhausted(ctx: Context, code: Code) -> list[Reply]:
    """The last wrong try: the hold ends at once and its place goes to the next in line."""
    loaded = await code_place(ctx, code)
    if loaded is not None:
        place, course, until = loaded
        if await places.give_back(ctx.uow, place, EXPIRED, ctx.now, hold_until=until):
            await ctx.audit("course_hold_expired", f"course:{course.id}", place=place.id, reason="too many wrong codes")
            await offer_next(ctx, course)
    return [ctx.say("courses_exhausted")]


async def give_up_places(ctx: Context, person_id: int) -> int:
    """A person being forgotten leaves every course they are in or waiting for (their places go down the
    line, as on `leave`); how many places or waiting-list entries ended."""
    ended = 0
    mine = (await ctx.session.scalars(select(CoursePlace.course_id).where(
        CoursePlace.person_id == person_id, CoursePlace.status.in_(JOINED)).order_by(CoursePlace.course_id))).all()
    for course_id in mine:
        course = await places.lock(ctx.uow, course_id)  # in course order, as every path that changes places
        place = await places.own(ctx.uow, course_id, person_id)
        if place is None or place.status not in JOINED:
            continue
        if place.status == WAITING:
            ended += await places.move(ctx.uow, place, WAITING, status=LEFT)
        else:
            ended += await places.give_back(ctx.uow, place, LEFT, ctx.now)
            await reclaim(ctx, course)
    return ended
