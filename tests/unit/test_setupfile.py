"""Reading the setup file: the example parses, and every kind of mistake names file, line, key and value."""
from pathlib import Path

import pytest

from handlers.rules.values import parse_range
from handlers.setup import Interval, SetupError, load_setup, parse_setup

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "practice.toml"
TEXT = EXAMPLE.read_text(encoding="utf-8")

MINIMAL = """\
[business]
name = "Kim's Studio"
timezone = "Europe/Berlin"
language = "en"

[[services]]
name = "Cut"
minutes = 30
colour = "#112233"

[[services]]
name = "Massage"
minutes = 60
colr = "#2e86de"
"""


def line_of(text: str, needle: str, after: str | None = None) -> int:
    """1-based number of the first line containing `needle` (after the line containing `after`)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def error_for(text: str, filename: str = "practice.toml") -> str:
    with pytest.raises(SetupError) as caught:
        parse_setup(text, filename)
    return str(caught.value)


def edited(old: str, new: str, text: str = TEXT) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_example_parses():
    spec = load_setup(EXAMPLE)
    assert spec.filename == str(EXAMPLE)
    assert spec.business.name == "Physio am Park"
    assert spec.business.timezone == "Europe/Vienna"
    assert spec.business.booking_mode == "direct"
    assert [loc.name for loc in spec.locations] == ["Linz", "Wels"]
    linz = spec.locations[0]
    assert linz.hours[:2] == (Interval(0, 8 * 60, 12 * 60), Interval(0, 13 * 60, 18 * 60))
    assert len(linz.hours) == 8
    assert [s.name for s in spec.services] == ["Massage", "Heilgymnastik", "Erstberatung"]
    assert spec.services[0].price == "65.00" and spec.services[2].price is None
    anna, lukas, eva = spec.staff
    assert anna.addresses == ("telegram:1001", "email:anna@physio-am-park.example")
    assert anna.services == ("Massage", "Heilgymnastik", "Erstberatung")
    assert {(h.location, h.weekday) for h in anna.hours} == {("Linz", 0), ("Linz", 2), ("Wels", 1)}
    assert lukas.rights == ("own_hours",)
    assert eva.role == "assistant" and eva.hours == () and eva.services == ()


def test_unknown_key_names_file_line_and_key():
    message = error_for(MINIMAL, "setup.toml")
    assert message == 'setup.toml:14: unknown key "colr" in [[services]] "Massage"'


def test_unknown_key_in_the_example_points_at_its_line():
    text = edited('colour = "#10ac84"', 'color = "#10ac84"')
    expected = line_of(text, "color =")
    assert error_for(text) == f'practice.toml:{expected}: unknown key "color" in [[services]] "Heilgymnastik"'


def test_unknown_top_level_table_points_at_its_header():
    text = MINIMAL.replace("colr", "colour") + '\n[buisness]\nname = "x"\n'
    assert error_for(text, "setup.toml") == 'setup.toml:16: unknown key "buisness" at the top level'


def test_start_after_end_is_refused_with_line_key_and_value():
    text = edited('hours.wed = ["08:00-12:00"]', 'hours.wed = ["18:00-08:00"]')
    expected = line_of(text, "18:00-08:00")
    assert error_for(text) == (f'practice.toml:{expected}: locations "Linz" hours.wed: "18:00-08:00" '
                               "is not a valid time range (start must be before end)")


def test_times_outside_the_day_are_refused():
    text = edited('hours.tue = ["09:00-17:00"]', 'hours.tue = ["25:00-26:00"]')
    message = error_for(text)
    assert message.startswith(f"practice.toml:{line_of(text, '25:00-26:00')}: ")
    assert 'locations "Wels" hours.tue: "25:00-26:00"' in message
    assert "outside 00:00-24:00" in message


def test_overlapping_ranges_on_one_day_are_refused():
    message = error_for(edited('hours.fri = ["08:00-14:00"]', 'hours.fri = ["08:00-14:00", "13:30-15:00"]'))
    assert 'locations "Linz" hours.fri: "13:30-15:00" overlaps "08:00-14:00"' in message
    assert message.startswith("practice.toml:")


def test_unknown_day_is_refused():
    text = edited("hours.mon = [", "hours.mon2 = [")
    expected = line_of(text, "hours.mon2")
    assert error_for(text) == (f'practice.toml:{expected}: locations "Linz" hours.mon2: "mon2" '
                               "is not a day (use mon, tue, wed, thu, fri, sat, sun)")


def test_unknown_service_of_a_staff_member_is_refused():
    text = edited('services = ["Massage", "Heilgymnastik"]', 'services = ["Massage", "Heilgymnastic"]')
    message = error_for(text)
    expected = line_of(text, "Heilgymnastic")
    assert message.startswith(f'practice.toml:{expected}: staff "Lukas Huber" services: "Heilgymnastic" '
                              "is not a known service")


def test_unknown_location_in_staff_hours_is_refused():
    text = edited('hours.Wels.tue = ["09:00-17:00"]', 'hours.Steyr.tue = ["09:00-17:00"]')
    expected = line_of(text, "hours.Steyr")
    assert error_for(text) == (f'practice.toml:{expected}: staff "Anna Berger" hours.Steyr: "Steyr" '
                               "is not a location of [[locations]]")


def test_staff_cannot_be_at_two_locations_at_once():
    message = error_for(edited('hours.Wels.tue = ["09:00-17:00"]', 'hours.Wels.mon = ["09:00-17:00"]'))
    assert 'staff "Anna Berger" hours.Wels.mon: "09:00-17:00" overlaps hours.Linz.mon "08:00-12:00"' in message


def test_bad_timezone_is_refused():
    text = edited('timezone = "Europe/Vienna"', 'timezone = "Europe/Vienne"')
    assert error_for(text) == (f'practice.toml:{line_of(text, "Europe/Vienne")}: business timezone: '
                               '"Europe/Vienne" is not a known time zone (e.g. Europe/Vienna)')


def test_bad_toml_syntax_names_file_and_position():
    message = error_for(edited('minutes = 45', 'minutes = = 45'))
    assert message.startswith("practice.toml: invalid TOML: ")
    assert f"line {line_of(TEXT, 'minutes = 45')}" in message


def test_bad_role_is_refused():
    text = edited('role = "provider"', 'role = "doctor"')
    assert error_for(text) == (f'practice.toml:{line_of(text, "doctor")}: staff "Lukas Huber" role: "doctor" '
                               "must be one of owner, admin, provider, assistant, support")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('language = "de"', 'language = "fr"', 'business language: "fr" must be one of de, en'),
        ('booking_mode = "direct"', 'booking_mode = "ask"',
         'business booking_mode: "ask" must be one of direct, request'),
        ("minutes = 30", "minutes = 0", 'services "Erstberatung" minutes: 0 must be a whole number of at least 1'),
        ('colour = "#f368e0"', 'colour = "pink"', 'services "Erstberatung" colour: "pink" is not a colour'),
        ('price = "55.00"', "price = 55.5", 'services "Heilgymnastik" price: 55.5 is not a price'),
        ('rights = ["own_hours"]', 'rights = ["everything"]',
         'staff "Lukas Huber" rights: "everything" is not a known right'),
        ('name = "Wels"', 'name = "Linz"', 'locations "Linz" name: "Linz" is used by more than one of [[locations]]'),
        ('name = "Erstberatung"', 'name = "Massage"', 'services "Massage" name: "Massage" is used by more than one'),
        ("telegram = 1003", "telegram = 1002", 'staff "Eva Wimmer" telegram: 1002 is given for more than one'),
        ('email = "lukas@physio-am-park.example"', 'email = "lukas at home"',
         'staff "Lukas Huber" email: "lukas at home" is not an email'),
        ('hours.thu = ["09:00-17:00"]', 'hours.thu = "09:00-17:00"',
         'locations "Wels" hours.thu: "09:00-17:00" must be a list'),
    ],
)
def test_other_bad_values_name_key_and_value(old, new, expected):
    text = edited(old, new)
    message = error_for(text)
    assert expected in message
    assert message.startswith("practice.toml:")


def test_missing_required_key_points_at_the_table():
    text = edited('[[services]]\nname = "Erstberatung"\nminutes = 30\n', '[[services]]\nname = "Erstberatung"\n')
    assert error_for(text) == (f'practice.toml:{line_of(text, "[[services]]", after="Heilgymnastik")}: '
                               'services "Erstberatung": missing key "minutes"')


def test_missing_business_is_refused():
    assert error_for('[[services]]\nname = "Cut"\nminutes = 30\n', "s.toml") == "s.toml: missing the [business] table"


def test_unreadable_file_is_a_setup_error(tmp_path):
    with pytest.raises(SetupError, match="nothing.toml: cannot read"):
        load_setup(tmp_path / "nothing.toml")


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("08:00-12:30", (480, 750)), ("0:00-24:00", (0, 1440)), (" 13:05 - 14:00 ", (785, 840))],
)
def test_parse_range_accepts(text, minutes):
    assert parse_range(text) == minutes


@pytest.mark.parametrize("text", ["8-12", "12:00-12:00", "10:60-11:00", "24:30-24:45", "23:00-24:01", "noon"])
def test_parse_range_refuses(text):
    with pytest.raises(ValueError):
        parse_range(text)


def test_the_example_closes_on_the_public_holidays_of_upper_austria():
    spec = load_setup(EXAMPLE)
    assert spec.business.holidays == "AT-4"
    assert [loc.holidays for loc in spec.locations] == [None, None]  # both follow the business


def test_a_location_may_override_the_business_holidays():
    text = edited('name = "Wels"\n', 'name = "Wels"\nholidays = "de-by"\n')
    assert [loc.holidays for loc in parse_setup(text, "practice.toml").locations] == [None, "DE-BY"]


@pytest.mark.parametrize("code", ["XX-9", "AT-99"])
def test_an_unknown_holiday_code_names_file_line_key_and_value(code):
    text = edited('holidays = "AT-4"', f'holidays = "{code}"')
    message = error_for(text)
    assert message.startswith(f'practice.toml:{line_of(text, code)}: business holidays: "{code}" is not a public '
                              'holiday code like "AT-4" or "DE-BY"'), message


def test_an_unknown_holiday_code_of_a_location_names_the_location():
    text = edited('name = "Wels"\n', 'name = "Wels"\nholidays = "AT-99"\n')
    message = error_for(text)
    assert message.startswith(f'practice.toml:{line_of(text, "AT-99")}: locations "Wels" holidays: "AT-99" is not'), \
        message
    assert error_for(edited('holidays = "AT-4"', "holidays = 4")).endswith('holidays: 4 must be a non-empty string')
