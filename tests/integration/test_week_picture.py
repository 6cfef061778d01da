"""`week` answers with its text and a PNG of the week, against a real store (SQLite and PostgreSQL).

The practice of examples/practice.toml: Anna (telegram:1001) owns it, Lukas (telegram:1002) is a provider,
Eva (telegram:1003) an assistant without a calendar. The clock stands at Tuesday 2026-12-01 10:00 UTC.
"""
from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image

from bot.app import build_handlers
from handlers.calendar.picture import WeekFile
from handlers.pictures import ink
from handlers.pictures.week import HOLIDAY, Layout, WeekPicture, layout
from handlers.router import Desk
from handlers.setup import apply_setup
from storage.models import Appointment, Closure, Outbox
from tests.conftest import inbound
from tests.helpers import Chat, count, practice_setup
from tests.integration.test_calendar import ANNA, EVA, LUKAS, TUESDAY, add_customer, book

MASSAGE = (46, 134, 222)  # #2e86de in the setup file


async def open_practice(store, clock, holidays: bool = False):
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(holidays), clock.now())
        await uow.commit()
    return store


@pytest.fixture
async def practice(store, clock):
    return await open_practice(store, clock)


def picture_of(reply) -> Image.Image:
    [png] = [a for a in reply.attachments if a.mime == "image/png"]
    image = Image.open(io.BytesIO(png.data))
    image.load()
    return image.convert("RGB")


async def owed_picture(store, desk: Desk, clock, sender: str, text: str, lang: str = "en") -> tuple[WeekFile, str]:
    """The week's file a reply still owes when its transaction commits, and the reply's text."""
    async with store.uow() as uow:
        [reply] = await desk.handle_in(uow, inbound(sender, text, clock=clock, lang=lang), files_later=True)
        await uow.commit()
    assert reply.attachments == []  # nothing was drawn while the transaction was open
    [owed] = reply.later
    assert isinstance(owed, WeekFile)
    return owed, reply.text


async def week_picture(store, desk: Desk, clock, sender: str, text: str, lang: str = "en") -> WeekPicture:
    return (await owed_picture(store, desk, clock, sender, text, lang))[0].picture


async def test_week_answers_with_the_text_and_a_png_of_the_week(practice, config, clock):
    otto = await add_customer(practice, clock, "Otto Ohnemail")
    await book(practice, clock, otto, LUKAS, "Massage", TUESDAY, "09:00")
    anna = Chat(Desk(practice, config, build_handlers(), clock), clock, ANNA)
    [reply] = await anna.send(f"/week {TUESDAY}")
    assert "Tuesday, December 8, 2026" in reply.text and "Massage · Otto Ohnemail · Lukas Huber" in reply.text
    assert reply.later == [] and [a.name for a in reply.attachments] == ["week-2026-12-07.png"]
    image = picture_of(reply)
    assert image.size == (76 + 7 * 2 * 168 + 16, 130 + 11 * 84 + 68)  # Anna and Lukas; 08:00-19:00 (Thursday)
    box = Layout(days=7, lanes=2, first_hour=8, last_hour=19, lane_width=168)  # as the size above says
    lukas_lane = 1  # lanes by name: Anna Berger, Lukas Huber; Eva (assistant) has no calendar
    x, y = box.x(1, lukas_lane) + box.lane_width - 12, box.y(9 * 60 + 50)
    assert image.getpixel((x, y)) == MASSAGE
    assert image.getpixel((box.x(1, 0) + box.lane_width - 12, y)) != MASSAGE  # Anna's lane is free then


async def test_the_picture_is_owed_until_the_transaction_is_over(practice, config, clock):
    desk = Desk(practice, config, build_handlers(), clock)
    owed, text = await owed_picture(practice, desk, clock, ANNA, f"/week {TUESDAY}")
    assert owed.name == "week-2026-12-07.png" and "Monday, December 7, 2026" in text
    assert owed.picture.lanes == ("Anna Berger", "Lukas Huber") and len(owed.picture.days) == 7
    assert owed().mime == "image/png"


async def test_a_staff_member_sees_one_lane_with_held_and_requested_marked(practice, config, clock):
    maria = await add_customer(practice, clock, "Maria Muster", "maria@example.com")
    await book(practice, clock, maria, LUKAS, "Massage", TUESDAY, "09:00", status="held")
    await book(practice, clock, maria, LUKAS, "Heilgymnastik", TUESDAY, "14:00", status="requested")
    desk = Desk(practice, config, build_handlers(), clock)
    picture = await week_picture(practice, desk, clock, LUKAS, "/week 2026-12-10")
    assert picture.lanes == ("Lukas Huber",) and picture.title.startswith("Lukas Huber · week 50")
    states = {(b.title, b.state, b.time, b.detail) for b in picture.blocks}
    assert states == {("Massage", "held", "09:00–10:00", "Maria Muster"),
                      ("Heilgymnastik", "requested", "14:00–14:45", "Maria Muster")}
    assert picture.legend is not None and [name for _, name in picture.legend.services] == ["Heilgymnastik", "Massage"]


async def test_closures_are_shaded_in_their_lane_and_across_the_day(practice, config, clock):
    desk = Desk(practice, config, build_handlers(), clock)
    anna = Chat(desk, clock, ANNA)
    assert "Closed for online booking" in await anna.say(f"/pause {TUESDAY} 12:00-13:00 Lukas")
    assert "Closed for online booking" in await anna.say("/off vacation 2026-12-10 all")  # nothing booked: at once
    picture = await week_picture(practice, desk, clock, ANNA, f"/week {TUESDAY}")
    shades = {(s.day, s.lane, s.start, s.end, s.label, s.kind) for s in picture.shades}
    assert shades == {(1, 1, 12 * 60, 13 * 60, "pause", "closure"), (3, None, 0, 1440, "vacation", "closure")}
    assert await count(practice, Closure) == 2


async def test_public_holidays_are_shaded_with_their_name(store, config, clock):
    practice = await open_practice(store, clock, holidays=True)  # Upper Austria (AT-4), in Linz and Wels
    desk = Desk(practice, config, build_handlers(), clock)
    picture = await week_picture(practice, desk, clock, ANNA, "/woche 2026-12-24", lang="de")
    assert [(s.day, s.label, s.kind, s.lane) for s in picture.shades] == [
        (4, "Christtag", HOLIDAY, None), (5, "Stephanstag", HOLIDAY, None)]  # closed everywhere: no places named
    assert picture.days[0] == "Mo. 21.12."  # German headings
    [reply] = await Chat(desk, clock, ANNA, lang="de").send("/woche 2026-12-24")
    image, box = picture_of(reply), layout(picture)
    assert image.getpixel((box.x(4) + 30, box.y(15 * 60) + 1)) in (ink.HOLIDAY, ink.HOLIDAY_HATCH)
    assert image.getpixel((box.x(3) + 30, box.y(15 * 60) + 1)) not in (ink.HOLIDAY, ink.HOLIDAY_HATCH)


async def test_a_holiday_of_some_locations_names_them(store, config, clock):
    spec = practice_setup(holidays=True)
    linz, wels = spec.locations
    spec = replace(spec, locations=(linz, replace(wels, holidays="DE-BY")))
    async with store.uow() as uow:
        await apply_setup(uow, spec, clock.now())
        await uow.commit()
    desk = Desk(store, config, build_handlers(), clock)
    picture = await week_picture(store, desk, clock, ANNA, f"/week {TUESDAY}")
    [shade] = picture.shades  # 8 December is a holiday in Upper Austria, not in Bavaria
    assert (shade.day, shade.kind, shade.label) == (1, HOLIDAY, "Immaculate Conception (Linz)")


async def test_an_assistant_sees_everyone_and_the_picture_is_in_her_language(practice, config, clock):
    desk = Desk(practice, config, build_handlers(), clock)
    owed, _ = await owed_picture(practice, desk, clock, EVA, f"/woche {TUESDAY}", lang="de")
    assert owed.picture.lanes == ("Anna Berger", "Lukas Huber") and owed.name == "woche-2026-12-07.png"
    assert owed.picture.title == "Kalender · KW 50 · 7. Dez. – 13. Dez. 2026"
    assert owed.picture.legend is not None and owed.picture.legend.held == "reserviert, wartet auf den Code"


@pytest.mark.parametrize("lang, typed, answer", [
    ("en", "/week 2026-02-30", "There is no day 2026-02-30: February 2026 has 28 days."),
    ("de", "/woche 2026-02-30", "Den Tag 2026-02-30 gibt es nicht: Der Februar 2026 hat 28 Tage."),
    ("en", "/week 2028-02-30", "There is no day 2028-02-30: February 2028 has 29 days."),
    ("en", "/week 2026-04-31", "There is no day 2026-04-31: April 2026 has 30 days."),
    ("en", "/week 2026-13-01", "There is no day 2026-13-01: months run from 01 to 12."),
    ("de", "/woche 2026-00-10", "Den Tag 2026-00-10 gibt es nicht: Der Monat ist 01 bis 12."),
    ("en", "/week 2026-2-3", '"2026-2-3" is not a date. Write dates as YYYY-MM-DD'),
    ("de", "/woche 8.12.2026", "„8.12.2026“ ist kein Datum. Bitte schreiben Sie JJJJ-MM-TT"),
])
async def test_a_day_that_does_not_exist_is_named_and_nothing_is_drawn(practice, config, clock, lang, typed, answer):
    chat = Chat(Desk(practice, config, build_handlers(), clock), clock, ANNA, lang=lang)
    [reply] = await chat.send(typed)
    assert answer in reply.text and reply.attachments == [] and reply.later == []
    assert ("Usage: " if lang == "en" else "So geht es: ") in reply.text
    assert await count(practice, Appointment) == 0 and await count(practice, Outbox) == 0
