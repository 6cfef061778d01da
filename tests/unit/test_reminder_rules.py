"""The rules of reminders and agendas (no store): offsets, keys, due times across DST, and the setup file's
`reminders` and `agenda` keys with errors that name file, line, key and value."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from handlers.reminders.rules import (
    agenda_due,
    first_agenda_day,
    offset_label,
    parse_offset,
    reminder_key,
    reminders_ahead,
)
from handlers.setup import load_setup
from tests.unit.test_setupfile import EXAMPLE, edited, error_for, line_of

UTC = timezone.utc
VIENNA = ZoneInfo("Europe/Vienna")
START = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("text, minutes", [("24h", 1440), ("90m", 90), (" 2H ", 120), ("1440m", 1440),
                                           ("2160h", 2160 * 60)])
def test_offsets_are_hours_or_minutes(text, minutes):
    assert parse_offset(text) == minutes


@pytest.mark.parametrize("text", ["3x", "0h", "0m", "h", "24", "-1h", "1.5h", "2161h", "24 hours", ""])
def test_other_offsets_are_refused(text):
    with pytest.raises(ValueError):
        parse_offset(text)


def test_an_offset_has_one_spelling():
    assert [offset_label(m) for m in (1440, 90, 60, 1)] == ["24h", "90m", "1h", "1m"]


def test_only_reminders_still_ahead_are_due_and_keys_name_appointment_offset_and_start():
    now = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # three hours before
    assert reminders_ahead(START, ["24h", "90m"], now) == [("90m", datetime(2026, 12, 8, 7, 30, tzinfo=UTC))]
    assert reminders_ahead(START, ["24h"], START.replace(hour=8)) == []
    assert reminders_ahead(START, ["90m"], datetime(2026, 12, 8, 7, 30, tzinfo=UTC)) == []  # due now: too late
    assert reminder_key(12, "24h", START.astimezone(VIENNA)) == "12:24h:2026-12-08T09:00Z"


def test_the_agenda_is_due_at_its_wall_clock_time_in_winter_and_summer():
    assert agenda_due(date(2026, 12, 8), 450, VIENNA) == datetime(2026, 12, 8, 6, 30, tzinfo=UTC)
    assert agenda_due(date(2026, 7, 7), 450, VIENNA) == datetime(2026, 7, 7, 5, 30, tzinfo=UTC)
    assert agenda_due(date(2027, 3, 28), 450, VIENNA) == datetime(2027, 3, 28, 5, 30, tzinfo=UTC)  # the short day


def test_the_first_agenda_day_is_the_first_whose_time_is_ahead():
    before = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # 07:00 in Vienna
    assert first_agenda_day(450, VIENNA, before, date(2026, 1, 1)) == date(2026, 12, 8)
    assert first_agenda_day(450, VIENNA, before.replace(hour=6, minute=30), date(2026, 1, 1)) == date(2026, 12, 9)
    assert first_agenda_day(450, VIENNA, before, date(2026, 12, 10)) == date(2026, 12, 10)
    late = datetime(2026, 12, 8, 23, 30, tzinfo=UTC)  # 00:30 on the 9th in Vienna
    assert first_agenda_day(15, VIENNA, late, date(2026, 12, 8)) == date(2026, 12, 10)


# ---- the setup file ---------------------------------------------------------------------------------


def test_the_example_has_reminders_and_an_agenda():
    spec = load_setup(EXAMPLE)
    assert spec.business.reminders == ("24h", "90m")
    assert [s.agenda for s in spec.staff] == [None, 450, None]


def test_reminders_default_to_a_day_before_and_are_kept_longest_first():
    from handlers.setup import parse_setup
    from tests.unit.test_setupfile import TEXT

    without = edited('reminders = ["24h", "90m"]', "")
    assert parse_setup(without, "p.toml").business.reminders == ("24h",)
    assert parse_setup(edited('["24h", "90m"]', '["30m", "1440m", "2H"]', TEXT), "p.toml").business.reminders == (
        "24h", "2h", "30m")
    assert parse_setup(edited('["24h", "90m"]', "[]", TEXT), "p.toml").business.reminders == ()


@pytest.mark.parametrize("value, shown, problem", [
    ('["24h", "3x"]', '"3x"', 'is not a reminder time (expected hours or minutes like "24h" or "90m")'),
    ('["0h"]', '"0h"', "is not a reminder time (a reminder must come before the appointment, not at its start)"),
    ('["99999h"]', '"99999h"', "is not a reminder time (at most 90 days (2160h) before)"),
    ('["24h", "1440m"]', '"1440m"', 'is the same time as "24h"'),
    ('"24h"', '"24h"', 'must be a list like ["24h", "90m"]'),
    ("[24]", "[24]", 'must be a list like ["24h", "90m"]'),
    ('["1h", "2h", "3h", "4h", "5h", "6h"]', '["1h", "2h", "3h", "4h", "5h", "6h"]', "lists more than 5 reminders"),
])
def test_a_bad_reminder_names_file_line_key_and_value(value, shown, problem):
    text = edited('reminders = ["24h", "90m"]', f"reminders = {value}")
    line = line_of(text, "reminders =")
    assert error_for(text) == f"practice.toml:{line}: business reminders: {shown} {problem}"


@pytest.mark.parametrize("value, shown, problem", [
    ('"25:00"', '"25:00"', 'is not a time of day like "07:30"'),
    ('"7.30"', '"7.30"', 'is not a time of day like "07:30"'),
    ('"07:60"', '"07:60"', 'is not a time of day like "07:30"'),
    ("730", "730", "must be a non-empty string"),
])
def test_a_bad_agenda_names_file_line_key_and_value(value, shown, problem):
    text = edited('agenda = "07:30"', f"agenda = {value}")
    line = line_of(text, "agenda =")
    assert error_for(text) == f'practice.toml:{line}: staff "Lukas Huber" agenda: {shown} {problem}'
