"""Courses with dates through the desk, on the demo practice plus a course (SQLite and PostgreSQL): the list,
joining with a code, the waiting list, offers and their expiry by job, leaving, the deadline and its
minimum check, participants, admins adding and cancelling courses, and bad input."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import build_handlers
from handlers.context import Refusal, load_context
from handlers.courses import COURSE_FIELDS, PARTICIPANT_FIELDS, coming_courses, course_rows, participant_rows
from handlers.jobs.runner import JobRunner
from handlers.router import Desk
from handlers.setup import apply_setup, parse_setup
from storage.models import Audit, Course, CoursePlace, Job, Outbox
from tests.conftest import inbound
from tests.helpers import Chat, code_for, count, labels, mails_to, rows

EXAMPLE = Path(__file__).parents[2] / "examples" / "practice.toml"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
ANNA, LUKAS, EVA = "telegram:1001", "telegram:1002", "telegram:1003"  # owner · provider in Linz · assistant
COURSE = """
[[courses]]
name = "Rückenfit"
location = "Linz"
sessions = ["2026-12-10 18:00-19:30", "2026-12-17 18:00-19:30"]
capacity = 3
price = "120.00"
min_participants = 2
booking_deadline_days = 2
"""
DEADLINE = datetime(2026, 12, 8, 17, 0, tzinfo=timezone.utc)  # two days before 18:00 in Vienna
HOLD = timedelta(seconds=600)


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    clock.current = NOW
    async with store.uow() as uow:
        await apply_setup(uow, parse_setup(EXAMPLE.read_text() + COURSE, "practice.toml"), clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


async def person(desk: Desk, number: int, lang: str = "en") -> Chat:
    """Someone in Telegram whose email (p<number>@example.com) is verified."""
    chat = Chat(desk, desk.clock, f"telegram:{number}", lang)
    await chat.send(f"/language {lang}")  # what others' actions tell them comes in their language
    await chat.send(f"/email p{number}@example.com")
    assert "is confirmed" in (await chat.send(await code_for(desk.store, f"p{number}@example.com")))[0].text
    return chat


async def joined(desk: Desk, number: int) -> Chat:
    """Someone who joined Rückenfit and confirmed the place with the mailed code."""
    chat = await person(desk, number)
    assert "I am holding a place in Rückenfit" in await chat.say("/join Rückenfit")
    assert "You have a place in Rückenfit" in await chat.say(await code_for(desk.store, f"p{number}@example.com"))
    return chat


async def course(store) -> Course:
    async with store.uow() as uow:
        return await uow.session.scalar(select(Course).where(Course.name == "Rückenfit"))


async def statuses(store) -> dict[str, str]:
    """Each place's status by the address it was taken from."""
    return {p.address: p.status for p in await rows(store, CoursePlace)}


async def chat_messages(store, address: str) -> list[str]:
    """Texts queued for an address (Babel's narrow no-break space before AM/PM read as a space)."""
    return [m.text.replace("\u202f", " ") for m in await mails_to(store, address)]


# ---- the list and joining ----------------------------------------------------------------------


async def test_courses_lists_the_coming_course_with_dates_price_and_free_places(desk):
    kim = Chat(desk, desk.clock, "telegram:5")
    text = await kim.say("/courses")
    assert "Rückenfit · Linz · € 120.00" in text
    assert "Thu 10 Dec 2026, 6:00 PM–7:30 PM" in text and "Thu 17 Dec 2026, 6:00 PM–7:30 PM" in text
    assert "3 of 3 places free" in text and "Book until Dec 8, 2026 6:00 PM: /join Rückenfit" in text
    assert kim.labels() == ["Join Rückenfit"]
    german = await Chat(desk, desk.clock, "telegram:6", "de").say("/kurse")
    assert "Rückenfit · Linz · 120,00 €" in german and "Do. 10. Dez. 2026, 18:00–19:30 Uhr" in german
    assert "3 von 3 Plätzen frei" in german


async def test_join_holds_a_place_mails_the_code_and_the_code_confirms_it(desk, store, clock):
    kim = await person(desk, 11)
    held = await kim.say("/join rückenfit")  # any case
    assert "I am holding a place in Rückenfit (Linz) for you until 10:10 AM" in held and "p11@example.com" in held
    mail = (await mails_to(store, "p11@example.com"))[-1]
    code = mail.subject.split()[0]
    assert mail.subject == f"{code} is your code for the course Rückenfit" and code in mail.text
    text = (await chat_messages(store, "p11@example.com"))[-1]
    assert "€ 120.00" in text and "until 10:10 AM" in text
    assert (await course(store)).taken == 1
    assert "2 of 3 places free" in await kim.say("/courses") and "held for you until" in kim.replies[0].text
    clock.advance(minutes=3)
    confirmed = await kim.say(code)
    assert "You have a place in Rückenfit (Linz)" in confirmed and "p11@example.com" in confirmed
    assert (await statuses(store)) == {"telegram:11": "confirmed"}
    assert (await mails_to(store, "p11@example.com"))[-1].subject == "Your place: Rückenfit from Dec 10, 2026"
    # The course's staff hear of it: the owner and Lukas (hours in Linz), not Eva (no hours there).
    # (in German: the staff chose no language, and the practice speaks German)
    assert any("Neue Online-Anmeldung für Rückenfit" in t for t in await chat_messages(store, LUKAS))
    assert any("Neue Online-Anmeldung für Rückenfit" in t for t in await chat_messages(store, ANNA))
    assert not any("Rückenfit" in t for t in await chat_messages(store, EVA))
    assert "✓ You have a place." in await kim.say("/courses")


async def test_someone_without_an_email_is_asked_for_one_first_and_continues_with_one_tap(desk, store):
    kim = Chat(desk, desk.clock, "telegram:12")
    assert "I first need your email address" in await kim.say("/join Rückenfit")
    assert (await course(store)).taken == 0
    await kim.say("p12@example.com")
    [verified, go_on] = await kim.send(await code_for(store, "p12@example.com"))
    assert "Shall I go on with joining" in go_on.text
    [held] = await kim.tap(go_on, "Continue joining")
    assert "I am holding a place in Rückenfit" in held.text


async def test_a_full_course_puts_people_on_the_waiting_list_with_their_position(desk, store):
    for n in (21, 22, 23):
        await joined(desk, n)
    dana = await person(desk, 24)
    assert "Rückenfit is full. You are on the waiting list at number 1" in await dana.say("/join Rückenfit")
    eli = await person(desk, 25)
    assert "at number 2" in await eli.say("/join Rückenfit")
    assert "already on the waiting list for Rückenfit, at number 2" in await eli.say("/join Rückenfit")
    text = await eli.say("/courses")
    assert "full · 2 on the waiting list" in text and "number 2 on the waiting list" in text
    assert (await course(store)).taken == 3
    assert await count(store, Outbox, Outbox.subject.like("%is your code for the course%")) == 3


async def test_join_twice_answers_what_one_has_and_changes_nothing(desk, store):
    kim = await person(desk, 31)
    await kim.say("/join Rückenfit")
    assert "A place in Rückenfit is held for you until 10:10 AM" in await kim.say("/join Rückenfit")
    await kim.say(await code_for(store, "p31@example.com"))
    assert "You already have a place in Rückenfit" in await kim.say("/join Rückenfit")
    assert (await course(store)).taken == 1 and await count(store, CoursePlace) == 1


# ---- leaving, offers and their expiry ------------------------------------------------------------


async def test_leave_offers_the_place_to_the_first_in_line_with_a_hold_a_mail_and_a_chat_message(desk, store):
    first = await joined(desk, 41)
    for n in (42, 43):
        await joined(desk, n)
    dana, eli = await person(desk, 44), await person(desk, 45)
    await dana.say("/join Rückenfit")
    await eli.say("/join Rückenfit")
    left = await first.say("/leave Rückenfit")
    assert "You have given back your place in Rückenfit. It goes to the next person" in left
    assert (await statuses(store))["telegram:44"] == "held" and (await statuses(store))["telegram:45"] == "waiting"
    offer = (await mails_to(store, "p44@example.com"))[-1]
    code = offer.subject.split()[0]
    assert offer.subject == f"{code} is your code: a place in Rückenfit is free for you" and code in offer.text
    [told] = [t for t in await chat_messages(store, "telegram:44") if "has become free" in t]
    assert f"Send the code {code} here" in told and "until 10:10 AM" in told
    assert any("den Platz in Rückenfit" in t and "zurückgegeben" in t for t in await chat_messages(store, LUKAS))
    assert "number 1 on the waiting list" in await eli.say("/courses")
    assert "You have a place in Rückenfit" in await dana.say(code)
    assert (await course(store)).taken == 3


async def test_an_offer_that_runs_out_goes_to_the_next_in_line_by_its_job(desk, store, clock):
    first = await joined(desk, 51)
    for n in (52, 53):
        await joined(desk, n)
    dana, eli = await person(desk, 54), await person(desk, 55)
    await dana.say("/join Rückenfit")
    await eli.say("/join Rückenfit")
    await first.say("/leave Rückenfit")
    dana_code = await code_for(store, "p54@example.com")
    runner = JobRunner(desk, desk.jobs)
    clock.advance(seconds=599)
    assert await runner.run_due() == 0
    clock.advance(seconds=1)
    assert await runner.run_due() == 4  # dana's offer, and the three holds confirmed long ago (nothing to do)
    assert await statuses(store) == {"telegram:51": "left", "telegram:52": "confirmed", "telegram:53": "confirmed",
                                     "telegram:54": "expired", "telegram:55": "held"}
    offer = (await mails_to(store, "p55@example.com"))[-1]
    assert "a place in Rückenfit is free for you" in offer.subject
    assert "ran out before the code arrived" in await dana.say(dana_code)  # too late
    assert "You have a place in Rückenfit" in await eli.say(offer.subject.split()[0])
    assert (await course(store)).taken == 3
    clock.advance(seconds=600)
    assert await runner.run_due() == 1  # eli's hold job: confirmed meanwhile, nothing to do
    outcomes = {j.key.split(":")[3]: j.outcome for j in await rows(store, Job) if j.kind == "course_hold_expires"}
    assert list(outcomes.values()).count("done") == 1  # dana's: the only hold that gave a place back
    assert "skipped: the hold had ended already (confirmed)" in outcomes.values()
    assert (await course(store)).taken == 3


async def test_an_expired_hold_gives_its_place_back_once_even_before_its_job_runs(desk, store, clock):
    kim = await person(desk, 61)
    await kim.say("/join Rückenfit")
    for n in (62, 63):
        await joined(desk, n)
    clock.advance(seconds=600)
    assert "1 of 3 places free" in (await Chat(desk, clock, "telegram:99").say("/courses"))
    late = await person(desk, 65)
    assert "I am holding a place" in await late.say("/join Rückenfit")  # the expired hold went back
    assert (await course(store)).taken == 3
    assert await JobRunner(desk, desk.jobs).run_due() == 3  # kim's job finds it given back already
    [kims] = await rows(store, Job, Job.key.like("%place:1:%"))
    assert kims.outcome == "skipped: the hold had ended already (expired)"
    assert (await course(store)).taken == 3 and (await statuses(store))["telegram:61"] == "expired"
    assert "ran out before the code arrived" in await kim.say(await code_for(store, "p61@example.com"))
    assert (await course(store)).taken == 3


async def test_five_wrong_codes_release_the_hold_and_offer_it_on(desk, store):
    for n in (71, 72):
        await joined(desk, n)
    kim = await person(desk, 73)
    await kim.say("/join Rückenfit")
    lea = await person(desk, 74)
    await lea.say("/join Rückenfit")
    right = await code_for(store, "p73@example.com")
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert "That code is not right" in await kim.say(wrong)
    assert "fifth wrong code" in await kim.say(wrong)
    assert (await statuses(store))["telegram:73"] == "expired" and (await statuses(store))["telegram:74"] == "held"
    assert (await course(store)).taken == 3


async def test_leaving_after_the_deadline_is_refused_and_joining_is_closed(desk, store, clock):
    kim = await joined(desk, 81)
    dana = await person(desk, 82)
    clock.current = DEADLINE
    refused = await kim.say("/leave Rückenfit")
    assert "can only be given back until Dec 8, 2026 at 6:00 PM" in refused
    assert (await statuses(store))["telegram:81"] == "confirmed" and (await course(store)).taken == 1
    assert "Booking for Rückenfit closed on Dec 8, 2026" in await dana.say("/join Rückenfit")
    assert "Booking closed." in await dana.say("/courses")
    assert "You have no place in Rückenfit" in await dana.say("/leave Rückenfit")


async def test_leaving_the_waiting_list_is_possible_and_frees_no_place(desk, store):
    for n in (91, 92, 93):
        await joined(desk, n)
    dana = await person(desk, 94)
    await dana.say("/join Rückenfit")
    assert "You are off the waiting list for Rückenfit" in await dana.say("/abmelden Rückenfit")
    assert (await course(store)).taken == 3 and (await statuses(store))["telegram:94"] == "left"


# ---- the deadline job, participants, admins --------------------------------------------------


async def test_a_course_below_its_minimum_at_the_deadline_is_flagged_to_the_admins(desk, store, clock):
    await joined(desk, 101)
    [job] = [j for j in await rows(store, Job) if j.kind == "course_deadline"]
    assert job.due_at == DEADLINE
    clock.current = DEADLINE
    await JobRunner(desk, desk.jobs).run_due()
    assert job.id in [j.id for j in await rows(store, Job, Job.outcome == "done")]
    [flag] = [t for t in await chat_messages(store, ANNA) if "Minimum" in t]
    assert "mit 1 bestätigten Teilnehmer; das Minimum ist 2" in flag and "kurs absagen Rückenfit" in flag
    assert await count(store, Audit, Audit.action == "course_below_minimum") == 1


async def test_a_course_with_enough_participants_is_not_flagged(desk, store, clock):
    await joined(desk, 111)
    await joined(desk, 112)
    clock.current = DEADLINE
    await JobRunner(desk, desk.jobs).run_due()
    [job] = [j for j in await rows(store, Job) if j.kind == "course_deadline"]
    assert job.outcome == "skipped: 2 confirmed, the minimum is 2"
    assert not any("Minimum" in t for t in await chat_messages(store, ANNA))


async def test_participants_are_shown_to_admins_and_local_staff_only(desk, store):
    await joined(desk, 121)
    for n in (122, 123):
        await joined(desk, n)
    await (await person(desk, 124)).say("/join Rückenfit")
    admin = await Chat(desk, desk.clock, ANNA).say("/participants Rückenfit")
    assert "Rückenfit · Linz · full · 1 on the waiting list · at least 2" in admin
    assert "✓ " in admin and "<p121@example.com>" in admin and "⏳ 1. " in admin
    assert "<p124@example.com>" in await Chat(desk, desk.clock, LUKAS).say("/teilnehmer Rückenfit")
    assert "are for the admins and the staff of its location" in await Chat(desk, desk.clock, EVA).say(
        "/participants Rückenfit")
    stranger = Chat(desk, desk.clock, "telegram:125")
    await stranger.send("/participants Rückenfit")
    assert stranger.templates == ["not_allowed"]


async def test_an_admin_adds_a_course_from_the_chat(desk, store):
    anna = Chat(desk, desk.clock, ANNA)
    added = await anna.say('/course add "Yoga am Abend" wels 8 2026-12-15 19:00-20:00, 2026-12-22 19:00-20:00 '
                           "price=80 min=3 deadline=1")
    assert "Course added: Yoga am Abend · Wels · 8 places · € 80" in added
    assert "Tue 15 Dec 2026, 7:00 PM–8:00 PM" in added and "Booking until Dec 14, 2026 7:00 PM" in added
    async with store.uow() as uow:
        names = [v.name for v in await coming_courses(uow, desk.clock.now())]
    assert names == ["Rückenfit", "Yoga am Abend"]
    assert "8 of 8 places free" in await Chat(desk, desk.clock, "telegram:7").say("/courses")
    assert "already a course called" in await anna.say('/course add "yoga am abend" Linz 2 2026-12-20 10:00-11:00')
    assert len([j for j in await rows(store, Job) if j.kind == "course_deadline"]) == 2


async def test_an_admin_cancels_a_course_and_everyone_in_it_is_told(desk, store):
    kim = await joined(desk, 131)
    for n in (132, 133):
        await joined(desk, n)
    dana = await person(desk, 134)
    await dana.say("/join Rückenfit")
    anna = Chat(desk, desk.clock, ANNA)
    assert "Rückenfit is cancelled. 4 of 4 participants" in await anna.say("/course cancel Rückenfit")
    assert set((await statuses(store)).values()) == {"cancelled"}
    assert (await course(store)).taken == 0 and (await course(store)).status == "cancelled"
    assert any("has been cancelled" in t and "Your place in it is void" in t
               for t in await chat_messages(store, "telegram:131"))
    assert any("You were on its waiting list" in t for t in await chat_messages(store, "telegram:134"))
    assert "No courses are coming up" in await kim.say("/courses")
    assert "has been cancelled" in await kim.say("/join Rückenfit")
    assert "has been cancelled" in await anna.say("/course cancel Rückenfit")
    assert [j for j in await rows(store, Job) if j.kind == "course_deadline" and j.done_at is None] == []


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("line, answer", [
    ("/join", "Which course? Type join COURSE"),
    ("/join Pilates", 'There is no course called "Pilates". Coming courses: Rückenfit.'),
    ("/leave Pilates", 'There is no course called "Pilates"'),
    ("/participants", "Which course?"),
    ("/course", "Usage:"),
    ("/course add Yoga Linz", "That is not a whole course line."),
    ("/course add Yoga Linz 0 2026-12-20 10:00-11:00", '"0" is not a capacity'),
    ("/course add Yoga Linz 12 2026-12-20 10:00", '"2026-12-20 10:00" has no valid time range'),
    ("/course add Yoga Linz 12 2026-13-20 10:00-11:00", '"2026-13-20 10:00-11:00" does not start with a real date'),
    ("/course add Yoga Linz 12 20.12.2026 10:00-11:00", '"20.12.2026 10:00-11:00" does not start with a real date'),
    ("/course add Yoga Linz 12 2026-12-20 10:00-11:00 extra", '"2026-12-20 10:00-11:00 extra" is not a session'),
    ("/course add Yoga Linz 12 2026-12-20 10:00-11:00, 2026-12-20 10:30-11:30", "overlaps another one"),
    ("/course add Yoga Linz 12 2026-11-20 10:00-11:00", '"2026-11-20 10:00-11:00" is not ahead'),
    ("/course add Yoga Graz 12 2026-12-20 10:00-11:00", 'no location called "Graz". Locations: Linz, Wels.'),
    ("/course add Yoga Linz 12 2026-12-20 10:00-11:00 price=12,50", '"12,50" is not a price'),
    ("/course add Yoga Linz 12 2026-12-20 10:00-11:00 min=13", '"13" is not a minimum'),
    ("/course add Rückenfit Linz 12 2026-12-20 10:00-11:00", 'already a course called "Rückenfit"'),
    ("/course add www.shop.example Linz 12 2026-12-20 10:00-11:00", "looks like a web or mail address"),
])
async def test_bad_input_gets_a_clear_answer_and_changes_nothing(desk, store, line, answer):
    anna = Chat(desk, desk.clock, ANNA)
    assert answer in await anna.say(line)
    assert await count(store, Course) == 1 and await count(store, CoursePlace) == 0


async def test_a_customer_cannot_add_or_cancel_courses(desk, store):
    kim = Chat(desk, desk.clock, "telegram:8")
    await kim.send("/course cancel Rückenfit")
    assert kim.templates == ["not_allowed"] and (await course(store)).status == "open"


async def test_help_lists_the_course_words_by_role(desk):
    customer = await Chat(desk, desk.clock, "telegram:9").say("/help")
    assert "Courses:" in customer and "/join —" in customer and "/leave —" in customer
    assert "/participants" not in customer and "/course —" not in customer
    admin = await Chat(desk, desk.clock, ANNA).say("/help")
    assert "/participants —" in admin and "/course — course add NAME LOCATION CAPACITY" in admin
    german = await Chat(desk, desk.clock, "telegram:10", "de").say("/hilfe")
    assert "Kurse:" in german and "anmelden KURS" in german


async def test_labels_of_the_list_run_join(desk, store):
    kim = await person(desk, 151)
    [listing] = await kim.send("/courses")
    assert labels(listing) == ["Join Rückenfit"]
    [held] = await kim.tap(listing, "Join Rückenfit")
    assert "I am holding a place in Rückenfit" in held.text


async def test_places_held_in_two_courses_at_once_are_each_confirmed_by_their_own_code(desk, store):
    assert "Course added" in await Chat(desk, desk.clock, ANNA).say("/course add Yoga Linz 5 2026-12-15 19:00-20:00")
    kim = await person(desk, 161)
    await kim.say("/join Rückenfit")
    first = await code_for(store, "p161@example.com")
    await kim.say("/join Yoga")
    second = await code_for(store, "p161@example.com")
    assert "You have a place in Rückenfit" in await kim.say(first)
    assert "You have a place in Yoga" in await kim.say(second)
    assert set((await statuses(store)).values()) == {"confirmed"}


async def test_export_rows_give_the_course_list_and_a_course_s_people_to_those_who_may_see_them(desk, store):
    await joined(desk, 171)
    await (await person(desk, 172)).say("/join Rückenfit")
    async with store.uow() as uow:
        admin = await load_context(uow, inbound(ANNA, clock=desk.clock), desk.config, desk.clock.now(), desk)
        [row] = await course_rows(admin, "")
        people = await participant_rows(admin, "rückenfit")
        customer = await load_context(uow, inbound("telegram:171", clock=desk.clock), desk.config,
                                      desk.clock.now(), desk)
        with pytest.raises(Refusal):
            await participant_rows(customer, "Rückenfit")
        with pytest.raises(Refusal):
            await course_rows(admin, "everything")
    assert tuple(row) == COURSE_FIELDS and tuple(people[0]) == PARTICIPANT_FIELDS
    assert (row["name"], row["location"], row["capacity"], row["taken"], row["free_places"], row["waiting"]) == (
        "Rückenfit", "Linz", 3, 2, 1, 0)
    assert row["price"] == Decimal("120.00") and row["deadline"] == DEADLINE and row["min_participants"] == 2
    assert row["start"] == datetime(2026, 12, 10, 17, 0, tzinfo=timezone.utc) and len(row["sessions"]) == 2
    assert [(p["email"], p["status"]) for p in people] == [("p171@example.com", "confirmed"),
                                                            ("p172@example.com", "held")]
