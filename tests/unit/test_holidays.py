"""Public holidays as a pure rule: which dates a code closes, their names, and the calendars that skip them."""
from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.appointments import DayPlan, HolidayCodes
from handlers.rules.holidays import (
    UnknownHolidays,
    check_code,
    effective_code,
    holiday_on,
    holidays_between,
    split_code,
)

VIENNA = ZoneInfo("Europe/Vienna")
TUESDAY = date(2026, 12, 8)


def test_immaculate_conception_is_a_holiday_in_upper_austria_named_in_both_languages():
    assert holiday_on("AT-4", TUESDAY, "de") == "Mariä Empfängnis"
    assert holiday_on("AT-4", TUESDAY, "en") == "Immaculate Conception"
    assert holiday_on("AT-4", date(2026, 12, 9), "de") is None


def test_bavaria_and_berlin_differ_on_epiphany():
    epiphany = date(2026, 1, 6)
    assert holiday_on("DE-BY", epiphany, "de") == "Heilige Drei Könige"
    assert holiday_on("DE-BY", epiphany, "en") == "Epiphany"
    assert holiday_on("DE-BE", epiphany, "de") is None
    assert holiday_on("DE", epiphany, "de") is None  # not a holiday nationwide


def test_holidays_between_spans_years_and_includes_both_ends():
    found = holidays_between("AT-4", TUESDAY, date(2027, 1, 6), "de")
    assert found == {TUESDAY: "Mariä Empfängnis", date(2026, 12, 25): "Christtag",
                     date(2026, 12, 26): "Stephanstag", date(2027, 1, 1): "Neujahr",
                     date(2027, 1, 6): "Heilige Drei Könige"}
    assert holidays_between("AT-4", date(2026, 12, 9), date(2026, 12, 24), "de") == {}
    assert holidays_between("AT-4", date(2027, 1, 6), TUESDAY, "de") == {}  # an empty range


def test_no_code_means_no_holidays():
    assert holidays_between(None, date(2026, 1, 1), date(2026, 12, 31), "de") == {}
    assert holiday_on(None, TUESDAY, "de") is None


def test_a_language_the_country_lacks_falls_back_to_its_own():
    assert holiday_on("AT-4", TUESDAY, "fr") == "Mariä Empfängnis"


def test_a_location_code_overrides_the_business_code():
    assert effective_code("DE-BY", "AT-4") == "DE-BY"
    assert effective_code(None, "AT-4") == "AT-4"
    assert effective_code(None, None) is None
    codes = HolidayCodes("AT-4", "de", {1: "AT-4", 2: "DE-BE"})
    assert (codes.at(1), codes.at(2), codes.at(None), codes.at(99)) == ("AT-4", "DE-BE", "AT-4", "AT-4")


def test_codes_are_checked_against_the_package():
    assert check_code("AT-4") == "AT-4"
    assert check_code(" at-4 ") == "AT-4"
    assert check_code("DE-BY") == "DE-BY"
    assert check_code("AT") == "AT"
    assert split_code("DE-Augsburg") == ("DE", "Augsburg")
    for bad in ("XX-9", "AT-99", "", "123", "AT-4-5"):
        with pytest.raises(UnknownHolidays):
            check_code(bad)


def plan(holidays: dict[int, dict[date, str]]) -> DayPlan:
    """Two locations open Monday to Friday 08–12; staff 7 works at both (on different days does not matter)."""
    opening = {(location, day): [(480, 720)] for location in (1, 2) for day in range(5)}
    staff_hours = {(7, location, day): [(480, 720)] for location in (1, 2) for day in range(5)}
    return DayPlan(opening, staff_hours, [], {}, holidays)


def test_the_calendars_close_a_location_on_its_holiday_only():
    closed_in_linz = plan({1: {TUESDAY: "Mariä Empfängnis"}, 2: {}})
    [both] = plan({}).calendars(TUESDAY, VIENNA, [1, 2], [7])
    assert len(both.windows) == 2
    [wels] = closed_in_linz.calendars(TUESDAY, VIENNA, [1, 2], [7])
    assert len(wels.windows) == 1
    assert closed_in_linz.calendars(TUESDAY, VIENNA, [1], [7]) == []
    assert closed_in_linz.calendars(TUESDAY + timedelta(days=1), VIENNA, [1], [7]) != []
