"""Reminders before appointments and the staff's daily agenda, run by the job runner against a real store
(SQLite and PostgreSQL), with the demo practice: reminders 24h and 90m before, Lukas's agenda at 07:30.

Kim (telegram:5) books in the chat; Lea has only a confirmed email address. The clock starts on Monday
2026-12-07 at 08:00 in Vienna; Kim's appointment is on Tuesday at 10:00 (09:00 UTC), so its reminders are
due on Monday at 09:00 UTC and on Tuesday at 07:30 UTC.
"""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from handlers.jobs.runner import JobRunner
from handlers.router import Desk
from storage.models import Address, Appointment, Audit, Job, Outbox, Person, SlotClaim
from tests.conftest import inbound
from tests.helpers import Chat, code_for, ics, mails_to, rows
from tests.integration.test_booking import TUESDAY, book_and_confirm, chat, customer, desk  # noqa: F401

UTC = timezone.utc
KIM, ANNA, LUKAS = "telegram:5", "telegram:1001", "telegram:1002"
LEA = "lea@example.com"
TEN_TUESDAY = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # 10:00 in Vienna


async def kim_books(desk: Desk, store, when: str = f"{TUESDAY} 10:00") -> tuple[Chat, int]:
    kim = await customer(desk, store, KIM, "kim@example.com")
    await kim.send("/language en")  # reminders come in the customer's own language, else the business's
    return kim, await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {when} Lukas Huber")


async def email_customer(store, at: datetime, address: str = LEA, name: str = "Lea Lind", lang: str = "en") -> int:
    """A customer known by a confirmed email address only."""
    async with store.uow() as uow:
        person = Person(name=name, language=lang, created_at=at)
        uow.session.add(person)
        await uow.session.flush()
        uow.session.add(Address(address=f"email:{address}", kind="email", person_id=person.id, verified=True,
                                created_at=at))
        await uow.commit()
        return person.id


async def reminder_jobs(store, *where) -> list[Job]:
    return sorted(await rows(store, Job, Job.kind == "reminder", *where), key=lambda j: j.due_at)


async def waiting_reminders(store) -> list[Job]:
    return await reminder_jobs(store, Job.done_at.is_(None), Job.failed_at.is_(None))


async def reminded(store, appointment: int) -> list[str]:
    """The offsets the customer was reminded at, one entry per reminder that went out."""
    return sorted(a.detail["offset"] for a in await rows(store, Audit, Audit.action == "reminder_sent",
                                                          Audit.subject == f"appointment:{appointment}"))


async def run_at(desk: Desk, moment: datetime) -> int:
    desk.clock.current = moment
    return await JobRunner(desk, desk.jobs).run_due()


def reminders_in(chat_rows: list[Outbox]) -> list[Outbox]:
    return [r for r in chat_rows if r.subject and r.subject.startswith(("Reminder", "Erinnerung"))]


# ---- scheduling -------------------------------------------------------------------------------


async def test_confirming_schedules_one_job_per_reminder_and_a_hold_has_none(desk, store):
    kim = await customer(desk, store, KIM, "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    assert await reminder_jobs(store) == []  # held: nothing to remind of yet
    [held] = await rows(store, Appointment)
    assert "Booked!" in (await kim.send(await code_for(store, "kim@example.com")))[0].text
    jobs = await reminder_jobs(store)
    assert [(j.key, j.due_at) for j in jobs] == [
        (f"{held.id}:24h:2026-12-08T09:00Z", TEN_TUESDAY - timedelta(hours=24)),
        (f"{held.id}:90m:2026-12-08T09:00Z", TEN_TUESDAY - timedelta(minutes=90))]
    assert jobs[0].payload == {"appointment": held.id, "offset": "24h", "start": "2026-12-08T09:00Z"}


async def test_the_reminder_comes_in_the_chat_with_buttons_and_cancelling_there_frees_the_slot(desk, store, clock):
    kim, number = await kim_books(desk, store)
    assert await run_at(desk, TEN_TUESDAY - timedelta(hours=24, seconds=1)) == 0  # not yet
    assert await run_at(desk, TEN_TUESDAY - timedelta(hours=24)) == 1
    [reminder] = reminders_in(await mails_to(store, KIM))
    assert reminder.channel == "telegram" and "Reminder of your appointment" in reminder.text
    assert "Tuesday, December 8, 2026, 10:00" in reminder.text.replace("\u202f", " ")
    assert [c["label"] for c in reminder.choices] == [f"Cancel #{number}", f"Move #{number}"]
    assert await reminded(store, number) == ["24h"]
    replies = await desk.handle(inbound(KIM, clock=clock, choice=reminder.choices[0]["key"]))
    assert [r.template for r in replies] == ["booking_cancelled"]
    [row] = await rows(store, Appointment)
    assert row.status == "cancelled" and row.closed_by == KIM
    assert await rows(store, SlotClaim) == []
    staff_note = (await mails_to(store, LUKAS))[-1]
    assert "Storniert vom Kunden" in staff_note.text and f"#{number}" in staff_note.text  # Lukas: the business's
    assert await waiting_reminders(store) == []  # the 90m reminder went with the appointment
    await run_at(desk, TEN_TUESDAY - timedelta(minutes=90))
    assert await reminded(store, number) == ["24h"]


async def test_the_move_button_offers_days_for_the_appointment(desk, store, clock):
    kim, number = await kim_books(desk, store)
    await run_at(desk, TEN_TUESDAY - timedelta(hours=24))
    [reminder] = reminders_in(await mails_to(store, KIM))
    [days] = await desk.handle(inbound(KIM, clock=clock, choice=reminder.choices[1]["key"]))
    assert days.template == "booking_move_pick_day"
    assert days.choices[0].command.startswith(f"move {number} ")


async def test_someone_elses_reminder_buttons_do_nothing_for_another_sender(desk, store, clock):
    _, number = await kim_books(desk, store)
    await run_at(desk, TEN_TUESDAY - timedelta(hours=24))
    [reminder] = reminders_in(await mails_to(store, KIM))
    replies = await desk.handle(inbound("telegram:66", clock=clock, choice=reminder.choices[0]["key"]))
    assert [r.template for r in replies] == ["choice_expired"]
    assert (await rows(store, Appointment))[0].status == "confirmed"


async def test_an_email_customer_gets_the_reminder_by_mail_with_the_invitation_and_cancels_by_reply(desk, store,
                                                                                                   clock):
    lea = await email_customer(store, clock.now())
    anna = chat(desk, ANNA)
    assert "Booked:" in await anna.say(f"/appoint #{lea} Massage {TUESDAY} 10:00 Lukas")
    [appointment] = await rows(store, Appointment)
    assert len(await reminder_jobs(store)) == 2  # `appoint` confirms at once
    assert await run_at(desk, TEN_TUESDAY - timedelta(hours=24)) == 1
    mail = (await mails_to(store, LEA))[-1]
    assert mail.subject.startswith("Reminder: Massage") and f"cancel {appointment.id}" in mail.text
    assert f"move {appointment.id} YYYY-MM-DD HH:MM" in mail.text and mail.choices == []
    invitation = ics(mail)
    assert "METHOD:REQUEST" in invitation and f"UID:appointment-{appointment.id}@" in invitation
    assert mail.attachments[0]["type"] == "text/calendar; method=REQUEST"
    # The reply runs after the usual round trip: a code to the address, the code back.
    [asked] = await desk.handle(inbound(f"email:{LEA}", f"cancel {appointment.id}", clock=clock))
    assert asked.template == "mail_command_code" and (await rows(store, Appointment))[0].status == "confirmed"
    code = re.search(r"CONFIRM (\d{6})", asked.text)[1]
    done = await desk.handle(inbound(f"email:{LEA}", f"CONFIRM {code}", clock=clock))
    assert "booking_cancelled" in [r.template for r in done]
    assert (await rows(store, Appointment))[0].status == "cancelled"
    assert await waiting_reminders(store) == []


async def test_a_customer_without_any_address_is_not_reminded_and_the_job_says_why(desk, store, clock):
    anna = chat(desk, ANNA)
    assert "Booked:" in await anna.say(f"/appoint Otto Ohnemail Massage {TUESDAY} 10:00 Lukas")
    assert await run_at(desk, TEN_TUESDAY - timedelta(hours=24)) == 1
    [job] = await reminder_jobs(store, Job.done_at.is_not(None))
    assert job.outcome == "skipped: the customer has no chat and no confirmed email address"


# ---- moves, cancellations, late bookings --------------------------------------------------------


async def test_a_moved_appointment_is_reminded_at_its_new_time_only(desk, store, clock):
    kim, number = await kim_books(desk, store)
    assert "Moved:" in await kim.say(f"/move {number} 2026-12-10 10:00")
    jobs = await waiting_reminders(store)
    assert [j.key for j in jobs] == [f"{number}:24h:2026-12-10T09:00Z", f"{number}:90m:2026-12-10T09:00Z"]
    await run_at(desk, TEN_TUESDAY - timedelta(minutes=90))  # the old times pass quietly
    assert reminders_in(await mails_to(store, KIM)) == []
    thursday = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
    await run_at(desk, thursday - timedelta(hours=24))
    assert await reminded(store, number) == ["24h"]
    await run_at(desk, thursday - timedelta(minutes=90))
    sent = reminders_in(await mails_to(store, KIM))
    assert len(sent) == 2 and all("Thursday, December 10, 2026" in r.text for r in sent)
    assert await reminded(store, number) == ["24h", "90m"]


async def test_a_reminder_that_went_out_stays_and_the_moved_time_gets_its_own(desk, store, clock):
    kim, number = await kim_books(desk, store)
    await run_at(desk, TEN_TUESDAY - timedelta(hours=24))  # the 24h reminder for Tuesday went out
    lukas = chat(desk, LUKAS)  # staff may move their own appointments
    assert "Moved:" in await lukas.say(f"/move {number} {TUESDAY} 14:00")
    keys = [j.key for j in await waiting_reminders(store)]
    assert keys == [f"{number}:24h:2026-12-08T13:00Z", f"{number}:90m:2026-12-08T13:00Z"]
    await run_at(desk, datetime(2026, 12, 8, 11, 30, tzinfo=UTC))
    assert await reminded(store, number) == ["24h", "24h", "90m"]
    old = {j.key: j.outcome for j in await reminder_jobs(store, Job.key.endswith("T09:00Z"))}
    assert old == {f"{number}:24h:2026-12-08T09:00Z": "done"}  # the old 90m one was dropped before its time


async def test_a_job_left_for_an_old_time_skips_and_says_why(desk, store, clock):
    _, number = await kim_books(desk, store)
    async with store.uow() as uow:  # as if the move and the job's claim had crossed
        row = await uow.session.get(Appointment, number)
        row.start_at, row.end_at = row.start_at + timedelta(days=2), row.end_at + timedelta(days=2)
        await uow.commit()
    assert await run_at(desk, TEN_TUESDAY - timedelta(hours=24)) == 1
    [job, _] = await reminder_jobs(store)
    assert job.outcome == "skipped: the appointment was moved"
    assert await reminded(store, number) == []


async def test_a_cancelled_appointment_is_never_reminded(desk, store, clock):
    kim, number = await kim_books(desk, store)
    assert "Cancelled:" in await kim.say(f"/cancel {number}")
    assert await waiting_reminders(store) == []
    for moment in (TEN_TUESDAY - timedelta(hours=24), TEN_TUESDAY - timedelta(minutes=90)):
        await run_at(desk, moment)
    assert reminders_in(await mails_to(store, KIM)) == []


async def test_a_closure_that_cancels_the_appointment_drops_its_reminders(desk, store, clock):
    _, number = await kim_books(desk, store)
    lukas = chat(desk, LUKAS)
    await lukas.say(f"/off sick {TUESDAY}")
    assert "1 appointment(s) cancelled" in await lukas.click("Confirm")
    assert await waiting_reminders(store) == []


async def test_an_appointment_booked_after_a_reminders_time_gets_no_late_one(desk, store, clock):
    clock.current = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # Tuesday 07:00: 3 hours before 10:00
    _, number = await kim_books(desk, store)
    assert [j.key.split(":")[1] for j in await reminder_jobs(store)] == ["90m"]
    clock.current = datetime(2026, 12, 8, 8, 40, tzinfo=UTC)  # 09:40: 80 minutes before 11:00
    other = await customer(desk, store, "telegram:6", "otto@example.com")
    await book_and_confirm(desk, store, other, "otto@example.com", f"/book Massage {TUESDAY} 11:00 Lukas Huber")
    assert [j.key.split(":")[1] for j in await reminder_jobs(store)] == ["90m"]  # none for the second one


async def test_a_request_is_reminded_only_once_approved_and_a_rejected_one_never(desk, store, clock):
    anna = chat(desk, ANNA)
    await anna.say("/mode request")
    _, first = await kim_books_request(desk, store)
    assert await reminder_jobs(store) == []
    assert "approved" in (await anna.say(f"/approve {first}")).lower()
    assert len(await reminder_jobs(store)) == 2
    otto = await customer(desk, store, "telegram:6", "otto@example.com")
    await otto.send(f"/book Massage {TUESDAY} 13:00 Lukas Huber")
    await otto.send(await code_for(store, "otto@example.com"))
    [second] = [a.id for a in await rows(store, Appointment) if a.id != first]
    await anna.say(f"/reject {second} sorry")
    assert {j.payload["appointment"] for j in await reminder_jobs(store)} == {first}


async def kim_books_request(desk: Desk, store) -> tuple[Chat, int]:
    kim = await customer(desk, store, KIM, "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [answer] = await kim.send(await code_for(store, "kim@example.com"))
    assert answer.template == "booking_requested", answer.text
    [row] = await rows(store, Appointment)
    return kim, row.id


# ---- exactly once -------------------------------------------------------------------------------


async def test_two_runners_at_once_and_again_send_each_reminder_exactly_once(desk, store, clock):
    numbers = []
    for n in range(4):
        person = await customer(desk, store, f"telegram:{10 + n}", f"c{n}@example.com")
        numbers.append(await book_and_confirm(desk, store, person, f"c{n}@example.com",
                                              f"/book Massage {TUESDAY} {(10, 11, 13, 14)[n]}:00 Lukas Huber"))
    clock.current = datetime(2026, 12, 8, 8, 0, tzinfo=UTC)  # every 24h and the first 90m reminders are due
    runners = [JobRunner(desk, desk.jobs) for _ in range(3)]
    done = await asyncio.gather(*(r.run_due() for r in runners))
    assert sum(done) == 5 + 1  # 4 × 24h, the 90m of 10:00, and Lukas's agenda for Tuesday
    assert await JobRunner(desk, desk.jobs).run_due() == 0
    assert [await reminded(store, n) for n in numbers] == [["24h", "90m"], ["24h"], ["24h"], ["24h"]]
    for n in range(4):
        assert len(reminders_in(await mails_to(store, f"telegram:{10 + n}"))) == (2 if n == 0 else 1)


async def test_a_runner_that_died_before_committing_leaves_the_reminder_to_the_next_one(desk, store, clock):
    _, number = await kim_books(desk, store)
    clock.current = TEN_TUESDAY - timedelta(hours=24)
    crashed = JobRunner(desk, desk.jobs)
    claimed = await crashed.claim()  # and then the process died
    assert [d.key.split(":")[1] for d in claimed] == ["24h"]
    assert await JobRunner(desk, desk.jobs).run_due() == 0  # leased
    clock.advance(minutes=6)
    assert await JobRunner(desk, desk.jobs).run_due() == 1
    assert await crashed.run_one(claimed[0]) == 0  # woke up late: finds it done
    assert await reminded(store, number) == ["24h"]


# ---- the business changes its reminders ---------------------------------------------------------


async def test_new_reminders_in_the_setup_reach_appointments_already_booked_and_removed_ones_stop(desk, store,
                                                                                                 clock):
    from handlers.setup import apply_setup, parse_setup
    from tests.helpers import PRACTICE

    _, number = await kim_books(desk, store)
    text = PRACTICE.read_text().replace('holidays = "AT-4"', "", 1)  # the scenarios run on a holiday
    text = text.replace('reminders = ["24h", "90m"]', 'reminders = ["48h", "24h"]')
    async with store.uow() as uow:
        changes = await apply_setup(uow, parse_setup(text, "practice.toml"), clock.now())
        await uow.commit()
    assert "~ business: reminders [24h, 90m] → [48h, 24h]" in changes
    keys = sorted(j.key.split(":")[1] for j in await waiting_reminders(store))
    assert keys == ["24h", "90m"]  # 48h before Tuesday 10:00 has passed; 24h was there already
    assert await run_at(desk, TEN_TUESDAY - timedelta(minutes=90)) == 3  # and Lukas's agenda for Tuesday
    assert await reminded(store, number) == ["24h"]
    [skipped] = await reminder_jobs(store, Job.outcome.startswith("skipped"))
    assert skipped.outcome == "skipped: the business no longer sends reminders 90m before"


@pytest.mark.parametrize("lang, subject", [("de", "Erinnerung: Massage"), ("en", "Reminder: Massage")])
async def test_the_reminder_speaks_the_customers_language(desk, store, clock, lang, subject):
    lea = await email_customer(store, clock.now(), lang=lang)
    await chat(desk, ANNA).say(f"/appoint #{lea} Massage {TUESDAY} 10:00 Lukas")
    await run_at(desk, TEN_TUESDAY - timedelta(hours=24))
    assert (await mails_to(store, LEA))[-1].subject.startswith(subject)


async def test_reminders_audit_who_was_reminded(desk, store, clock):
    _, number = await kim_books(desk, store)
    await run_at(desk, TEN_TUESDAY - timedelta(hours=24))
    async with store.uow() as uow:
        audit = await uow.session.scalar(select(Audit).where(Audit.action == "reminder_sent"))
    assert audit.actor == "system:jobs" and audit.detail == {"offset": "24h", "channel": "telegram"}
