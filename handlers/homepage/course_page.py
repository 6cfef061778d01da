"""Joining a course from the business's homepage (`/book?course=NAME`): the course, a name and an email address,
the place's code, and the confirmed place; a full course puts the visitor on its waiting list.

Every rule is the courses capability's own: the course named as `join` names it, closed courses refused as
`join` refuses them, the place taken by `places.take` (a conditional UPDATE), held and mailed by `held`,
queued by `placed`, and the code checked by the chat's code handling, whose completion (`place_confirmed`)
and exhaustion (`place_exhausted`) the courses registered. The page adds only what it adds for appointments:
its limit of open holds per email and client address and its hourly limit of code mails per client.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from handlers.context import Context, Refusal
from handlers.courses import places
from handlers.courses.holds import PURPOSE, reclaim
from handlers.courses.joining import held, named_course, placed, refuse_closed
from handlers.courses.places import CONFIRMED, HELD, JOINED, WAITING
from handlers.courses.views import CourseView, view_of
from handlers.homepage.booking import Answer, Refused, Visitor, as_visitor, limit_client_codes, look, try_code
from handlers.homepage.guard import holder, mask
from handlers.homepage.seats import OPEN_HOLDS
from handlers.messages import Inbound, Reply
from handlers.router import Desk
from storage.dialect import serialize
from storage.models import Audit, Code, Course, CoursePlace

PAGE = "web"
HELD_ON_PAGE = "page_course_held"  # audit action: a place held through the page, under its client's key
OUTCOMES = {"courses_confirmed": "confirmed", "code_wrong": "wrong", "courses_exhausted": "exhausted",
            "courses_hold_expired": "expired"}  # anything else: the code is gone


@dataclass(frozen=True)
class CourseStep:
    """The course as the page shows it above the form for name and email."""

    course: CourseView


@dataclass(frozen=True)
class Placed:
    place_id: int


@dataclass(frozen=True)
class PlaceView:
    """A place joined through the page as its code page shows it: held (waiting for the code), confirmed,
    waiting (with its position in line) or ended."""

    course: CourseView
    state: str
    until: datetime | None
    email: str  # masked
    position: int | None = None


def refused(ctx: Context, refusal: Refusal) -> Refused:
    reply = ctx.say(refusal.template, **refusal.values)
    return Refused(refusal.template, reply.text, (), None)


# ---- the course ------------------------------------------------------------------------------


async def page_course(desk: Desk, visitor: Visitor, name: str) -> CourseStep | Refused:
    """The course of that name, if it can be joined now; the chat's refusal (unknown, closed) otherwise."""
    return await look(desk, visitor, lambda ctx: course_step(ctx, name))


async def course_step(ctx: Context, name: str) -> CourseStep | Refused:
    try:
        course = await named_course(ctx, name, "join")
        view = await view_of(ctx.uow, course, ctx.now)
        refuse_closed(view, ctx.now)
        return CourseStep(view)
    except Refusal as refusal:
        return refused(ctx, refusal)


# ---- holding a place or queueing -------------------------------------------------------------


async def page_join(desk: Desk, visitor: Visitor, course: str, name: str, email: str) -> Placed | Refused:
    """Hold a place for the person of `email` (made if new) and mail its code, or put them on the waiting list
    when the course is full; a refusal in the chat's words otherwise, and then nothing was written."""
    inbound = as_visitor(email, visitor, desk.clock.now(), name)
    try:
        return await desk.act(inbound, lambda ctx: join_step(ctx, visitor, course, name, email))
    except Refusal as refusal:
        said = refusal
    return await look(desk, visitor, lambda ctx: _refused(ctx, said))


async def _refused(ctx: Context, refusal: Refusal) -> Refused:
    return refused(ctx, refusal)


async def join_step(ctx: Context, visitor: Visitor, name: str, person_name: str, email: str) -> Placed:
    """`join`'s own steps for a visitor whose address is proven only by the code that comes back."""
    ctx.lang = visitor.lang
    course = await places.lock(ctx.uow, (await named_course(ctx, name, "join")).id)
    refuse_closed(await view_of(ctx.uow, course, ctx.now), ctx.now)
    await reclaim(ctx, course)  # holds that ran out go back, to the waiting list first
    place = await places.own(ctx.uow, course.id, ctx.person.id)
    if place is not None and place.status in JOINED:
        # Only the mails to the address say which: whoever types an address on the page learns no more.
        raise Refusal("booking_page_course_already", course=course.name)
    if not ctx.person.name:  # a name typed into a form never replaces one the person has
        ctx.person.name = person_name
    if await places.take(ctx.uow, course.id):
        await limit_open_holds(ctx, visitor.client)
        place = await placed(ctx, course, place, HELD)
        await limit_client_codes(ctx, visitor.client)
        await held(ctx, course, place, email)
        await ctx.audit(HELD_ON_PAGE, client_subject(ctx, visitor.client), place=place.id)
        return Placed(place.id)
    place = await placed(ctx, course, place, WAITING)
    await ctx.audit("course_waiting", f"course:{course.id}", place=place.id)
    return Placed(place.id)


def client_subject(ctx: Context, client: str) -> str:
    return f"client:{holder(ctx.config.secret_key, 'client', client)}"


async def limit_open_holds(ctx: Context, client: str) -> None:
    """At most OPEN_HOLDS places held at once per email address (its person) and per client address, as for
    appointments; counted and then added while the database serializes both keys."""
    subject = client_subject(ctx, client)
    await serialize(ctx.session, f"page-course-holds:{ctx.person.id}", f"page-course-holds:{subject}")
    live = (CoursePlace.status == HELD) & (CoursePlace.hold_expires_at > ctx.now)
    mine = await ctx.session.scalar(select(CoursePlace.id).where(CoursePlace.person_id == ctx.person.id, live)
                                    .order_by(CoursePlace.id).offset(OPEN_HOLDS - 1).limit(1))
    recent = (await ctx.session.scalars(select(Audit.detail).where(
        Audit.action == HELD_ON_PAGE, Audit.subject == subject,
        Audit.at > ctx.now - timedelta(seconds=ctx.config.hold_seconds)))).all()
    ids = [int(d["place"]) for d in recent if isinstance(d.get("place"), int)]
    theirs = len((await ctx.session.scalars(select(CoursePlace.id).where(CoursePlace.id.in_(ids), live))).all()) \
        if ids else 0
    for kind, full in (("email", mine is not None), ("client", theirs >= OPEN_HOLDS)):
        if full:
            raise Refusal("booking_page_open_holds", limit=OPEN_HOLDS, by=kind,
                          minutes=ctx.config.hold_seconds // 60)


# ---- the place's page and its code -----------------------------------------------------------


async def page_place_view(desk: Desk, visitor: Visitor, place_id: int) -> PlaceView | None:
    """A place joined through the page, as its code page shows it; None if there is no such place."""
    return await look(desk, visitor, lambda ctx: place_view(ctx, place_id))


async def place_view(ctx: Context, place_id: int) -> PlaceView | None:
    place = await ctx.session.get(CoursePlace, place_id)
    if place is None or not place.address.startswith("email:"):
        return None
    view = await view_of(ctx.uow, await ctx.session.get_one(Course, place.course_id), ctx.now)
    email = mask(place.address.partition(":")[2])
    if place.status == HELD and place.hold_expires_at is not None and place.hold_expires_at > ctx.now:
        return PlaceView(view, "held", place.hold_expires_at, email)
    if place.status == CONFIRMED:
        return PlaceView(view, "confirmed", None, email)
    if place.status == WAITING:
        return PlaceView(view, "waiting", None, email, await places.position(ctx.uow, place))
    return PlaceView(view, "ended", None, email)


async def page_place_confirm(desk: Desk, visitor: Visitor, place_id: int, typed: str) -> Answer:
    """Check a code typed into the page against the place's code, by the chat's own rules: a right one
    confirms the place (courses' completion), the fifth wrong one ends the hold and passes the place on."""
    sender = await look(desk, visitor, lambda ctx: place_sender(ctx, place_id))
    if sender is None:
        return await look(desk, visitor, gone)
    inbound = Inbound(PAGE, sender, desk.clock.now(), language_hint=visitor.lang)
    return await desk.act(inbound, lambda ctx: confirm_step(ctx, visitor, place_id, typed))


async def place_sender(ctx: Context, place_id: int) -> str | None:
    place = await ctx.session.get(CoursePlace, place_id)
    return place.address if place is not None else None


async def gone(ctx: Context) -> Answer:
    return Answer("gone", ctx.say("code_none").text)


async def confirm_step(ctx: Context, visitor: Visitor, place_id: int, typed: str) -> Answer:
    ctx.lang = visitor.lang
    replies = await try_code(ctx, PURPOSE, Code.target.startswith(f"place:{place_id}:"), typed)
    return await gone(ctx) if replies is None else await answer(ctx, replies)


async def answer(ctx: Context, replies: list[Reply]) -> Answer:
    for reply in replies:
        if reply.template in OUTCOMES:
            return Answer(OUTCOMES[reply.template], reply.text)
    return await gone(ctx)
