"""Customers book, confirm, list, cancel and move appointments, against the demo practice (SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app import build_handlers
from handlers.appointments import claim
from handlers.booking import walk
from handlers.router import Desk
from handlers.rules.availability import day_bounds
from handlers.setup import apply_setup
from storage.models import Address, Appointment, Audit, Business, Closure, Person, Service, SlotClaim
from tests.helpers import Chat, code_for, ics, labels, mails_to, practice_setup

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
TUESDAY = "2026-12-08"  # Lukas in Linz 08–12, 13–18; Anna in Wels 09–17
ANNA, LUKAS, EVA = "telegram:1001", "telegram:1002", "telegram:1003"


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    clock.current = MONDAY
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


def chat(desk: Desk, sender: str, lang: str = "en") -> Chat:
    return Chat(desk, desk.clock, sender, lang)


async def customer(desk: Desk, store, sender: str, email: str) -> Chat:
    """A customer whose email address is verified."""
    person = chat(desk, sender)
    await person.send(f"/email {email}")
    assert "is confirmed" in (await person.send(await code_for(store, email)))[0].text
    return person


async def book_and_confirm(desk, store, person: Chat, email: str, text: str) -> int:
    """Book by the typed form and send the code; return the appointment id."""
    assert "I am holding" in (await person.send(text))[0].text
    confirmed = (await person.send(await code_for(store, email)))[0].text
    assert "Booked!" in confirmed, confirmed
    return int(confirmed.split("(#")[1].split(")")[0])


async def appointment(store, number: int) -> Appointment:
    async with store.uow() as uow:
        return await uow.session.get(Appointment, number)


# ---- the walk and the typed form -----------------------------------------------------------


async def test_the_button_walk_holds_a_slot_and_the_code_confirms_it(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    [services] = await kim.send("/book")
    assert labels(services) == ["Massage", "Heilgymnastik", "Erstberatung"]
    [where] = await kim.tap(services, "Massage")
    assert labels(where) == ["Linz", "Wels"]  # two locations offer massage
    [whom] = await kim.tap(where, "Linz")
    assert labels(whom) == ["Any free", "Anna Berger", "Lukas Huber"]
    [days] = await kim.tap(whom, "Lukas Huber")
    assert labels(days)[:3] == ["Tue 8 Dec", "Thu 10 Dec", "Fri 11 Dec"]  # Lukas works in Linz Tue, Thu, Fri
    assert len(days.choices) == 10
    [times] = await kim.tap(days, "Tue 8 Dec")
    assert labels(times)[0] == "08:00" and "12:00" not in labels(times) and "13:00" in labels(times)
    assert "11:15" not in labels(times)  # a 60-minute massage would run into the lunch break
    [held] = await kim.tap(times, "10:00")
    assert "until 8:10 AM" in held.text and "kim@example.com" in held.text
    mail = (await mails_to(store, "kim@example.com"))[-1]
    code = mail.subject.split()[0]
    assert code.isdigit() and len(code) == 6 and code in mail.text and code in mail.html
    [confirmed] = await kim.send(code)
    assert "Booked! Massage on Tuesday, December 8, 2026 at 10:00 AM with Lukas Huber in Linz" in confirmed.text


async def test_every_button_runs_a_typed_form_that_works_by_itself(desk, store):
    kim = chat(desk, "telegram:5")
    [whom] = await kim.send("/book Massage at Linz")
    assert [c.command for c in whom.choices] == ["book Massage at Linz with any",
                                                 "book Massage at Linz with Anna Berger",
                                                 "book Massage at Linz with Lukas Huber"]
    [days] = await kim.send("/buchen massage in linz bei Lukas")  # German words, any case, first name
    assert days.choices[0].command == "book Massage at Linz with Lukas Huber on 2026-12-08"
    [times] = await kim.send("book Massage at Linz with Lukas Huber on 2026-12-08")
    assert times.choices[0].command == "book Massage 2026-12-08 08:00 Lukas Huber"
    [times] = await kim.send("book Massage at Linz with any on 2026-12-08")
    assert times.choices[0].command == "book Massage 2026-12-08 08:00 at Linz"


async def test_typed_form_books_in_one_message_and_the_confirmation_carries_an_invitation(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    number = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    row = await appointment(store, number)
    assert row.status == "confirmed" and row.hold_expires_at is None and row.channel == "telegram"
    assert row.created_by == "telegram:5"
    confirmation = (await mails_to(store, "kim@example.com"))[-1]
    assert confirmation.subject.startswith("Booked: Massage")
    invite = ics(confirmation)
    assert "METHOD:REQUEST" in invite and f"UID:appointment-{number}@" in invite and "SEQUENCE:0" in invite
    assert confirmation.attachments[0]["type"] == "text/calendar; method=REQUEST"
    async with store.uow() as uow:
        actions = list(await uow.session.scalars(select(Audit.action).where(Audit.subject == f"appointment:{number}")))
    assert actions == ["appointment_held", "appointment_confirmed"]


async def test_any_free_assigns_the_least_busy_qualified_staff_member(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    lea = await customer(desk, store, "telegram:6", "lea@example.com")
    # 13:00 on Tuesday: Anna is free in Wels, Lukas in Linz; both have nothing yet, so the lower id goes first
    first = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 13:00")
    second = await book_and_confirm(desk, store, lea, "lea@example.com", f"/book Massage {TUESDAY} 13:00 with any")
    rows = [await appointment(store, first), await appointment(store, second)]
    async with store.uow() as uow:
        names = [(await uow.session.get(Person, r.staff_id)).name for r in rows]
    assert names == ["Anna Berger", "Lukas Huber"]


async def test_a_held_slot_is_not_offered_to_others(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [times] = await chat(desk, "telegram:6").send(f"/book Massage at Linz with Lukas Huber on {TUESDAY}")
    free = labels(times)
    assert "09:00" in free and "11:00" in free
    assert not {"09:15", "09:30", "09:45", "10:00", "10:15", "10:30", "10:45"} & set(free)


async def test_a_held_slot_picked_from_an_old_keyboard_is_just_taken_with_fresh_times(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    lea = await customer(desk, store, "telegram:6", "lea@example.com")
    [old_keyboard] = await lea.send(f"/book Massage at Linz with Lukas Huber on {TUESDAY}")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [taken] = await lea.tap(old_keyboard, "10:00")
    assert "10:00 AM on Tuesday, December 8, 2026 was just taken" in taken.text
    assert "09:00" in labels(taken) and "10:00" not in labels(taken)
    [held] = await lea.tap(taken, "11:00")  # a fresh time works
    assert "I am holding" in held.text


async def test_racing_for_one_slot_only_one_customer_holds_it(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    lea = await customer(desk, store, "telegram:6", "lea@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [taken] = await lea.send(f"/book Heilgymnastik {TUESDAY} 10:30 Lukas Huber")  # overlaps the held massage
    assert "just taken" in taken.text
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Appointment)) == 1


# ---- codes, holds and request mode --------------------------------------------------------


async def test_request_mode_files_a_request_and_the_slot_stays_blocked(desk, store):
    async with store.uow() as uow:
        business = await uow.session.get(Business, 1)
        business.booking_mode = "request"
        await uow.commit()
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [answer] = await kim.send(await code_for(store, "kim@example.com"))
    assert "Your request for Massage" in answer.text
    mail = (await mails_to(store, "kim@example.com"))[-1]
    assert mail.subject.startswith("Request received") and mail.attachments == []
    desk.clock.advance(hours=2)  # long past any hold
    [times] = await chat(desk, "telegram:6").send(f"/book Massage at Linz with Lukas Huber on {TUESDAY}")
    assert "10:00" not in labels(times)
    [list_] = await kim.send("/bookings")
    assert "waiting for approval" in list_.text
    [note] = [r for r in await mails_to(store, LUKAS)]
    assert note.text.startswith("Neue Online-Anfrage")


async def test_five_wrong_codes_release_the_hold(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    code = await code_for(store, "kim@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [(await kim.send(wrong))[0].text for _ in range(5)]
    assert "4 tries left" in answers[0]
    assert "fifth wrong code" in answers[4] and "released" in answers[4]
    async with store.uow() as uow:
        row = await uow.session.scalar(select(Appointment))
        claims = await uow.session.scalar(select(func.count()).select_from(SlotClaim))
    assert (row.status, row.closed_reason, claims) == ("expired", "too many wrong codes", 0)
    assert "no code waiting" in (await kim.send(code))[0].text
    [times] = await chat(desk, "telegram:6").send(f"/book Massage at Linz with Lukas Huber on {TUESDAY}")
    assert "10:00" in labels(times)


async def test_past_expiry_the_slot_is_free_at_once_and_a_late_code_is_told_so(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    lea = await customer(desk, store, "telegram:6", "lea@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    late_code = await code_for(store, "kim@example.com")
    desk.clock.advance(seconds=601)  # no cleanup job has run
    number = await book_and_confirm(desk, store, lea, "lea@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    assert (await appointment(store, number)).status == "confirmed"
    [late] = await kim.send(late_code)
    assert "ran out before the code arrived" in late.text and "10:00" not in labels(late) and "11:00" in labels(late)


async def test_a_code_after_expiry_releases_the_hold_and_offers_fresh_times(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    code = await code_for(store, "kim@example.com")
    desk.clock.advance(seconds=700)
    [late] = await kim.send(code)
    assert "ran out" in late.text and "10:00" in labels(late)
    async with store.uow() as uow:
        row = await uow.session.scalar(select(Appointment))
    assert row.status == "expired"


async def test_a_customer_without_email_is_asked_first_and_then_continues(desk, store):
    kim = chat(desk, "telegram:5")
    [ask] = await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    assert "I need your email address first" in ask.text
    assert "kim@example.com" in (await kim.send("kim@example.com"))[0].text
    assert "I do not know" in (await kim.send("hello?"))[0].text  # the next text is no address any more
    verified, proceed = await kim.send(await code_for(store, "kim@example.com"))
    assert "kim@example.com is confirmed" in verified.text
    assert [c.command for c in proceed.choices] == [f"book Massage {TUESDAY} 10:00 Lukas Huber"]
    [held] = await kim.tap(proceed, "Continue booking")
    assert "I am holding Massage" in held.text
    assert "Booked!" in (await kim.send(await code_for(store, "kim@example.com")))[0].text


async def test_a_new_hold_releases_the_customers_earlier_hold(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [second] = await kim.send(f"/book Massage {TUESDAY} 14:00 Lukas Huber")
    assert "earlier hold for Massage" in second.text
    [times] = await chat(desk, "telegram:6").send(f"/book Massage at Linz with Lukas Huber on {TUESDAY}")
    assert "10:00" in labels(times) and "14:00" not in labels(times)


async def test_a_new_hold_that_loses_the_race_keeps_the_earlier_hold(desk, store, monkeypatch):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")

    async def someone_was_quicker(*args) -> None:  # the slot went between our look and our claim
        return None

    monkeypatch.setattr(walk, "claim_fairly", someone_was_quicker)
    [taken] = await kim.send(f"/book Massage {TUESDAY} 14:00 Lukas Huber")
    assert "just taken" in taken.text and "09:00" in labels(taken)
    async with store.uow() as uow:
        [held] = (await uow.session.scalars(select(Appointment))).all()
        claims = await uow.session.scalar(select(func.count()).select_from(SlotClaim))
    assert held.status == "held" and held.start_at.hour == 9 and claims == 12  # 10:00 in Vienna, still claimed


# ---- bad input ------------------------------------------------------------------------------


async def test_bad_bookings_get_clear_answers(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    unknown = (await kim.send(f"/book Yoga {TUESDAY} 10:00"))[0]
    assert 'I do not know the service "Yoga"' in unknown.text and "Massage" in unknown.text
    assert labels(unknown) == ["Massage", "Heilgymnastik", "Erstberatung"]
    assert "already in the past" in (await kim.send("/book Massage 2026-12-01 10:00"))[0].text
    outside = (await kim.send(f"/book Massage {TUESDAY} 19:00 Lukas Huber"))[0]
    assert "outside the bookable hours" in outside.text and "08:00" in labels(outside)
    assert "full five minutes" in (await kim.send(f"/book Massage {TUESDAY} 10:07"))[0].text
    assert 'could not read "10.00"' in (await kim.send(f"/book Massage {TUESDAY} 10.00"))[0].text
    assert 'could not read "2026-02-30"' in (await kim.send("/book Massage 2026-02-30 10:00"))[0].text
    assert "up to 60 days ahead" in (await kim.send("/book Massage 2027-03-01 10:00"))[0].text
    assert "does not offer this" in (await kim.send(f"/book Erstberatung {TUESDAY} 10:00 Lukas Huber"))[0].text
    assert "60 minutes' notice" in (await kim.send("/book Massage 2026-12-07 08:30 Anna"))[0].text
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Appointment)) == 0


async def test_dates_at_the_ends_of_the_calendar_are_refused_clearly(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    mine = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    for text in ("/book Massage 9999-12-31 23:00", "/book Massage 0001-01-01 00:00", f"/move {mine} 0001-01-01 00:00",
                 f"/move {mine} 9999-12-31 23:55", f"/move {mine} 9999-12-31"):
        [reply] = await kim.send(text)
        assert "too far from today" in reply.text and "2000" in reply.text, (text, reply.text)
    [german] = await chat(desk, "telegram:5", lang="de").send(f"/verschieben {mine} 0001-01-01 00:00")
    assert "zu weit von heute entfernt" in german.text
    assert (await appointment(store, mine)).start_at.hour == 9  # unchanged


async def test_a_slot_off_the_business_grid_is_not_free(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    [reply] = await kim.send(f"/book Massage {TUESDAY} 10:05 Lukas Huber")  # on the 5-minute grid, not the 15
    assert "cannot be booked online" in reply.text and "10:00" in labels(reply)


async def test_a_closure_removes_its_days_from_the_offer(desk, store):
    start, end = day_bounds(date(2026, 12, 8), ZoneInfo("Europe/Vienna"))
    async with store.uow() as uow:
        uow.session.add(Closure(staff_id=None, kind="vacation", start_at=start, end_at=end, created_by="test",
                                created_at=MONDAY))
        await uow.commit()
    [days] = await chat(desk, "telegram:5").send("/book Massage at Linz with Lukas Huber")
    assert labels(days)[0] == "Thu 10 Dec"


async def test_german_customers_get_german_words(desk, store):
    kim = chat(desk, "telegram:5", lang="de")
    [services] = await kim.send("/buchen")
    assert services.text.startswith("Welche Leistung")
    [where] = await kim.tap(services, "Massage")
    [whom] = await kim.tap(where, "Linz")
    assert "Egal, wer frei ist" in labels(whom)
    [days] = await kim.tap(whom, "Lukas Huber")
    assert labels(days)[0] == "Di. 8. Dez."


# ---- bookings, cancel, move -----------------------------------------------------------------


async def test_bookings_lists_upcoming_appointments_with_cancel_and_move(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    number = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    await kim.send("/book Heilgymnastik 2026-12-10 09:00")
    [listing] = await kim.send("/termine")
    assert f"#{number} Dec 8, 2026 10:00 AM · Massage · Lukas Huber · Linz" in listing.text
    assert "waiting for the code" in listing.text
    assert labels(listing) == [f"Cancel #{number}", f"Move #{number}", f"Cancel #{number + 1}"]
    assert "no upcoming appointments" in (await chat(desk, "telegram:6").send("/bookings"))[0].text


async def test_a_customer_cancels_their_own_appointment_and_gets_an_ics_cancel(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    number = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [listing] = await kim.send("/bookings")
    [done] = await kim.tap(listing, f"Cancel #{number}")
    assert done.text.startswith(f"Cancelled: #{number} Massage")
    row = await appointment(store, number)
    assert (row.status, row.closed_by, row.sequence) == ("cancelled", "telegram:5", 1)
    mail = (await mails_to(store, "kim@example.com"))[-1]
    assert "METHOD:CANCEL" in ics(mail) and f"UID:appointment-{number}@" in ics(mail)
    assert (await mails_to(store, LUKAS))[-1].text.startswith("Storniert vom Kunden")
    [times] = await chat(desk, "telegram:6").send(f"/book Massage at Linz with Lukas Huber on {TUESDAY}")
    assert "10:00" in labels(times)


async def test_a_customer_cannot_cancel_or_move_someone_elses_appointment(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    number = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    mallory = chat(desk, "telegram:66")
    assert f"no appointment #{number} of yours" in (await mallory.send(f"/cancel {number} gotcha"))[0].text
    assert f"no appointment #{number} of yours" in (await mallory.send(f"/move {number} 2026-12-10 09:00"))[0].text
    assert "not an appointment number" in (await mallory.send("/cancel twelve"))[0].text
    assert (await appointment(store, number)).status == "confirmed"


async def test_a_customer_moves_their_appointment_and_the_invitation_keeps_its_uid(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    number = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [days] = await kim.send(f"/move {number}")
    [times] = await kim.tap(days, "Thu 10 Dec")
    [moved] = await kim.tap(times, "09:00")
    assert "is now on Thursday, December 10, 2026 at 9:00 AM" in moved.text
    row = await appointment(store, number)
    assert row.sequence == 1 and row.start_at == datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc)
    invite = ics((await mails_to(store, "kim@example.com"))[-1])
    assert f"UID:appointment-{number}@" in invite and "SEQUENCE:1" in invite and "METHOD:REQUEST" in invite
    # a small shift that overlaps its own old time is fine; a time outside hours is not
    assert "is now on" in (await kim.send(f"/verschieben {number} 2026-12-10 09:30"))[0].text
    assert "outside the bookable hours" in (await kim.send(f"/move {number} 2026-12-10 20:00"))[0].text


async def test_a_move_onto_another_appointment_is_refused(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    lea = await customer(desk, store, "telegram:6", "lea@example.com")
    mine = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    await book_and_confirm(desk, store, lea, "lea@example.com", f"/book Massage {TUESDAY} 14:00 Lukas Huber")
    [refused] = await kim.send(f"/move {mine} {TUESDAY} 13:30")
    assert "just taken" in refused.text
    assert (await appointment(store, mine)).start_at.hour == 9  # 10:00 Vienna, unchanged


async def test_an_admin_cancels_with_a_message_that_reaches_a_customer_with_email(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    number = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [done] = await chat(desk, ANNA).send(f"/cancel {number} Lukas is ill.\nPlease book again next week.")
    assert "The customer has been told by mail" in done.text
    mail = (await mails_to(store, "kim@example.com"))[-1]
    assert "Lukas is ill.\nPlease book again next week." in mail.text and "METHOD:CANCEL" in ics(mail)
    row = await appointment(store, number)
    assert (row.status, row.closed_by) == ("cancelled", ANNA)
    assert row.closed_reason == "Lukas is ill.\nPlease book again next week."


async def offline_appointment(store, start: datetime) -> int:
    """An appointment entered by hand for a customer who has no email address."""
    async with store.uow() as uow:
        walk_in = Person(name="Walk-in Wendy", created_at=MONDAY)
        uow.session.add(walk_in)
        await uow.session.flush()
        lukas = await uow.session.scalar(select(Address.person_id).where(Address.address == LUKAS))
        massage = await uow.session.scalar(select(Service.id).where(Service.name == "Massage"))
        row = Appointment(service_id=massage, location_id=1, staff_id=lukas, customer_id=walk_in.id, start_at=start,
                          end_at=start + timedelta(hours=1), status="confirmed", sequence=0, channel="console",
                          created_by=ANNA, created_at=MONDAY)
        await claim(uow, row, MONDAY)
        await uow.commit()
        return row.id


async def test_an_admin_cancelling_for_a_customer_without_email_is_told_they_could_not_be_told(desk, store):
    number = await offline_appointment(store, datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc))
    [done] = await chat(desk, ANNA).send(f"/cancel {number} sorry")
    assert "could not be told" in done.text
    assert (await appointment(store, number)).status == "cancelled"


async def test_an_admin_moves_any_appointment_even_outside_hours_with_a_message(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    number = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [moved] = await chat(desk, ANNA).send(f"/move {number} {TUESDAY} 19:00 See you in the evening!")
    assert "The customer has been told by mail" in moved.text
    mail = (await mails_to(store, "kim@example.com"))[-1]
    assert "See you in the evening!" in mail.text and "SEQUENCE:1" in ics(mail)


async def test_staff_act_in_their_own_calendar_and_colleagues_with_the_right_in_any(desk, store):
    first = await offline_appointment(store, datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc))
    second = await offline_appointment(store, datetime(2026, 12, 8, 12, 0, tzinfo=timezone.utc))
    assert "could not be told" in (await chat(desk, LUKAS).send(f"/cancel {first}"))[0].text  # his own calendar
    assert "could not be told" in (await chat(desk, EVA).send(f"/cancel {second}"))[0].text  # book_for_colleagues
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    annas = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Anna")
    assert "no appointment" in (await chat(desk, LUKAS).send(f"/cancel {annas}"))[0].text


async def test_staff_and_admins_hear_of_new_bookings_in_their_own_language(desk, store):
    await chat(desk, LUKAS).send("/language en")
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    number = await book_and_confirm(desk, store, kim, "kim@example.com", f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [to_lukas] = await mails_to(store, LUKAS)
    [to_anna] = await mails_to(store, ANNA)
    assert to_lukas.channel == "telegram" and to_lukas.text.startswith(f"New online booking #{number}")
    assert to_anna.text.startswith(f"Neue Online-Buchung #{number}") and "Dienstag, 8. Dezember 2026" in to_anna.text
    assert await mails_to(store, EVA) == []  # an assistant is neither the staff member nor an admin


async def test_help_lists_the_booking_words_for_customers(desk, store):
    text = (await chat(desk, "telegram:5").send("/help"))[0].text
    for word in ("/book", "/bookings", "/cancel", "/move"):
        assert word in text




