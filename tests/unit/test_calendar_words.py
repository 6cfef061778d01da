"""The calendar's words without a store: tokens, appoint, services, hours, closures, day views."""
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.calendar.views import ClosureView, Entry, group_days
from handlers.calendar.words import (
    Invalid,
    colour_dot,
    parse_appoint,
    parse_hours,
    parse_off,
    parse_pause,
    parse_service_add,
    parse_when,
    week_rows,
)
from handlers.rules.availability import local_minute
from handlers.rules.words import split_words

VIENNA = ZoneInfo("Europe/Vienna")


def test_tokens_keep_quoted_names_together():
    assert split_words('"Maria Muster" Massage 2026-12-08') == ["Maria Muster", "Massage", "2026-12-08"]
    assert split_words("„Jörg Müller“ x") == ["Jörg Müller", "x"]


def test_appoint_takes_the_words_before_a_known_service_as_the_customer():
    request = parse_appoint(split_words("Maria Anna Muster Heil Gymnastik 2026-12-08 09:30 Lukas Huber"),
                            ["Massage", "Heil Gymnastik"])
    assert (request.customer, request.service, request.day, request.minute, request.staff) == (
        "Maria Anna Muster", "Heil Gymnastik", date(2026, 12, 8), 570, "Lukas Huber")
    with pytest.raises(Invalid):
        parse_appoint(split_words("Maria Sauna 2026-12-08 09:30"), ["Massage"])


def test_service_add_reads_name_minutes_colour_and_price():
    new = parse_service_add(split_words("Sports massage 50 #F80 €70"))
    assert (new.name, new.minutes, new.colour, new.price) == ("Sports massage", 50, "#ff8800", "70")
    for bad in ("Massage 7", "Massage sixty", "Massage 60 blue", "Massage 60 #12345g", "Massage"):
        with pytest.raises(Invalid):
            parse_service_add(split_words(bad))


def test_hours_split_at_the_weekday_and_read_ranges_or_closed():
    request = parse_hours(split_words("Lukas Huber Linz di 08:00-12:00, 13:00-18:00"))
    assert (request.head, request.weekday, request.ranges) == (("Lukas", "Huber", "Linz"), 1,
                                                               ((480, 720), (780, 1080)))
    assert parse_hours(split_words("Linz sun closed")).ranges == ()
    for bad in ("Linz xyz 08:00-12:00", "Linz mon 12:00-08:00", "Linz mon 08:00-12:00,11:00-13:00"):
        with pytest.raises(Invalid):
            parse_hours(split_words(bad))


def test_closures_read_kind_days_hours_and_whom():
    off = parse_off(split_words("urlaub 2026-12-07 2026-12-11 alle"))
    assert (off.kind, off.first, off.last, off.span, off.who) == ("vacation", date(2026, 12, 7), date(2026, 12, 11),
                                                                  None, "alle")
    pause = parse_pause(split_words("2026-12-08 12:00 - 13:00 Lukas"))
    assert (pause.kind, pause.span, pause.who) == ("pause", (720, 780), "Lukas")
    for bad in ("holidays 2026-12-08", "sick 2026-12-09 2026-12-08", "sick 2026-13-01"):
        with pytest.raises(Invalid):
            parse_off(split_words(bad))


def test_day_words_and_colour_dots():
    today = date(2026, 12, 1)
    assert parse_when(split_words("morgen Lukas"), today) == (date(2026, 12, 2), "Lukas")
    assert parse_when([], today) == (today, None)
    assert [colour_dot(c) for c in ("#2e86de", "#10ac84", "#f368e0", None)] == ["🔵", "🟢", "🟣", "▫️"]
    assert week_rows([(1, 480, 720), (0, 780, 840)])[:2] == [(0, ["13:00–14:00"]), (1, ["08:00–12:00"])]


def test_days_group_what_starts_on_them_and_closures_that_touch_them():
    day = date(2026, 12, 8)
    start = local_minute(day, 540, VIENNA)
    entry = Entry(1, start, start + timedelta(hours=1), "held", "Massage", None, "▫️", "Lukas", "Maria", None)
    closure = ClosureView("sick", local_minute(day, -1440, VIENNA), local_minute(day, 1440, VIENNA), None)
    grouped = group_days([day, day + timedelta(days=1)], VIENNA, [entry], [closure])
    assert [(len(d.entries), len(d.closures)) for d in grouped] == [(1, 1), (0, 0)]
