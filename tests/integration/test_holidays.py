"""Public holidays close the demo practice (AT-4, Upper Austria) for online booking, on SQLite and PostgreSQL.

Tuesday 8 December 2026 is Mariä Empfängnis (Immaculate Conception). Lukas works in Linz on Tuesdays,
Thursdays and Fridays, Anna in Wels on Tuesdays and in Linz on Mondays and Wednesdays.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.app import build_handlers
from handlers.appointments import claim
from handlers.booking.catalog import CHUNK_DAYS, Scope, free_days, free_times
from handlers.booking.rules import Rules, booking_rules
from handlers.homepage import free_times as homepage_times
from handlers.router import Desk
from handlers.setup import SetupSpec, apply_setup
from storage.models import Appointment, Business, Location, Person, Service
from tests.helpers import Chat, add_admin, code_for, count, labels, practice_setup, rows

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
HOLIDAY = "2026-12-08"
ANNA, LUKAS = "telegram:1001", "telegram:1002"


async def open_desk(store, config, clock, spec: SetupSpec) -> Desk:
    clock.current = MONDAY
    async with store.uow() as uow:
        await apply_setup(uow, spec, clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    """The demo practice as shipped, holidays included."""
    return await open_desk(store, config, clock, practice_setup(holidays=True))


@pytest.fixture
async def wels_in_berlin(store, config, clock) -> Desk:
    """The practice with Wels following Berlin's holidays (no 8 December) while Linz keeps Upper Austria's."""
    spec = practice_setup(holidays=True)
    spec = replace(spec, locations=tuple(replace(loc, holidays="DE-BE") if loc.name == "Wels" else loc
                                         for loc in spec.locations))
    return await open_desk(store, config, clock, spec)


def chat(desk: Desk, sender: str, lang: str = "en") -> Chat:
    return Chat(desk, desk.clock, sender, lang)


async def customer(desk: Desk, store, sender: str, email: str, lang: str = "en") -> Chat:
    """A customer whose email address is verified."""
    person = chat(desk, sender, lang)
    await person.send(f"/email {email}")
    await person.send(await code_for(store, email))
    return person


# ---- the walk ----------------------------------------------------------------------------------


async def test_the_walk_never_offers_a_holiday_for_linz(desk, store):
    kim = chat(desk, "telegram:5")
    [services] = await kim.send("/book")
    [where] = await kim.tap(services, "Massage")
    [whom] = await kim.tap(where, "Linz")
    [days] = await kim.tap(whom, "Lukas Huber")
    offered = labels(days)
    assert offered[:3] == ["Thu 10 Dec", "Fri 11 Dec", "Tue 15 Dec"]
    assert "Thu 24 Dec" in offered and "Fri 25 Dec" not in offered  # Christtag
    assert len(offered) == 10 and not any(label.startswith("Tue 8 Dec") for label in offered)
    [days] = await kim.send("/book Massage at Linz with any")
    assert labels(days)[:2] == ["Mon 7 Dec", "Wed 9 Dec"]  # Anna on Monday, nobody on the holiday


async def lukas_massage_in_linz(uow) -> tuple[Rules, Scope]:
    """The booking rules on Monday and the scope of a massage with Lukas in Linz."""
    business = await uow.session.get(Business, 1)
    massage = await uow.session.scalar(select(Service).where(Service.name == "Massage"))
    linz = await uow.session.scalar(select(Location.id).where(Location.name == "Linz"))
    lukas = await uow.session.scalar(select(Person.id).where(Person.name == "Lukas Huber"))
    return booking_rules(business, MONDAY), Scope(massage, (linz,), (lukas,))


async def test_free_times_used_by_every_channel_are_empty_on_a_holiday(desk, store):
    async with store.uow() as uow:
        rules, scope = await lukas_massage_in_linz(uow)
        assert await free_times(uow, rules, scope, date(2026, 12, 8)) == []
        assert len(await free_times(uow, rules, scope, date(2026, 12, 10))) > 0
        assert date(2026, 12, 8) not in await free_days(uow, rules, scope, limit=30)


async def test_free_days_read_in_chunks_are_the_days_that_have_free_times(desk, store):
    """The day list reads two weeks at a time: across those edges, with a holiday, Christmas and a fully booked
    day, it is exactly the days whose own free times are not empty, in order."""
    async with store.uow() as uow:
        rules, scope = await lukas_massage_in_linz(uow)
        full = rules.first_day + timedelta(days=CHUNK_DAYS - 1)  # the last day of the first read: a Sunday
        full += timedelta(days=(3 - full.weekday()) % 7)  # the Thursday after it, booked from 08:00 to 19:00
        start = datetime(full.year, full.month, full.day, 7, 0, tzinfo=timezone.utc)
        lukas = scope.staff_ids[0]
        await claim(uow, Appointment(service_id=scope.service.id, location_id=scope.location_ids[0], staff_id=lukas,
                                     customer_id=lukas, start_at=start, end_at=start.replace(hour=18),
                                     status="confirmed", sequence=0, channel="console", created_by="test",
                                     created_at=MONDAY), MONDAY)
        days = [rules.first_day + timedelta(days=i) for i in range((rules.last_day - rules.first_day).days + 1)]
        expected = [day for day in days if await free_times(uow, rules, scope, day)]
        assert full not in expected and date(2026, 12, 8) not in expected
        assert await free_days(uow, rules, scope, limit=len(days)) == expected
        assert await free_days(uow, rules, scope) == expected[:10]


async def test_a_location_with_its_own_holidays_stays_open(wels_in_berlin, store):
    kim = await customer(wels_in_berlin, store, "telegram:5", "kim@example.com")
    [days] = await kim.send("/book Massage at Wels with Anna Berger")
    assert labels(days)[0] == "Tue 8 Dec"  # Berlin knows no 8 December
    [days] = await kim.send("/book Massage at Linz with Lukas Huber")
    assert labels(days)[0] == "Thu 10 Dec"
    [held] = await kim.send(f"/book Massage {HOLIDAY} 10:00")  # any staff, any location: Anna in Wels
    assert "I am holding" in held.text and "Wels" in held.text
    [refused] = await chat(wels_in_berlin, "telegram:6").send(f"/book Massage {HOLIDAY} 10:00 Lukas Huber")
    assert "Immaculate Conception" in refused.text  # Lukas works only in Linz


# ---- the typed form and move ---------------------------------------------------------------


async def test_the_typed_form_refuses_a_holiday_by_its_name_in_english(desk, store):
    kim = chat(desk, "telegram:5")
    [refused] = await kim.send(f"/book Massage {HOLIDAY} 10:00 Lukas Huber")
    assert refused.template == "booking_holiday"
    assert "public holiday (Immaculate Conception)" in refused.text
    assert labels(refused)[0] == "Thu 10 Dec"  # the next days with free times instead
    [tapped] = await kim.tap(refused, "Thu 10 Dec")
    assert tapped.template == "booking_pick_time"
    [refused] = await kim.send(f"/book Massage at Linz with Lukas Huber on {HOLIDAY}")  # a day without a time
    assert "Immaculate Conception" in refused.text
    [refused] = await kim.send(f"/book Massage {HOLIDAY} 10:00")  # anyone, anywhere: both places are closed
    assert "Immaculate Conception" in refused.text
    assert await count(store, Appointment) == 0


async def test_the_typed_form_refuses_a_holiday_by_its_name_in_german(desk, store):
    kim = chat(desk, "telegram:5", lang="de")
    [refused] = await kim.send(f"/buchen Massage {HOLIDAY} 10:00 Lukas Huber")
    assert "Feiertag (Mariä Empfängnis)" in refused.text
    assert labels(refused)[0] == "Do. 10. Dez."
    assert await count(store, Appointment) == 0


async def test_a_day_the_staff_do_not_work_is_not_blamed_on_a_holiday(desk, store):
    [refused] = await chat(desk, "telegram:5").send("/book Massage 2026-12-26 10:00 Lukas Huber")  # Saturday
    assert refused.template == "booking_not_free"


async def test_a_customer_cannot_move_onto_a_holiday(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send("/book Massage 2026-12-10 10:00 Lukas Huber")
    confirmed = (await kim.send(await code_for(store, "kim@example.com")))[0].text
    number = int(confirmed.split("(#")[1].split(")")[0])
    [days] = await kim.send(f"/move {number}")
    assert "Tue 8 Dec" not in labels(days)
    [refused] = await kim.send(f"/move {number} {HOLIDAY} 10:00")
    assert refused.template == "booking_holiday" and "Immaculate Conception" in refused.text
    [refused] = await kim.send(f"/move {number} {HOLIDAY}")
    assert refused.template == "booking_holiday"
    [row] = await rows(store, Appointment)
    assert row.start_at == datetime(2026, 12, 10, 9, 0, tzinfo=timezone.utc) and row.sequence == 0


async def test_an_admin_may_move_onto_a_holiday_and_is_warned(desk, store):
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send("/book Massage 2026-12-10 10:00 Lukas Huber")
    confirmed = (await kim.send(await code_for(store, "kim@example.com")))[0].text
    number = int(confirmed.split("(#")[1].split(")")[0])
    [moved] = await chat(desk, ANNA).send(f"/move {number} {HOLIDAY} 10:00")
    assert "is now on" in moved.text and "public holiday (Immaculate Conception)" in moved.text
    [row] = await rows(store, Appointment)
    assert row.start_at == datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)


# ---- staff: appoint, hours, day, week ------------------------------------------------------


async def test_appoint_on_a_holiday_books_with_a_warning(desk, store):
    text = await chat(desk, ANNA).say(f"/appoint Otto Massage {HOLIDAY} 10:00 Lukas")
    assert "Booked:" in text and "public holiday (Immaculate Conception)" in text
    [row] = await rows(store, Appointment)
    assert row.status == "confirmed" and row.start_at == datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)
    text = await chat(desk, ANNA, lang="de").say(f"/appoint Otto Massage {HOLIDAY} 12:00 Lukas")
    assert "Feiertag (Mariä Empfängnis)" in text
    assert "Feiertag" not in await chat(desk, ANNA, lang="de").say("/appoint Otto Massage 2026-12-10 10:00 Lukas")


async def test_hours_show_the_coming_holidays(desk, store):
    text = await chat(desk, ANNA).say("/hours")
    linz = text.split("Opening hours of Linz:")[1].split("Opening hours of Wels:")[0]
    assert "Closed on public holidays (AT-4), until Feb 5, 2027:" in linz
    assert "· Dec 8, 2026: Immaculate Conception" in linz and "· Jan 6, 2027: Epiphany" in linz
    german = await chat(desk, ANNA, lang="de").say("/hours")
    assert "An Feiertagen (AT-4) geschlossen, bis 05.02.2027:" in german and "· 08.12.2026: Mariä Empfängnis" in german


async def test_day_and_week_show_the_holiday(desk, store):
    anna = chat(desk, ANNA)
    day = await anna.say(f"/day {HOLIDAY}")
    assert "⛔ Public holiday · Immaculate Conception · Linz, Wels" in day
    week = await anna.say(f"/week {HOLIDAY}")
    monday, tuesday = week.split("Tuesday, December 8, 2026")
    assert "Immaculate Conception" not in monday
    assert tuesday.split("Wednesday")[0].count("Immaculate Conception") == 1
    assert "Immaculate Conception" not in await anna.say("/day 2026-12-09")


async def test_a_holiday_only_in_one_location_names_it(wels_in_berlin, store):
    day = await chat(wels_in_berlin, ANNA).say(f"/day {HOLIDAY}")
    assert "⛔ Public holiday · Immaculate Conception · Linz\n" in day + "\n"
    epiphany = await chat(wels_in_berlin, ANNA).say("/day 2027-01-06")
    assert "Epiphany · Linz\n" in epiphany + "\n"


async def test_without_a_holiday_code_nothing_is_closed(store, config, clock):
    desk = await open_desk(store, config, clock, practice_setup())
    [days] = await chat(desk, "telegram:5").send("/book Massage at Linz with Lukas Huber")
    assert labels(days)[0] == "Tue 8 Dec"
    assert "holiday" not in await chat(desk, ANNA).say("/hours")
    await add_admin(store, "telegram:77", MONDAY)
    assert "holiday" not in (await chat(desk, "telegram:77").say(f"/day {HOLIDAY}")).lower()


async def test_the_homepage_api_offers_no_time_on_a_holiday(desk, store):
    async with store.uow() as uow:
        holiday = await homepage_times(uow, desk.clock.now(), "Massage", HOLIDAY, "Linz")
        thursday = await homepage_times(uow, desk.clock.now(), "Massage", "2026-12-10", "Linz")
    assert holiday == [] and thursday
