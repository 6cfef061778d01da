"""The calendar for administrators and staff: services, hours, appointments entered by hand,
the day and week views, closures (sick, vacation, pause) and the answers to booking requests.

Rights come from the setup file. Owners and admins may do everything; other staff only what their
Staff.rights allow (book_for_colleagues, own_hours, settings). A refusal for a missing right is
answered and audited; bad input is a Refusal naming the problem and the command's usage.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import aliased

from handlers.appointments import SlotTaken, claim, live_condition, lock_calendars, release
from handlers.availability import day_bounds, local_minute, on_grid
from handlers.booking import FIRST_YEAR, LAST_YEAR, plausible
from handlers.context import Context, Refusal, known_id, new_key
from handlers.messages import Choice, Reply
from handlers.notices import chat_address, display_address, tell_customer, view
from handlers.router import Command, Handlers
from handlers.setup import COLOUR, PRICE, parse_range
from storage.models import (
    Appointment, Closure, Location, OpeningHours, Person, Service, Staff, StaffHours, StaffService,
)

STAFF = frozenset({"staff"})  # owners and admins imply staff (context.IMPLIED_ROLES)
CALENDAR_KINDS = ("owner", "admin", "provider")  # assistants book for others but have no calendar
FLOW = "calendar"
CONFIRM, ABORT, SILENT = "calendar-confirm", "calendar-abort", "calendar-silent"
MESSAGE_TTL = timedelta(hours=24)  # the personal message may take a while to write
MAX_MESSAGE = 2000
MAX_CLOSURE_DAYS = 366
MAX_SERVICE_MINUTES = 720
MAX_REQUEST_BUTTONS = 10

# ---------------------------------------------------------------- words and patterns (pure parsing)

WEEKDAYS = {name: index for index, names in enumerate((
    ("mon", "monday", "mo", "montag"), ("tue", "tuesday", "di", "dienstag"),
    ("wed", "wednesday", "mi", "mittwoch"), ("thu", "thursday", "do", "donnerstag"),
    ("fri", "friday", "fr", "freitag"), ("sat", "saturday", "sa", "samstag"),
    ("sun", "sunday", "so", "sonntag"),
)) for name in names}
CLOSED = frozenset({"closed", "-", "none", "zu", "geschlossen"})
KINDS = {"sick": "sick", "krank": "sick", "vacation": "vacation", "holiday": "vacation", "urlaub": "vacation"}
EVERYONE_WORDS = frozenset({"all", "alle"})
ME = frozenset({"me", "ich", "mich"})
MODES = {"direct": "direct", "direkt": "direct", "request": "request", "anfrage": "request"}
ADD_WORDS = frozenset({"add", "new", "neu"})
DELETE_WORDS = frozenset({"delete", "remove", "löschen", "loeschen", "entfernen"})
STAFF_WORDS = frozenset({"staff", "team", "mitarbeiter"})
NOBODY = frozenset({"nobody", "none", "niemand", "keiner", "-"})
TODAY, TOMORROW = frozenset({"today", "heute"}), frozenset({"tomorrow", "morgen"})
YES = frozenset({"yes", "ja", "ok", "confirm"})
NO = frozenset({"no", "nein", "abort", "abbrechen"})
TOKEN = re.compile(r'"([^"]*)"|“([^”]*)”|„([^“”]*)[“”]|(\S+)')
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
SHORT_COLOUR = re.compile(r"^#[0-9a-f]{3}$")
PRICE_LIKE = re.compile(r"^(€\d+([.,]\d{1,4})?|\d+[.,]\d{1,4}€?|\d+€)$")  # minutes are bare digits

# The emoji nearest to a service colour: a chat cannot paint text, but it can show a dot.
DOTS = (("🔴", (221, 46, 68)), ("🟠", (244, 144, 12)), ("🟡", (253, 203, 88)), ("🟢", (120, 177, 89)),
        ("🔵", (85, 172, 238)), ("🟣", (170, 142, 214)), ("🟤", (193, 105, 79)), ("⚫", (49, 55, 61)),
        ("⚪", (230, 231, 232)))


class Invalid(Refusal):
    """Input that does not fit a command: the template names the problem, `guarded` adds the usage line."""

    def __init__(self, problem: str, **values):
        super().__init__("calendar_invalid", problem=problem, **values)


class Denied(Exception):
    """The speaker lacks a right; `guarded` answers and audits it."""

    def __init__(self, need: str):
        super().__init__(need)
        self.need = need


def tokens(text: str) -> list[str]:
    """Split on spaces, keeping "quoted names" (also „German“ and “curly” quotes) together."""
    found = [next(g for g in match.groups() if g is not None).strip() for match in TOKEN.finditer(text)]
    return [token for token in found if token]


def fold(text: str) -> str:
    """A name as it is compared: spaces collapsed, case folded."""
    return " ".join(text.split()).casefold()


def parse_date(text: str) -> date:
    """'2026-12-07' as a date, in the years the desk works with (booking.FIRST_YEAR to LAST_YEAR)."""
    try:
        day = date.fromisoformat(text) if DATE.match(text) else None
    except ValueError:
        day = None
    if day is None:
        raise Invalid("date", value=text)
    if not plausible(day):
        raise Invalid("date_range", value=text, first=FIRST_YEAR, last=LAST_YEAR)
    return day


def parse_clock(text: str) -> int:
    """'09:30' as minutes after midnight."""
    match = CLOCK.match(text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise Invalid("time", value=text)
    return int(match.group(1)) * 60 + int(match.group(2))


def parse_weekday(text: str) -> int | None:
    """mon…sun or mo…so (also full English and German names) as 0…6."""
    return WEEKDAYS.get(text.casefold().rstrip(".,"))


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """'08:00-12:00,13:00-18:00' as sorted minute ranges; 'closed' or '-' as none."""
    if fold(text) in CLOSED:
        return []
    ranges = []
    for part in text.split(","):
        try:
            ranges.append(parse_range(part))
        except ValueError:
            raise Invalid("range", value=part.strip()) from None
    ranges.sort()
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        if start < end:
            raise Invalid("range_overlap", value=text.strip())
    return ranges


def parse_colour(text: str) -> str:
    """'#2E86DE' or '#2e8' as '#2e86de'."""
    value = text.strip().lower()
    if SHORT_COLOUR.match(value):
        value = "#" + "".join(c * 2 for c in value[1:])
    if not COLOUR.match(value):
        raise Invalid("colour", value=text)
    return value


def is_number(text: str) -> bool:
    """Only ASCII digits: str.isdigit() also accepts '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def parse_minutes(text: str) -> int:
    """A service length: whole minutes on the 5-minute grid every appointment lies on."""
    if not is_number(text) or int(text) % 5 or not 5 <= int(text) <= MAX_SERVICE_MINUTES:
        raise Invalid("minutes", value=text, maximum=MAX_SERVICE_MINUTES)
    return int(text)


def parse_price(text: str) -> str:
    """'€65', '65,50' or '65.00' as decimal text (money is never a float)."""
    value = text.strip("€").replace(",", ".")
    if not PRICE.match(value):
        raise Invalid("price", value=text)
    return value


def parse_id(text: str) -> int:
    """'12' or '#12' as 12 (see known_id for numbers too long to be an id)."""
    value = text.strip().lstrip("#")
    if not is_number(value):
        raise Invalid("id", value=text.strip())
    return known_id(int(value))


@dataclass(frozen=True)
class NewService:
    name: str
    minutes: int
    colour: str | None = None
    price: str | None = None


def parse_service_add(words: list[str]) -> NewService:
    """NAME MINUTES [#colour] [price]: the name may have spaces, the extras come last."""
    words, colour, price = list(words), None, None
    while words and (words[-1].startswith("#") or PRICE_LIKE.match(words[-1])) and len(words) > 2:
        last = words.pop()
        if last.startswith("#"):
            colour = parse_colour(last)
        else:
            price = parse_price(last)
    if len(words) >= 3 and not is_number(words[-1]) and is_number(words[-2]):
        raise Invalid("colour", value=words[-1])  # a colour without its '#', most likely
    if len(words) < 2:
        raise Invalid("form")
    name = " ".join(words[:-1])
    if len(name) > 120:
        raise Invalid("name_long", value=name[:40])
    return NewService(name, parse_minutes(words[-1]), colour, price)


@dataclass(frozen=True)
class HoursRequest:
    head: tuple[str, ...]  # LOCATION, or STAFF… LOCATION
    weekday: int
    ranges: tuple[tuple[int, int], ...]


def parse_hours(words: list[str]) -> HoursRequest:
    """[STAFF] LOCATION DAY RANGES: the last weekday word with something after it splits the line."""
    for index in range(len(words) - 2, 0, -1):
        weekday = parse_weekday(words[index])
        if weekday is not None:
            ranges = parse_ranges(" ".join(words[index + 1:]))
            return HoursRequest(tuple(words[:index]), weekday, tuple(ranges))
    first_range = next((i for i, w in enumerate(words) if ":" in w or fold(w) in CLOSED), len(words))
    if first_range >= 2:
        raise Invalid("day", value=words[first_range - 1])
    raise Invalid("form")


@dataclass(frozen=True)
class AppointRequest:
    customer: str
    service: str
    day: date
    minute: int
    staff: str | None


def parse_appoint(words: list[str], service_names: Iterable[str]) -> AppointRequest:
    """CUSTOMER SERVICE DATE TIME [STAFF]; the customer is what comes before a known service name."""
    at = next((i for i, w in enumerate(words) if DATE.match(w)), None)
    if at is None or at < 2:
        raise Invalid("form")
    if at + 1 >= len(words):
        raise Invalid("time", value="")
    customer, service = split_customer_service(words[:at], list(service_names))
    return AppointRequest(customer, service, parse_date(words[at]), parse_clock(words[at + 1]),
                          " ".join(words[at + 2:]) or None)


def split_customer_service(words: list[str], service_names: list[str]) -> tuple[str, str]:
    """'Maria Muster Massage' → ('Maria Muster', 'Massage'): the longest known service name at the end."""
    known = {fold(name) for name in service_names}
    for cut in range(1, len(words)):
        if fold(" ".join(words[cut:])) in known:
            return " ".join(words[:cut]), " ".join(words[cut:])
    raise Invalid("service", value=words[-1], known=sorted(service_names))


@dataclass(frozen=True)
class ClosureRequest:
    kind: str  # sick | vacation | pause
    first: date
    last: date
    span: tuple[int, int] | None  # local minutes for a pause; None: whole days
    who: str | None  # a staff name, "all", or None for the speaker's own calendar


def parse_off(words: list[str]) -> ClosureRequest:
    """sick|vacation FROM [TO] [STAFF|all]."""
    if not words or fold(words[0]) not in KINDS:
        raise Invalid("kind", value=words[0] if words else "")
    if len(words) < 2:
        raise Invalid("form")
    first, rest = parse_date(words[1]), words[2:]
    last = parse_date(rest.pop(0)) if rest and DATE.match(rest[0]) else first
    if last < first:
        raise Invalid("date_order", first=first, last=last)
    if (last - first).days >= MAX_CLOSURE_DAYS:
        raise Invalid("too_long", days=MAX_CLOSURE_DAYS)
    return ClosureRequest(KINDS[fold(words[0])], first, last, None, " ".join(rest) or None)


def parse_pause(words: list[str]) -> ClosureRequest:
    """DATE HH:MM-HH:MM [STAFF|all] ('12:00 - 13:00' with spaces works too)."""
    if len(words) < 2:
        raise Invalid("form")
    day = parse_date(words[0])
    joined = len(words) >= 4 and words[2] == "-"
    text, rest = ("".join(words[1:4]), words[4:]) if joined else (words[1], words[2:])
    try:
        span = parse_range(text)
    except ValueError:
        raise Invalid("range", value=text) from None
    return ClosureRequest("pause", day, day, span, " ".join(rest) or None)


def parse_when(words: list[str], today: date) -> tuple[date, str | None]:
    """[DATE|today|tomorrow] [STAFF] for the day and week views."""
    if words and fold(words[0]) in TODAY | TOMORROW:
        return today + timedelta(days=fold(words[0]) in TOMORROW), " ".join(words[1:]) or None
    if words and DATE.match(words[0]):
        return parse_date(words[0]), " ".join(words[1:]) or None
    return today, " ".join(words) or None


def closure_window(request: ClosureRequest, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Whole local days (inclusive) or the pause's hours, in UTC."""
    if request.span is None:
        return day_bounds(request.first, tz)[0], day_bounds(request.last, tz)[1]
    return local_minute(request.first, request.span[0], tz), local_minute(request.first, request.span[1], tz)


def colour_dot(colour: str | None) -> str:
    """The coloured dot nearest to '#rrggbb'; a plain dot for a service without a colour."""
    if not colour or not COLOUR.match(colour):
        return "▫️"
    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return min(DOTS, key=lambda dot: sum((a - b) ** 2 for a, b in zip(rgb, dot[1])))[0]


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def week_rows(rows: Iterable[tuple[int, int, int]]) -> list[tuple[int, list[str]]]:
    """(weekday, start, end) rows as seven days of 'HH:MM–HH:MM' ranges."""
    week: list[tuple[int, list[str]]] = [(day, []) for day in range(7)]
    for weekday, start, end in sorted(rows):
        week[weekday][1].append(f"{hhmm(start)}–{hhmm(end)}")
    return week


# ---------------------------------------------------------------- who may do what


@dataclass(frozen=True)
class Actor:
    """The speaker as the calendar sees them."""

    person_id: int
    admin: bool
    kind: str | None
    rights: frozenset[str]

    def may(self, right: str) -> bool:
        return self.admin or right in self.rights

    @property
    def has_calendar(self) -> bool:
        return self.kind in CALENDAR_KINDS

    @property
    def sees_all(self) -> bool:
        """Admins and assistants who book for colleagues read every calendar."""
        return self.may("book_for_colleagues")


@dataclass(frozen=True)
class Member:
    """A staff member by id, name and kind."""

    id: int
    name: str
    kind: str

    @property
    def has_calendar(self) -> bool:
        return self.kind in CALENDAR_KINDS


async def actor(ctx: Context) -> Actor:
    row = await ctx.session.get(Staff, ctx.person.id)
    return Actor(ctx.person.id, "admin" in ctx.roles, row.kind if row else None,
                 frozenset(row.rights if row else ()))


def require(allowed: bool, need: str) -> None:
    if not allowed:
        raise Denied(need)


Run = Callable[[Context, str], Awaitable[list[Reply]]]


def guarded(word: str, run: Run) -> Run:
    """Answer a missing right (audited), and add the usage line to a bad-input refusal."""
    async def guarded_run(ctx: Context, args: str) -> list[Reply]:
        """Run the command; answer a Denied, add the usage line to an Invalid."""
        try:
            return await run(ctx, args)
        except Denied as denied:
            # Rights are checked before anything changes, so the audit row is all this transaction keeps.
            await ctx.audit("denied", word, args=args[:200], need=denied.need)
            return [ctx.say("calendar_denied", word=word, need=denied.need)]
        except Invalid as invalid:
            invalid.values.setdefault("usage", ctx.word(f"help.{word}"))
            raise
    return guarded_run


# ---------------------------------------------------------------- finding things by name


@dataclass(frozen=True)
class Named:
    id: int
    name: str


def pick_by_name(items: Sequence, text: str) -> list:
    """Items whose whole name matches, else those whose first name does."""
    wanted = fold(text)
    exact = [item for item in items if fold(item.name) == wanted]
    return exact or [item for item in items if fold(item.name).split(" ")[0] == wanted]


async def staff_members(ctx: Context) -> list[Member]:
    rows = await ctx.session.execute(
        select(Person.id, Person.name, Staff.kind).join(Staff, Staff.person_id == Person.id).order_by(Person.name))
    return [Member(i, name or f"#{i}", kind) for i, name, kind in rows]


async def find_staff(ctx: Context, text: str) -> Member:
    """A staff member by full name, first name, or 'me'."""
    members = await staff_members(ctx)
    if fold(text) in ME:
        found = [m for m in members if m.id == ctx.person.id]
    else:
        found = pick_by_name(members, text)
    if len(found) != 1:
        raise Invalid("staff_ambiguous" if found else "staff", value=text, known=[m.name for m in members])
    return found[0]


async def locations(ctx: Context) -> list[Named]:
    rows = await ctx.session.execute(select(Location.id, Location.name).order_by(Location.id))
    return [Named(i, name) for i, name in rows]


async def active_services(ctx: Context) -> list[Service]:
    query = select(Service).where(Service.deleted_at.is_(None)).order_by(Service.name)
    return list((await ctx.session.scalars(query)).all())


def find_service(services: Sequence[Service], text: str) -> Service:
    found = [s for s in services if fold(s.name) == fold(text)]
    if not found:
        raise Invalid("service", value=text, known=[s.name for s in services])
    return found[0]


def local_date(ctx: Context, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(ctx.tz)).date()


# ---------------------------------------------------------------- services


@dataclass(frozen=True)
class ServiceLine:
    name: str
    minutes: int
    colour: str | None
    dot: str
    price: str | None
    staff: list[str]


async def list_services(ctx: Context, args: str) -> list[Reply]:
    """`services`: every bookable service with minutes, colour, price and who offers it."""
    offered = await ctx.session.execute(
        select(StaffService.service_id, Person.name).join(Person, Person.id == StaffService.person_id)
        .order_by(Person.name))
    by_service: dict[int, list[str]] = {}
    for service_id, name in offered:
        by_service.setdefault(service_id, []).append(name or "?")
    lines = [ServiceLine(s.name, s.minutes, s.colour, colour_dot(s.colour), s.price, by_service.get(s.id, []))
             for s in await active_services(ctx)]
    return [ctx.say("calendar_services", services=lines)]


async def service(ctx: Context, args: str) -> list[Reply]:
    """`service add NAME MINUTES [#colour] [price]` or `service delete NAME`; alone, the list."""
    words = tokens(args)
    if not words:
        return await list_services(ctx, "")
    action, rest = fold(words[0]), words[1:]
    if action in ADD_WORDS:
        return await add_service(ctx, rest)
    if action in DELETE_WORDS:
        return await ask_service_delete(ctx, " ".join(rest))
    if action in STAFF_WORDS:
        return await set_service_staff(ctx, " ".join(rest))
    raise Invalid("form")


async def add_service(ctx: Context, words: list[str]) -> list[Reply]:
    """Add a service, or bring back a deleted one of the same name."""
    require((await actor(ctx)).may("settings"), "settings")
    new = parse_service_add(words)
    same = [s for s in (await ctx.session.scalars(select(Service))).all() if fold(s.name) == fold(new.name)]
    active = [s for s in same if s.deleted_at is None]
    if active:
        raise Invalid("service_exists", value=active[0].name)
    row = same[0] if same else Service(name=new.name)
    row.name, row.minutes, row.colour, row.price, row.deleted_at = new.name, new.minutes, new.colour, new.price, None
    ctx.session.add(row)
    await ctx.session.flush()
    await ctx.audit("service_restored" if same else "service_added", f"service:{row.id}", name=row.name,
                    minutes=row.minutes, colour=row.colour, price=row.price)
    line = ServiceLine(row.name, row.minutes, row.colour, colour_dot(row.colour), row.price, [])
    return [ctx.say("calendar_service_added", service=line, restored=bool(same))]


async def set_service_staff(ctx: Context, text: str) -> list[Reply]:
    """`service staff NAME: STAFF, STAFF…`: exactly these staff members offer the service ("nobody": none)."""
    require((await actor(ctx)).may("settings"), "settings")
    name, colon, names = text.partition(":")
    if not colon or not name.strip():
        raise Invalid("form")
    row = find_service(await active_services(ctx), name)
    wanted = [] if fold(names) in NOBODY else [part.strip() for part in names.split(",") if part.strip()]
    if not wanted and fold(names) not in NOBODY:
        raise Invalid("form")
    chosen = {member.id: member for member in [await find_staff(ctx, part) for part in wanted]}
    without = [m.name for m in chosen.values() if not m.has_calendar]
    if without:
        raise Invalid("no_calendar", value=", ".join(without))
    await ctx.session.execute(delete(StaffService).where(StaffService.service_id == row.id))
    if chosen:
        await ctx.session.execute(insert(StaffService), [{"person_id": pid, "service_id": row.id} for pid in chosen])
    staff = sorted(m.name for m in chosen.values())
    await ctx.audit("service_staff_set", f"service:{row.id}", name=row.name, staff=staff)
    line = ServiceLine(row.name, row.minutes, row.colour, colour_dot(row.colour), row.price, staff)
    return [ctx.say("calendar_service_staff", service=line)]


async def ask_service_delete(ctx: Context, name: str) -> list[Reply]:
    """Name what deleting would mean (it cannot be undone) and ask to confirm."""
    require((await actor(ctx)).may("settings"), "settings")
    if not name:
        raise Invalid("form")
    row = find_service(await active_services(ctx), name)
    future = [await view(ctx.uow, a) for a in await future_of_service(ctx, row.id)]
    replies = await settle_pending(ctx)
    nonce = new_key()
    await ctx.start_flow(FLOW, "service_delete", {"nonce": nonce, "service_id": row.id})
    return replies + [ctx.say("calendar_service_delete_ask", service=row, appointments=future,
                              choices=confirm_choices(ctx, nonce))]


async def future_of_service(ctx: Context, service_id: int) -> list[Appointment]:
    query = (select(Appointment).where(Appointment.service_id == service_id, Appointment.start_at >= ctx.now,
                                       live_condition(ctx.now)).order_by(Appointment.start_at))
    return list((await ctx.session.scalars(query)).all())


async def confirm_service_delete(ctx: Context, data: dict) -> list[Reply]:
    """Delete the service for booking; its appointments, past and future, keep it."""
    await ctx.end_flow()
    row = await ctx.session.get(Service, data["service_id"])
    if row is None or row.deleted_at is not None:
        return [ctx.say("calendar_question_gone")]
    row.deleted_at = ctx.now
    future = [await view(ctx.uow, a) for a in await future_of_service(ctx, row.id)]
    await ctx.audit("service_deleted", f"service:{row.id}", name=row.name, future_appointments=len(future))
    return [ctx.say("calendar_service_deleted", service=row, appointments=future)]


# ---------------------------------------------------------------- hours


async def hours(ctx: Context, args: str) -> list[Reply]:
    """`hours LOCATION DAY RANGES` or `hours STAFF LOCATION DAY RANGES`; alone, every week's hours."""
    words = tokens(args)
    if not words:
        return await show_all_hours(ctx)
    request = parse_hours(words)
    staff, location = await hours_target(ctx, list(request.head))
    me = await actor(ctx)
    if staff is None:
        require(me.may("settings"), "settings")
        await replace_opening(ctx, location, request)
    else:
        require(me.admin or (staff.id == me.person_id and "own_hours" in me.rights), "own_hours")
        if not staff.has_calendar:
            raise Invalid("no_calendar", value=staff.name)
        await replace_staff_hours(ctx, staff, location, request)
    return [ctx.say("calendar_hours", tables=[await hours_table(ctx, location, staff)], changed=True)]


async def hours_target(ctx: Context, head: list[str]) -> tuple[Member | None, Named]:
    """Split 'Lukas Huber Linz' into the staff member (if any) and the location at the end."""
    places = await locations(ctx)
    for cut in range(len(head)):
        found = [p for p in places if fold(p.name) == fold(" ".join(head[cut:]))]
        if found:
            return (await find_staff(ctx, " ".join(head[:cut])) if cut else None), found[0]
    raise Invalid("location", value=head[-1], known=[p.name for p in places])


async def replace_opening(ctx: Context, location: Named, request: HoursRequest) -> None:
    """Set a location's opening hours on one weekday (none: closed that day)."""
    await ctx.session.execute(delete(OpeningHours).where(
        OpeningHours.location_id == location.id, OpeningHours.weekday == request.weekday))
    ctx.session.add_all(OpeningHours(location_id=location.id, weekday=request.weekday, start_minute=s, end_minute=e)
                        for s, e in request.ranges)
    await ctx.audit("opening_hours_set", f"location:{location.id}", weekday=request.weekday,
                    ranges=[f"{hhmm(s)}-{hhmm(e)}" for s, e in request.ranges])


async def replace_staff_hours(ctx: Context, staff: Member, location: Named, request: HoursRequest) -> None:
    """Set a staff member's bookable times at one location on one weekday; one person is in one place at once."""
    await check_no_clash(ctx, staff, location, request)
    await ctx.session.execute(delete(StaffHours).where(
        StaffHours.person_id == staff.id, StaffHours.location_id == location.id,
        StaffHours.weekday == request.weekday))
    ctx.session.add_all(StaffHours(person_id=staff.id, location_id=location.id, weekday=request.weekday,
                                   start_minute=s, end_minute=e) for s, e in request.ranges)
    await ctx.audit("staff_hours_set", f"staff:{staff.id}", location=location.name, weekday=request.weekday,
                    ranges=[f"{hhmm(s)}-{hhmm(e)}" for s, e in request.ranges])


async def check_no_clash(ctx: Context, staff: Member, location: Named, request: HoursRequest) -> None:
    """Refuse bookable times that overlap the same person's times at another location that weekday."""
    rows = await ctx.session.execute(
        select(Location.name, StaffHours.start_minute, StaffHours.end_minute)
        .join(Location, Location.id == StaffHours.location_id)
        .where(StaffHours.person_id == staff.id, StaffHours.weekday == request.weekday,
               StaffHours.location_id != location.id))
    for other, start, end in rows:
        if any(s < end and start < e for s, e in request.ranges):
            raise Invalid("hours_clash", value=staff.name, location=other, range=f"{hhmm(start)}–{hhmm(end)}")


@dataclass(frozen=True)
class HoursTable:
    location: str
    staff: str | None
    week: list[tuple[int, list[str]]]


async def hours_table(ctx: Context, location: Named, staff: Member | None) -> HoursTable:
    """The week of a location's opening hours, or of a staff member's bookable times there."""
    if staff is None:
        query = select(OpeningHours.weekday, OpeningHours.start_minute, OpeningHours.end_minute).where(
            OpeningHours.location_id == location.id)
    else:
        query = select(StaffHours.weekday, StaffHours.start_minute, StaffHours.end_minute).where(
            StaffHours.location_id == location.id, StaffHours.person_id == staff.id)
    rows = [tuple(r) for r in await ctx.session.execute(query)]
    return HoursTable(location.name, staff.name if staff else None, week_rows(rows))


async def show_all_hours(ctx: Context) -> list[Reply]:
    """Every location's opening hours, then the speaker's own bookable times."""
    places = await locations(ctx)
    tables = [await hours_table(ctx, place, None) for place in places]
    me = await actor(ctx)
    if me.has_calendar:
        myself = Member(me.person_id, ctx.person.name or "", me.kind or "")
        own = [await hours_table(ctx, place, myself) for place in places]
        tables += [t for t in own if any(ranges for _, ranges in t.week)]
    return [ctx.say("calendar_hours", tables=tables, changed=False)]


# ---------------------------------------------------------------- appointments entered by staff


async def appoint(ctx: Context, args: str) -> list[Reply]:
    """`appoint CUSTOMER SERVICE DATE TIME [STAFF]`: outside opening hours too, never over another appointment."""
    services = await active_services(ctx)
    request = parse_appoint(tokens(args), [s.name for s in services])
    chosen = find_service(services, request.service)
    staff = await appoint_staff(ctx, await actor(ctx), request.staff)
    start = local_minute(request.day, request.minute, ZoneInfo(ctx.tz))
    if not on_grid(start):
        raise Invalid("grid", value=hhmm(request.minute))
    if start < ctx.now:
        raise Invalid("past", value=f"{request.day} {hhmm(request.minute)}")
    matches = await customers_named(ctx, request.customer)
    if len(matches) > 1:
        return [await ask_which_customer(ctx, matches, request, chosen, staff)]
    customer = matches[0] if matches else await new_customer(ctx, request.customer)
    appointment = await enter(ctx, chosen, staff, customer.id, start)
    return await announce(ctx, appointment, created=not matches)


async def appoint_staff(ctx: Context, me: Actor, name: str | None) -> Member:
    """Whose calendar: one's own, or anyone's with book_for_colleagues (admins may always)."""
    if name is None:
        if not me.has_calendar:
            raise Invalid("staff_needed", known=[m.name for m in await staff_members(ctx) if m.has_calendar])
        return Member(me.person_id, ctx.person.name or "", me.kind or "")
    staff = await find_staff(ctx, name)
    if staff.id != me.person_id:
        require(me.may("book_for_colleagues"), "book_for_colleagues")
    if not staff.has_calendar:
        raise Invalid("no_calendar", value=staff.name)
    return staff


async def customers_named(ctx: Context, text: str) -> list[Person]:
    """`#ID`, else every person whose name matches exactly, case-insensitively."""
    if re.fullmatch(r"#[0-9]+", text):
        person = await ctx.session.get(Person, known_id(int(text[1:])))
        if person is None:
            raise Invalid("customer_id", value=text)
        return [person]
    # Compared in Python: SQLite's lower() folds only ASCII, and names are often not ASCII.
    rows = await ctx.session.execute(select(Person.id, Person.name).where(Person.name.is_not(None)))
    ids = [i for i, name in rows if fold(name) == fold(text)]
    return [await ctx.session.get(Person, i) for i in sorted(ids)]


async def ask_which_customer(ctx: Context, matches: list[Person], request: AppointRequest, chosen: Service,
                             staff: Member) -> Reply:
    """Several customers share the name: offer each by id, with the same booking."""
    rest = f"{chosen.name} {request.day.isoformat()} {hhmm(request.minute)} {staff.name}"
    options = [(p.id, p.name, await display_address(ctx.uow, p.id)) for p in matches]
    choices = [ctx.choice("calendar.pick_customer", f"appoint #{i} {rest}", id=i, name=name) for i, name, _ in options]
    return ctx.say("calendar_customer_ambiguous", typed=request.customer, options=options, rest=rest, choices=choices)


async def new_customer(ctx: Context, name: str) -> Person:
    """Create a customer known only by name (they may never book online)."""
    if len(name) > 200:
        raise Invalid("name_long", value=name[:40])
    customer = Person(name=name, created_at=ctx.now)
    ctx.session.add(customer)
    await ctx.session.flush()
    await ctx.audit("customer_created", f"person:{customer.id}", name=name)
    return customer


async def enter(ctx: Context, chosen: Service, staff: Member, customer_id: int, start: datetime) -> Appointment:
    """Claim the time for a confirmed appointment, or refuse naming the appointment in the way."""
    end = start + timedelta(minutes=chosen.minutes)
    appointment = Appointment(
        service_id=chosen.id, location_id=await location_for(ctx, staff.id, start), staff_id=staff.id,
        customer_id=customer_id, start_at=start, end_at=end, status="confirmed", hold_expires_at=None, sequence=0,
        channel=ctx.inbound.channel, created_by=ctx.sender, created_at=ctx.now)
    try:
        await claim(ctx.uow, appointment, ctx.now)
    except SlotTaken:
        other = await live_between(ctx, start, end, [staff.id])
        raise Refusal("calendar_slot_taken", staff=staff.name, start=start, end=end,
                      other=await view(ctx.uow, other[0]) if other else None) from None
    return appointment


async def location_for(ctx: Context, staff_id: int, start: datetime) -> int | None:
    """Where the staff member works at that time that weekday, else the only (or first) location."""
    local = start.astimezone(ZoneInfo(ctx.tz))
    minute = local.hour * 60 + local.minute
    rows = (await ctx.session.execute(
        select(StaffHours.location_id, StaffHours.start_minute, StaffHours.end_minute)
        .where(StaffHours.person_id == staff_id, StaffHours.weekday == local.weekday())
        .order_by(StaffHours.start_minute))).all()
    inside = [loc for loc, s, e in rows if s <= minute < e]
    if inside or rows:
        return (inside or [rows[0][0]])[0]
    return await ctx.session.scalar(select(Location.id).order_by(Location.id).limit(1))


async def announce(ctx: Context, appointment: Appointment, created: bool) -> list[Reply]:
    """Mail the customer (with ICS), tell the staff member if someone else booked, and confirm."""
    mailed = await tell_customer(ctx, appointment, "calendar_appointed_mail", method="REQUEST")
    await tell_staff(ctx, appointment, "calendar_staff_booked")
    closed = await closure_over(ctx, appointment)
    await ctx.audit("appointment_created", f"appointment:{appointment.id}", customer=appointment.customer_id,
                    staff=appointment.staff_id, start=appointment.start_at.isoformat(), new_customer=created)
    return [ctx.say("calendar_appointed", appointment=await view(ctx.uow, appointment), mailed=mailed,
                    created=created, closed=closed)]


async def tell_staff(ctx: Context, appointment: Appointment, template: str) -> None:
    """The staff member hears of a change in their calendar that someone else made."""
    if appointment.staff_id == ctx.person.id:
        return
    address = await chat_address(ctx.uow, appointment.staff_id)
    if address is None:
        return
    staff = await ctx.session.get(Person, appointment.staff_id)
    lang = staff.language or (ctx.business.language if ctx.business else ctx.config.default_language)
    values = {"appointment": await view(ctx.uow, appointment), "by": ctx.person.name or ctx.sender}
    if address.startswith("email:"):
        await ctx.mail(address.split(":", 1)[1], template, lang=lang, **values)
    else:
        await ctx.notify(address, template, lang=lang, **values)


async def closure_over(ctx: Context, appointment: Appointment) -> str | None:
    """The kind of a closure the appointment falls into (staff may book there; customers online may not)."""
    return await ctx.session.scalar(select(Closure.kind).where(
        Closure.start_at < appointment.end_at, Closure.end_at > appointment.start_at,
        Closure.staff_id.is_(None) | (Closure.staff_id == appointment.staff_id)).limit(1))


async def live_between(ctx: Context, start: datetime, end: datetime, staff_ids: list[int] | None,
                       lock: bool = False) -> list[Appointment]:
    """Held (unexpired), requested and confirmed appointments overlapping [start, end).

    With `lock` the rows stay locked until commit (in one order, so two closures cannot deadlock): a
    concurrent cancel, answer or move waits, and a row it closed meanwhile is no longer found.
    """
    query = select(Appointment).where(Appointment.start_at < end, Appointment.end_at > start, live_condition(ctx.now))
    if staff_ids is not None:
        query = query.where(Appointment.staff_id.in_(staff_ids))
    query = query.order_by(Appointment.start_at, Appointment.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return list((await ctx.session.scalars(query)).all())


# ---------------------------------------------------------------- day and week


@dataclass(frozen=True)
class Entry:
    """One line of the calendar."""

    id: int
    start: datetime
    end: datetime
    status: str
    service: str
    colour: str | None
    dot: str
    staff: str
    customer: str
    location: str | None


@dataclass(frozen=True)
class ClosureView:
    kind: str
    start: datetime
    end: datetime
    staff: str | None  # None: the whole business

    @property
    def last(self) -> datetime:
        """An instant on the last day a whole-day closure covers."""
        return self.end - timedelta(seconds=1)


@dataclass(frozen=True)
class DayView:
    day: date
    closures: list[ClosureView]
    entries: list[Entry]


def group_days(days: Sequence[date], tz: ZoneInfo, entries: Sequence[Entry],
               closures: Sequence[ClosureView]) -> list[DayView]:
    """Each day with the appointments that start on it and the closures that touch it."""
    grouped = []
    for day in days:
        start, end = day_bounds(day, tz)
        grouped.append(DayView(day, [c for c in closures if c.start < end and c.end > start],
                               [e for e in entries if start <= e.start < end]))
    return grouped


async def show_day(ctx: Context, args: str) -> list[Reply]:
    """`day [DATE] [STAFF]`: one day of the calendar."""
    day, who = parse_when(tokens(args), local_date(ctx, ctx.now))
    return await show_days(ctx, [day], who)


async def show_week(ctx: Context, args: str) -> list[Reply]:
    """`week [DATE] [STAFF]`: Monday to Sunday of the week with that date."""
    day, who = parse_when(tokens(args), local_date(ctx, ctx.now))
    monday = day - timedelta(days=day.weekday())
    return await show_days(ctx, [monday + timedelta(days=i) for i in range(7)], who)


async def show_days(ctx: Context, days: list[date], who: str | None) -> list[Reply]:
    """Render the calendar for consecutive days, limited to what the speaker may see."""
    scope, name = await view_scope(ctx, await actor(ctx), who)
    tz = ZoneInfo(ctx.tz)
    start, end = day_bounds(days[0], tz)[0], day_bounds(days[-1], tz)[1]
    entries = await entries_between(ctx, start, end, scope)
    closures = await closures_between(ctx, start, end, scope)
    return [ctx.say("calendar_day", days=group_days(days, tz, entries, closures), staff=name,
                    many_locations=len(await locations(ctx)) > 1)]


async def view_scope(ctx: Context, me: Actor, who: str | None) -> tuple[list[int] | None, str | None]:
    """Whose appointments the speaker reads: one's own, or (admins, assistants) anyone's or all."""
    if who is not None and fold(who) not in EVERYONE_WORDS:
        staff = await find_staff(ctx, who)
        if staff.id != me.person_id:
            require(me.sees_all, "see_others")
        return [staff.id], staff.name
    if me.sees_all:
        return None, None
    return [me.person_id], ctx.person.name


async def entries_between(ctx: Context, start: datetime, end: datetime, scope: list[int] | None) -> list[Entry]:
    """Live appointments overlapping [start, end), with the names a person reads, in one query."""
    staffer, customer = aliased(Person), aliased(Person)
    query = (select(Appointment.id, Appointment.start_at, Appointment.end_at, Appointment.status, Service.name,
                    Service.colour, staffer.name, customer.name, customer.id, Location.name)
             .join(Service, Service.id == Appointment.service_id)
             .join(staffer, staffer.id == Appointment.staff_id)
             .join(customer, customer.id == Appointment.customer_id)
             .outerjoin(Location, Location.id == Appointment.location_id)
             .where(Appointment.start_at < end, Appointment.end_at > start, live_condition(ctx.now))
             .order_by(Appointment.start_at, staffer.name))
    if scope is not None:
        query = query.where(Appointment.staff_id.in_(scope))
    return [Entry(i, s, e, status, svc, colour, colour_dot(colour), staff or "?", cust or f"#{cid}", loc)
            for i, s, e, status, svc, colour, staff, cust, cid, loc in await ctx.session.execute(query)]


async def closures_between(ctx: Context, start: datetime, end: datetime,
                           scope: list[int] | None) -> list[ClosureView]:
    """Closures touching [start, end) that concern the scope (whole-business closures always do)."""
    query = (select(Closure.kind, Closure.start_at, Closure.end_at, Person.name)
             .outerjoin(Person, Person.id == Closure.staff_id)
             .where(Closure.start_at < end, Closure.end_at > start).order_by(Closure.start_at))
    if scope is not None:
        query = query.where(Closure.staff_id.is_(None) | Closure.staff_id.in_(scope))
    return [ClosureView(kind, s, e, name) for kind, s, e, name in await ctx.session.execute(query)]


# ---------------------------------------------------------------- closures: sick, vacation, pause


async def off(ctx: Context, args: str) -> list[Reply]:
    """`off sick|vacation FROM [TO] [STAFF|all]`: whole days closed for online booking."""
    return await close(ctx, parse_off(tokens(args)))


async def pause(ctx: Context, args: str) -> list[Reply]:
    """`pause DATE HH:MM-HH:MM [STAFF|all]`: hours closed for online booking."""
    return await close(ctx, parse_pause(tokens(args)))


async def close(ctx: Context, request: ClosureRequest) -> list[Reply]:
    """Close at once if nothing is booked inside; else list what would be cancelled and ask first."""
    staff = await closure_target(ctx, await actor(ctx), request.who)
    start, end = closure_window(request, ZoneInfo(ctx.tz))
    if end <= ctx.now:
        raise Invalid("past", value=request.first.isoformat())
    spec = {"kind": request.kind, "staff_id": staff.id if staff else None, "start": start.isoformat(),
            "end": end.isoformat()}
    await lock_calendars(ctx.uow, [staff.id] if staff else None, closing=True)  # holds wait, or are seen
    found = await live_between(ctx, start, end, [staff.id] if staff else None)
    replies = await settle_pending(ctx)
    if not found:
        closure = await create_closure(ctx, spec)
        return replies + [ctx.say("calendar_closed", closure=await closure_view(ctx, closure), cancelled=0)]
    return replies + await ask_closure(ctx, spec, found, changed=False)


async def closure_target(ctx: Context, me: Actor, who: str | None) -> Member | None:
    """A provider closes their own calendar; an admin anyone's, or (with 'all') the whole business."""
    if who is None:
        if not me.has_calendar:
            require(me.admin, "own_calendar")
            raise Invalid("closure_who")
        return Member(me.person_id, ctx.person.name or "", me.kind or "")
    if fold(who) in EVERYONE_WORDS:
        require(me.admin, "admin")
        return None
    staff = await find_staff(ctx, who)
    require(staff.id == me.person_id or me.admin, "admin")
    if not staff.has_calendar:
        raise Invalid("no_calendar", value=staff.name)
    return staff


async def ask_closure(ctx: Context, spec: dict, found: list[Appointment], changed: bool) -> list[Reply]:
    nonce = new_key()
    await ctx.start_flow(FLOW, "closure", {"nonce": nonce, **spec, "ids": [a.id for a in found]})
    views = [await view(ctx.uow, a) for a in found]
    return [ctx.say("calendar_closure_ask", closure=await spec_view(ctx, spec), appointments=views, changed=changed,
                    choices=confirm_choices(ctx, nonce))]


async def confirm_closure(ctx: Context, data: dict) -> list[Reply]:
    """Cancel what lies inside, close, then ask for the one personal message to the customers."""
    spec = {key: data[key] for key in ("kind", "staff_id", "start", "end")}
    start, end = datetime.fromisoformat(spec["start"]), datetime.fromisoformat(spec["end"])
    staff_ids = None if spec["staff_id"] is None else [spec["staff_id"]]
    await lock_calendars(ctx.uow, staff_ids, closing=True)  # a hold made at this moment is in `found`
    found = await live_between(ctx, start, end, staff_ids, lock=True)
    if {a.id for a in found} - set(data["ids"]):  # booked since the question: show the new list first
        return await ask_closure(ctx, spec, found, changed=True)
    for appointment in found:
        await cancel(ctx, appointment, spec["kind"])
    closure = await create_closure(ctx, spec)
    if not found:
        await ctx.end_flow()
        return [ctx.say("calendar_closed", closure=await closure_view(ctx, closure), cancelled=0)]
    nonce = new_key()
    await ctx.start_flow(FLOW, "closure_message", {"nonce": nonce, "ids": [a.id for a in found]}, ttl=MESSAGE_TTL)
    return [ctx.say("calendar_closed", closure=await closure_view(ctx, closure), cancelled=len(found),
                    choices=[ctx.choice("calendar.no_message", f"{SILENT} {nonce}")])]


async def cancel(ctx: Context, appointment: Appointment, reason: str) -> None:
    """Cancel one appointment for a closure; the row stays, with who and why."""
    await release(ctx.uow, appointment, "cancelled", ctx.sender, reason, ctx.now)
    appointment.sequence += 1  # the CANCEL invitation must outrank the one the customer has
    await ctx.audit("appointment_cancelled", f"appointment:{appointment.id}", reason=reason)


async def create_closure(ctx: Context, spec: dict) -> Closure:
    """Store the closure that keeps online booking out of this time."""
    closure = Closure(staff_id=spec["staff_id"], kind=spec["kind"], start_at=datetime.fromisoformat(spec["start"]),
                      end_at=datetime.fromisoformat(spec["end"]), created_by=ctx.sender, created_at=ctx.now)
    ctx.session.add(closure)
    await ctx.session.flush()
    await ctx.audit("closure_created", f"closure:{closure.id}", kind=closure.kind, staff=closure.staff_id,
                    start=spec["start"], end=spec["end"])
    return closure


async def closure_view(ctx: Context, closure: Closure) -> ClosureView:
    staff = await ctx.session.get(Person, closure.staff_id) if closure.staff_id else None
    return ClosureView(closure.kind, closure.start_at, closure.end_at, staff.name if staff else None)


async def spec_view(ctx: Context, spec: dict) -> ClosureView:
    staff = await ctx.session.get(Person, spec["staff_id"]) if spec["staff_id"] else None
    return ClosureView(spec["kind"], datetime.fromisoformat(spec["start"]), datetime.fromisoformat(spec["end"]),
                       staff.name if staff else None)


async def send_closure_notices(ctx: Context, message: str | None) -> list[Reply]:
    """Mail every affected customer who has an email; name the others, who must be told another way."""
    ids = list(ctx.conversation.data["ids"])
    await ctx.end_flow()
    told, untold = [], []
    for appointment_id in ids:
        appointment = await ctx.session.get(Appointment, appointment_id)
        sent = await tell_customer(ctx, appointment, "calendar_cancelled_mail", message=message, method="CANCEL")
        (told if sent else untold).append(await view(ctx.uow, appointment))
    await ctx.audit("closure_customers_told", None, told=len(told), untold=[v.id for v in untold],
                    message=bool(message))
    return [ctx.say("calendar_closure_told", told=told, untold=untold, message=message)]


async def settle_pending(ctx: Context) -> list[Reply]:
    """A new question must not swallow customers still waiting for news: tell them without a message."""
    conversation = ctx.conversation
    if conversation is None or conversation.flow != FLOW or conversation.step != "closure_message":
        return []
    return await send_closure_notices(ctx, None)


# ---------------------------------------------------------------- confirm, abort, the personal message


def confirm_choices(ctx: Context, nonce: str) -> list[Choice]:
    # The nonce ties a button to its question: an old keyboard cannot confirm a newer question.
    return [ctx.choice("calendar.confirm", f"{CONFIRM} {nonce}"), ctx.choice("calendar.abort", f"{ABORT} {nonce}")]


def pending(ctx: Context, nonce: str, *steps: str) -> dict | None:
    """The open calendar question this button or word answers, if it is still open."""
    conversation = ctx.conversation
    if conversation is None or conversation.flow != FLOW or conversation.step not in steps:
        return None
    if conversation.data.get("nonce") != nonce.strip():
        return None
    return dict(conversation.data)


async def confirm_pending(ctx: Context, args: str) -> list[Reply]:
    """The Confirm button of a closure or a service deletion."""
    data = pending(ctx, args, "closure", "service_delete")
    if data is None:
        return [ctx.say("calendar_question_gone")]
    if ctx.conversation.step == "closure":
        return await confirm_closure(ctx, data)
    return await confirm_service_delete(ctx, data)


async def abort_pending(ctx: Context, args: str) -> list[Reply]:
    """The Abort button: nothing changes."""
    if pending(ctx, args, "closure", "service_delete") is None:
        return [ctx.say("calendar_question_gone")]
    await ctx.end_flow()
    return [ctx.say("calendar_aborted")]


async def skip_message(ctx: Context, args: str) -> list[Reply]:
    """The 'No message' button: customers are told of the cancellation without a personal word."""
    if pending(ctx, args, "closure_message") is None:
        return [ctx.say("calendar_question_gone")]
    return await send_closure_notices(ctx, None)


async def calendar_step(ctx: Context, text: str) -> list[Reply]:
    """A typed answer in an open calendar conversation: yes/no to a question, or the personal message."""
    step, nonce = ctx.conversation.step, ctx.conversation.data.get("nonce", "")
    if step == "closure_message":
        return await send_closure_notices(ctx, text.strip()[:MAX_MESSAGE])
    if fold(text) in YES:
        return await confirm_pending(ctx, nonce)
    if fold(text) in NO:
        return await abort_pending(ctx, nonce)
    return [ctx.say("calendar_press_button", choices=confirm_choices(ctx, nonce))]


# ---------------------------------------------------------------- booking mode and requests


async def mode(ctx: Context, args: str) -> list[Reply]:
    """`mode`: show; `mode direct|request`: let customers book directly or only request."""
    business = ctx.business
    if business is None:
        raise Invalid("no_business")
    wanted = fold(args)
    waiting = await ctx.session.scalar(select(func.count()).select_from(Appointment)
                                       .where(Appointment.status == "requested"))
    if not wanted:
        return [ctx.say("calendar_mode", mode=business.booking_mode, changed=False, waiting=waiting)]
    if wanted not in MODES:
        raise Invalid("mode", value=args.strip())
    require((await actor(ctx)).may("settings"), "settings")
    old, business.booking_mode = business.booking_mode, MODES[wanted]
    if old != business.booking_mode:
        await ctx.audit("booking_mode_set", business.booking_mode, old=old)
    return [ctx.say("calendar_mode", mode=business.booking_mode, changed=old != business.booking_mode,
                    waiting=waiting)]


async def list_requests(ctx: Context, args: str) -> list[Reply]:
    """`requests`: what waits for an answer (admins see all, staff their own), with buttons."""
    me = await actor(ctx)
    query = select(Appointment).where(Appointment.status == "requested").order_by(Appointment.start_at)
    if not me.admin:
        query = query.where(Appointment.staff_id == me.person_id)
    views = [await view(ctx.uow, a) for a in (await ctx.session.scalars(query)).all()]
    choices = []
    for v in views[:MAX_REQUEST_BUTTONS]:
        choices += [ctx.choice("calendar.approve", f"approve {v.id}", id=v.id),
                    ctx.choice("calendar.reject", f"reject {v.id}", id=v.id)]
    return [ctx.say("calendar_requests", appointments=views, choices=choices)]


async def requested(ctx: Context, text: str) -> Appointment:
    """The requested appointment named by ID, if the speaker may answer it, locked until the answer commits.

    The row lock makes a concurrent cancel or second answer wait, and the status is checked only once we
    hold it (populate_existing: not a copy read before the wait). SQLite's BEGIN IMMEDIATE serializes anyway.
    """
    appointment = await ctx.session.get(Appointment, parse_id(text), with_for_update=True, populate_existing=True)
    if appointment is None:
        raise Invalid("appointment", value=text.strip())
    me = await actor(ctx)
    require(me.admin or appointment.staff_id == me.person_id, "concerned")
    if appointment.status != "requested":
        raise Invalid("not_requested", value=appointment.id, status=appointment.status)
    return appointment


async def approve(ctx: Context, args: str) -> list[Reply]:
    """`approve ID`: the request becomes a confirmed appointment; the customer gets the invitation."""
    appointment = await requested(ctx, args)
    if appointment.start_at <= ctx.now:
        raise Invalid("request_past", value=appointment.id)
    appointment.status, appointment.hold_expires_at = "confirmed", None
    await ctx.audit("appointment_approved", f"appointment:{appointment.id}")
    mailed = await tell_customer(ctx, appointment, "calendar_approved_mail", method="REQUEST")
    await tell_staff(ctx, appointment, "calendar_staff_approved")
    return [ctx.say("calendar_approved", appointment=await view(ctx.uow, appointment), mailed=mailed)]


async def reject(ctx: Context, args: str) -> list[Reply]:
    """`reject ID [reason]`: the request is turned down, its time freed, and the customer told why."""
    parts = args.strip().split(None, 1)
    appointment = await requested(ctx, parts[0] if parts else "")
    reason = parts[1].strip()[:MAX_MESSAGE] if len(parts) > 1 else None
    await release(ctx.uow, appointment, "rejected", ctx.sender, reason, ctx.now)
    await ctx.audit("appointment_rejected", f"appointment:{appointment.id}", reason=reason)
    mailed = await tell_customer(ctx, appointment, "calendar_rejected_mail", message=reason, method=None)
    return [ctx.say("calendar_rejected", appointment=await view(ctx.uow, appointment), mailed=mailed,
                    reason=reason)]


# ---------------------------------------------------------------- registration


def staff_command(word: str, run: Run, aliases: tuple[str, ...] = (), section: str = "staff",
                  safe: bool = False) -> Command:
    """A calendar word for staff; `safe` marks one that only reads (email runs it without a code round trip)."""
    return Command(word, guarded(word, run), allowed=STAFF, aliases=aliases, section=section, safe=safe)


def handlers() -> Handlers:
    """The calendar words, their German aliases and the buttons of its questions."""
    return Handlers(
        commands=[
            staff_command("day", show_day, ("tag",), safe=True),
            staff_command("week", show_week, ("woche",), safe=True),
            staff_command("appoint", appoint, ("eintragen",)),
            staff_command("requests", list_requests, ("anfragen",), safe=True),
            staff_command("approve", approve, ("zusagen", "annehmen")),
            staff_command("reject", reject, ("ablehnen", "absagen")),
            staff_command("off", off, ("abwesend",)),
            staff_command("pause", pause, ("pausieren",)),
            staff_command("hours", hours, ("zeiten", "oeffnungszeiten", "öffnungszeiten")),
            staff_command("services", list_services, ("leistungen",), safe=True),
            staff_command("service", service, ("leistung",), section="admin"),
            staff_command("mode", mode, ("modus",), section="admin"),
            # Buttons of the calendar's questions; not listed in /help.
            Command(CONFIRM, confirm_pending, allowed=STAFF, section="hidden"),
            Command(ABORT, abort_pending, allowed=STAFF, section="hidden"),
            Command(SILENT, skip_message, allowed=STAFF, section="hidden"),
        ],
        flows={FLOW: calendar_step},
    )
