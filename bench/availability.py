"""Availability and booking under load on the default SQLite (a temp file, WAL), no network.

    python bench/availability.py [--appointments 10000] [--staff 20] [--runs 40] [--tasks 50] [--seed 7]

The practice: 20 staff, 3 locations, 30 days from a Monday (the spring-forward Sunday included)
and 10 000 existing appointments (mostly confirmed, some requested, held, expired or cancelled),
inserted with Core insert() lists of dicts, slot claims included. The 30 days hold at most 500
appointments per staff member (today's density); any more lie in the weeks before, as a practice's
history does, and no list needs them.

It measures, as medians over --runs (wall clock, and the process's CPU time, which other load on
the machine disturbs less):
- the free days of a service: a customer's day list as the booking walk makes it (the staff
  qualified for it with hours at the location, then handlers.booking.catalog.free_days: the first
  10 days with a free slot, busy time read two weeks at a time), in a unit of work;
- the free times of one day: load_plan over that day, calendars, every free slot.
Both for one location (what a customer sees) and, as a heavier case, for every qualified staff
member at all three locations. Baselines from the same run: the same computations on pre-loaded
in-memory inputs (no DB), and a bare `SELECT 1` in a unit of work. Ratios are printed, since the
machines are shared and noisy.

Then 50 tasks race over a day of offered slots through appointments.claim, each claim in its own
unit of work, and it prints confirmed bookings per second (and one task alone, for the ratio) and
the double-booking count, checked by a query over the rows (must be 0).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/availability.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy import and_, func, insert, or_, select, text  # noqa: E402
from sqlalchemy.orm import aliased  # noqa: E402

from handlers.appointments import (  # noqa: E402
    DayPlan,
    SlotTaken,
    claim,
    day_range,
    load_plan,
    qualified_staff,
)
from handlers.booking.catalog import DAYS_OFFERED, Scope  # noqa: E402
from handlers.booking.catalog import free_days as offered_days  # noqa: E402
from handlers.booking.rules import Rules  # noqa: E402
from handlers.rules.availability import cells, day_bounds, free_slots, local_minute  # noqa: E402
from storage.db import Store  # noqa: E402
from storage.models import (  # noqa: E402
    Appointment,
    Business,
    Location,
    OpeningHours,
    Person,
    Service,
    SlotClaim,
    Staff,
    StaffHours,
    StaffService,
)

TZ = ZoneInfo("Europe/Vienna")
UTC = timezone.utc
FIRST_DAY = date(2026, 3, 16)  # a Monday; 29 March (23 hours) lies inside the 30 days
DAYS = 30
LOCATIONS, CUSTOMERS = 3, 500
STAFF, APPOINTMENTS = 20, 10_000  # the defaults; --staff and --appointments change them
PER_STAFF = 500  # appointments per staff member inside the 30 days; the rest lie before them
STEP = timedelta(minutes=15)  # business.slot_minutes
NOTICE = timedelta(minutes=60)  # business.min_notice_minutes
NOW = local_minute(FIRST_DAY, 6 * 60, TZ)  # Monday 06:00: the whole range lies ahead
RULES = Rules(TZ, STEP, NOW, NOW + NOTICE, FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1), 60, DAYS - 1)
WEEK = [(7 * 60, 21 * 60)] * 5 + [(8 * 60, 14 * 60)]  # Mon–Fri 07–21, Sat 08–14; Sunday closed
SERVICES = [(1, "Massage", 60), (2, "Erstberatung", 30), (3, "Heilgymnastik", 45)]
LENGTHS = [15, 30, 30, 45]  # minutes of the existing appointments
GAPS = [0, 0, 0, 15, 30]  # minutes between them
TARGET_MS = 20.0


@dataclass(frozen=True)
class Query:
    label: str
    service: int
    minutes: int
    locations: tuple[int, ...]
    day: date  # for the one-day list


# ---- the practice -------------------------------------------------------------------------------

def staff_rows(count: int) -> dict[str, list[dict]]:
    """Staff i works at location i % 3; Massage is done by 7 in 10 of them, Heilgymnastik by the even ones."""
    people = [{"id": i, "name": f"Staff {i}", "created_at": NOW} for i in range(1, count + 1)]
    people += [{"id": count + c, "name": f"Customer {c}", "created_at": NOW} for c in range(1, CUSTOMERS + 1)]
    hours = [{"person_id": i, "location_id": 1 + i % LOCATIONS, "weekday": wd, "start_minute": a, "end_minute": b}
             for i in range(1, count + 1) for wd, (a, b) in enumerate(WEEK)]
    services = [{"person_id": i, "service_id": 2} for i in range(1, count + 1)]
    services += [{"person_id": i, "service_id": 1} for i in range(1, count + 1) if i % 10 < 7]
    services += [{"person_id": i, "service_id": 3} for i in range(1, count + 1) if i % 2 == 0]
    staff = [{"person_id": i, "kind": "provider", "rights": []} for i in range(1, count + 1)]
    return {"person": people, "staff": staff, "staff_hours": hours, "staff_service": services}


def practice_rows(staff: int) -> dict[str, list[dict]]:
    """Business, locations with their opening hours, services and staff, as Core insert() rows."""
    rows = {
        "business": [{"id": 1, "name": "Bench Practice", "timezone": TZ.key, "language": "de",
                      "booking_mode": "direct", "slot_minutes": 15, "min_notice_minutes": 60, "max_days_ahead": 60}],
        "location": [{"id": n, "name": f"Location {n}"} for n in range(1, LOCATIONS + 1)],
        "opening_hours": [{"location_id": n, "weekday": wd, "start_minute": a, "end_minute": b}
                          for n in range(1, LOCATIONS + 1) for wd, (a, b) in enumerate(WEEK)],
        "service": [{"id": i, "name": name, "minutes": m} for i, name, m in SERVICES],
    }
    return rows | staff_rows(staff)


def candidate_times(rng: random.Random, days: list[date], staff_count: int) -> list[tuple[int, datetime, datetime]]:
    """Each staff member's working days filled back to back with short gaps: (staff, start, end) in UTC."""
    out = []
    for day in days:
        if day.weekday() >= len(WEEK):
            continue
        first, last = WEEK[day.weekday()]
        for staff in range(1, staff_count + 1):
            minute = first + rng.choice(GAPS)
            while (length := rng.choice(LENGTHS)) and minute + length <= last:
                out.append((staff, local_minute(day, minute, TZ), local_minute(day, minute + length, TZ)))
                minute += length + rng.choice(GAPS)
    return out


def past_times(rng: random.Random, count: int, staff_count: int) -> list[tuple[int, datetime, datetime]]:
    """`count` appointments in the weeks before the range, about as dense as inside it."""
    if count <= 0:
        return []
    months = -(-count // (PER_STAFF * staff_count)) + 1  # four weeks hold a little over PER_STAFF each
    days = days_of(FIRST_DAY - timedelta(weeks=4 * months), 28 * months)
    return rng.sample(candidate_times(rng, days, staff_count), count)


def appointment_rows(rng: random.Random, total: int, staff_count: int) -> tuple[list[dict], list[dict]]:
    """`total` appointments drawn from the candidates (the range's first), and the slot claims of the live ones."""
    ahead = min(total, PER_STAFF * staff_count)
    chosen = rng.sample(candidate_times(rng, days_of(FIRST_DAY, DAYS), staff_count), ahead)
    chosen = sorted(chosen + past_times(rng, total - ahead, staff_count), key=lambda c: (c[1], c[0]))
    appointments, claims = [], []
    for number, (staff, start, end) in enumerate(chosen, start=1):
        status = rng.choices(["confirmed", "requested", "held", "expired", "cancelled"], [85, 4, 2, 4, 5])[0]
        appointments.append({
            "id": number, "service_id": 2, "location_id": 1 + staff % LOCATIONS, "staff_id": staff,
            "customer_id": staff_count + rng.randint(1, CUSTOMERS), "start_at": start, "end_at": end, "status": status,
            "hold_expires_at": NOW + timedelta(minutes=10) if status == "held" else None, "sequence": 0,
            "channel": "telegram", "created_by": "bench", "created_at": NOW})
        if status in ("confirmed", "requested", "held"):
            claims += [{"staff_id": staff, "cell": cell, "appointment_id": number} for cell in cells(start, end)]
    return appointments, claims


async def seed(store: Store, rng: random.Random, total: int, staff: int) -> tuple[int, int]:
    """Insert the practice and the appointments in one transaction; returns (live appointments, claimed cells)."""
    appointments, claims = appointment_rows(rng, total, staff)
    tables = {"business": Business, "location": Location, "opening_hours": OpeningHours, "service": Service,
              "person": Person, "staff": Staff, "staff_hours": StaffHours, "staff_service": StaffService}
    async with store.uow() as uow:
        for name, rows in practice_rows(staff).items():
            await uow.session.execute(insert(tables[name]), rows)
        await uow.session.execute(insert(Appointment), appointments)
        await uow.session.execute(insert(SlotClaim), claims)
        await uow.commit()
    return len({c["appointment_id"] for c in claims}), len(claims)


# ---- what a customer's lists need ---------------------------------------------------------------

def days_of(first: date, count: int) -> list[date]:
    """`count` consecutive days from `first`."""
    return [first + timedelta(days=i) for i in range(count)]


def first_free(plan: DayPlan, day: date, q: Query, staff: list[int], now: datetime) -> bool:
    """Whether one day has any free slot for the service at the location (the day list's test)."""
    calendars = plan.calendars(day, TZ, list(q.locations), staff)
    return bool(free_slots(calendars, timedelta(minutes=q.minutes), STEP, day_bounds(day, TZ)[0], now + NOTICE,
                           first_only=True))


def day_times(plan: DayPlan, q: Query, staff: list[int], now: datetime) -> list:
    """Every free start of the query's day."""
    calendars = plan.calendars(q.day, TZ, list(q.locations), staff)
    return free_slots(calendars, timedelta(minutes=q.minutes), STEP, day_bounds(q.day, TZ)[0], now + NOTICE)


async def bookable_staff(uow, q: Query) -> list[int]:
    """Staff qualified for the service with hours at the locations (as the booking module narrows them)."""
    qualified = await qualified_staff(uow, q.service)
    rows = await uow.session.scalars(select(StaffHours.person_id).distinct().where(
        StaffHours.person_id.in_(qualified), StaffHours.location_id.in_(q.locations)))
    return sorted(rows.all())


async def free_days(store: Store, q: Query) -> list[date]:
    """The day list as the booking walk makes it (handlers.booking.catalog.free_days): the first DAYS_OFFERED
    days with a free slot, busy time read CHUNK_DAYS at a time, in a unit of work."""
    async with store.uow() as uow:
        staff = await bookable_staff(uow, q)
        scope = Scope(Service(id=q.service, minutes=q.minutes), q.locations, tuple(staff))
        return await offered_days(uow, RULES, scope)


async def free_times(store: Store, q: Query) -> list:
    """The time list of one day: load_plan over that day, then every free slot."""
    async with store.uow() as uow:
        staff = await bookable_staff(uow, q)
        start, end = day_range(q.day, 1, TZ)
        plan = await load_plan(uow, staff, start, end, NOW)
    return day_times(plan, q, staff, NOW)


async def select_one(store: Store) -> None:
    """The floor: a unit of work with one trivial statement."""
    async with store.uow() as uow:
        await uow.session.execute(text("SELECT 1"))


async def loaded_plan(store: Store, q: Query, first: date, days: int) -> tuple[DayPlan, list[int]]:
    """The plan loaded once, for the in-memory baseline."""
    async with store.uow() as uow:
        staff = await bookable_staff(uow, q)
        return await load_plan(uow, staff, *day_range(first, days, TZ), NOW), staff


@dataclass(frozen=True)
class Timing:
    wall: float  # median milliseconds
    p90: float
    cpu: float  # median CPU milliseconds of the process (the SQLite thread included): less noisy than wall

    def __str__(self) -> str:
        return f"median {self.wall:.2f} ms (p90 {self.p90:.2f}, CPU {self.cpu:.2f})"


async def timed(run: Callable[[], Awaitable], runs: int) -> Timing:
    """Wall and CPU medians over `runs`, after three untimed warm-up runs."""
    for _ in range(3):
        await run()
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        await run()
        wall.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.process_time() - started_cpu))
    wall.sort()
    return Timing(statistics.median(wall), wall[int(0.9 * (len(wall) - 1))], statistics.median(cpu))


async def in_memory(compute: Callable[[], object]) -> None:
    """The baseline: the same computation on inputs loaded beforehand."""
    compute()


# ---- booking under contention -------------------------------------------------------------------

def offers(day: date, staff: list[int], minutes: int) -> list[tuple[int, datetime]]:
    """What the customers' keyboards show: every 15-minute start of the day for each staff member."""
    first, last = WEEK[day.weekday()]
    return [(s, local_minute(day, m, TZ)) for s in staff for m in range(first, last - minutes + 1, 15)]


async def book(store: Store, staff: int, start: datetime, minutes: int, customer: int) -> bool:
    """One customer's attempt, in its own unit of work: True if it was confirmed."""
    async with store.uow() as uow:
        row = Appointment(service_id=2, location_id=1 + staff % LOCATIONS, staff_id=staff, customer_id=customer,
                          start_at=start, end_at=start + timedelta(minutes=minutes), status="confirmed",
                          sequence=0, channel="telegram", created_by="bench", created_at=NOW)
        try:
            await claim(uow, row, NOW)
        except SlotTaken:
            return False
        await uow.commit()
        return True


async def contend(store: Store, day: date, tasks: int, staff_count: int,
                  rng: random.Random) -> tuple[int, int, float]:
    """`tasks` bookers pick random offered 30-minute slots until none is left; (confirmed, attempts, seconds)."""
    pool = offers(day, list(range(1, staff_count + 1)), 30)
    rng.shuffle(pool)
    won = tried = 0

    async def booker(number: int) -> None:
        nonlocal won, tried
        while pool:
            staff, start = pool.pop()
            tried += 1
            confirmed = await book(store, staff, start, 30, staff_count + 1 + number % CUSTOMERS)
            won += confirmed  # not `won += await …`: that reads `won` before the await and loses updates

    started = time.perf_counter()
    await asyncio.gather(*(booker(n) for n in range(tasks)))
    return won, tried, time.perf_counter() - started


async def double_bookings(store: Store) -> int:
    """Pairs of live appointments of one staff member that overlap, counted by the database."""
    a, b = aliased(Appointment), aliased(Appointment)

    def live(x):
        return or_(x.status.in_(("requested", "confirmed")), and_(x.status == "held", x.hold_expires_at > NOW))

    # For each live a, the live b that start inside it (a tie broken by id): every overlapping pair once, found
    # by a range on (staff_id, start_at) per row rather than by pairing all of one staff member's appointments
    inside = select(func.count()).select_from(b).where(
        b.staff_id == a.staff_id, b.start_at >= a.start_at, b.start_at < a.end_at,
        or_(b.start_at > a.start_at, a.id < b.id), live(b)).scalar_subquery()
    async with store.uow() as uow:
        return await uow.session.scalar(select(func.coalesce(func.sum(inside), 0)).select_from(a).where(live(a)))


# ---- the report ---------------------------------------------------------------------------------

def verdict(ms: float) -> str:
    return f"target < {TARGET_MS:.0f} ms: {'met' if ms < TARGET_MS else 'MISSED'}"


async def measure_lists(store: Store, q: Query, runs: int, round_trip: Timing) -> Timing:
    """Free days and free times of one scope, each against its in-memory and SELECT 1 baselines; the free days'
    timing."""
    plan, staff = await loaded_plan(store, q, FIRST_DAY, DAYS)
    day_plan, _ = await loaded_plan(store, q, q.day, 1)
    found, times = await free_days(store, q), await free_times(store, q)
    days = await timed(lambda: free_days(store, q), runs)
    days_mem = await timed(lambda: in_memory(lambda: list(islice(
        (d for d in days_of(FIRST_DAY, DAYS) if first_free(plan, d, q, staff, NOW)), DAYS_OFFERED))), runs)
    one_day = await timed(lambda: free_times(store, q), runs)
    one_day_mem = await timed(lambda: in_memory(lambda: day_times(day_plan, q, staff, NOW)), runs)
    print(f"{q.label}: {q.minutes}-min service, {len(staff)} staff, locations {list(q.locations)}")
    print(f"  the first {DAYS_OFFERED} free days in {DAYS} ({len(found)} found): {days} — {verdict(days.wall)}")
    print(f"    in-memory {days_mem.wall:.2f} ms → ratio {days.wall / days_mem.wall:.1f}×; "
          f"SELECT 1 → ratio {days.wall / round_trip.wall:.1f}×")
    print(f"  free times on {q.day} ({len(times)} starts): {one_day} — {verdict(one_day.wall)}")
    print(f"    in-memory {one_day_mem.wall:.2f} ms → ratio {one_day.wall / one_day_mem.wall:.1f}×; "
          f"SELECT 1 → ratio {one_day.wall / round_trip.wall:.1f}×")
    return days


async def measure_contention(store: Store, tasks: int, staff: int, rng: random.Random) -> None:
    """Bookings per second with `tasks` racing bookers and with one, and the double-booking count."""
    alone = await contend(store, FIRST_DAY + timedelta(days=DAYS + 1), 1, staff, rng)  # a Wednesday after the range
    raced = await contend(store, FIRST_DAY + timedelta(days=DAYS + 2), tasks, staff, rng)  # the Thursday
    for label, (won, tried, seconds) in ((f"{tasks} racing tasks", raced), ("1 task alone", alone)):
        print(f"booking, {label}: {won} confirmed of {tried} attempts in {seconds:.2f} s = "
              f"{won / seconds:.0f} bookings/s ({tried / seconds:.0f} attempts/s, {tried - won} SlotTaken)")
    print(f"  ratio {tasks}-way / alone: {(raced[0] / raced[2]) / (alone[0] / alone[2]):.2f}")
    print(f"double bookings (overlapping live pairs, by query): {await double_bookings(store)}")


SCOPES = [
    Query("a customer's list at one location", 1, 60, (2,), FIRST_DAY + timedelta(days=10)),
    Query("every qualified staff member at all locations", 1, 60, (1, 2, 3), FIRST_DAY + timedelta(days=10)),
]


async def main(runs: int, tasks: int, seed_value: int, appointments: int, staff: int) -> None:
    rng = random.Random(seed_value)
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as folder:
        store = Store.from_url(f"sqlite+aiosqlite:///{folder}/bench.db")
        try:
            await store.migrate()
            started = time.perf_counter()
            live, claimed = await seed(store, rng, appointments, staff)
            await describe(store, folder)
            print(f"{staff} staff, {LOCATIONS} locations, {DAYS} days, {appointments} appointments "
                  f"({max(0, appointments - PER_STAFF * staff)} before the range; {live} live, {claimed} claimed "
                  f"cells), seeded with Core insert() in {time.perf_counter() - started:.2f} s")
            round_trip = await timed(lambda: select_one(store), runs)
            print(f"baseline SELECT 1 in a unit of work: {round_trip}")
            days = [await measure_lists(store, q, runs, round_trip) for q in SCOPES]
            await measure_contention(store, tasks, staff, rng)
            print(f"free days, all locations: {days[-1].wall:.2f} ms median")  # the figure issue 14 aims at
        finally:
            await store.dispose()


async def describe(store: Store, folder: str) -> None:
    async with store.uow() as uow:
        version = await uow.session.scalar(text("SELECT sqlite_version()"))
    print(f"SQLite {version} (WAL, a file in {folder}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=APPOINTMENTS)
    parser.add_argument("--staff", type=int, default=STAFF)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.tasks, args.seed, args.appointments, args.staff))
