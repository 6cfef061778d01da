"""The words people type, read by one rule each (handlers.rules.words): no store, no I/O."""
from datetime import date

import pytest

from handlers.rules.values import MAX_SEATS, parse_range
from handlers.rules.words import (
    MAX_ID,
    OutOfRange,
    clock_minutes,
    first_word,
    fold,
    hhmm,
    iso_date,
    known_id,
    parse_id,
    split_first,
    split_words,
    unquote,
)


@pytest.mark.parametrize("text, expected", [
    ('"Maria Muster" Massage', ["Maria Muster", "Massage"]),
    ("„Jörg Müller“ x", ["Jörg Müller", "x"]),
    ("“Rückenfit Süd” 5", ["Rückenfit Süd", "5"]),
    ("«VIP Kunden» 3", ["VIP Kunden", "3"]),
    ("'Team Nord' kim@example.com", ["Team Nord", "kim@example.com"]),
    ("O'Brien Massage", ["O'Brien", "Massage"]),
    ('" Maria Muster " x', ["Maria Muster", "x"]),  # spaces inside the quotes are trimmed (calendar)
    ('"" x "  "', ["x"]),  # an empty quoted word is dropped (calendar)
    ("", []),
])
def test_one_tokenizer_takes_every_quote_style_and_trims(text, expected):
    assert split_words(text) == expected


def test_split_first_and_unquote_read_a_quoted_name():
    assert split_first('"VIP Kunden" 12 rest') == ("VIP Kunden", "12 rest")
    assert split_first("  ") == ("", "")
    assert unquote("„VIP Kunden“") == "VIP Kunden"
    assert unquote("VIP   Kunden") == "VIP Kunden"


def test_first_word_leaves_the_rest_as_typed():
    assert first_word("#12 Lukas is ill.\nSorry!") == ("#12", "Lukas is ill.\nSorry!")
    assert first_word('"Anna Berger" x') == ('"Anna', 'Berger" x')  # no quotes: that is split_first
    assert first_word("   ") == ("", "")


@pytest.mark.parametrize("text, expected", [
    ("12", 12), ("#12", 12), (" #12 ", 12), ("007", 7), (str(MAX_ID), MAX_ID), (str(MAX_ID + 1), 0),
    ("9" * 5000, 0),  # beyond the column, and beyond what int() reads: unknown, not a crash
    ("²", None), ("##12", None), ("12a", None), ("", None), ("#", None), ("-3", None),
])
def test_one_id_rule(text, expected):
    assert parse_id(text) == expected


def test_known_id_maps_numbers_beyond_the_column_to_no_row():
    assert known_id(5) == 5 and known_id(MAX_ID + 1) == 0


def test_dates_in_the_years_the_desk_works_with():
    assert iso_date("2026-12-07") == date(2026, 12, 7)
    with pytest.raises(OutOfRange):
        iso_date("1999-12-31")
    for bad in ("2026-02-30", "2026-1-7", "07.12.2026", ""):
        with pytest.raises(ValueError) as refused:
            iso_date(bad)
        assert not isinstance(refused.value, OutOfRange)


def test_clocks():
    assert clock_minutes("9:30") == 570 and clock_minutes("23:59") == 1439
    for bad in ("24:00", "12:60", "12", "12:5"):
        with pytest.raises(ValueError):
            clock_minutes(bad)
    assert hhmm(570) == "09:30"


def test_fold_compares_any_case_and_spacing():
    assert fold("  Heil   GYMNASTIK ") == fold("heil gymnastik")


def test_one_seat_limit_and_the_range_format():
    assert MAX_SEATS == 50_000
    assert parse_range("08:00-24:00") == (480, 1440)


def test_the_id_rule_is_the_one_booking_and_the_calendar_read():
    from handlers.booking import split_id
    from handlers.calendar.words import Invalid
    from handlers.calendar.words import parse_id as calendar_id

    assert split_id("#" + "9" * 5000 + " x") == (0, "x")  # was int() refusing 5000 digits: a crash
    assert calendar_id("9" * 5000) == 0
    with pytest.raises(Invalid):
        calendar_id("²")
