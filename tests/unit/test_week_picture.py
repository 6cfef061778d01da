"""The week picture drawn from plain data: its size, where a booking's colour lands, the lock of a held
slot, the dashed outline of a request, shaded closures and holidays, and text a phone can read."""
from __future__ import annotations

import asyncio
import io
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageFont

from bot.telegram.replies import is_photo
from handlers.calendar.picture import WeekFile, hour_span, minute_on
from handlers.messages import Attachment, Reply, make_files
from handlers.pictures import ink
from handlers.pictures.week import (
    CONFIRMED,
    HELD,
    HOLIDAY,
    HOUR,
    REQUESTED,
    Block,
    Legend,
    Shade,
    WeekPicture,
    layout,
    render_week,
)

DAYS = ("Mon 7 Dec", "Tue 8 Dec", "Wed 9 Dec", "Thu 10 Dec", "Fri 11 Dec", "Sat 12 Dec", "Sun 13 Dec")
BLUE, GREEN = "#2e86de", "#10ac84"
LEGEND = Legend("held", "request", "closed", ((BLUE, "Massage"), (GREEN, "Heilgymnastik")))


def week(*blocks: Block, shades: tuple[Shade, ...] = (), lanes: tuple[str, ...] = ("Lukas Huber",),
         hours: tuple[int, int] = (8, 18)) -> WeekPicture:
    return WeekPicture("Calendar of Lukas Huber · week 50", DAYS, lanes, hours[0], hours[1], tuple(blocks), shades,
                       LEGEND, (5, 6))


def massage(day: int = 1, lane: int = 0, start: int = 9 * 60, state: str = CONFIRMED) -> Block:
    return Block(day, lane, start, start + 60, BLUE, "09:00–10:00", "Massage", "Maria Muster", state)


def pixels(picture: Image.Image) -> list[tuple[int, int, int]]:
    data = picture.convert("RGB").tobytes()
    return [(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)]


def image(picture: WeekPicture) -> Image.Image:
    drawn = Image.open(io.BytesIO(render_week(picture)))
    assert drawn.format == "PNG"
    return drawn.convert("RGB")


def block_corner(picture: WeekPicture, block: Block) -> tuple[int, int, int, int]:
    return layout(picture).span(block.day, block.lane, block.start, block.end)


# ---- size ----------------------------------------------------------------------------------------


def test_one_calendar_is_as_wide_as_telegram_shows_a_photo_unscaled():
    # 16 margin + 60 hours + 7 days of 168 + 16 margin; 16 + 48 title + 40 days + 10 hours of 84 + 12 + 40 legend + 16
    assert image(week(massage())).size == (1268, 1012)


def test_five_lanes_fit_telegrams_largest_photo():
    picture = week(massage(lane=4), lanes=("Anna", "Lukas", "Maria", "Tobias", "Zeynep"), hours=(7, 20))
    width, height = image(picture).size
    assert (width, height) == (2542, 130 + 13 * HOUR + 68)  # 35 lanes of 70 px; a row of staff names
    assert width <= 2560 and width + height <= 10_000


def test_hours_stretch_the_picture_and_lanes_never_get_narrower_than_64_px():
    assert image(week(massage(), hours=(7, 21))).size[1] - image(week(massage())).size[1] == 4 * HOUR
    many = layout(week(lanes=tuple(f"Staff {i}" for i in range(12))))
    assert many.lane_width == 64 and many.width == 76 + 7 * 12 * 64 + 16


# ---- what stands where ---------------------------------------------------------------------------


def test_a_booked_appointment_shows_its_service_colour_at_its_time():
    booked = massage(day=1, start=9 * 60)
    picture = week(booked)
    drawn = image(picture)
    x0, y0, x1, y1 = block_corner(picture, booked)
    box = layout(picture)
    assert box.y(10 * 60) - box.y(9 * 60) == HOUR and box.x(2) - box.x(1) == box.lane_width
    # the lower right of the block holds no text: only the service's colour
    inside = [drawn.getpixel((x, y)) for x in range(x1 - 20, x1 - 6, 3) for y in range(y1 - 14, y1 - 4, 3)]
    assert set(inside) == {(46, 134, 222)}
    assert drawn.getpixel((x1 - 10, box.y(11 * 60) + 10)) != (46, 134, 222)  # an hour later: free
    assert drawn.getpixel((box.x(2) + 20, y1 - 10)) != (46, 134, 222)  # the next day: free


def test_each_staff_member_has_a_lane_of_their_own():
    booked = massage(day=3, lane=2)
    picture = week(booked, lanes=("Anna", "Lukas", "Maria"))
    drawn, box = image(picture), layout(picture)
    y = box.y(9 * 60 + 50)
    assert drawn.getpixel((box.x(3, 2) + box.lane_width - 10, y)) == (46, 134, 222)
    assert drawn.getpixel((box.x(3, 1) + box.lane_width - 10, y)) != (46, 134, 222)


def test_a_held_slot_carries_a_lock():
    held, confirmed = image(week(massage(state=HELD))), image(week(massage()))
    x0, y0, x1, y1 = block_corner(week(massage()), massage())
    corner = (x1 - 22, y0 + 2, x1 - 2, y0 + 22)
    lock_pixels = [p for p in pixels(held.crop(corner)) if p == ink.LOCK]
    white = [p for p in pixels(held.crop(corner)) if p == ink.PAPER]
    assert len(lock_pixels) > 40 and len(white) > 20  # a dark padlock on a white badge
    assert ink.LOCK not in set(pixels(confirmed.crop(corner)))


def test_a_request_is_pale_with_a_dashed_outline():
    requested = massage(state=REQUESTED)
    picture = week(requested)
    drawn = image(picture)
    x0, y0, x1, y1 = block_corner(picture, requested)
    edge = ink.darker(ink.rgb(BLUE))
    top = [drawn.getpixel((x, y0 + 1)) for x in range(x0 + 2, x1 - 2)]
    assert top.count(edge) > len(top) / 3 and top.count(edge) < len(top) * 2 / 3  # dashes and gaps
    assert drawn.getpixel((x1 - 12, y1 - 10)) == ink.blend(ink.rgb(BLUE), ink.PAPER, 0.25)  # pale, not booked yet
    solid = image(week(massage()))
    assert {solid.getpixel((x, y0 + 1)) for x in range(x0 + 4, x1 - 4)} == {edge}  # a booking: a solid edge


def test_closures_and_holidays_are_hatched_with_their_label():
    picture = week(shades=(Shade(2, 0, 1440, "vacation", 0), Shade(4, 0, 1440, "Christmas Day", None, HOLIDAY)))
    drawn, box = image(picture), layout(picture)
    closed = set(pixels(drawn.crop((box.x(2) + 5, box.y(12 * 60), box.x(3) - 5, box.y(14 * 60)))))
    holiday = set(pixels(drawn.crop((box.x(4) + 5, box.y(12 * 60), box.x(5) - 5, box.y(14 * 60)))))
    assert {ink.CLOSED, ink.CLOSED_HATCH} <= closed and {ink.HOLIDAY, ink.HOLIDAY_HATCH} <= holiday
    label = drawn.crop((box.x(4) + 4, box.top + 2, box.x(5) - 4, box.top + 22))
    assert pixels(label).count(ink.HOLIDAY_TEXT) > 20  # the holiday's name is written
    weekday = drawn.crop((box.x(3) + 5, box.y(12 * 60), box.x(4) - 5, box.y(14 * 60)))
    assert ink.HOLIDAY not in set(pixels(weekday))


def test_text_is_set_in_a_scalable_font_large_enough_for_a_phone():
    face = ink.font(16)
    assert isinstance(face, ImageFont.FreeTypeFont) and face.size == 16  # not the 11 px bitmap font
    left, top, right, bottom = face.getbbox("Massage")
    assert bottom - top >= 11
    picture = week(massage())
    x0, y0, x1, y1 = block_corner(picture, massage())
    time_line = image(picture).crop((x0 + 4, y0 + 1, x1 - 4, y0 + 22))  # "09:00–10:00", white on blue
    rows = [y for y in range(time_line.height) if any(sum(time_line.getpixel((x, y))) > 600
                                                      for x in range(time_line.width))]
    assert rows and rows[-1] - rows[0] + 1 >= 11  # digits 11 px or more high: readable once zoomed in


def test_long_names_are_cut_with_an_ellipsis_to_fit_their_lane():
    face = ink.font(14)
    cut = ink.fit("Heilgymnastik nach Operation", face, 70)
    assert cut.endswith("…") and face.getlength(cut) <= 70
    assert ink.fit("Kim", face, 70) == "Kim"
    assert ink.needs_shaping("مريم") and not ink.needs_shaping("Zoë Šťastná – Ωmega")


# ---- the data the picture is drawn from ----------------------------------------------------------


def test_the_hours_shown_cover_every_span_in_whole_hours():
    assert hour_span([(8 * 60, 18 * 60), (7 * 60 + 30, 9 * 60), (17 * 60, 19 * 60 + 15)]) == (7, 20)
    assert hour_span([]) == (8, 18)
    assert hour_span([(23 * 60, 1440)]) == (23, 24)


def test_minutes_of_a_day_follow_the_wall_clock_on_dst_days():
    vienna = ZoneInfo("Europe/Vienna")
    spring = date(2026, 3, 29)  # 23 hours: 02:00 does not happen
    assert minute_on(spring, datetime(2026, 3, 29, 8, 0, tzinfo=timezone.utc), vienna) == 10 * 60
    assert minute_on(spring, datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc), vienna) == 3 * 60 + 30
    assert minute_on(spring, datetime(2026, 3, 28, 22, 30, tzinfo=timezone.utc), vienna) == 0  # the day before
    assert minute_on(spring, datetime(2026, 3, 29, 22, 0, tzinfo=timezone.utc), vienna) == 1440  # the day after


# ---- drawing after the transaction ---------------------------------------------------------------


async def test_a_reply_owes_the_png_until_its_files_are_made():
    reply = Reply("the week", later=[WeekFile("week-2026-12-07.png", week(massage()))])
    await make_files([reply])
    assert reply.later == [] and [(a.name, a.mime) for a in reply.attachments] == [("week-2026-12-07.png",
                                                                                      "image/png")]
    assert Image.open(io.BytesIO(reply.attachments[0].data)).size == (1268, 1012)


async def test_the_picture_is_drawn_in_a_thread_so_the_loop_keeps_serving():
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0.001)

    many = week(*(massage(day=d, lane=lane, start=8 * 60 + 60 * h) for d in range(6) for lane in range(5)
                  for h in range(9)), lanes=("A", "B", "C", "D", "E"))
    beating = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    await make_files([Reply("the week", later=[WeekFile("week.png", many)])])
    beating.cancel()
    assert beats >= 3  # drawn on the loop, the heartbeat would have stopped for the whole drawing


@pytest.mark.parametrize("state", [CONFIRMED, HELD, REQUESTED])
def test_a_block_too_short_for_text_still_shows_its_colour(state):
    short = Block(0, 0, 9 * 60, 9 * 60 + 5, BLUE, "09:00–09:05", "Massage", "Kim", state)
    picture = week(short)
    x0, y0, x1, y1 = block_corner(picture, short)
    colours = set(pixels(image(picture).crop((x0 + 3, y0, x1 - 3, y1))))
    assert ink.rgb(BLUE) in colours or ink.darker(ink.rgb(BLUE)) in colours


def test_an_empty_week_without_staff_still_draws():
    drawn = image(WeekPicture("Calendar", DAYS, (), 8, 18))
    assert drawn.size == (1268, 1012)  # drawn as one empty lane, with room for the legend kept


# ---- what Telegram takes as a photo --------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big")


def test_a_picture_within_telegrams_photo_limits_goes_as_a_photo_else_as_a_document():
    assert is_photo(Attachment("w.png", "image/png", render_week(week(massage()))))
    assert is_photo(Attachment("w.png", "image/png", png_header(2542, 1122)))
    assert not is_photo(Attachment("w.png", "image/png", png_header(9100, 1000)))  # width + height > 10 000
    assert not is_photo(Attachment("w.png", "image/png", png_header(4000, 150)))  # more than 20:1
    assert not is_photo(Attachment("w.png", "image/png", b"not a png at all, only claims to be"))
    assert not is_photo(Attachment("w.xlsx", "application/vnd.ms-excel", png_header(100, 100)))
