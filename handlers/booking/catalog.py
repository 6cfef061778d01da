"""Free slots: pure over a loaded DayPlan, loaded from the store (reusable by the calendar), and offered as choices."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy import CompoundSelect, bindparam, exists, literal, select, union_all

from handlers.appointments import DayPlan, load_plan, location_holidays
from handlers.booking.form import ANY, BookingQuery, Commander, parse_booking
from handlers.booking.rules import Rules, local_day, local_minutes
from handlers.context import Context, Refusal, table
from handlers.messages import Choice
from handlers.rules.availability import Slot, StaffCalendar, day_bounds, free_slots, is_free
from storage.db import UnitOfWork
from storage.models import Appointment, Location, Person, Service, Staff, StaffHours, StaffService

DAYS_OFFERED = 10
CHUNK_DAYS = 14  # two weeks usually hold DAYS_OFFERED open days: the day list rarely reads the whole reach
MAX_TIMES = 48  # a keyboard stays usable; other times can still be typed


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


def days_with_slots(plan: DayPlan, rules: Rules, scope: Scope, limit: int, first: date, last: date) -> list[date]:
    """The first `limit` days from `first` to `last` (which the plan covers) with at least one free slot."""
    days: list[date] = []
    day = first
    while day <= last and len(days) < limit:
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
    anchor, places = day_bounds(day, rules.tz)[0], dict[int, int]()
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
    """The next `limit` days with at least one slot customers may book.

    Read CHUNK_DAYS at a time: busy time is most of the cost, and a list that is full after two weeks need
    not read the months of bookings beyond them."""
    days: list[date] = []
    first = rules.first_day
    while first <= rules.last_day and len(days) < limit and scope.staff_ids:
        last = min(first + timedelta(days=CHUNK_DAYS - 1), rules.last_day)
        plan = await plan_for(uow, rules, scope, first, last, ignore)
        days += days_with_slots(plan, rules, scope, limit - len(days), first, last)
        first = last + timedelta(days=1)
    return days


async def free_times(uow: UnitOfWork, rules: Rules, scope: Scope, day: date,
                     ignore: Appointment | None = None, plan: DayPlan | None = None) -> list[Slot]:
    """The slots customers may book on `day`; `plan`, when given, is that day's, read in this transaction."""
    if not (rules.first_day <= day <= rules.last_day) or not scope.staff_ids:
        return []
    return slots_on(plan or await plan_for(uow, rules, scope, day, day, ignore), rules, scope, day)


async def refuse_holiday(ctx: Context, scope: Scope, rules: Rules, day: date, command: Commander,
                         ignore: Appointment | None = None) -> DayPlan:
    """Refuse a day that a public holiday closes for the scope, by the holiday's name, offering the next days
    with free times instead; else the day's plan, for the free times to be read from."""
    plan = await plan_for(ctx.uow, rules, scope, day, day, ignore)
    closed = plan.holiday_closes(day, rules.tz, list(scope.location_ids), list(scope.staff_ids))
    if not closed:
        return plan
    names = await location_holidays(ctx.uow, day, day, ctx.lang)
    days = await free_days(ctx.uow, rules, scope, ignore=ignore)
    raise Refusal("booking_holiday", day=day, holiday=" / ".join(dict.fromkeys(names[i][day] for i in closed)),
                  choices=day_choices(ctx, days, command))


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


# The catalog's statements run on nearly every step of the walk: built once, since building one anew costs
# about as much as SQLite takes to run it.
SERVICES = (select(Service).where(Service.deleted_at.is_(None), exists().where(StaffService.service_id == Service.id))
            .order_by(Service.id))
# Locations and staff names in one statement; Core columns (a table's, not the model's): an ORM statement
# costs half as much again to run, and these rows are plain values.
_LOCATION, _PERSON, _STAFF = table(Location).c, table(Person).c, table(Staff).c
_STAFF_HOURS, _STAFF_SERVICE = table(StaffHours).c, table(StaffService).c
_NAMES: CompoundSelect = union_all(
    select(literal("location").label("kind"), _LOCATION.name, _LOCATION.id),
    select(literal("staff"), _PERSON.name, _PERSON.id).join(table(Staff), _STAFF.person_id == _PERSON.id)
    .where(_PERSON.name.is_not(None)))
NAMES = _NAMES.order_by(_NAMES.selected_columns.kind, _NAMES.selected_columns.id)
OFFERING = (select(_STAFF_HOURS.location_id, _STAFF_HOURS.person_id).distinct()
            .join(table(StaffService), _STAFF_SERVICE.person_id == _STAFF_HOURS.person_id)
            .where(_STAFF_SERVICE.service_id == bindparam("service_id")))

async def load_catalog(uow: UnitOfWork) -> Catalog:
    """Services that can be booked (not deleted, and someone offers them), every location, and staff members
    with a name."""
    session = uow.session
    services = await session.scalars(SERVICES)
    found: dict[str, dict[str, int]] = {"location": {}, "staff": {}}
    for kind, name, i in await session.execute(NAMES):
        if name is not None:
            found[kind][name] = i
    return Catalog({s.name: s for s in services}, found["location"], found["staff"])


async def offering(uow: UnitOfWork, service_id: int) -> dict[int, list[int]]:
    """Location → the staff qualified for the service who have bookable hours there."""
    rows = await uow.session.execute(OFFERING, {"service_id": service_id})
    found: dict[int, set[int]] = {}
    for location, person in rows:
        found.setdefault(location, set()).add(person)
    return {location: sorted(people) for location, people in sorted(found.items())}


def narrow(catalog: Catalog, service: Service, query: BookingQuery, offer: dict[int, list[int]]) -> Scope:
    """The locations and staff a query leaves open, or a refusal naming the valid ones."""
    locations = list(offer)
    if query.location is not None:
        if catalog.locations[query.location] not in offer:
            raise Refusal("booking_unknown_location", value=query.location,
                          locations=[catalog.location_name(i) for i in offer])
        locations = [catalog.locations[query.location]]
    staff = sorted({person for location in locations for person in offer[location]})
    if query.staff is not None and query.staff != ANY:
        if catalog.staff[query.staff] not in staff:
            raise Refusal("booking_unknown_staff", value=query.staff, staff=[catalog.staff_name(i) for i in staff])
        staff = [catalog.staff[query.staff]]
    return Scope(service, tuple(locations), tuple(staff))


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


async def book_parses(uow: UnitOfWork, args: str) -> bool:
    """`book` alone is the walk; with arguments it names a service we offer ("Book a table?" does not)."""
    if not args.strip():
        return True
    catalog = await load_catalog(uow)
    try:
        parse_booking(args, list(catalog.services), list(catalog.locations), list(catalog.staff))
    except Refusal as refusal:
        # Only a sentence is no command; a booking with a bad date or staff gets its clear answer.
        return refusal.template != "booking_unknown_service"
    return True
