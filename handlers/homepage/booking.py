"""Booking from the business's own homepage: the chat's walk, hold, code and notices, for a visitor who types
a name and an email address instead of writing in a chat.

The page edge (bot/api/page.py) parses requests and renders what these return; every rule is the chat's. The
questions and refusals are those of `book`, the hold is claimed by the walk's own claim, the code is the
booking code (mailed, five tries, confirmed or requested by the chat's completion, staff told). A visitor is
the person of the email address they type (made if new, unverified until the code comes back), writing on
channel "web"; looking around makes no one and writes nothing.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select

from handlers import identity
from handlers.appointments import lock_calendars
from handlers.booking.catalog import Catalog, Scope, load_catalog, narrow, offering, refuse_holiday
from handlers.booking.form import BookingQuery, book_command, booking_commander, parse_booking
from handlers.booking.rules import Rules, booking_rules, check_day, is_live, local_day
from handlers.booking.walk import BOOKING, book, check_start, claim_slot, places_for, send_code
from handlers.context import Context, Refusal
from handlers.homepage.guard import Wanted, holder, mask
from handlers.homepage.seats import OPEN_HOLDS, NoSeat, take_seat
from handlers.messages import Choice, Inbound, Reply
from handlers.notices import AppointmentView, view
from handlers.router import Desk
from handlers.rules import codes
from handlers.rules.availability import local_minute
from handlers.rules.roles import effective_roles
from storage.dialect import serialize
from storage.models import Appointment, Audit, Business, Code, Person

PAGE = "web"  # the booking page's channel
STEPS = {"booking_pick_service": "service", "booking_pick_location": "location", "booking_pick_staff": "staff",
         "booking_pick_day": "day", "booking_pick_time": "time"}
OUTCOMES = {"booking_confirmed": "confirmed", "booking_requested": "requested", "code_wrong": "wrong",
            "booking_exhausted": "exhausted", "booking_hold_expired": "expired"}  # anything else: the code is gone
T = TypeVar("T")


@dataclass(frozen=True)
class Visitor:
    """Who is at the page: the language it is shown in, and the client address the request came from."""

    lang: str
    client: str


@dataclass(frozen=True)
class Option:
    """One choice: its label (the chat's), the query it leads to, and for a service its length and price."""

    label: str
    query: BookingQuery
    minutes: int | None = None
    price: str | None = None


@dataclass(frozen=True)
class Step:
    """The next question (service, location, staff, day or time) with its options; or, once a free time is
    chosen, `details`: the form for name and email, with the time it would hold."""

    ask: str
    query: BookingQuery
    options: tuple[Option, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Refused:
    """A clear no in the chat's words (`template` names them), with the chat's alternatives as options."""

    template: str
    text: str
    options: tuple[Option, ...]
    query: BookingQuery | None  # what was asked, as far as it could be read


@dataclass(frozen=True)
class Held:
    appointment_id: int


@dataclass(frozen=True)
class HoldView:
    """A page hold as its code page shows it: held (waiting for the code), confirmed, requested or ended."""

    appointment: AppointmentView
    state: str
    until: datetime | None
    email: str  # masked: the page's link is all it takes to see it


@dataclass(frozen=True)
class Answer:
    """What a code typed into the page did: confirmed, requested, wrong, exhausted, expired or gone."""

    outcome: str
    text: str  # the chat's words for it
    options: tuple[Option, ...] = ()


# ---- running steps as a visitor --------------------------------------------------------------


async def look(desk: Desk, visitor: Visitor, step: Callable[[Context], Awaitable[T]]) -> T:
    """Run a read-only step as a visitor nobody knows: no person is made and nothing is kept."""
    async with desk.store.uow() as uow:
        now = desk.clock.now()
        inbound = Inbound(PAGE, f"{PAGE}:visitor", now, language_hint=visitor.lang)
        ctx = Context(inbound, uow, desk.config, now, Person(name=None), effective_roles(set()),
                      await uow.session.get(Business, 1), None, desk, lang=visitor.lang)
        return await step(ctx)


def as_visitor(email: str, visitor: Visitor, now: datetime, name: str | None = None) -> Inbound:
    """What the page sends the desk: a message on channel web from the email address the visitor typed."""
    return Inbound(PAGE, f"email:{email}", now, language_hint=visitor.lang, display_name=name)


# ---- the walk --------------------------------------------------------------------------------


async def page_walk(desk: Desk, visitor: Visitor, wanted: Wanted) -> Step | Refused:
    """The next question of the chat's `book` walk for what the page asks so far, or the form once a free time
    is chosen; a refusal in the chat's words otherwise."""
    return await look(desk, visitor, lambda ctx: walk_step(ctx, wanted))


async def walk_step(ctx: Context, wanted: Wanted) -> Step | Refused:
    catalog = await load_catalog(ctx.uow)
    query = None
    try:
        query = read_query(catalog, wanted)
        if query.minute is None:
            [reply] = await book(ctx, book_command(query).removeprefix("book").strip())  # the chat's own question
            found = options(catalog, query, reply.choices)
            if reply.template == "booking_pick_service":  # with what the list of services says about each
                found = tuple(replace(o, minutes=catalog.services[o.label].minutes,
                                      price=catalog.services[o.label].price) for o in found)
            return Step(STEPS[reply.template or ""], query, found)
        scope, rules, start, _ = await checked(ctx, catalog, query, lock=False)
        return Step("details", query, start=start, end=start + scope.length)
    except Refusal as refusal:
        return refused(ctx, catalog, refusal, query)


def read_query(catalog: Catalog, wanted: Wanted) -> BookingQuery:
    """The page's parameters read by the chat's own parser (names in any case), or its refusal."""
    return parse_booking(wanted.typed, list(catalog.services), list(catalog.locations), list(catalog.staff))


def options(catalog: Catalog, current: BookingQuery | None, choices: Iterable[Choice]) -> tuple[Option, ...]:
    """The chat's buttons as page options: each button's command read back into a query."""
    found = []
    for choice in choices:
        query = parse_booking(choice.command.partition(" ")[2], list(catalog.services), list(catalog.locations),
                              list(catalog.staff))
        if current is not None and current.service == query.service:
            # A time button's command names the staff member or the place, not both: keep what was chosen.
            query = replace(query, location=query.location or current.location, staff=query.staff or current.staff)
        found.append(Option(choice.label, query))
    return tuple(found)


def refused(ctx: Context, catalog: Catalog, refusal: Refusal, query: BookingQuery | None) -> Refused:
    reply = ctx.say(refusal.template, **refusal.values)
    return Refused(refusal.template, reply.text, options(catalog, query, reply.choices), query)


async def checked(ctx: Context, catalog: Catalog, query: BookingQuery,
                  lock: bool) -> tuple[Scope, Rules, datetime, dict[int, int]]:
    """The chat's checks of a chosen time, in the chat's order; the staff free at it (staff id → location).

    With `lock`, the staff rows are locked before the plan is read, as the chat's hold does (a closure decided
    at this moment either comes first and is seen, or waits for the hold and then lists it)."""
    if ctx.business is None or query.service is None or query.day is None or query.minute is None:
        raise Refusal("booking_page_choose")
    service = catalog.services[query.service]
    scope = narrow(catalog, service, query, await offering(ctx.uow, service.id))
    rules = booking_rules(ctx.business, ctx.now)
    check_day(rules, query.day)
    await refuse_holiday(ctx, scope, rules, query.day, booking_commander(query))
    start = local_minute(query.day, query.minute, rules.tz)
    await check_start(ctx, query, query.day, scope, rules, start)
    if lock:
        await lock_calendars(ctx.uow, sorted(scope.staff_ids), closing=False)
    return scope, rules, start, await places_for(ctx, query, query.day, scope, rules, start)


# ---- holding the time and sending the code ---------------------------------------------------


async def page_hold(desk: Desk, visitor: Visitor, wanted: Wanted, name: str, email: str) -> Held | Refused:
    """Hold the chosen time for the person of `email` (made if new) and mail them the booking code; a refusal
    in the chat's words (with fresh times) otherwise, and then nothing at all was written."""
    inbound = as_visitor(email, visitor, desk.clock.now(), name)
    try:
        return await desk.act(inbound, lambda ctx: hold_step(ctx, visitor, wanted, name, email))
    except Refusal as refusal:
        said = refusal
    return await look(desk, visitor, lambda ctx: refused_after(ctx, wanted, said))


async def hold_step(ctx: Context, visitor: Visitor, wanted: Wanted, name: str, email: str) -> Held:
    ctx.lang = visitor.lang
    catalog = await load_catalog(ctx.uow)
    if ctx.business is None or not catalog.services:
        raise Refusal("booking_unavailable")
    query = read_query(catalog, wanted)
    scope, rules, start, places = await checked(ctx, catalog, query, lock=True)
    appointment = await claim_slot(ctx, query, local_day(start, rules.tz), scope, places, start, rules)
    await take_seats(ctx, appointment, email, visitor.client)
    await limit_client_codes(ctx, visitor.client)
    if not ctx.person.name:  # a name typed into a form never replaces one the person has
        ctx.person.name = name
    await send_code(ctx, appointment, email, [], mail="booking_page_code_mail")
    return Held(appointment.id)


async def refused_after(ctx: Context, wanted: Wanted, refusal: Refusal) -> Refused:
    """A refusal of a hold, told after its transaction rolled back."""
    catalog = await load_catalog(ctx.uow)
    try:
        query: BookingQuery | None = read_query(catalog, wanted)
    except Refusal:
        query = None
    return refused(ctx, catalog, refusal, query)


async def take_seats(ctx: Context, appointment: Appointment, email: str, client: str) -> None:
    """One seat for the email address, one for the client address, or refuse: enough holds are open."""
    for kind, address in (("email", email), ("client", client)):
        try:
            await take_seat(ctx.uow, holder(ctx.config.secret_key, kind, address), appointment.id, ctx.now)
        except NoSeat:
            raise Refusal("booking_page_open_holds", limit=OPEN_HOLDS, by=kind,
                          minutes=ctx.config.hold_seconds // 60) from None


async def limit_client_codes(ctx: Context, client: str) -> None:
    """The chat's hourly limit of code mails, for the client address too (the email address has it already)."""
    subject = f"client:{holder(ctx.config.secret_key, 'client', client)}"
    await serialize(ctx.session, f"page-codes:{subject}")  # count, then add: one transaction per client at a time
    sent = (await ctx.session.scalars(select(Audit.at).where(
        Audit.action == "page_code_sent", Audit.subject == subject, Audit.at > ctx.now - timedelta(hours=1)))).all()
    wait_until = codes.next_issue_allowed(list(sent), ctx.now, ctx.config.code_max_per_hour)
    if wait_until is not None:
        raise Refusal("code_rate_limited", until=wait_until)
    await ctx.audit("page_code_sent", subject)


# ---- the code comes back ---------------------------------------------------------------------


async def page_confirm(desk: Desk, visitor: Visitor, appointment_id: int, code: str) -> Answer:
    """Check a code typed into the page against the hold's booking code, by the chat's own rules: a right one
    confirms (or requests) it and tells the staff; the fifth wrong one releases the time."""
    sender = await look(desk, visitor, lambda ctx: code_sender(ctx, appointment_id))
    if sender is None:
        return await look(desk, visitor, lambda ctx: gone(ctx))
    inbound = Inbound(PAGE, sender, desk.clock.now(), language_hint=visitor.lang)
    return await desk.act(inbound, lambda ctx: confirm_step(ctx, visitor, appointment_id, code))


def code_target(appointment_id: int) -> str:
    """What the hold's booking code proves (the chat's target: handlers.booking.walk.target)."""
    return f"appointment:{appointment_id}"


async def code_sender(ctx: Context, appointment_id: int) -> str | None:
    """The address that asked for the hold's booking code."""
    return await ctx.session.scalar(select(Code.address).where(
        Code.purpose == BOOKING, Code.target == code_target(appointment_id)).order_by(Code.id.desc()).limit(1))


async def gone(ctx: Context) -> Answer:
    return Answer("gone", ctx.say("code_none").text)


async def confirm_step(ctx: Context, visitor: Visitor, appointment_id: int, typed: str) -> Answer:
    ctx.lang = visitor.lang
    replies = await try_code(ctx, BOOKING, Code.target == code_target(appointment_id), typed)
    return await gone(ctx) if replies is None else await answer(ctx, replies)


async def try_code(ctx: Context, purpose: str, target, typed: str) -> list[Reply] | None:
    """The typed code against the newest open code of `purpose` for the page's visitor whose target matches:
    the chat's own redeeming or counting of a wrong try; None when no such code is open."""
    row = await ctx.session.scalar(select(Code).where(
        Code.address == ctx.sender, Code.purpose == purpose, target, Code.used_at.is_(None),
        Code.expires_at > ctx.now, identity.open_to(ctx)).order_by(Code.id.desc()).limit(1))
    if row is None:
        return None
    if codes.matches(ctx.config.secret_key, row.purpose, row.target, codes.typed_code(typed), row.digest):
        return await identity.redeem(ctx, row)
    return await identity.count_wrong_attempt(ctx, [row])


async def answer(ctx: Context, replies: list[Reply]) -> Answer:
    """What the chat's replies to a code mean for the page."""
    for reply in replies:
        if reply.template in OUTCOMES:
            found = options(await load_catalog(ctx.uow), None, reply.choices)
            return Answer(OUTCOMES[reply.template], reply.text, found)
    return await gone(ctx)


async def page_hold_view(desk: Desk, visitor: Visitor, appointment_id: int) -> HoldView | None:
    """A page hold as its code page shows it, or None if there is no such hold."""
    return await look(desk, visitor, lambda ctx: hold_view(ctx, appointment_id))


async def hold_view(ctx: Context, appointment_id: int) -> HoldView | None:
    appointment = await ctx.session.get(Appointment, appointment_id)
    sender = await code_sender(ctx, appointment_id)
    if appointment is None or sender is None or not sender.startswith("email:"):
        return None
    if appointment.status in ("confirmed", "requested"):
        state = appointment.status
    else:
        state = "held" if appointment.status == "held" and is_live(appointment, ctx.now) else "ended"
    return HoldView(await view(ctx.uow, appointment), state, appointment.hold_expires_at,
                    mask(sender.partition(":")[2]))
