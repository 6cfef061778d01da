"""The typed booking form without a store: reading it, refusing it, printing it back."""
from __future__ import annotations

from datetime import date

import pytest

from handlers.booking import ANY, BookingQuery, book_command, parse_booking, parse_move, split_id
from handlers.context import Refusal

SERVICES = ["Massage", "Heilgymnastik", "Hot Stone Massage"]
LOCATIONS, STAFF = ["Linz", "Wels"], ["Anna Berger", "Lukas Huber"]


def parse(text: str) -> BookingQuery:
    return parse_booking(text, SERVICES, LOCATIONS, STAFF)


def test_parse_takes_the_contract_form_and_tolerant_variants():
    full = BookingQuery("Massage", None, "Lukas Huber", date(2026, 12, 3), 600)
    assert parse("massage 2026-12-03 10:00 lukas huber") == full
    assert parse("Massage am 2026-12-03 um 10:00 Uhr bei Lukas") == full
    assert parse("hot stone massage in Wels with egal") == BookingQuery("Hot Stone Massage", "Wels", ANY)
    assert parse("Massage Linz 2026-12-03") == BookingQuery("Massage", "Linz", None, date(2026, 12, 3))
    assert parse("") == BookingQuery()


@pytest.mark.parametrize(("text", "template"), [
    ("Yoga 2026-12-03 10:00", "booking_unknown_service"),
    ("Massage 03.12.2026 10:00", "booking_bad_format"),
    ("Massage 2026-12-03 25:00", "booking_bad_format"),
    ("Massage 2026-12-03 10:02", "booking_off_grid"),
    ("Massage 10:00", "booking_missing_date"),
    ("Massage at Steyr", "booking_unknown_location"),
    ("Massage 2026-12-03 10:00 Maria", "booking_unknown_staff"),
])
def test_parse_refuses_what_it_cannot_read(text, template):
    with pytest.raises(Refusal) as refused:
        parse(text)
    assert refused.value.template == template


@pytest.mark.parametrize(("query", "read_back"), [
    (BookingQuery("Massage"), None),
    (BookingQuery("Massage", "Linz", ANY, date(2026, 12, 3)), None),
    (BookingQuery("Hot Stone Massage", "Wels", "Anna Berger", date(2026, 12, 3)), None),
    # a time with a named staff member: the place follows from where they work then
    (BookingQuery("Massage", "Linz", "Lukas Huber", date(2026, 12, 3), 615),
     BookingQuery("Massage", None, "Lukas Huber", date(2026, 12, 3), 615)),
    (BookingQuery("Massage", "Linz", ANY, date(2026, 12, 3), 615),
     BookingQuery("Massage", "Linz", None, date(2026, 12, 3), 615)),
])
def test_every_query_prints_as_a_form_that_reads_back(query, read_back):
    command = book_command(query)
    assert command.startswith("book ")
    assert parse(command.removeprefix("book ")) == (read_back or query)


def test_move_and_cancel_arguments():
    assert split_id("#12 Lukas is ill.\nSorry!") == (12, "Lukas is ill.\nSorry!")
    assert parse_move("2026-12-10 09:30 See you\nthen") == (date(2026, 12, 10), 570, "See you\nthen")
    assert parse_move("am 2026-12-10 um 9:30 Uhr") == (date(2026, 12, 10), 570, "")
    assert parse_move("") == (None, None, "")
    with pytest.raises(Refusal):
        split_id("²")
