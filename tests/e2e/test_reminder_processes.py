"""Two `python -m bot run` processes on one database (PostgreSQL, and SQLite on one file) work off 200 due
reminders; one is killed with SIGKILL half-way and started again. Every reminder is queued exactly once and
every job ends done.

On PostgreSQL the processes share a fresh schema (tests/conftest.py make_store); the test is skipped, saying
why, only where PostgreSQL does not answer.
"""
from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from handlers.appointments import claim
from handlers.jobs.table import schedule
from handlers.reminders.rules import reminder_key, utc_text
from handlers.reminders.schedule import REMINDER
from handlers.setup import apply_setup, parse_setup
from storage.models import Address, Appointment, Audit, Job, Outbox, Person, Service, Staff
from tests.workers import Process, wait_for

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "practice.toml"
CUSTOMERS = 100  # two reminders each: 200 jobs
OFFSETS = ("24h", "90m")
SPREAD = timedelta(seconds=8)  # the jobs come due one after the other over this time


def practice_without_agenda() -> str:
    """The demo practice; an agenda would come due at a real 07:30 and is no part of this test."""
    return EXAMPLE.read_text(encoding="utf-8").replace('agenda = "07:30"', "")


async def prepare(store, now: datetime) -> list[tuple[int, str]]:
    """A customer per appointment (half in Telegram, half by mail), confirmed appointments two days
    ahead; returns (appointment id, recipient)."""
    async with store.uow() as uow:
        await apply_setup(uow, parse_setup(practice_without_agenda(), "practice.toml"), now)
        massage = await uow.session.scalar(select(Service.id).where(Service.name == "Massage"))
        staff = list((await uow.session.scalars(select(Staff.person_id).where(Staff.kind != "assistant")
                                                .order_by(Staff.person_id))).all())
        first = (now + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        made = []
        for n in range(CUSTOMERS):
            recipient = f"telegram:{3000 + n}" if n % 2 else f"c{n}@example.com"
            person = Person(name=f"Customer {n}", language="en", created_at=now)
            uow.session.add(person)
            await uow.session.flush()
            kind = recipient.split(":")[0] if n % 2 else "email"
            uow.session.add(Address(address=recipient if n % 2 else f"email:{recipient}", kind=kind,
                                    person_id=person.id, verified=True, created_at=now))
            start = first + timedelta(hours=n // len(staff))
            appointment = Appointment(
                service_id=massage, location_id=None, staff_id=staff[n % len(staff)], customer_id=person.id,
                start_at=start, end_at=start + timedelta(hours=1), status="confirmed", hold_expires_at=None,
                sequence=0, channel="console", created_by="console:test", created_at=now)
            await claim(uow, appointment, now)
            made.append((appointment.id, recipient))
        await uow.commit()
    return made


async def make_due(store, made: list[tuple[int, str]], start: datetime) -> None:
    """The reminder jobs, as schedule_reminders writes them, due one after the other from `start` on."""
    async with store.uow() as uow:
        step = SPREAD / (len(made) * len(OFFSETS))
        for n, ((appointment_id, _), offset) in enumerate((m, o) for m in made for o in OFFSETS):
            row = await uow.session.get(Appointment, appointment_id)
            payload = {"appointment": appointment_id, "offset": offset, "start": utc_text(row.start_at)}
            assert await schedule(uow, REMINDER, reminder_key(appointment_id, offset, row.start_at), start + n * step,
                                  start, payload)
        await uow.commit()


async def done_jobs(store) -> int:
    async with store.uow() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Job).where(
            Job.kind == REMINDER, Job.done_at.is_not(None)))


async def test_two_processes_and_a_killed_one_queue_every_reminder_exactly_once(store_and_url, tmp_path):
    store, url = store_and_url
    made = await prepare(store, datetime.now(timezone.utc))
    first, second, again = (Process(url, tmp_path, name) for name in ("first", "second", "again"))
    try:
        await asyncio.gather(first.start(), second.start())
        await wait_for(lambda: all_running(first, second), "both processes to run")
        await make_due(store, made, datetime.now(timezone.utc))
        await wait_for(lambda: reached(store, 50), "a quarter of the reminders")
        first.kill()  # mid-way: it may hold claimed jobs and an open transaction
        assert await first.process.wait() == -signal.SIGKILL
        killed_at = await done_jobs(store)
        assert killed_at < len(made) * len(OFFSETS), "the first process was killed after all was done"
        await wait_for(lambda: reached(store, killed_at + 40), "the second process going on alone")
        await again.start()
        await wait_for(again.running, "the restarted process to run")
        await wait_for(lambda: reached(store, len(made) * len(OFFSETS)), "every reminder")
        assert await second.stop() == 0, second.text()[-3000:]
        assert await again.stop() == 0, again.text()[-3000:]
    finally:
        for process in (first, second, again):
            if process.process is not None and process.process.returncode is None:
                process.process.kill()
                await process.process.wait()
    assert "frontdesk stopped" in second.text()
    await assert_each_reminder_once(store, made)


async def all_running(*processes: Process) -> bool:
    return all([await p.running() for p in processes])


async def reached(store, count: int) -> bool:
    return await done_jobs(store) >= count


async def assert_each_reminder_once(store, made: list[tuple[int, str]]) -> None:
    async with store.uow() as uow:
        jobs = (await uow.session.execute(select(Job.outcome, Job.failed_at).where(Job.kind == REMINDER))).all()
        sent = Counter(tuple((a.subject, a.detail["offset"])) for a in (await uow.session.scalars(
            select(Audit).where(Audit.action == "reminder_sent"))).all())
        queued = Counter((await uow.session.scalars(select(Outbox.recipient))).all())
        subjects = Counter((await uow.session.scalars(select(Outbox.subject))).all())
    assert len(jobs) == len(made) * len(OFFSETS)
    assert all(outcome == "done" and failed is None for outcome, failed in jobs), Counter(jobs)
    assert sent == Counter({(f"appointment:{a}", o): 1 for a, _ in made for o in OFFSETS})
    assert queued == Counter({recipient: len(OFFSETS) for _, recipient in made})
    assert all(subject.startswith("Reminder: Massage") for subject in subjects)
