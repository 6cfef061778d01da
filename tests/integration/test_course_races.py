"""No course ever holds more people than its capacity, enforced by the database (SQLite and PostgreSQL).

50 people join at the same moment for the last 3 places: through the desk in one process, through two
processes with their own desks, and against the conditional UPDATE alone (no course lock). An expired hold
gives its place back exactly once, however many transactions try at once. The CHECK on the course row
refuses anything beyond capacity even from a statement that skips the rules.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.app import build_handlers
from handlers.courses import places
from handlers.courses.places import EXPIRED
from handlers.router import Desk
from handlers.setup import apply_setup, parse_setup
from storage.models import Address, Course, CoursePlace, Outbox, Person
from tests.conftest import FakeClock, inbound
from tests.processes import released_together

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
PEOPLE = 50
CAPACITY, ALREADY = 10, 7  # three places left
COURSE = f"""
[[courses]]
name = "Rückenfit"
location = "Linz"
sessions = ["2026-12-10 18:00-19:30"]
capacity = {CAPACITY}
"""


async def course_with_last_places(store) -> int:
    """The demo practice with a course of CAPACITY places, ALREADY of them confirmed; returns the course id."""
    async with store.uow() as uow:
        await apply_setup(uow, parse_setup((ROOT / "examples" / "practice.toml").read_text() + COURSE, "p.toml"), NOW)
        course = await uow.session.scalar(select(Course))
        people = [Person(name=f"Früh {i}", created_at=NOW) for i in range(ALREADY)]
        uow.session.add_all(people)
        await uow.session.flush()
        await uow.session.execute(insert(CoursePlace), [
            {"course_id": course.id, "person_id": p.id, "address": f"console:{p.id}", "status": "confirmed",
             "channel": "console", "created_at": NOW, "confirmed_at": NOW} for p in people])
        await uow.session.execute(update(Course).values(taken=ALREADY))
        await uow.commit()
        return course.id


async def verified_people(store, count: int, first: int = 5000) -> list[str]:
    """`count` people who write from Telegram and have a verified email."""
    async with store.uow() as uow:
        people = [Person(name=f"Kunde {i}", created_at=NOW) for i in range(count)]
        uow.session.add_all(people)
        await uow.session.flush()
        await uow.session.execute(insert(Address), [
            row for i, p in enumerate(people) for row in (
                {"address": f"telegram:{first + i}", "kind": "telegram", "person_id": p.id, "verified": True,
                 "created_at": NOW},
                {"address": f"email:kunde{first + i}@example.com", "kind": "email", "person_id": p.id,
                 "verified": True, "created_at": NOW})])
        await uow.commit()
    return [f"telegram:{first + i}" for i in range(count)]


async def the_numbers(store, now: datetime = NOW) -> tuple[int, int, int]:
    """(course.taken, live places counted row by row, waiting) — the first two must always agree."""
    async with store.uow() as uow:
        taken = await uow.session.scalar(select(Course.taken))
        live = await uow.session.scalar(select(func.count()).where(places.live_condition(now)))
        waiting = await uow.session.scalar(select(func.count()).where(CoursePlace.status == "waiting"))
    return taken, live, waiting


async def at_once(calls) -> list:
    """Start every call at the same moment, each in its own task."""
    go = asyncio.Event()

    async def one(call):
        await go.wait()
        return await call()

    tasks = [asyncio.create_task(one(call)) for call in calls]
    await asyncio.sleep(0)
    go.set()
    return await asyncio.gather(*tasks)


async def test_fifty_people_joining_at_once_for_the_last_three_places_leave_three_holds(store, config):
    await course_with_last_places(store)
    desk = Desk(store, config, build_handlers(), FakeClock(NOW))
    senders = await verified_people(store, PEOPLE)

    async def join(sender: str):
        return await desk.handle(inbound(sender, "/join Rückenfit", clock=desk.clock))

    answers = [replies[0] for replies in await at_once([lambda s=s: join(s) for s in senders])]
    assert sorted(a.template or "" for a in answers).count("courses_held") == 3, [a.text[:60] for a in answers]
    waiting = [a.text for a in answers if a.template == "courses_waiting"]
    assert len(waiting) == PEOPLE - 3
    positions = sorted(int(t.split("at number ")[1].split(".")[0]) for t in waiting)
    assert positions == list(range(1, PEOPLE - 2))  # one line, no number twice
    assert await the_numbers(store) == (CAPACITY, CAPACITY, PEOPLE - 3)
    async with store.uow() as uow:
        codes = (await uow.session.scalars(select(Outbox.recipient).where(
            Outbox.subject.like("%is your code for the course%")))).all()
    assert len(codes) == 3


async def test_the_conditional_update_alone_never_gives_more_places_than_are_free(store):
    course_id = await course_with_last_places(store)

    async def take() -> bool:
        async with store.uow() as uow:  # no course lock: only the UPDATE's own condition guards
            won = await places.take(uow, course_id)
            await uow.commit()
            return won

    results = await at_once([take] * PEOPLE)
    assert results.count(True) == CAPACITY - ALREADY
    async with store.uow() as uow:
        assert await uow.session.scalar(select(Course.taken)) == CAPACITY


async def test_the_database_refuses_a_course_fuller_than_its_capacity(store):
    course_id = await course_with_last_places(store)
    async with store.uow() as uow:
        with pytest.raises(IntegrityError):
            await uow.session.execute(update(Course).where(Course.id == course_id).values(taken=CAPACITY + 1))
    async with store.uow() as uow:
        with pytest.raises(IntegrityError):
            await uow.session.execute(update(Course).where(Course.id == course_id).values(taken=-1))
    async with store.uow() as uow:  # one person, one place: the second row for them is refused
        place = await uow.session.scalar(select(CoursePlace).limit(1))
        with pytest.raises(IntegrityError):
            await uow.session.execute(insert(CoursePlace).values(
                course_id=course_id, person_id=place.person_id, address="telegram:1", status="waiting",
                channel="telegram", created_at=NOW))


async def test_an_expired_hold_gives_its_place_back_exactly_once_whoever_tries_at_once(store):
    course_id = await course_with_last_places(store)
    [sender] = await verified_people(store, 1)
    until = NOW + timedelta(minutes=10)
    async with store.uow() as uow:
        person_id = await uow.session.scalar(select(Address.person_id).where(Address.address == sender))
        assert await places.take(uow, course_id)
        place = await places.add(uow, {"course_id": course_id, "person_id": person_id, "address": sender,
                                       "status": "held", "hold_expires_at": until, "channel": "telegram",
                                       "created_at": NOW})
        await uow.commit()
    later = until + timedelta(seconds=1)

    async def give_back() -> bool:
        async with store.uow() as uow:  # no course lock: the place's own status change guards
            row = await uow.session.get_one(CoursePlace, place.id)
            done = await places.give_back(uow, row, EXPIRED, later, hold_until=until, ran_out=True)
            await uow.commit()
            return done

    results = await at_once([give_back] * 20)
    assert results.count(True) == 1
    assert await the_numbers(store, later) == (ALREADY, ALREADY, 0)


async def test_two_processes_joining_at_once_leave_three_holds(store_and_url, tmp_path):
    store, url = store_and_url
    await course_with_last_places(store)
    senders = await verified_people(store, PEOPLE)
    specs = [{"url": url, "now": NOW.isoformat(), "senders": senders[i::2], "course": "Rückenfit"} for i in range(2)]
    outputs = await released_together("tests.course_race_worker", specs, tmp_path, timeout=180)
    answers = [t for output in outputs for t in output["answers"].values()]
    assert answers.count("courses_held") == 3 and answers.count("courses_waiting") == PEOPLE - 3, answers
    assert await the_numbers(store) == (CAPACITY, CAPACITY, PEOPLE - 3)
