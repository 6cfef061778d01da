"""No double booking, enforced by the database (SQLite and PostgreSQL).

Two live (held, requested, confirmed) appointments of one staff member never overlap: not for
50 concurrent bookers, not for overlapping-but-unequal times, not online against offline, not
for two OS processes on one database, and not for 50 customers typing `book` at the same moment.
The slot_claim primary key (staff, 5-minute cell) refuses the second claim; these tests race real
transactions against it and then check the rows. Times across the DST change days are covered too.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.orm import aliased

from bot.app import build_handlers
from handlers.appointments import SlotTaken, claim, day_range, live_condition, load_plan
from handlers.router import Desk
from handlers.rules.availability import cells, day_bounds, free_slots
from handlers.setup import apply_setup
from storage.models import (
    Address,
    Appointment,
    Location,
    OpeningHours,
    Outbox,
    Person,
    Service,
    SlotClaim,
    StaffHours,
)
from templates import environment
from tests.conftest import FakeClock, inbound
from tests.helpers import practice_setup
from tests.processes import released_together

UTC = timezone.utc
VIENNA = ZoneInfo("Europe/Vienna")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TEN = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday 10:00 in Vienna
BOOKERS = 50
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Practice:
    staff: int
    other_staff: int
    service: int
    customers: list[int]


async def practice(store, customers: int = BOOKERS) -> Practice:
    """Two staff members, one service and `customers` customers."""
    async with store.uow() as uow:
        people = [Person(name=f"P{i}", created_at=NOW) for i in range(customers + 2)]
        service = Service(name="Massage", minutes=60)
        uow.session.add_all([*people, service])
        await uow.session.flush()
        await uow.commit()
    return Practice(people[0].id, people[1].id, service.id, [p.id for p in people[2:]])


def booking(p: Practice, start: datetime, length: timedelta = HOUR, *, customer: int | None = None,
            staff: int | None = None, status: str = "confirmed", channel: str = "console",
            hold_expires_at: datetime | None = None) -> Appointment:
    """A new appointment row; `claim` decides whether it may exist."""
    return Appointment(service_id=p.service, location_id=None, staff_id=staff or p.staff,
                       customer_id=customer or p.customers[0], start_at=start, end_at=start + length,
                       status=status, hold_expires_at=hold_expires_at, sequence=0, channel=channel,
                       created_by=f"{channel}:test", created_at=NOW)


async def try_claim(store, row: Appointment, now: datetime = NOW) -> bool:
    """Claim in a unit of work of its own: True if committed, False on SlotTaken."""
    async with store.uow() as uow:
        try:
            await claim(uow, row, now)
        except SlotTaken:
            return False
        await uow.commit()
        return True


async def race(store, rows: list[Appointment], now: datetime = NOW) -> list[bool | BaseException]:
    """Start every claim at the same moment, each in its own task and unit of work."""
    go = asyncio.Event()

    async def one(row: Appointment) -> bool:
        await go.wait()
        return await try_claim(store, row, now)

    tasks = [asyncio.create_task(one(row)) for row in rows]
    await asyncio.sleep(0)  # every task is now waiting at the barrier
    go.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


def live(alias, now: datetime):
    return or_(alias.status.in_(("requested", "confirmed")),
               and_(alias.status == "held", alias.hold_expires_at > now))


async def overlapping_pairs(store, now: datetime = NOW) -> int:
    """Pairs of live appointments of one staff member whose times overlap: must always be 0."""
    a, b = aliased(Appointment), aliased(Appointment)
    async with store.uow() as uow:
        return await uow.session.scalar(
            select(func.count()).select_from(a).join(b, and_(
                a.staff_id == b.staff_id, a.id < b.id, a.start_at < b.end_at, b.start_at < a.end_at))
            .where(live(a, now), live(b, now)))


async def live_rows(store, now: datetime = NOW) -> list[Appointment]:
    async with store.uow() as uow:
        return list((await uow.session.scalars(
            select(Appointment).where(live_condition(now)).order_by(Appointment.start_at))).all())


async def claims_match_live_appointments(store, now: datetime = NOW) -> bool:
    """Every live appointment owns exactly its cells, and no other appointment owns any."""
    async with store.uow() as uow:
        owned = sorted(tuple(r) for r in await uow.session.execute(
            select(SlotClaim.appointment_id, SlotClaim.staff_id, SlotClaim.cell)))
    expected = sorted((a.id, a.staff_id, c) for a in await live_rows(store, now) for c in cells(a.start_at, a.end_at))
    return owned == expected


# ---- 50 concurrent bookers ----------------------------------------------------------------------

async def test_fifty_concurrent_claims_of_one_slot_have_exactly_one_winner(store):
    p = await practice(store)
    results = await race(store, [booking(p, TEN, customer=c, status="held", channel="telegram",
                                         hold_expires_at=NOW + timedelta(minutes=10)) for c in p.customers])
    assert [r for r in results if isinstance(r, BaseException)] == []  # only SlotTaken, no lock errors
    assert results.count(True) == 1 and results.count(False) == BOOKERS - 1
    rows = await live_rows(store)
    assert len(rows) == 1 and (rows[0].start_at, rows[0].end_at) == (TEN, TEN + HOUR)
    async with store.uow() as uow:  # the losers' rows were rolled back with their savepoints
        assert await uow.session.scalar(select(func.count()).select_from(Appointment)) == 1
    assert await overlapping_pairs(store) == 0 and await claims_match_live_appointments(store)


async def test_fifty_concurrent_overlapping_starts_have_exactly_one_winner(store):
    p = await practice(store)
    # Starts 10:00, 10:05 … 10:55 (each an hour long) all share the cell 10:55-11:00.
    starts = [TEN + timedelta(minutes=5 * (i % 12)) for i in range(BOOKERS)]
    results = await race(store, [booking(p, s, customer=c) for s, c in zip(starts, p.customers)])
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert results.count(True) == 1
    assert len(await live_rows(store)) == 1 and await overlapping_pairs(store) == 0
    assert await claims_match_live_appointments(store)


async def test_fifty_bookers_over_many_slots_fill_each_slot_once(store):
    p = await practice(store)
    slots = [TEN + i * HOUR for i in range(5)]
    rows = [booking(p, slots[i % 5], customer=c) for i, c in enumerate(p.customers)]
    results = await race(store, rows)
    assert results.count(True) == 5 and results.count(False) == BOOKERS - 5
    assert sorted(a.start_at for a in await live_rows(store)) == slots
    assert await overlapping_pairs(store) == 0 and await claims_match_live_appointments(store)


# ---- overlapping, offline against online, expiry ------------------------------------------------

async def test_overlapping_but_unequal_times_are_refused_and_adjacent_ones_fit(store):
    p = await practice(store)
    assert await try_claim(store, booking(p, TEN))  # 10:00-11:00
    assert not await try_claim(store, booking(p, TEN + timedelta(minutes=30)))  # 10:30-11:30
    assert not await try_claim(store, booking(p, TEN - timedelta(minutes=30)))  # 09:30-10:30
    assert not await try_claim(store, booking(p, TEN + timedelta(minutes=15), timedelta(minutes=15)))  # inside
    assert not await try_claim(store, booking(p, TEN - HOUR, 3 * HOUR))  # around
    assert await try_claim(store, booking(p, TEN + HOUR))  # 11:00-12:00 touches, does not overlap
    assert await try_claim(store, booking(p, TEN - HOUR))  # 09:00-10:00
    assert await try_claim(store, booking(p, TEN + timedelta(minutes=30), staff=p.other_staff))  # a colleague
    assert len(await live_rows(store)) == 4 and await overlapping_pairs(store) == 0


async def test_an_offline_appointment_cannot_take_the_time_of_an_online_hold(store):
    p = await practice(store)
    held = booking(p, TEN, status="held", channel="telegram", hold_expires_at=NOW + timedelta(minutes=10))
    assert await try_claim(store, held)
    # An admin enters a phone booking over it ("the red lock"), even partly: refused.
    assert not await try_claim(store, booking(p, TEN + timedelta(minutes=45), channel="console"))
    # And the other way round: an online hold over an offline appointment.
    assert await try_claim(store, booking(p, TEN + 3 * HOUR, channel="console"))
    assert not await try_claim(store, booking(p, TEN + 3 * HOUR, status="held", channel="telegram",
                                              hold_expires_at=NOW + timedelta(minutes=10)))
    assert await overlapping_pairs(store) == 0


async def test_online_and_offline_bookers_racing_for_one_slot_have_one_winner(store):
    p = await practice(store)
    rows = [booking(p, TEN, customer=c, channel="console") if i % 2 else
            booking(p, TEN, customer=c, status="held", channel="telegram", hold_expires_at=NOW + timedelta(minutes=10))
            for i, c in enumerate(p.customers)]
    assert (await race(store, rows)).count(True) == 1
    assert len(await live_rows(store)) == 1


async def test_an_expired_hold_frees_its_time_at_once_and_stays_on_record(store):
    p = await practice(store)
    hold = booking(p, TEN, status="held", channel="telegram", hold_expires_at=NOW + timedelta(minutes=10))
    assert await try_claim(store, hold)
    assert not await try_claim(store, booking(p, TEN), now=NOW + timedelta(minutes=9))  # still held
    later = NOW + timedelta(minutes=10)  # expiry: no cleanup job has run
    results = await race(store, [booking(p, TEN + timedelta(minutes=5 * (i % 3)), customer=c)
                                 for i, c in enumerate(p.customers)], now=later)
    assert [r for r in results if isinstance(r, BaseException)] == [] and results.count(True) == 1
    async with store.uow() as uow:
        old = await uow.session.get(Appointment, hold.id)
    assert (old.status, old.closed_by, old.closed_at) == ("expired", "hold expired", later)
    assert hold.id not in [a.id for a in await live_rows(store, later)]
    assert await overlapping_pairs(store, later) == 0 and await claims_match_live_appointments(store, later)


# ---- two OS processes ---------------------------------------------------------------------------

def attempts_for(groups: int) -> list[list]:
    """Per group, 12 hour-long starts five minutes apart (all sharing one cell), each tried twice."""
    out = []
    for g in range(groups):
        base = TEN + timedelta(days=g // 6, hours=2 * (g % 6))  # groups two hours apart never overlap
        out += [[(base + timedelta(minutes=5 * k)).isoformat(), 60] for k in range(12) for _ in range(2)]
    return out


async def run_worker_processes(url: str, p: Practice, tmp_path: Path, attempts: list[list]) -> list[dict]:
    """Two processes with their own Store, released together by a file barrier."""
    specs = [{"url": url, "staff": p.staff, "service": p.service, "customer": p.customers[i], "now": NOW.isoformat(),
              "attempts": attempts if i == 0 else attempts[::-1], "tasks": 4, "name": name}
             for i, name in enumerate("ab")]
    return await released_together("tests.race_worker", specs, tmp_path)


async def test_two_processes_never_double_book(store_and_url, tmp_path):
    store, url = store_and_url
    p = await practice(store, customers=2)
    groups = 12
    attempts = attempts_for(groups)
    a, b = await run_worker_processes(url, p, tmp_path, attempts)
    assert a["errors"] == [] and b["errors"] == []
    assert len(a["won"]) + len(b["won"]) == groups  # exactly one winner per group of overlapping starts
    assert a["taken"] + b["taken"] == 2 * len(attempts) - groups
    rows = await live_rows(store)
    assert len(rows) == groups and {r.id for r in rows} == set(a["won"] + b["won"])
    assert await overlapping_pairs(store) == 0 and await claims_match_live_appointments(store)


# ---- times across the DST change ----------------------------------------------------------------

def shown(value: str, **context) -> str:
    return environment().from_string(value).render(tz="Europe/Vienna", **context)


async def test_an_appointment_across_the_fall_back_night_is_stored_in_utc_and_shown_in_vienna(store):
    p = await practice(store, customers=1)
    # 01:30 CEST on 25 Oct 2026, two real hours: it ends at 02:30 CET, after the clocks went back.
    start = datetime(2026, 10, 25, 1, 30, tzinfo=VIENNA).astimezone(UTC)
    assert start == datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
    row = booking(p, start, 2 * HOUR)
    assert await try_claim(store, row)
    async with store.uow() as uow:
        stored = await uow.session.get(Appointment, row.id)
        claimed = await uow.session.scalar(select(func.count()).select_from(SlotClaim)
                                           .where(SlotClaim.appointment_id == row.id))
    assert (stored.start_at, stored.end_at) == (start, start + 2 * HOUR) and stored.start_at.tzinfo is not None
    assert claimed == 24  # two real hours of 5-minute cells, though the wall clock moved only one hour
    text = shown("{{ a.start_at|time }}–{{ a.end_at|time }} {{ a.start_at|date('medium') }}", a=stored, lang="de")
    assert text == "01:30–02:30 25.10.2026"


async def test_the_repeated_hour_holds_two_appointments_at_the_same_wall_clock_time(store):
    p = await practice(store, customers=1)
    first = datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=VIENNA).astimezone(UTC)  # 02:30 CEST
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=VIENNA).astimezone(UTC)  # 02:30 CET
    assert second - first == HOUR
    assert await try_claim(store, booking(p, first, timedelta(minutes=30)))
    assert await try_claim(store, booking(p, second, timedelta(minutes=30)))
    assert not await try_claim(store, booking(p, first + timedelta(minutes=15), HOUR))  # spans both
    rows = await live_rows(store)
    assert [shown("{{ a.start_at|time }}", a=r, lang="de") for r in rows] == ["02:30", "02:30"]


async def free_day_slots(store, p: Practice, day: date) -> list:
    """The free hour-long slots of one whole-day staff member, through load_plan as a booking would."""
    start, end = day_range(day, 1, VIENNA)
    now = start - timedelta(days=30)  # asked a month ahead: notice does not cut the day
    async with store.uow() as uow:
        plan = await load_plan(uow, [p.staff], start, end, now)
        location = await uow.session.scalar(select(Location.id))
    calendars = plan.calendars(day, VIENNA, [location], [p.staff])
    return free_slots(calendars, HOUR, timedelta(minutes=15), day_bounds(day, VIENNA)[0], now)


async def open_all_week(store, p: Practice) -> None:
    async with store.uow() as uow:
        location = Location(name="Linz")
        uow.session.add(location)
        await uow.session.flush()
        uow.session.add_all([OpeningHours(location_id=location.id, weekday=d, start_minute=0, end_minute=1440)
                             for d in range(7)])
        uow.session.add_all([StaffHours(person_id=p.staff, location_id=location.id, weekday=d, start_minute=0,
                                        end_minute=1440) for d in range(7)])
        await uow.commit()


async def test_free_slots_from_the_store_follow_the_23_and_25_hour_days(store):
    p = await practice(store, customers=1)
    await open_all_week(store, p)
    # Hour-long slots every 15 minutes: (hours × 4) starts, minus the last 3 that would run past midnight.
    assert len(await free_day_slots(store, p, date(2026, 3, 29))) == 23 * 4 - 3
    assert len(await free_day_slots(store, p, date(2026, 10, 25))) == 25 * 4 - 3
    # One real hour across the change (02:30 CEST → 02:30 CET) blocks the 7 starts whose hour overlaps it.
    start = datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=VIENNA).astimezone(UTC)
    assert await try_claim(store, booking(p, start, HOUR))
    slots = await free_day_slots(store, p, date(2026, 10, 25))
    assert len(slots) == 25 * 4 - 3 - 7
    assert all(s.end <= start or s.start >= start + HOUR for s in slots)


async def test_an_appointment_from_the_evening_before_blocks_the_morning_after_midnight(store):
    p = await practice(store, customers=1)
    await open_all_week(store, p)
    # Three hours from Sunday 22:00 to Monday 01:00: longer than any service, started before the day asked for,
    # with a month of earlier appointments before it that must not matter.
    evening = datetime(2026, 12, 6, 22, 0, tzinfo=VIENNA).astimezone(UTC)
    for days in range(1, 31):
        assert await try_claim(store, booking(p, evening - timedelta(days=days), HOUR))
    assert await try_claim(store, booking(p, evening, 3 * HOUR))
    slots = await free_day_slots(store, p, date(2026, 12, 7))
    assert slots[0].start == datetime(2026, 12, 7, 1, 0, tzinfo=VIENNA)
    assert len(slots) == 24 * 4 - 3 - 4  # the starts at 00:00, 00:15, 00:30 and 00:45


async def test_an_appointment_across_the_autumn_change_blocks_its_real_hours(store):
    p = await practice(store, customers=1)
    await open_all_week(store, p)
    # Saturday 23:30 CEST for four real hours: until 02:30 CET, after the clocks went back at 03:00 CEST.
    start = datetime(2026, 10, 24, 23, 30, tzinfo=VIENNA).astimezone(UTC)
    assert await try_claim(store, booking(p, start, 4 * HOUR))
    slots = await free_day_slots(store, p, date(2026, 10, 25))
    assert slots[0].start == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the second 02:30 that night
    assert len(slots) == 25 * 4 - 3 - 14  # every start of the day's first three and a half real hours


# ---- 50 customers through the real desk ---------------------------------------------------------

async def verified_customers(store, count: int) -> list[str]:
    """`count` customers who write from Telegram and have a verified email (as after `email` + code)."""
    async with store.uow() as uow:
        people = [Person(name=f"Kunde {i}", created_at=NOW) for i in range(count)]
        uow.session.add_all(people)
        await uow.session.flush()
        await uow.session.execute(insert(Address), [
            row for i, p in enumerate(people) for row in (
                {"address": f"telegram:{5000 + i}", "kind": "telegram", "person_id": p.id, "verified": True,
                 "created_at": NOW},
                {"address": f"email:kunde{i}@example.com", "kind": "email", "person_id": p.id, "verified": True,
                 "created_at": NOW})])
        await uow.commit()
    return [f"telegram:{5000 + i}" for i in range(count)]


async def test_fifty_customers_booking_one_slot_through_the_desk_leave_one_hold(store, config):
    monday = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Lukas works in Linz on Tuesday 08-12
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), monday)
        await uow.commit()
    desk = Desk(store, config, build_handlers(), FakeClock(monday))
    senders = await verified_customers(store, BOOKERS)
    go = asyncio.Event()

    async def book(sender: str) -> str:
        await go.wait()
        replies = await desk.handle(inbound(sender, "/book Massage 2026-12-08 10:00 Lukas Huber", clock=desk.clock))
        return replies[0].text

    tasks = [asyncio.create_task(book(s)) for s in senders]
    await asyncio.sleep(0)
    go.set()
    answers = await asyncio.gather(*tasks)
    assert sum("I am holding" in a for a in answers) == 1, [a[:80] for a in answers if "just taken" not in a]
    assert sum("just taken" in a for a in answers) == BOOKERS - 1
    rows = await live_rows(store, monday)
    assert len(rows) == 1 and rows[0].status == "held"
    assert rows[0].start_at == datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # 10:00 in Vienna
    async with store.uow() as uow:
        mails = (await uow.session.scalars(select(Outbox.recipient).where(Outbox.channel == "email"))).all()
    winner = senders[next(i for i, a in enumerate(answers) if "I am holding" in a)]
    assert mails == [f"kunde{int(winner.split(':')[1]) - 5000}@example.com"]  # one code mail, to the winner
    assert await overlapping_pairs(store, monday) == 0 and await claims_match_live_appointments(store, monday)
