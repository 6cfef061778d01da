"""The calendar for administrators and staff against a real store (SQLite and PostgreSQL).

The practice of examples/practice.toml: Anna (telegram:1001) owns it and has a calendar, Lukas
(telegram:1002) is a provider who may set his own hours, Eva (telegram:1003) is an assistant who
books for colleagues. The clock stands at Tuesday 2026-12-01 10:00 in Vienna.
"""
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import build_handlers
from handlers import calendar, welcome
from handlers.appointments import claim
from handlers.registry import Handlers
from handlers.router import Desk
from handlers.rules.availability import local_minute
from handlers.setup import apply_setup
from storage.models import (
    Address,
    Appointment,
    Audit,
    Business,
    Closure,
    OpeningHours,
    Outbox,
    Person,
    Service,
    SlotClaim,
    StaffHours,
)
from tests.helpers import Chat, count, ics, mails_to, person_of, practice_setup, rows

VIENNA = ZoneInfo("Europe/Vienna")
ANNA, LUKAS, EVA = "telegram:1001", "telegram:1002", "telegram:1003"
TUESDAY = "2026-12-08"  # Lukas works in Linz on Tuesdays, 08:00-12:00 and 13:00-18:00


# ---------------------------------------------------------------- helpers


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


def chat(desk, clock, sender, lang="en") -> Chat:
    return Chat(desk, clock, sender, lang)


async def lacking_right(person: Chat, text: str) -> str:
    """What `person` is told when the calendar refuses `text` for want of a right (the refusal checked by name)."""
    answer = await person.say(text)
    assert person.templates == ["calendar_denied"], (text, person.templates)
    return answer


async def add_customer(store, clock, name: str, email: str | None = None, language: str | None = "en") -> int:
    async with store.uow() as uow:
        person = Person(name=name, created_at=clock.now(), language=language)
        uow.session.add(person)
        await uow.session.flush()
        if email:
            uow.session.add(Address(address=f"email:{email}", kind="email", person_id=person.id, verified=True,
                                    created_at=clock.now()))
        await uow.commit()
        return person.id


async def book(store, clock, customer_id: int, staff: str, service: str, day: str, time: str,
               status: str = "confirmed") -> int:
    """Put an appointment into the calendar through the claim guard, as the booking flow would."""
    staff_id = await person_of(store, staff)
    hour, minute = map(int, time.split(":"))
    start = local_minute(date.fromisoformat(day), hour * 60 + minute, VIENNA)
    async with store.uow() as uow:
        row = await uow.session.scalar(select(Service).where(Service.name == service))
        appointment = Appointment(
            service_id=row.id, location_id=None, staff_id=staff_id, customer_id=customer_id, start_at=start,
            end_at=start + timedelta(minutes=row.minutes), status=status, sequence=0, channel="telegram",
            created_by="test", created_at=clock.now(),
            hold_expires_at=clock.now() + timedelta(minutes=10) if status == "held" else None)
        await claim(uow, appointment, clock.now())
        await uow.commit()
        return appointment.id


@pytest.fixture
async def maria(store, clock) -> int:
    return await add_customer(store, clock, "Maria Muster", "maria@example.com")


@pytest.fixture
async def otto(store, clock) -> int:
    return await add_customer(store, clock, "Otto Ohnemail")


# ---------------------------------------------------------------- services


async def test_services_list_minutes_colour_price_and_who_offers_them(desk, clock):
    text = await chat(desk, clock, LUKAS).say("/services")
    assert "🔵 Massage · 60 min · #2e86de · € 65.00 · by Anna Berger, Lukas Huber" in text
    assert "Erstberatung · 30 min · #f368e0 · by Anna Berger" in text


async def test_service_add_validates_and_refuses_duplicates(desk, store, clock):
    anna = chat(desk, clock, ANNA)
    assert "Added: 🟠 Lymph drainage · 45 min · #ff8800" in await anna.say('/service add "Lymph drainage" 45 #ff8800')
    assert "Lymph drainage · 45 min" in await anna.say("/services")
    assert 'already a service called "Massage"' in await anna.say("/service add massage 30")
    assert '"#zz" is not a colour' in await anna.say("/service add Foo 30 #zz")
    assert '"blue" is not a colour' in await anna.say("/service add Foo 30 blue")
    assert '"7" is not a length in minutes' in await anna.say("/service add Foo 7")
    assert "Usage: service add NAME MINUTES" in await anna.say("/service add Foo abc")
    assert await count(store, Service, Service.name == "Foo") == 0
    assert [a.action for a in await rows(store, Audit, Audit.action == "service_added")] == ["service_added"]


async def test_a_new_services_length_ends_with_one_full_stop(desk, store, clock):
    german = await chat(desk, clock, ANNA, lang="de").say("/service add Sauna 20")
    assert german.splitlines()[0].endswith("Sauna · 20 Min.") and "Min.." not in german
    english = await chat(desk, clock, ANNA).say("/service add Kneipp 20 #00ff00")
    assert english.splitlines()[0].endswith("Kneipp · 20 min · #00ff00")


async def test_a_new_service_becomes_bookable_once_staff_offer_it(desk, store, clock):
    anna, maria = chat(desk, clock, ANNA), chat(desk, clock, "telegram:5")
    added = await anna.say('/service add "Lymph drainage" 45')
    assert "Who offers it: /service staff Lymph drainage: NAME, NAME" in added
    assert "Lymph drainage · 45 min · nobody offers it yet" in await anna.say("/services")
    await maria.say("/book")
    assert "Lymph drainage" not in maria.labels()

    assert "Lymph drainage: offered by Anna Berger, Lukas Huber." in await anna.say(
        "/service staff lymph drainage: Lukas, Anna Berger")
    assert "by Anna Berger, Lukas Huber" in await anna.say("/services")
    await maria.say("/book")
    assert "Lymph drainage" in maria.labels()

    assert "Lymph drainage: offered by Lukas Huber." in await anna.say("/service staff Lymph drainage: Lukas")
    assert "nobody offers it now" in await anna.say("/service staff Lymph drainage: nobody")
    [last] = (await rows(store, Audit, Audit.action == "service_staff_set"))[-1:]
    assert last.detail == {"name": "Lymph drainage", "staff": []}


async def test_setting_who_offers_a_service_says_what_is_wrong(desk, store, clock):
    anna = chat(desk, clock, ANNA)
    assert 'do not know a staff member "Otto"' in await anna.say("/service staff Massage: Lukas, Otto")
    assert "Eva Wimmer has no calendar of their own" in await anna.say("/service staff Massage: Eva")
    assert 'do not know the service "Sauna"' in await anna.say("/service staff Sauna: Lukas")
    usage = await anna.say("/service staff Massage Lukas")
    assert "Usage: service add NAME MINUTES" in usage and "service staff NAME: STAFF" in usage
    assert "Usage:" in await anna.say("/service staff Massage:")
    assert "by Anna Berger, Lukas Huber" in await anna.say("/services")  # nothing changed
    assert "right to change settings" in await lacking_right(chat(desk, clock, LUKAS), "/service staff Massage: Lukas")


async def test_a_provider_without_the_settings_right_cannot_add_services(desk, store, clock):
    text = await lacking_right(chat(desk, clock, LUKAS), "/service add Sauna 30")
    assert '"service"' in text and "right to change settings" in text
    assert await count(store, Service, Service.name == "Sauna") == 0
    [denied] = await rows(store, Audit, Audit.action == "denied")
    assert (denied.actor, denied.subject, denied.detail["need"]) == (LUKAS, "service", "settings")


async def test_service_delete_asks_first_and_past_appointments_keep_the_service(desk, store, clock, maria):
    past = await book(store, clock, maria, LUKAS, "Massage", "2026-11-24", "09:00")
    future = await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "09:00")
    anna = chat(desk, clock, ANNA)
    question = await anna.say("/service delete Massage")
    assert "cannot be undone" in question and "1 future appointment" in question and f"#{future} " in question
    assert anna.labels() == ["Confirm", "Abort"]
    assert "Nothing was changed" in await anna.click("Abort")
    assert (await rows(store, Service, Service.name == "Massage"))[0].deleted_at is None
    await anna.say("/service delete massage")
    assert "can no longer be booked" in await anna.click("Confirm")
    assert (await rows(store, Service, Service.name == "Massage"))[0].deleted_at == clock.now()
    assert "Massage" not in await anna.say("/services")
    kept = {a.id: a for a in await rows(store, Appointment)}
    assert kept[past].service_id == kept[future].service_id and kept[future].status == "confirmed"
    assert 'do not know the service "Massage"' in await anna.say(f"/appoint Otto Massage {TUESDAY} 15:00 Lukas")
    assert "Brought back" in await anna.say("/service add Massage 60 #2e86de")


# ---------------------------------------------------------------- hours


async def test_hours_for_a_location_and_show_the_week(desk, store, clock):
    anna = chat(desk, clock, ANNA)
    text = await anna.say("/hours Wels fri 09:00-12:00,13:00-17:00")
    assert "Opening hours of Wels" in text and "Fri: 09:00–12:00, 13:00–17:00" in text and "Tue: 09:00–17:00" in text
    assert await count(store, OpeningHours, OpeningHours.weekday == 4) == 3  # two in Wels, one in Linz
    assert "Fri: closed" in await anna.say("/hours Wels fr -")
    assert "Opening hours of Linz" in await anna.say("/hours")


async def test_hours_of_staff_follow_the_own_hours_right(desk, store, clock):
    lukas = chat(desk, clock, LUKAS)
    text = await lukas.say("/hours Lukas Linz sat 09:00-12:00")
    assert "Bookable times of Lukas Huber at Linz" in text and "Sat: 09:00–12:00" in text
    lukas_id = await person_of(store, LUKAS)
    assert await count(store, StaffHours, StaffHours.person_id == lukas_id, StaffHours.weekday == 5) == 1
    assert "may not" in await lacking_right(lukas, "/hours Anna Linz sat 09:00-12:00")
    assert "right to change settings" in await lacking_right(lukas, "/hours Linz sat 09:00-12:00")
    assert "Anna Berger already works at Linz" in await chat(desk, clock, ANNA).say("/hours Anna Wels mon 09:00-10:00")


async def test_hours_bad_inputs_are_explained(desk, clock):
    anna = chat(desk, clock, ANNA)
    assert 'do not know the location "Graz"' in await anna.say("/hours Graz mon 08:00-12:00")
    assert '"xyz" is not a weekday' in await anna.say("/hours Linz xyz 08:00-12:00")
    assert '"12:00-08:00" is not a valid time range' in await anna.say("/hours Linz mon 12:00-08:00")
    assert "overlap" in await anna.say("/hours Linz mon 08:00-12:00,11:00-13:00")
    assert 'do not know a staff member "Kim"' in await anna.say("/hours Kim Linz mon 08:00-12:00")


# ---------------------------------------------------------------- appoint


async def test_appoint_outside_hours_creates_an_unknown_customer(desk, store, clock):
    text = await chat(desk, clock, ANNA).say(f'/appoint "Neue Kundin" Massage {TUESDAY} 19:00 Lukas')
    assert "Booked:" in text and "Neue Kundin is a new customer" in text and "no confirmed email" in text
    [row] = await rows(store, Appointment)
    customer = (await rows(store, Person, Person.id == row.customer_id))[0]
    assert customer.name == "Neue Kundin"
    assert (row.status, row.created_by, row.channel) == ("confirmed", ANNA, "telegram")
    assert row.end_at - row.start_at == timedelta(minutes=60)
    assert row.start_at.astimezone(VIENNA).hour == 19
    assert await count(store, SlotClaim, SlotClaim.appointment_id == row.id) == 12
    [note] = await rows(store, Outbox, Outbox.recipient == LUKAS)  # Lukas hears it, in the business language
    assert "Anna Berger hat einen Termin in Ihren Kalender eingetragen" in note.text


async def test_appoint_a_known_customer_mails_the_invitation(desk, store, clock, maria):
    text = await chat(desk, clock, EVA).say(f"/appoint Maria Muster Heilgymnastik {TUESDAY} 10:00 Lukas")
    assert "confirmation by email" in text
    [mail] = await mails_to(store, "maria@example.com")
    assert "Heilgymnastik" in mail.text and "METHOD:REQUEST" in ics(mail)
    [row] = await rows(store, Appointment)
    assert row.customer_id == maria and row.location_id is not None


async def test_appoint_over_another_appointment_is_refused_naming_it(desk, store, clock, maria, otto):
    taken = await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "09:00")
    people = await count(store, Person)
    text = await chat(desk, clock, ANNA).say(f'/appoint "Somebody New" Erstberatung {TUESDAY} 09:30 Lukas')
    assert "That time is taken" in text and f"#{taken} " in text and "9:00" in text and "Nothing was booked" in text
    assert await count(store, Appointment) == 1 and await count(store, Person) == people


async def test_appoint_follows_the_booking_rights(desk, store, clock, otto):
    assert "book for colleagues" in await chat(desk, clock, LUKAS).say(f"/appoint #{otto} Massage {TUESDAY} 09:00 Anna")
    assert "Booked:" in await chat(desk, clock, LUKAS).say(f"/appoint #{otto} Massage {TUESDAY} 09:00")
    assert "Whose calendar?" in await chat(desk, clock, EVA).say(f"/appoint #{otto} Massage {TUESDAY} 11:00")
    assert "Booked:" in await chat(desk, clock, EVA).say(f"/appoint #{otto} Massage {TUESDAY} 11:00 Lukas")
    assert "has no calendar" in await chat(desk, clock, ANNA).say(f"/appoint #{otto} Massage {TUESDAY} 11:00 Eva")


async def test_a_customer_typing_appoint_is_refused_and_the_attempt_logged(desk, store, clock):
    customer = chat(desk, clock, "telegram:5001")
    text = await customer.say(f"/appoint Kim Massage {TUESDAY} 09:00")
    assert customer.templates == ["not_allowed"] and '"appoint"' in text
    [denied] = await rows(store, Audit, Audit.action == "denied")
    assert (denied.actor, denied.subject) == ("telegram:5001", "appoint")
    assert await count(store, Appointment) == 0


async def test_appoint_bad_inputs_are_explained(desk, store, clock):
    anna = chat(desk, clock, ANNA)
    assert "5-minute step" in await anna.say(f"/appoint Kim Massage {TUESDAY} 09:03 Lukas")
    assert "in the past" in await anna.say("/appoint Kim Massage 2026-11-30 09:00 Lukas")
    assert 'do not know the service "Sauna"' in await anna.say(f"/appoint Kim Sauna {TUESDAY} 09:00 Lukas")
    missing = await anna.say("/appoint Kim Massage 2026-02-30 09:00 Lukas")
    assert "There is no day 2026-02-30: February 2026 has 28 days" in missing
    assert '"25:00" is not a time' in await anna.say(f"/appoint Kim Massage {TUESDAY} 25:00 Lukas")
    assert "There is no customer #999" in await anna.say(f"/appoint #999 Massage {TUESDAY} 09:00 Lukas")
    assert await count(store, Person, Person.name == "Kim") == 0


async def test_appoint_asks_which_customer_when_names_repeat(desk, store, clock):
    first = await add_customer(store, clock, "Kim Lee", "kim1@example.com")
    await add_customer(store, clock, "kim lee")
    anna = chat(desk, clock, ANNA)
    text = await anna.say(f"/appoint Kim Lee Massage {TUESDAY} 09:00 Lukas")
    assert "more than one customer" in text and "kim1@example.com" in text
    assert await count(store, Appointment) == 0
    assert "Booked:" in await anna.click(f"#{first} Kim Lee")
    assert (await rows(store, Appointment))[0].customer_id == first


# ---------------------------------------------------------------- day and week


async def test_day_shows_colours_the_red_lock_requests_and_closures(desk, store, clock, maria, otto):
    held = await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "09:00", status="held")
    await book(store, clock, otto, LUKAS, "Heilgymnastik", TUESDAY, "10:00", status="requested")
    await book(store, clock, otto, ANNA, "Erstberatung", TUESDAY, "10:00")
    anna = chat(desk, clock, ANNA)
    assert "Closed for online booking" in await anna.say(f"/pause {TUESDAY} 12:00-13:00 Lukas")
    text = await anna.say(f"/day {TUESDAY}")
    assert "Tuesday, December 8, 2026" in text
    assert f"🔵 Massage · Maria Muster · Lukas Huber · 🔒 held, waiting for the code · #{held}" in text
    assert "🟢 Heilgymnastik · Otto Ohnemail · Lukas Huber · ❓ request" in text
    assert "🟣 Erstberatung · Otto Ohnemail · Anna Berger" in text and "✓ confirmed" in text
    assert "⛔ pause · Lukas Huber" in text
    clock.advance(minutes=11)  # past the hold, the slot is free and the lock gone
    assert "🔒" not in await anna.say(f"/day {TUESDAY}")


async def test_staff_see_their_own_calendar_and_admins_filter(desk, store, clock, otto):
    await book(store, clock, otto, LUKAS, "Massage", TUESDAY, "09:00")
    await book(store, clock, otto, ANNA, "Erstberatung", TUESDAY, "10:00")
    lukas = chat(desk, clock, LUKAS)
    own = await lukas.say(f"/day {TUESDAY}")
    assert "Calendar of Lukas Huber" in own and "Massage" in own and "Erstberatung" not in own
    assert "only your own calendar" in await lacking_right(lukas, f"/day {TUESDAY} Anna")
    assert "Erstberatung" not in await chat(desk, clock, ANNA).say(f"/day {TUESDAY} Lukas")
    assert "Erstberatung" in await chat(desk, clock, EVA).say(f"/tag {TUESDAY}")


async def test_week_runs_monday_to_sunday(desk, store, clock, otto):
    await book(store, clock, otto, LUKAS, "Massage", "2026-12-10", "09:00")
    text = await chat(desk, clock, ANNA).say(f"/week {TUESDAY}")
    assert text.index("Monday, December 7, 2026") < text.index("Massage") < text.index("Sunday, December 13, 2026")
    assert text.count("nothing booked") == 6
    german = await chat(desk, clock, ANNA, lang="de").say("/woche 2026-12-10")
    assert "Donnerstag, 10. Dezember 2026" in german and "✓ fix" in german


# ---------------------------------------------------------------- closures


async def test_off_lists_affected_appointments_and_abort_changes_nothing(desk, store, clock, maria, otto):
    first = await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "09:00")
    await book(store, clock, otto, LUKAS, "Massage", "2026-12-10", "14:00")
    lukas = chat(desk, clock, LUKAS)
    question = await lukas.say(f"/off sick {TUESDAY} 2026-12-10")
    assert "2 appointment(s) fall inside" in question and f"#{first} " in question and "Otto Ohnemail" in question
    assert lukas.labels() == ["Confirm", "Abort"]
    keyboard = lukas.choices
    assert "Nothing was changed" in await lukas.click("Abort")
    assert await count(store, Closure) == 0
    assert {a.status for a in await rows(store, Appointment)} == {"confirmed"}
    lukas.choices = keyboard
    assert "no longer open" in await lukas.click("Confirm")  # the old keyboard is dead
    assert await count(store, Closure) == 0


async def test_off_confirm_cancels_all_and_mails_the_message_to_customers_with_email(desk, store, clock, maria, otto):
    await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "09:00")
    await book(store, clock, otto, LUKAS, "Heilgymnastik", TUESDAY, "14:00")
    untouched = await book(store, clock, otto, ANNA, "Massage", TUESDAY, "09:00")
    lukas = chat(desk, clock, LUKAS)
    await lukas.say(f"/off sick {TUESDAY}")
    text = await lukas.click("Confirm")
    assert "2 appointment(s) cancelled" in text and "personal message" in text and lukas.labels() == ["No message"]
    cancelled = await rows(store, Appointment, Appointment.status == "cancelled")
    assert {(a.closed_by, a.closed_reason) for a in cancelled} == {(LUKAS, "sick")} and len(cancelled) == 2
    assert await count(store, SlotClaim, SlotClaim.appointment_id.in_([a.id for a in cancelled])) == 0
    [closure] = await rows(store, Closure)
    assert (closure.kind, closure.staff_id) == ("sick", await person_of(store, LUKAS))
    assert (await rows(store, Appointment, Appointment.id == untouched))[0].status == "confirmed"
    report = await lukas.say("I am ill, sorry. Please book again next week.")
    [mail] = await mails_to(store, "maria@example.com")
    assert "I am ill, sorry." in mail.text and "METHOD:CANCEL" in ics(mail) and mail.subject.startswith("Cancelled")
    assert "1 customer(s) were told by email, with your message" in report
    assert "could NOT be told" in report and "Otto Ohnemail" in report
    assert await count(store, Outbox, Outbox.channel == "email") == 1
    actions = [a.action for a in await rows(store, Audit)]
    assert actions.count("appointment_cancelled") == 2 and "closure_created" in actions
    assert "closure_customers_told" in actions


async def test_pause_with_no_message_still_tells_the_customers(desk, store, clock, maria):
    await book(store, clock, maria, ANNA, "Erstberatung", TUESDAY, "12:00")
    anna = chat(desk, clock, ANNA, lang="de")
    question = await anna.say(f"/pause {TUESDAY} 12:00-13:00 alle")
    assert "werden storniert" in question and anna.labels() == ["Bestätigen", "Abbrechen"]
    await anna.click("Bestätigen")
    assert "benachrichtigt" in await anna.click("Keine Nachricht")
    [mail] = await mails_to(store, "maria@example.com")
    assert "METHOD:CANCEL" in ics(mail)
    [closure] = await rows(store, Closure)
    assert (closure.kind, closure.staff_id) == ("pause", None)


async def test_a_closure_without_appointments_is_made_at_once(desk, store, clock):
    text = await chat(desk, clock, ANNA).say("/off vacation 2026-12-21 2026-12-24 all")
    assert "Closed for online booking: ⛔ vacation · whole business · Dec 21, 2026 – Dec 24, 2026, all day" in text
    [closure] = await rows(store, Closure)
    assert closure.start_at.astimezone(VIENNA).isoformat() == "2026-12-21T00:00:00+01:00"
    assert closure.end_at.astimezone(VIENNA).isoformat() == "2026-12-25T00:00:00+01:00"


async def test_a_booking_made_while_asking_is_shown_before_cancelling(desk, store, clock, maria, otto):
    await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "09:00")
    lukas = chat(desk, clock, LUKAS)
    await lukas.say(f"/off sick {TUESDAY}")
    await book(store, clock, otto, LUKAS, "Massage", TUESDAY, "15:00")
    again = await lukas.click("Confirm")
    assert "New bookings arrived" in again and "Otto Ohnemail" in again
    assert await count(store, Appointment, Appointment.status == "cancelled") == 0
    assert "2 appointment(s) cancelled" in await lukas.click("Confirm")


async def test_a_new_question_first_tells_customers_still_waiting_for_news(desk, store, clock, maria):
    await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "09:00")
    await book(store, clock, maria, LUKAS, "Massage", "2026-12-10", "09:00")
    lukas = chat(desk, clock, LUKAS)
    await lukas.say(f"/off sick {TUESDAY}")
    await lukas.click("Confirm")
    text = await lukas.say("/off sick 2026-12-10")  # the message for the first closure never came
    assert "were told by email" in text and "1 appointment(s) fall inside" in text
    assert len(await mails_to(store, "maria@example.com")) == 1


async def test_closures_follow_the_rights(desk, store, clock):
    assert "only administrators" in await lacking_right(chat(desk, clock, LUKAS), f"/off sick {TUESDAY} Anna")
    assert "only administrators" in await lacking_right(chat(desk, clock, LUKAS), f"/pause {TUESDAY} 12:00-13:00 all")
    assert "no calendar of your own" in await lacking_right(chat(desk, clock, EVA), f"/off sick {TUESDAY}")
    assert await count(store, Closure) == 0
    assert await count(store, Audit, Audit.action == "denied") == 3


async def test_closure_bad_inputs_are_explained(desk, clock):
    lukas = chat(desk, clock, LUKAS)
    assert '"holidays" is not a kind of absence' in await lukas.say(f"/off holidays {TUESDAY}")
    assert "is before the first" in await lukas.say("/off sick 2026-12-09 2026-12-08")
    assert '"13:00-12:00" is not a valid time range' in await lukas.say(f"/pause {TUESDAY} 13:00-12:00")
    assert "in the past" in await lukas.say("/off sick 2026-11-30")


# ---------------------------------------------------------------- mode and requests


async def test_mode_switches_between_direct_and_request(desk, store, clock):
    anna = chat(desk, clock, ANNA)
    assert "book directly" in await anna.say("/mode")
    assert "Changed: customers send booking requests" in await anna.say("/mode request")
    assert (await rows(store, Business))[0].booking_mode == "request"
    assert "right to change settings" in await lacking_right(chat(desk, clock, LUKAS), "/mode direct")
    assert "Geändert: Kunden buchen direkt" in await chat(desk, clock, ANNA, lang="de").say("/modus direkt")
    assert '"sometimes" is not a booking mode' in await anna.say("/mode sometimes")
    assert [a.subject for a in await rows(store, Audit, Audit.action == "booking_mode_set")] == ["request", "direct"]


async def test_requests_are_approved_and_rejected_and_the_customer_told(desk, store, clock, maria):
    first = await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "09:00", status="requested")
    second = await book(store, clock, maria, LUKAS, "Massage", TUESDAY, "14:00", status="requested")
    anna = chat(desk, clock, ANNA)
    listing = await anna.say("/requests")
    assert f"#{first} " in listing and f"#{second} " in listing
    assert anna.labels() == [f"✓ #{first}", f"✗ #{first}", f"✓ #{second}", f"✗ #{second}"]
    assert "Approved:" in await anna.click(f"✓ #{first}")
    text = await anna.say(f"/reject {second} Fully booked that afternoon")
    assert "Rejected:" in text and "with your reason" in text
    status = {a.id: a for a in await rows(store, Appointment)}
    assert status[first].status == "confirmed" and status[second].status == "rejected"
    assert status[second].closed_reason == "Fully booked that afternoon" and status[second].closed_by == ANNA
    approved, rejected = sorted(await mails_to(store, "maria@example.com"), key=lambda m: m.id)
    assert approved.subject.startswith("Confirmed") and "METHOD:REQUEST" in ics(approved)
    assert "Fully booked that afternoon" in rejected.text and not rejected.attachments
    assert "No requests are waiting" in await anna.say("/requests")
    assert "not waiting for an answer" in await anna.say(f"/approve {second}")
    assert "Booked:" in await anna.say(f"/appoint #{maria} Massage {TUESDAY} 14:00 Lukas")  # the time is free


async def test_a_customer_without_a_language_is_written_to_in_the_business_language(desk, store, clock):
    silent = await add_customer(store, clock, "Vera Viel", "vera@example.com", language=None)
    await chat(desk, clock, ANNA).say(f"/appoint #{silent} Massage {TUESDAY} 09:00 Lukas")
    [mail] = await mails_to(store, "vera@example.com")
    assert mail.subject.startswith("Ihr Termin")  # the practice speaks German; the admin's English does not leak


async def test_staff_answer_only_requests_in_their_own_calendar(desk, store, clock, otto):
    annas = await book(store, clock, otto, ANNA, "Massage", TUESDAY, "09:00", status="requested")
    lukas_own = await book(store, clock, otto, LUKAS, "Massage", TUESDAY, "09:00", status="requested")
    lukas = chat(desk, clock, LUKAS)
    listing = await lukas.say("/requests")
    assert f"#{lukas_own} " in listing and f"#{annas} " not in listing
    assert "staff member concerned" in await lukas.say(f"/approve {annas}")
    assert "tell them yourself" in await lukas.say(f"/approve {lukas_own}")
    assert "There is no appointment 999" in await lukas.say("/approve 999")


# ---------------------------------------------------------------- help


async def test_help_lists_calendar_words_by_role(desk, store, config, clock):
    desk = Desk(store, config, Handlers.combine(welcome.handlers(), calendar.handlers()), clock)  # only our words
    staff = await chat(desk, clock, LUKAS).say("/help")
    assert "/day" in staff and "/off" in staff and "/appoint" in staff and "calendar-confirm" not in staff
    customer = await chat(desk, clock, "telegram:5001").say("/help")
    assert "/day" not in customer and "/appoint" not in customer
    german = await chat(desk, clock, ANNA, lang="de").say("/help")
    assert "ganze Tage schließen" in german


async def test_an_id_too_long_for_the_database_is_unknown_not_a_crash(desk, clock):
    anna = chat(desk, clock, ANNA)
    for text in ("/approve 99999999999", "/reject 99999999999", "/cancel 99999999999",
                 "/move 99999999999 2026-12-08 10:00", "/customer 99999999999", "/ticket 99999999999",
                 "/member 99999999999", "/booking note 99999999999 x"):
        answer = await anna.say(text)
        assert "went wrong" not in answer, (text, answer)


async def test_odd_digits_and_huge_customer_numbers_are_answered_not_a_crash(desk, store, clock):
    anna = chat(desk, clock, ANNA)
    assert '"²" is not an appointment number' in await anna.say("/approve ²")
    assert '"²" is not an appointment number' in await anna.say("/reject ²")
    assert '"²" is not a length in minutes' in await anna.say("/service add Sauna ²")
    answer = await anna.say(f"/appoint #99999999999999999999 Massage {TUESDAY} 09:00 Lukas")
    assert "There is no customer #99999999999999999999" in answer
    assert "went wrong" not in await anna.say("/audit ²")


async def test_audit_filter_takes_wildcards_literally(desk, store, clock):
    anna = chat(desk, clock, ANNA)
    await anna.say("/mode request")
    assert "booking_mode_set" in await anna.say("/audit mode")
    assert "The audit log is empty" in await anna.say("/audit %")  # not "everything"
    assert "The audit log is empty" in await anna.say("/audit booking_mode_se_")  # _ is not "any character"
    assert "booking_mode_set" in await anna.say("/audit booking_mode_set")


async def test_dates_at_the_ends_of_the_calendar_are_refused_clearly(desk, store, clock, maria):
    anna = chat(desk, clock, ANNA)
    for text in ("/day 9999-12-31", "/week 0001-01-01", "/off sick 9999-12-31", "/off sick 2026-12-08 9999-12-31",
                 "/pause 0001-01-01 00:00-01:00", f"/appoint #{maria} Massage 9999-12-31 23:00 Lukas"):
        answer = await anna.say(text)
        assert "too far from today" in answer and "2000" in answer and "2100" in answer, (text, answer)
    german = await chat(desk, clock, ANNA, lang="de").say("/tag 9999-12-31")
    assert "zu weit von heute entfernt" in german
    assert await count(store, Appointment) == 0 and await count(store, Closure) == 0
