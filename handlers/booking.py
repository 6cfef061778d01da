"""Booking for customers: the button walk, the typed form, holds confirmed by a code, and one's own appointments.

Every button runs a typed partial form (`book Massage at Linz with any on 2026-12-03`), so the same walk
works by email, where choices arrive as lines to reply with.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select, update

from handlers import identity
from handlers.appointments import (
    DayPlan, SlotTaken, claim, live_condition, live_load, load_plan, location_ids, lock_calendars, move,
    qualified_staff, release,
)
from handlers.availability import Slot, StaffCalendar, day_bounds, free_slots, is_free, local_minute, pick_fairly
from handlers.context import Context, Refusal, known_id
from handlers.messages import Choice, Reply
from handlers.notices import AppointmentView, tell_customer, tell_staff_and_admins, verified_email, view
from handlers.router import Command, Handlers
from storage.db import UnitOfWork
from storage.models import Appointment, Business, Code, Location, Person, Service, Staff, StaffHours, StaffService

BOOKING = "booking"  # the code purpose
ADMINS = frozenset({"owner", "admin"})
COLLEAGUES_RIGHT = "book_for_colleagues"
CUSTOMER, STAFF, MANAGER = "customer", "staff", "manager"  # how a speaker may act on an appointment
ANY = "*"  # "any free staff member"
DAYS_OFFERED = 10
MAX_TIMES = 48  # a keyboard stays usable; other times can still be typed
GRID_MINUTES = 5  # appointments start on the 5-minute cells that slot_claim guards

LOCATION_WORDS = frozenset({"at", "in"})
STAFF_WORDS = frozenset({"with", "bei", "mit"})
ANY_WORDS = frozenset({"any", "anyone", "anybody", "egal", "beliebig", "jemand", "*"})
DATE_WORDS = frozenset({"on", "am"})
TIME_WORDS = frozenset({"at", "um"})
FILLER = frozenset({"uhr", "h", "o'clock"})
KEYWORDS = LOCATION_WORDS | STAFF_WORDS | DATE_WORDS | TIME_WORDS
ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# The years a typed date may name (calendar words too): near year 1 or 9999, turning a day into UTC overflows.
FIRST_YEAR, LAST_YEAR = 2000, 2100
HH_MM = re.compile(r"^(\d{1,2}):(\d{2})$")

# (day, minute or None) → the command a button runs
Commander = Callable[[date, "int | None"], str]


# ---- parsing the typed form (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class BookingQuery:
    """What a typed or tapped `book …` asks for so far; None means not chosen yet."""

    service: str | None = None
    location: str | None = None
    staff: str | None = None  # a staff member's name, or ANY
    day: date | None = None
    minute: int | None = None  # minutes after local midnight


def fold(text: str) -> str:
    """Compare names as people type them: any case, any spacing."""
    return " ".join(text.split()).casefold()


def pop_word(text: str) -> tuple[str, str]:
    """The first word and the untouched rest (a personal message keeps its line breaks)."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], (parts[1] if len(parts) > 1 else "")


def longest_name(tokens: list[str], names: list[str]) -> tuple[str | None, int]:
    """The longest of `names` that the first tokens spell (case-insensitive), and how many tokens it takes."""
    index = {fold(name): name for name in names}
    for count in range(len(tokens), 0, -1):
        name = index.get(fold(" ".join(tokens[:count])))
        if name is not None:
            return name, count
    return None, 0


def staff_name(tokens: list[str], names: list[str]) -> tuple[str | None, int]:
    """A staff member's full name, or one word that names exactly one of them (a first or last name)."""
    name, used = longest_name(tokens, names)
    if name is not None or not tokens:
        return name, used
    hits = [n for n in names if fold(tokens[0]) in fold(n).split()]
    return (hits[0], 1) if len(hits) == 1 else (None, 0)


def leading_words(tokens: list[str]) -> str:
    """The words before the first date, time or keyword: what the speaker meant as a name."""
    taken = []
    for token in tokens:
        if token[:1].isdigit() or fold(token) in KEYWORDS:
            break
        taken.append(token)
    return " ".join(taken or tokens[:1])[:60]


def plausible(day: date) -> bool:
    """True if the day lies in the years the desk works with (FIRST_YEAR to LAST_YEAR)."""
    return FIRST_YEAR <= day.year <= LAST_YEAR


def read_date(token: str) -> date:
    """YYYY-MM-DD as a date in the years the desk works with, or a refusal that quotes what was typed."""
    match = ISO_DATE.match(token)
    if match:
        try:
            day = date(*map(int, match.groups()))
        except ValueError:
            pass
        else:
            if not plausible(day):
                raise Refusal("booking_date_range", value=token, first=FIRST_YEAR, last=LAST_YEAR)
            return day
    raise Refusal("booking_bad_format", value=token[:20])


def read_time(token: str) -> int:
    """HH:MM as minutes after midnight, on the 5-minute grid."""
    match = HH_MM.match(token)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise Refusal("booking_bad_format", value=token[:20])
    minute = int(match[1]) * 60 + int(match[2])
    if minute % GRID_MINUTES:
        raise Refusal("booking_off_grid", value=token)
    return minute


def read_moment(token: str, found: dict) -> None:
    """A token that starts with a digit is a time (with a colon) or a date."""
    if ":" in token:
        found["minute"] = read_time(token)
    else:
        found["day"] = read_date(token)


def parse_booking(text: str, services: list[str], locations: list[str], staff: list[str]) -> BookingQuery:
    """Read `SERVICE [at|in LOCATION] [with|bei STAFF|any] [[on|am] YYYY-MM-DD] [[at|um] HH:MM] [STAFF]`."""
    tokens = text.split()
    if not tokens:
        return BookingQuery()
    service, used = longest_name(tokens, services)
    if service is None:
        raise Refusal("booking_unknown_service", value=leading_words(tokens), services=sorted(services),
                      choices=[Choice(name, f"book {name}") for name in services])
    found: dict = {"service": service}
    rest = tokens[used:]
    while rest:
        rest = read_part(rest, found, locations, staff)
    if "minute" in found and "day" not in found:
        raise Refusal("booking_missing_date", time=hhmm(found["minute"]))
    return BookingQuery(**found)


def read_part(rest: list[str], found: dict, locations: list[str], staff: list[str]) -> list[str]:
    """Read one part of a typed booking into `found`; return the words left."""
    head, tail = fold(rest[0]), rest[1:]
    if head in FILLER:
        return tail
    if head in TIME_WORDS | DATE_WORDS and tail and tail[0][:1].isdigit():
        read_moment(tail[0], found)
        return tail[1:]
    if rest[0][:1].isdigit():
        read_moment(rest[0], found)
        return tail
    if head in LOCATION_WORDS and tail:
        return read_location(tail, locations, found)
    if head in STAFF_WORDS and tail:
        return read_staff(tail, staff, found)
    name, used = longest_name(rest, locations)  # a bare location, or the contract's trailing [staff]
    if name is not None:
        found["location"] = name
        return rest[used:]
    return read_staff(rest, staff, found)


def read_location(words: list[str], locations: list[str], found: dict) -> list[str]:
    name, used = longest_name(words, locations)
    if name is None:
        raise Refusal("booking_unknown_location", value=leading_words(words), locations=sorted(locations))
    found["location"] = name
    return words[used:]


def read_staff(words: list[str], staff: list[str], found: dict) -> list[str]:
    if fold(words[0]) in ANY_WORDS:
        found["staff"] = ANY
        return words[1:]
    name, used = staff_name(words, staff)
    if name is None:
        raise Refusal("booking_unknown_staff", value=leading_words(words), staff=sorted(staff))
    found["staff"] = name
    return words[used:]


def hhmm(minute: int) -> str:
    """Minutes after midnight as the HH:MM people type."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def book_command(q: BookingQuery) -> str:
    """The typed form of a query: what a button runs, and what a customer could type by email."""
    parts = ["book", q.service]
    if q.minute is not None:
        parts += [q.day.isoformat(), hhmm(q.minute)]
        if q.staff not in (None, ANY):
            parts.append(q.staff)
        elif q.location:
            parts += ["at", q.location]
        return " ".join(parts)
    if q.location:
        parts += ["at", q.location]
    if q.staff:
        parts += ["with", "any" if q.staff == ANY else q.staff]
    if q.day:
        parts += ["on", q.day.isoformat()]
    return " ".join(parts)


def booking_commander(query: BookingQuery) -> Commander:
    """Buttons that complete `query` with a day and a time."""
    return lambda day, minute: book_command(replace(query, day=day, minute=minute))


def move_commander(number: int) -> Commander:
    """Buttons that move appointment `number` to a day and a time."""
    def command(day: date, minute: int | None) -> str:
        return " ".join(["move", str(number), day.isoformat(), *([hhmm(minute)] if minute is not None else [])])
    return command


def split_id(args: str) -> tuple[int, str]:
    """`12 rest…` or `#12 rest…` → (12, 'rest…')."""
    head, rest = pop_word(args)
    number = head.lstrip("#")
    if not (number.isascii() and number.isdigit()):
        raise Refusal("booking_bad_id", value=head[:20])
    return known_id(int(number)), rest.strip()


def parse_move(text: str) -> tuple[date | None, int | None, str]:
    """`[on] YYYY-MM-DD [[at] HH:MM] [message]` → (day, minute, message)."""
    word, rest = pop_word(text)
    if fold(word) in DATE_WORDS:
        word, rest = pop_word(rest)
    if not word:
        return None, None, ""
    day = read_date(word)
    word, tail = pop_word(rest)
    if fold(word) in TIME_WORDS:
        word, tail = pop_word(tail)
    if not word[:1].isdigit():
        return day, None, rest.strip()
    minute = read_time(word)
    filler, after = pop_word(tail)
    return day, minute, (after if fold(filler) in FILLER else tail).strip()


# ---- the rules customers book under (pure) ---------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """What customers may book: the slot grid, the earliest start and the last day in reach."""

    tz: ZoneInfo
    step: timedelta
    now: datetime
    earliest: datetime
    today: date
    last_day: date
    min_notice: int
    max_days: int

    @property
    def first_day(self) -> date:
        return self.earliest.astimezone(self.tz).date()


def booking_rules(business: Business, now: datetime) -> Rules:
    """The business's booking settings as they apply at `now`."""
    tz = ZoneInfo(business.timezone)
    today = now.astimezone(tz).date()
    earliest = now + timedelta(minutes=business.min_notice_minutes)
    return Rules(tz, timedelta(minutes=business.slot_minutes), now, earliest, today,
                 today + timedelta(days=business.max_days_ahead), business.min_notice_minutes, business.max_days_ahead)


def check_day(rules: Rules, day: date) -> None:
    """Refuse a day before today or beyond the last bookable day."""
    if day < rules.today:
        raise Refusal("booking_in_past", day=day)
    if day > rules.last_day:
        raise Refusal("booking_too_far", last_day=rules.last_day, days=rules.max_days)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The business-local calendar day of a UTC instant."""
    return moment.astimezone(tz).date()


def local_minutes(moment: datetime, tz: ZoneInfo) -> int:
    """Minutes after local midnight on the wall clock."""
    local = moment.astimezone(tz)
    return local.hour * 60 + local.minute


def is_live(appointment: Appointment, now: datetime) -> bool:
    """Held counts only until the hold expires; requested and confirmed until they are closed."""
    if appointment.status == "held":
        return appointment.hold_expires_at is not None and appointment.hold_expires_at > now
    return appointment.status in ("requested", "confirmed")


# ---- free slots (pure, over a loaded DayPlan) ----------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Where and with whom a service's slots are looked for."""

    service: Service
    location_ids: tuple[int, ...]
    staff_ids: tuple[int, ...]

    @property
    def length(self) -> timedelta:
        return timedelta(minutes=self.service.minutes)


def slots_on(plan: DayPlan, rules: Rules, scope: Scope, day: date, first_only: bool = False) -> list[Slot]:
    """Free start times of one day, on the slot grid counted from local midnight."""
    calendars = plan.calendars(day, rules.tz, list(scope.location_ids), list(scope.staff_ids))
    anchor = day_bounds(day, rules.tz)[0]
    return free_slots(calendars, scope.length, rules.step, anchor, rules.earliest, first_only=first_only)


def days_with_slots(plan: DayPlan, rules: Rules, scope: Scope, limit: int) -> list[date]:
    """The first `limit` days in reach that have at least one free slot."""
    days, day = [], rules.first_day
    while day <= rules.last_day and len(days) < limit:
        if slots_on(plan, rules, scope, day, first_only=True):
            days.append(day)
        day += timedelta(days=1)
    return days


def fits(calendar: StaffCalendar, start: datetime, end: datetime, anchor: datetime, rules: Rules,
         busy: bool = True) -> bool:
    """True if [start, end) is a slot customers may book in this calendar (with busy=False: ignoring bookings)."""
    on_step = (start - anchor) % rules.step == timedelta(0)
    inside = any(a <= start and end <= b for a, b in calendar.windows)
    return start >= rules.earliest and on_step and inside and (not busy or is_free(calendar.busy, start, end))


def places_at(plan: DayPlan, rules: Rules, scope: Scope, start: datetime, busy: bool = True) -> dict[int, int]:
    """Who may be booked at exactly `start`, and where: staff id → location id."""
    day = local_day(start, rules.tz)
    anchor, places = day_bounds(day, rules.tz)[0], {}
    for location in scope.location_ids:
        for calendar in plan.calendars(day, rules.tz, [location], list(scope.staff_ids)):
            if fits(calendar, start, start + scope.length, anchor, rules, busy):
                places.setdefault(calendar.staff_id, location)
    return places


def without(plan: DayPlan, appointment: Appointment) -> DayPlan:
    """The plan as if `appointment` were not there: a move may overlap its own old time."""
    own = (appointment.staff_id, appointment.start_at, appointment.end_at)
    return replace(plan, busy={s: [iv for iv in ivs if (s, *iv) != own] for s, ivs in plan.busy.items()})


# ---- free slots from the store (reusable by the calendar module) -----------------------------


async def plan_for(uow: UnitOfWork, rules: Rules, scope: Scope, first: date, last: date,
                   ignore: Appointment | None = None) -> DayPlan:
    """Load hours, closures and live appointments for the scope's staff over whole local days."""
    start, end = day_bounds(first, rules.tz)[0], day_bounds(last, rules.tz)[1]
    plan = await load_plan(uow, list(scope.staff_ids), start, end, rules.now)
    return without(plan, ignore) if ignore is not None else plan


async def free_days(uow: UnitOfWork, rules: Rules, scope: Scope, limit: int = DAYS_OFFERED,
                    ignore: Appointment | None = None) -> list[date]:
    """The next `limit` days with at least one slot customers may book."""
    if rules.first_day > rules.last_day or not scope.staff_ids:
        return []
    plan = await plan_for(uow, rules, scope, rules.first_day, rules.last_day, ignore)
    return days_with_slots(plan, rules, scope, limit)


async def free_times(uow: UnitOfWork, rules: Rules, scope: Scope, day: date,
                     ignore: Appointment | None = None) -> list[Slot]:
    """The slots customers may book on `day`."""
    if not (rules.first_day <= day <= rules.last_day) or not scope.staff_ids:
        return []
    return slots_on(await plan_for(uow, rules, scope, day, day, ignore), rules, scope, day)


@dataclass(frozen=True)
class Catalog:
    """Bookable services, locations and staff, by the names people type."""

    services: dict[str, Service]
    locations: dict[str, int]
    staff: dict[str, int]

    def location_name(self, location_id: int) -> str:
        return next(name for name, i in self.locations.items() if i == location_id)

    def staff_name(self, person_id: int) -> str:
        return next(name for name, i in self.staff.items() if i == person_id)


async def load_catalog(uow: UnitOfWork) -> Catalog:
    """Services that can be booked (not deleted, and someone offers them), every location, and staff members
    with a name."""
    session = uow.session
    offered = exists().where(StaffService.service_id == Service.id)
    services = await session.scalars(select(Service).where(Service.deleted_at.is_(None), offered)
                                     .order_by(Service.id))
    locations = await session.execute(select(Location.name, Location.id).order_by(Location.id))
    staff = await session.execute(select(Person.name, Person.id).join(Staff, Staff.person_id == Person.id)
                                  .where(Person.name.is_not(None)).order_by(Person.id))
    return Catalog({s.name: s for s in services}, dict(locations.all()), dict(staff.all()))


async def offering(uow: UnitOfWork, service_id: int) -> dict[int, list[int]]:
    """Location → the staff qualified for the service who have bookable hours there."""
    qualified = await qualified_staff(uow, service_id)
    rows = await uow.session.execute(select(StaffHours.location_id, StaffHours.person_id).distinct()
                                     .where(StaffHours.person_id.in_(qualified)))
    found: dict[int, set[int]] = {}
    for location, person in rows:
        found.setdefault(location, set()).add(person)
    return {location: sorted(people) for location, people in sorted(found.items())}


def narrow(catalog: Catalog, query: BookingQuery, offer: dict[int, list[int]]) -> Scope:
    """The locations and staff a query leaves open, or a refusal naming the valid ones."""
    locations = list(offer)
    if query.location is not None:
        if catalog.locations[query.location] not in offer:
            raise Refusal("booking_unknown_location", value=query.location,
                          locations=[catalog.location_name(i) for i in offer])
        locations = [catalog.locations[query.location]]
    staff = sorted({person for location in locations for person in offer[location]})
    if query.staff not in (None, ANY):
        if catalog.staff[query.staff] not in staff:
            raise Refusal("booking_unknown_staff", value=query.staff, staff=[catalog.staff_name(i) for i in staff])
        staff = [catalog.staff[query.staff]]
    return Scope(catalog.services[query.service], tuple(locations), tuple(staff))


# ---- choices ---------------------------------------------------------------------------------


def day_choices(ctx: Context, days: list[date], command: Commander) -> list[Choice]:
    """One button per day."""
    return [ctx.choice("booking_label.day", command(day, None), day=day) for day in days]


def time_choices(ctx: Context, slots: list[Slot], rules: Rules, command: Commander) -> list[Choice]:
    """One button per start time (HH:MM on the local wall clock), at most MAX_TIMES."""
    return [ctx.choice("booking_label.time", command(local_day(s.start, rules.tz), local_minutes(s.start, rules.tz)),
                       start=s.start, tz=rules.tz.key) for s in slots[:MAX_TIMES]]


async def alternatives(ctx: Context, scope: Scope, rules: Rules, day: date, command: Commander,
                       ignore: Appointment | None = None) -> dict:
    """Fresh times of the same day as choices, or the next free days when that day has none left."""
    slots = await free_times(ctx.uow, rules, scope, day, ignore)
    if slots:
        return {"times_left": True, "choices": time_choices(ctx, slots, rules, command)}
    days = await free_days(ctx.uow, rules, scope, ignore=ignore)
    return {"times_left": False, "choices": day_choices(ctx, days, command)}


# ---- `book`: the walk ------------------------------------------------------------------------


async def book(ctx: Context, args: str) -> list[Reply]:
    """`book` walks through buttons; `book SERVICE YYYY-MM-DD HH:MM [staff]` holds a slot in one message."""
    catalog = await load_catalog(ctx.uow)
    if ctx.business is None or not catalog.services:
        raise Refusal("booking_unavailable")
    query = parse_booking(args, list(catalog.services), list(catalog.locations), list(catalog.staff))
    if query.service is None:
        return [ctx.say("booking_pick_service", services=list(catalog.services.values()),
                        choices=[Choice(name, f"book {name}") for name in catalog.services])]
    offer = await offering(ctx.uow, catalog.services[query.service].id)
    scope, rules = narrow(catalog, query, offer), booking_rules(ctx.business, ctx.now)
    if query.day is None:
        return [await next_question(ctx, catalog, query, scope, offer, rules)]
    check_day(rules, query.day)
    if query.minute is None:
        return [await ask_time(ctx, query, scope, rules)]
    return await hold(ctx, query, scope, rules)


def named(staff: str | None) -> str | None:
    """The staff name to show, or None for "any free"."""
    return None if staff == ANY else staff


async def next_question(ctx: Context, catalog: Catalog, query: BookingQuery, scope: Scope,
                        offer: dict[int, list[int]], rules: Rules) -> Reply:
    """Ask for the location (if several offer the service), then the staff member, then the day."""
    if query.location is None and len(offer) > 1:
        names = [catalog.location_name(i) for i in offer]
        return ctx.say("booking_pick_location", service=query.service, choices=[
            Choice(name, book_command(replace(query, location=name))) for name in names])
    if query.staff is None and len(scope.staff_ids) > 1:
        names = [catalog.staff_name(i) for i in scope.staff_ids]
        return ctx.say("booking_pick_staff", service=query.service, location=query.location, choices=[
            ctx.choice("booking_label.any", book_command(replace(query, staff=ANY))),
            *[Choice(name, book_command(replace(query, staff=name))) for name in names]])
    return await ask_day(ctx, query, scope, rules)


async def ask_day(ctx: Context, query: BookingQuery, scope: Scope, rules: Rules) -> Reply:
    """Offer the next days that have a free slot."""
    days = await free_days(ctx.uow, rules, scope)
    if not days:
        raise Refusal("booking_no_days", service=query.service, last_day=rules.last_day)
    return ctx.say("booking_pick_day", service=query.service, location=query.location, staff=named(query.staff),
                   choices=day_choices(ctx, days, booking_commander(query)))


async def ask_time(ctx: Context, query: BookingQuery, scope: Scope, rules: Rules) -> Reply:
    """Offer the free times of the chosen day, or other days if it is full."""
    slots = await free_times(ctx.uow, rules, scope, query.day)
    if not slots:
        days = await free_days(ctx.uow, rules, scope)
        raise Refusal("booking_day_full", day=query.day, choices=day_choices(ctx, days, booking_commander(query)))
    return ctx.say("booking_pick_time", service=query.service, location=query.location, staff=named(query.staff),
                   day=query.day, more=len(slots) > MAX_TIMES,
                   choices=time_choices(ctx, slots, rules, booking_commander(query)))


# ---- holding a slot and sending the code -----------------------------------------------------


async def hold(ctx: Context, query: BookingQuery, scope: Scope, rules: Rules) -> list[Reply]:
    """Hold the chosen slot and send the booking code by email (after asking for an address if needed)."""
    start = local_minute(query.day, query.minute, rules.tz)
    await check_start(ctx, query, scope, rules, start)
    # Before the plan is read: a closure decided at this moment either comes first and is seen below,
    # or waits for this hold and then lists it.
    await lock_calendars(ctx.uow, sorted(scope.staff_ids), closing=False)
    released = await release_own_holds(ctx)
    places = await places_for(ctx, query, scope, rules, start)
    email = await verified_email(ctx.uow, ctx.person.id)
    if email is None:
        await identity.ask_email_first(ctx, book_command(query), "booking_continue", "booking_label.continue")
        return [ctx.say("booking_need_email")]
    appointment = await claim_fairly(ctx, scope, places, start, rules)
    if appointment is None:  # someone was quicker between our look and our claim
        offers = await alternatives(ctx, scope, rules, query.day, booking_commander(query))
        # A refusal, not a reply: rolling back puts the earlier holds released above back in place.
        raise Refusal("booking_just_taken", day=query.day, start=start, **offers)
    return await send_code(ctx, appointment, email, released)


async def check_start(ctx: Context, query: BookingQuery, scope: Scope, rules: Rules, start: datetime) -> None:
    """Refuse a start in the past or inside the minimum notice (offering what is still free)."""
    if start <= rules.now:
        raise Refusal("booking_in_past", day=query.day)
    if start < rules.earliest:
        offers = await alternatives(ctx, scope, rules, query.day, booking_commander(query))
        raise Refusal("booking_too_soon", minutes=rules.min_notice, day=query.day, **offers)


async def places_for(ctx: Context, query: BookingQuery, scope: Scope, rules: Rules, start: datetime) -> dict[int, int]:
    """Who is free at `start`; else refuse: "just taken" if bookings block it, "not free" if hours do."""
    plan = await plan_for(ctx.uow, rules, scope, query.day, query.day)
    places = places_at(plan, rules, scope, start)
    if places:
        return places
    template = "booking_just_taken" if places_at(plan, rules, scope, start, busy=False) else "booking_not_free"
    offers = await alternatives(ctx, scope, rules, query.day, booking_commander(query))
    raise Refusal(template, day=query.day, start=start, **offers)


async def release_own_holds(ctx: Context) -> list[AppointmentView]:
    """Release this customer's earlier holds: a new code retires the old one, so they could never be confirmed."""
    rows = (await ctx.session.scalars(select(Appointment).where(
        Appointment.customer_id == ctx.person.id, Appointment.status == "held",
        Appointment.hold_expires_at > ctx.now))).all()
    for row in rows:
        await release(ctx.uow, row, "expired", ctx.sender, "replaced by a new hold", ctx.now)
        await ctx.audit("appointment_expired", target(row), reason="replaced by a new hold")
    return [await view(ctx.uow, row) for row in rows]


async def claim_fairly(ctx: Context, scope: Scope, places: dict[int, int], start: datetime,
                       rules: Rules) -> Appointment | None:
    """Hold the slot with the least busy free staff member; if someone was quicker, try the next one."""
    places = dict(places)
    load = await live_load(ctx.uow, list(places), *day_bounds(local_day(start, rules.tz), rules.tz), ctx.now)
    while places:
        staff = pick_fairly(list(places), load)
        appointment = new_hold(ctx, scope.service, staff, places.pop(staff), start)
        try:
            await claim(ctx.uow, appointment, ctx.now)
        except SlotTaken:  # the savepoint rolled back only the claim; the unit of work goes on
            continue
        return appointment
    return None


def new_hold(ctx: Context, service: Service, staff: int, location: int, start: datetime) -> Appointment:
    """A held appointment for the speaker, blocking the slot until the hold expires."""
    return Appointment(
        service_id=service.id, location_id=location, staff_id=staff, customer_id=ctx.person.id, start_at=start,
        end_at=start + timedelta(minutes=service.minutes), status="held",
        hold_expires_at=ctx.now + timedelta(seconds=ctx.config.hold_seconds), sequence=0,
        channel=ctx.inbound.channel, created_by=ctx.sender, created_at=ctx.now)


def target(appointment: Appointment) -> str:
    """What a booking code proves: this appointment."""
    return f"appointment:{appointment.id}"


async def send_code(ctx: Context, appointment: Appointment, email: str, released: list) -> list[Reply]:
    """Mail the booking code (in subject and body) in the same transaction as the hold."""
    code = await identity.issue_code(ctx, BOOKING, target(appointment))
    v = await view(ctx.uow, appointment)
    until = appointment.hold_expires_at
    await ctx.mail(email, "booking_code_mail", code=code, appointment=v, until=until)
    await ctx.audit("appointment_held", target(appointment), staff=appointment.staff_id,
                    start=appointment.start_at.isoformat(), until=until.isoformat())
    return [ctx.say("booking_held", appointment=v, email=email, until=until, released=released)]


# ---- the code comes back ---------------------------------------------------------------------


async def appointment_of(ctx: Context, code_target: str) -> Appointment | None:
    """The appointment a booking code was issued for."""
    number = code_target.partition(":")[2]
    return await ctx.session.get(Appointment, int(number)) if number.isdigit() else None


async def complete_booking(ctx: Context, code: Code) -> list[Reply]:
    """The right code in time: confirm (direct mode) or file a request (request mode)."""
    appointment = await appointment_of(ctx, code.target)
    if appointment is None or appointment.status not in ("held", "expired"):
        return [ctx.say("booking_not_held")]
    status = "requested" if ctx.business.booking_mode == "request" else "confirmed"
    if not await settle_hold(ctx, appointment, status):
        return await hold_expired(ctx, appointment)
    email = await verified_email(ctx.uow, appointment.customer_id)
    await tell_customer(ctx, appointment, f"booking_{status}_mail", method="REQUEST" if status == "confirmed" else None)
    await tell_staff_and_admins(ctx, appointment, "booking_new_staff", requested=status == "requested")
    await ctx.audit(f"appointment_{status}", target(appointment), staff=appointment.staff_id)
    return [ctx.say(f"booking_{status}", appointment=await view(ctx.uow, appointment), email=email)]


async def settle_hold(ctx: Context, appointment: Appointment, status: str) -> bool:
    """Turn a live hold into `status` with one conditional UPDATE, so an expired hold is never confirmed."""
    result = await ctx.session.execute(
        update(Appointment)
        .where(Appointment.id == appointment.id, Appointment.status == "held", Appointment.hold_expires_at > ctx.now)
        .values(status=status, hold_expires_at=None))
    if result.rowcount != 1:
        return False
    appointment.status, appointment.hold_expires_at = status, None
    return True


async def hold_expired(ctx: Context, appointment: Appointment) -> list[Reply]:
    """The code came after the hold ran out: free the slot (if still claimed) and offer fresh times."""
    if appointment.status == "held":
        await release(ctx.uow, appointment, "expired", "hold expired", "code came too late", ctx.now)
        await ctx.audit("appointment_expired", target(appointment), reason="code came too late")
    v = await view(ctx.uow, appointment)
    offers = await retry_offers(ctx, appointment)
    return [ctx.say("booking_hold_expired", appointment=v, **offers)]


async def retry_offers(ctx: Context, appointment: Appointment) -> dict:
    """Fresh times for the same service and day at the same location, with anyone free."""
    catalog = await load_catalog(ctx.uow)
    service = await ctx.session.get(Service, appointment.service_id)
    if service.name not in catalog.services:  # deleted meanwhile: nothing to offer
        return {"times_left": False, "choices": []}
    location = catalog.location_name(appointment.location_id) if appointment.location_id else None
    rules = booking_rules(ctx.business, ctx.now)
    query = BookingQuery(service.name, location, ANY, local_day(appointment.start_at, rules.tz))
    try:
        scope = narrow(catalog, query, await offering(ctx.uow, service.id))
    except Refusal:
        return {"times_left": False, "choices": []}
    return await alternatives(ctx, scope, rules, query.day, booking_commander(query))


async def booking_exhausted(ctx: Context, code: Code) -> list[Reply]:
    """The fifth wrong code: release the hold at once."""
    appointment = await appointment_of(ctx, code.target)
    if appointment is not None and appointment.status == "held":
        await release(ctx.uow, appointment, "expired", ctx.sender, "too many wrong codes", ctx.now)
        await ctx.audit("appointment_expired", target(appointment), reason="too many wrong codes")
    return [ctx.say("booking_exhausted")]


# ---- `bookings`, `cancel`, `move` -------------------------------------------------------------


async def list_bookings(ctx: Context, args: str) -> list[Reply]:
    """The speaker's upcoming live appointments, each with Cancel and Move."""
    rows = (await ctx.session.scalars(select(Appointment).where(
        Appointment.customer_id == ctx.person.id, Appointment.end_at > ctx.now, live_condition(ctx.now))
        .order_by(Appointment.start_at))).all()
    views = [await view(ctx.uow, row) for row in rows]
    return [ctx.say("booking_list", appointments=views, choices=[c for v in views for c in manage_choices(ctx, v)])]


def manage_choices(ctx: Context, v: AppointmentView) -> list[Choice]:
    """Cancel and Move buttons for one listed appointment."""
    cancel = ctx.choice("booking_label.cancel", f"cancel {v.id}", id=v.id)
    if v.status == "held":  # nothing to move until the code is in
        return [cancel]
    return [cancel, ctx.choice("booking_label.move", f"move {v.id}", id=v.id)]


async def authority(ctx: Context, appointment: Appointment) -> str | None:
    """How the speaker may act on an appointment: as its customer, its staff member, a manager, or not at all."""
    if appointment.customer_id == ctx.person.id:
        return CUSTOMER
    if ctx.roles & ADMINS:
        return MANAGER
    if "staff" not in ctx.roles:
        return None
    staff = await ctx.session.get(Staff, ctx.person.id)
    if staff is not None and COLLEAGUES_RIGHT in (staff.rights or []):
        return MANAGER
    return STAFF if appointment.staff_id == ctx.person.id else None


async def managed(ctx: Context, number: int) -> tuple[Appointment, str]:
    """The appointment if the speaker may act on it and it is live and ahead; someone else's looks unknown.

    The row stays locked until the change commits: a concurrent approve, cancel or move waits, then sees
    this one's outcome (populate_existing re-reads it) instead of acting on a status that no longer holds.
    """
    appointment = await ctx.session.get(Appointment, number, with_for_update=True, populate_existing=True)
    role = await authority(ctx, appointment) if appointment is not None else None
    if role is None:
        raise Refusal("booking_not_found", number=number)
    if not is_live(appointment, ctx.now) or appointment.start_at <= ctx.now:
        raise Refusal("booking_not_live", number=number)
    return appointment, role


async def cancel_booking(ctx: Context, args: str) -> list[Reply]:
    """`cancel ID [reason]`: one's own appointment; managers any (the rest of the line goes to the customer)."""
    number, reason = split_id(args)
    appointment, role = await managed(ctx, number)
    was = appointment.status
    await release(ctx.uow, appointment, "cancelled", ctx.sender, reason or None, ctx.now)
    told = await tell_cancellation(ctx, appointment, was, role, reason)
    await ctx.audit("appointment_cancelled", target(appointment), role=role, was=was, reason=reason[:200])
    return [ctx.say("booking_cancelled", appointment=await view(ctx.uow, appointment),
                    by_customer=role == CUSTOMER, told=told)]


async def tell_cancellation(ctx: Context, appointment: Appointment, was: str, role: str, reason: str) -> bool:
    """Mail the customer (ICS CANCEL if it was confirmed) and tell staff; True if the customer got the mail."""
    if was == "confirmed":
        appointment.sequence += 1  # calendars apply a CANCEL only if its SEQUENCE is not older
    told = False
    if was != "held" or role != CUSTOMER:
        told = await tell_customer(ctx, appointment, "booking_cancelled_mail",
                                   message=None if role == CUSTOMER else reason or None,
                                   method="CANCEL" if was == "confirmed" else None)
    if was != "held":  # staff never heard of a hold
        await tell_staff_and_admins(ctx, appointment, "booking_cancelled_staff", reason=reason or None,
                                    by_customer=role == CUSTOMER)
    return told


@dataclass(frozen=True)
class Moving:
    """A move in progress: the appointment, who moves it, and where it may go."""

    appointment: Appointment
    role: str
    scope: Scope
    rules: Rules

    def command(self) -> Commander:
        return move_commander(self.appointment.id)


async def move_booking(ctx: Context, args: str) -> list[Reply]:
    """`move ID [DATE [TIME]] [message]`: offer days, then times, then move (same UID, higher SEQUENCE)."""
    number, rest = split_id(args)
    appointment, role = await managed(ctx, number)
    if appointment.status == "held":
        raise Refusal("booking_move_held", number=number)
    day, minute, message = parse_move(rest)
    moving = Moving(appointment, role, await move_scope(ctx, appointment), booking_rules(ctx.business, ctx.now))
    if day is None:
        return [await ask_move_day(ctx, moving)]
    if minute is None:
        return [await ask_move_time(ctx, moving, day)]
    start = local_minute(day, minute, moving.rules.tz)
    location = await move_target(ctx, moving, day, start)
    return await shift(ctx, moving, start, location, message)


async def move_scope(ctx: Context, appointment: Appointment) -> Scope:
    """The same service with the same staff member, wherever they work that day."""
    service = await ctx.session.get(Service, appointment.service_id)
    return Scope(service, tuple(await location_ids(ctx.uow)), (appointment.staff_id,))


async def ask_move_day(ctx: Context, moving: Moving) -> Reply:
    """Offer the next days with a free slot for the same service and staff member."""
    days = await free_days(ctx.uow, moving.rules, moving.scope, ignore=moving.appointment)
    v = await view(ctx.uow, moving.appointment)
    if not days:
        raise Refusal("booking_no_days", service=v.service, last_day=moving.rules.last_day)
    return ctx.say("booking_move_pick_day", appointment=v, choices=day_choices(ctx, days, moving.command()))


async def ask_move_time(ctx: Context, moving: Moving, day: date) -> Reply:
    """Offer the free times of the chosen day (the appointment's own time counts as free)."""
    check_day(moving.rules, day)
    offers = await alternatives(ctx, moving.scope, moving.rules, day, moving.command(), moving.appointment)
    if not offers["times_left"]:
        raise Refusal("booking_day_full", day=day, choices=offers["choices"])
    return ctx.say("booking_move_pick_time", appointment=await view(ctx.uow, moving.appointment), day=day,
                   choices=offers["choices"])


async def move_target(ctx: Context, moving: Moving, day: date, start: datetime) -> int | None:
    """Where the appointment lands: customers only into a slot they may book; managers and staff anywhere ahead."""
    rules, appointment = moving.rules, moving.appointment
    if start <= rules.now:
        raise Refusal("booking_in_past", day=day)
    if moving.role != CUSTOMER:  # like booking by hand: outside hours is allowed, overlaps never are
        return appointment.location_id
    check_day(rules, day)
    plan = await plan_for(ctx.uow, rules, moving.scope, day, day, appointment)
    places = places_at(plan, rules, moving.scope, start)
    if appointment.staff_id in places:
        return places[appointment.staff_id]
    free_hours = places_at(plan, rules, moving.scope, start, busy=False)
    offers = await alternatives(ctx, moving.scope, rules, day, moving.command(), appointment)
    raise Refusal("booking_just_taken" if free_hours else "booking_not_free", day=day, start=start, **offers)


async def shift(ctx: Context, moving: Moving, start: datetime, location: int | None, message: str) -> list[Reply]:
    """Move atomically, then send the updated invitation and tell staff."""
    appointment, old_start = moving.appointment, moving.appointment.start_at
    try:
        await move(ctx.uow, appointment, start, ctx.now)
    except SlotTaken:
        day = local_day(start, moving.rules.tz)
        offers = await alternatives(ctx, moving.scope, moving.rules, day, moving.command(), appointment)
        return [ctx.say("booking_just_taken", day=day, start=start, **offers)]
    appointment.location_id = location
    by_customer = moving.role == CUSTOMER
    told = await tell_customer(ctx, appointment, "booking_moved_mail", message=None if by_customer else message or None,
                               method="REQUEST" if appointment.status == "confirmed" else None)
    await tell_staff_and_admins(ctx, appointment, "booking_moved_staff", old_start=old_start, by_customer=by_customer)
    await ctx.audit("appointment_moved", target(appointment), role=moving.role, old_start=old_start.isoformat(),
                    start=start.isoformat(), sequence=appointment.sequence)
    return [ctx.say("booking_moved", appointment=await view(ctx.uow, appointment), old_start=old_start,
                    by_customer=by_customer, told=told)]


def handlers() -> Handlers:
    # cancel and move are open to everyone: ownership and rights are checked per appointment.
    return Handlers(
        commands=[
            Command("book", book, aliases=("buchen",), section="customer"),
            Command("bookings", list_bookings, aliases=("termine",), section="customer", safe=True),
            Command("cancel", cancel_booking, aliases=("stornieren",), section="customer"),
            Command("move", move_booking, aliases=("verschieben",), section="customer"),
        ],
        completions={BOOKING: complete_booking},
        exhaustions={BOOKING: booking_exhausted},
    )
