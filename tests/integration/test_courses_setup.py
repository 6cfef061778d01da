"""[[courses]] applied to a real store (SQLite and PostgreSQL): added, idempotent, changes reported, a capacity
below the places taken refused, moved dates checked at their new deadline."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import build_handlers
from handlers.bootstrap import ensure_owners
from handlers.jobs.runner import JobRunner
from handlers.router import Desk
from handlers.setup import SetupError, apply_setup, parse_setup
from storage.models import Course, CourseSession, Job
from tests.helpers import Chat, code_for, rows

EXAMPLE = Path(__file__).parents[2] / "examples" / "practice.toml"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
COURSE = """
[[courses]]
name = "Rückenfit"
location = "Linz"
sessions = ["2026-12-10 18:00-19:30", "2026-12-17 18:00-19:30"]
capacity = 2
min_participants = 2
"""

# Only the courses' jobs are looked at here: the practice's staff agenda is left out.
WITHOUT_AGENDA = EXAMPLE.read_text().replace('agenda = "07:30"', "", 1)

async def apply(store, extra: str, now: datetime = NOW) -> list[str]:
    async with store.uow() as uow:
        changes = await apply_setup(uow, parse_setup(WITHOUT_AGENDA + extra, "practice.toml"), now)
        await uow.commit()
    return changes


async def the_course(store) -> Course:
    async with store.uow() as uow:
        return await uow.session.scalar(select(Course))


async def test_a_course_is_added_once_and_changes_are_reported(store):
    changes = await apply(store, COURSE)
    assert "+ course Rückenfit (2 sessions, 2 places)" in changes
    assert await apply(store, COURSE) == []
    course = await the_course(store)
    assert (course.capacity, course.taken, course.price, course.status, course.created_by) == (2, 0, None, "open",
                                                                                               "setup")
    sessions = await rows(store, CourseSession)
    assert [s.start_at for s in sessions] == [datetime(2026, 12, 10, 17, 0, tzinfo=timezone.utc),
                                              datetime(2026, 12, 17, 17, 0, tzinfo=timezone.utc)]
    moved = COURSE.replace("capacity = 2", 'capacity = 5\nprice = "99.00"').replace("2026-12-17", "2026-12-18")
    assert await apply(store, moved) == ["~ course Rückenfit: capacity 2 → 5, price None → 99.00, sessions changed"]
    assert await apply(store, moved) == []


async def test_a_capacity_below_the_places_taken_is_refused_and_nothing_changes(store, config, clock):
    await apply(store, COURSE)
    desk = Desk(store, config, build_handlers(), clock)
    for n in (1, 2):
        kim = Chat(desk, clock, f"telegram:{n}")
        await kim.send(f"/email p{n}@example.com")
        await kim.send(await code_for(store, f"p{n}@example.com"))
        assert "I am holding a place" in await kim.say("/join Rückenfit")
    with pytest.raises(SetupError, match='practice.toml: course "Rückenfit": capacity 1 is below the 2 places'):
        await apply(store, COURSE.replace("capacity = 2", "capacity = 1").replace("min_participants = 2", ""))
    assert (await the_course(store)).capacity == 2


async def test_a_larger_capacity_goes_to_the_waiting_list_at_the_next_join(store, config, clock):
    await apply(store, COURSE)
    desk = Desk(store, config, build_handlers(), clock)
    people = []
    for n in (1, 2, 3, 4):
        kim = Chat(desk, clock, f"telegram:{n}")
        await kim.send(f"/email p{n}@example.com")
        await kim.send(await code_for(store, f"p{n}@example.com"))
        await kim.send("/join Rückenfit")
        people.append(kim)
    assert "waiting list at number 2" in people[3].replies[0].text
    await apply(store, COURSE.replace("capacity = 2", "capacity = 3"))
    newcomer = Chat(desk, clock, "telegram:5")
    await newcomer.send("/email p5@example.com")
    await newcomer.send(await code_for(store, "p5@example.com"))
    assert "waiting list at number 2" in await newcomer.say("/join Rückenfit")  # number 1 got the new place
    assert (await the_course(store)).taken == 3
    assert "held for you" in await people[2].say("/courses")


async def test_moved_dates_are_checked_at_their_new_deadline_and_the_old_job_does_nothing(store, config, clock):
    await apply(store, COURSE)
    await apply(store, COURSE.replace("2026-12-10", "2026-12-11"))
    jobs = sorted((j for j in await rows(store, Job) if j.kind == "course_deadline"), key=lambda j: j.due_at)
    assert [j.due_at for j in jobs] == [datetime(2026, 12, 10, 17, 0, tzinfo=timezone.utc),
                                        datetime(2026, 12, 11, 17, 0, tzinfo=timezone.utc)]
    clock.current = jobs[1].due_at
    desk = Desk(store, config, build_handlers(), clock)
    assert await JobRunner(desk, desk.jobs).run_due() == 2
    outcomes = {j.id: j.outcome for j in await rows(store, Job)}
    assert outcomes[jobs[0].id].startswith("skipped: the course's dates or deadline changed")
    assert outcomes[jobs[1].id] == "done"  # nobody joined: flagged


async def test_a_course_cancelled_in_the_chat_stays_cancelled_when_the_file_is_applied_again(store, config, clock):
    await apply(store, COURSE)
    desk = Desk(store, config, build_handlers(), clock)
    async with store.uow() as uow:
        await ensure_owners(uow, ["telegram:900"], clock.now())
        await uow.commit()
    assert "is cancelled" in await Chat(desk, clock, "telegram:900").say("/course cancel Rückenfit")
    assert await apply(store, COURSE) == []
    assert (await the_course(store)).status == "cancelled"
    assert [j for j in await rows(store, Job) if j.done_at is None] == []
