"""The staff's daily agenda against a real store (SQLite and PostgreSQL): scheduled by the setup, sent at the
local time in winter and summer and across the DST nights, each day once, following the setup's changes.

The demo practice gives Lukas (telegram:1002) an agenda at 07:30 in Vienna.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.app import build_handlers
from handlers.jobs.runner import JobRunner
from handlers.router import Desk
from handlers.setup import apply_setup, parse_setup
from storage.models import Job, Staff
from tests.helpers import Chat, code_for, mails_to, person_of, rows

UTC = timezone.utc
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "practice.toml"
# The scenarios run on 8 December, a public holiday where the practice is: its holiday calendar is left out.
TEXT = EXAMPLE.read_text(encoding="utf-8").replace('holidays = "AT-4"', "", 1)
LUKAS, EVA = "telegram:1002", "telegram:1003"
MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 08:00 in Vienna (winter: UTC+1)


async def apply(store, clock, text: str = TEXT) -> list[str]:
    async with store.uow() as uow:
        changes = await apply_setup(uow, parse_setup(text, "practice.toml"), clock.now())
        await uow.commit()
    return changes


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    clock.current = MONDAY
    await apply(store, clock)
    return Desk(store, config, build_handlers(), clock)


async def agenda_jobs(store, *where) -> list[Job]:
    return sorted(await rows(store, Job, Job.kind == "agenda", *where), key=lambda j: j.due_at)


async def waiting(store) -> list[tuple[str, datetime]]:
    return [(j.key, j.due_at) for j in await agenda_jobs(store, Job.done_at.is_(None), Job.failed_at.is_(None))]


async def agendas(store, address: str = LUKAS) -> list[str]:
    return [r.text.replace("\u202f", " ") for r in await mails_to(store, address)
            if r.subject and r.subject.startswith(("Your day", "Ihr Tag"))]


async def run_at(desk: Desk, moment: datetime) -> int:
    desk.clock.current = moment
    return await JobRunner(desk, desk.jobs).run_due()


async def test_the_setup_schedules_the_next_agenda_and_applying_it_again_changes_nothing(desk, store, clock):
    lukas = await person_of(store, LUKAS)
    # 07:30 on Monday has passed (it is 08:00): the first agenda is Tuesday's, at 06:30 UTC
    assert await waiting(store) == [(f"{lukas}:2026-12-08", datetime(2026, 12, 8, 6, 30, tzinfo=UTC))]
    [job] = await agenda_jobs(store)
    assert job.payload == {"staff": lukas, "day": "2026-12-08", "minute": 450, "tz": "Europe/Vienna"}
    assert await apply(store, clock) == []
    [again] = await agenda_jobs(store)
    assert again.id == job.id
    assert [s.agenda_minute for s in await rows(store, Staff, Staff.person_id == lukas)] == [450]


async def test_the_agenda_comes_at_0730_in_winter_with_the_days_appointments_and_schedules_the_next(desk, store,
                                                                                                   clock):
    kim = Chat(desk, clock, "telegram:5")
    await kim.send("/email kim@example.com")
    await kim.send(await code_for(store, "kim@example.com"))
    await kim.send("/book Massage 2026-12-08 10:00 Lukas Huber")
    await kim.send(await code_for(store, "kim@example.com"))
    await Chat(desk, clock, "telegram:1001").send("/appoint Otto Massage 2026-12-08 11:00 Anna")  # not Lukas's
    await Chat(desk, clock, "telegram:1001").send("/appoint Olga Massage 2026-12-09 11:00 Lukas")  # not that day
    await run_at(desk, datetime(2026, 12, 8, 6, 29, tzinfo=UTC))  # the reminders due by then go out
    assert await agendas(store) == []
    assert await run_at(desk, datetime(2026, 12, 8, 6, 30, tzinfo=UTC)) == 1
    [text] = await agendas(store)
    assert "Ihre Termine heute, Dienstag, 8. Dezember 2026" in text  # Lukas reads the business's German
    kim_id = await person_of(store, "telegram:5")  # nameless: shown by number
    assert f"10:00–11:00 🔵 Massage · #{kim_id} · Linz · #" in text
    assert "Otto" not in text and "Olga" not in text
    lukas = await person_of(store, LUKAS)
    assert await waiting(store) == [(f"{lukas}:2026-12-09", datetime(2026, 12, 9, 6, 30, tzinfo=UTC))]
    await run_at(desk, datetime(2026, 12, 9, 6, 30, tzinfo=UTC))
    assert "Olga" in (await agendas(store))[-1]


async def test_in_summer_the_agenda_comes_at_0730_summer_time(store, config, clock):
    clock.current = datetime(2026, 7, 6, 7, 0, tzinfo=UTC)  # Monday 09:00 in Vienna (UTC+2)
    await apply(store, clock)
    desk = Desk(store, config, build_handlers(), clock)
    lukas = await person_of(store, LUKAS)
    assert await waiting(store) == [(f"{lukas}:2026-07-07", datetime(2026, 7, 7, 5, 30, tzinfo=UTC))]
    assert await run_at(desk, datetime(2026, 7, 7, 5, 30, tzinfo=UTC)) == 1
    [text] = await agendas(store)
    assert "Dienstag, 7. Juli 2026" in text and "nichts gebucht" in text


@pytest.mark.parametrize("start, before, after", [
    # spring: Saturday 07:30 CET is 06:30 UTC, Sunday 07:30 CEST is 05:30 UTC
    (datetime(2027, 3, 26, 10, 0, tzinfo=UTC), datetime(2027, 3, 27, 6, 30, tzinfo=UTC),
     datetime(2027, 3, 28, 5, 30, tzinfo=UTC)),
    # autumn: Saturday 07:30 CEST is 05:30 UTC, Sunday 07:30 CET is 06:30 UTC
    (datetime(2026, 10, 23, 10, 0, tzinfo=UTC), datetime(2026, 10, 24, 5, 30, tzinfo=UTC),
     datetime(2026, 10, 25, 6, 30, tzinfo=UTC)),
])
async def test_across_the_dst_nights_the_agenda_stays_at_0730_on_the_wall_clock(store, config, clock, start, before,
                                                                               after):
    clock.current = start
    await apply(store, clock)
    desk = Desk(store, config, build_handlers(), clock)
    lukas = await person_of(store, LUKAS)
    assert [due for _, due in await waiting(store)] == [before]
    assert await run_at(desk, before) == 1
    assert await waiting(store) == [(f"{lukas}:{after.date().isoformat()}", after)]
    assert await run_at(desk, after - timedelta(minutes=1)) == 0
    assert await run_at(desk, after) == 1
    assert len(await agendas(store)) == 2


async def test_changing_the_time_moves_the_waiting_agenda_and_removing_it_drops_it(desk, store, clock):
    lukas = await person_of(store, LUKAS)
    changes = await apply(store, clock, TEXT.replace('agenda = "07:30"', 'agenda = "08:15"'))
    assert "~ staff Lukas Huber: agenda 07:30 → 08:15" in changes
    assert await waiting(store) == [(f"{lukas}:2026-12-07", datetime(2026, 12, 7, 7, 15, tzinfo=UTC))]  # today
    changes = await apply(store, clock, TEXT.replace('agenda = "07:30"', ""))
    assert "~ staff Lukas Huber: agenda 08:15 → (none)" in changes
    assert await waiting(store) == []
    assert await run_at(desk, datetime(2026, 12, 9, 7, 0, tzinfo=UTC)) == 0
    assert await agendas(store) == []


async def test_a_day_whose_agenda_went_out_gets_none_again_when_its_time_changes_later(desk, store, clock):
    lukas = await person_of(store, LUKAS)
    assert await run_at(desk, datetime(2026, 12, 8, 6, 30, tzinfo=UTC)) == 1  # Tuesday's at 07:30
    clock.current = datetime(2026, 12, 8, 6, 45, tzinfo=UTC)  # 07:45, then the time becomes 08:00
    await apply(store, clock, TEXT.replace('agenda = "07:30"', 'agenda = "08:00"'))
    assert await waiting(store) == [(f"{lukas}:2026-12-09", datetime(2026, 12, 9, 7, 0, tzinfo=UTC))]
    assert await run_at(desk, datetime(2026, 12, 8, 7, 0, tzinfo=UTC)) == 0
    assert len(await agendas(store)) == 1


async def test_an_agenda_whose_day_passed_while_nothing_ran_is_skipped_and_the_next_one_follows(desk, store, clock):
    lukas = await person_of(store, LUKAS)
    assert await run_at(desk, datetime(2026, 12, 9, 10, 0, tzinfo=UTC)) == 1  # Tuesday's, a day late
    [done] = await agenda_jobs(store, Job.done_at.is_not(None))
    assert done.outcome == "skipped: 2026-12-08 was over before its agenda could go out"
    assert await agendas(store) == []
    assert await waiting(store) == [(f"{lukas}:2026-12-10", datetime(2026, 12, 10, 6, 30, tzinfo=UTC))]


async def test_a_staff_member_without_a_chat_gets_the_agenda_by_email(store, config, clock):
    clock.current = MONDAY
    await apply(store, clock, TEXT.replace("telegram = 1002\n", ""))
    desk = Desk(store, config, build_handlers(), clock)
    assert await run_at(desk, datetime(2026, 12, 8, 6, 30, tzinfo=UTC)) == 1
    [mail] = await mails_to(store, "lukas@physio-am-park.example")
    assert mail.channel == "email" and mail.subject == "Ihr Tag: Dienstag, 8. Dezember 2026"


async def test_an_assistant_who_books_for_colleagues_reads_everyones_day(store, config, clock):
    clock.current = MONDAY
    text = TEXT.replace('rights = ["book_for_colleagues"]', 'rights = ["book_for_colleagues"]\nagenda = "07:00"')
    await apply(store, clock, text)
    desk = Desk(store, config, build_handlers(), clock)
    anna = Chat(desk, clock, "telegram:1001")
    await anna.send("/appoint Otto Massage 2026-12-08 11:00 Anna")
    await anna.send("/appoint Olga Massage 2026-12-08 10:00 Lukas")
    await run_at(desk, datetime(2026, 12, 8, 6, 0, tzinfo=UTC))
    [eva] = await agendas(store, EVA)
    assert "alle Termine heute" in eva and "Otto · Anna Berger" in eva and "Olga · Lukas Huber" in eva
    assert eva.index("Olga") < eva.index("Otto")  # in time order


async def test_an_agenda_job_left_at_an_old_time_keeps_the_chain_going_at_the_new_one(desk, store, clock):
    lukas = await person_of(store, LUKAS)
    async with store.uow() as uow:  # as if the setup's change and the job's claim had crossed
        (await uow.session.get(Staff, lukas)).agenda_minute = 480
        await uow.commit()
    assert await run_at(desk, datetime(2026, 12, 8, 6, 30, tzinfo=UTC)) == 1
    [done] = await agenda_jobs(store, Job.done_at.is_not(None))
    assert done.outcome == "skipped: the agenda's time changed"
    assert await waiting(store) == [(f"{lukas}:2026-12-09", datetime(2026, 12, 9, 7, 0, tzinfo=UTC))]
