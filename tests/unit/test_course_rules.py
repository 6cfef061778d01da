"""Course rules without a store: session lines, the `course add` line, the deadline, place arithmetic, and the
[[courses]] table of the setup file (every mistake names file, line, key and value)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handlers.courses.holds import read_target
from handlers.courses.rules import (
    BadValue,
    LocalSession,
    Session,
    capacity_fits,
    deadline,
    free_places,
    parse_new_course,
    parse_session,
    parse_sessions,
    session_times,
)
from handlers.setup import SetupError, parse_setup

UTC = timezone.utc
VIENNA = ZoneInfo("Europe/Vienna")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "practice.toml"
COURSE = """
[[courses]]
name = "Rückenfit"
location = "Linz"
sessions = ["2026-12-10 18:00-19:30",
            "2026-12-17 18:00-19:30"]
capacity = 12
price = "120.00"
min_participants = 4
booking_deadline_days = 2
"""


def problem(call, *args) -> tuple[str, str, str]:
    with pytest.raises(BadValue) as caught:
        call(*args)
    return caught.value.field, caught.value.value, caught.value.problem


# ---- sessions --------------------------------------------------------------------------------


def test_a_session_line_is_a_day_and_a_time_range():
    assert parse_session("2026-12-10 18:00-19:30") == LocalSession(date(2026, 12, 10), 1080, 1170)
    assert parse_session("  2026-12-10   9:00-10:00 ") == LocalSession(date(2026, 12, 10), 540, 600)
    assert parse_session("2026-12-10 22:00-24:00").end == 1440


@pytest.mark.parametrize("line, why", [
    ("2026-12-10", "shape"),
    ("2026-12-10 18:00-19:30 Linz", "shape"),
    ("10.12.2026 18:00-19:30", "date"),
    ("2026-02-30 18:00-19:30", "date"),
    ("1999-12-10 18:00-19:30", "date"),
    ("2026-12-10 18:00", "times"),
    ("2026-12-10 19:30-18:00", "times"),
    ("2026-12-10 18:00-25:00", "times"),
    ("", "shape"),
])
def test_a_bad_session_line_says_what_is_wrong(line, why):
    assert problem(parse_session, line) == ("session", line, why)


def test_sessions_come_in_time_order_and_may_not_overlap():
    found = parse_sessions(["2026-12-17 18:00-19:30", "2026-12-10 18:00-19:30", "2026-12-10 19:30-20:00"])
    assert [(s.day.day, s.start) for s in found] == [(10, 1080), (10, 1170), (17, 1080)]
    assert problem(parse_sessions, ["2026-12-10 18:00-19:30", "2026-12-10 19:00-20:00"]) == (
        "session", "2026-12-10 19:00-20:00", "overlap")
    assert problem(parse_sessions, []) == ("sessions", "", "none")
    assert problem(parse_sessions, ["2026-12-10 08:00-09:00"] * 201)[2] == "too_many"


def test_sessions_are_read_on_the_wall_clock_across_a_dst_change():
    autumn = session_times(parse_sessions(["2026-10-24 18:00-19:00", "2026-10-25 18:00-19:00"]), VIENNA)
    assert autumn == [Session(datetime(2026, 10, 24, 16, 0, tzinfo=UTC), datetime(2026, 10, 24, 17, 0, tzinfo=UTC)),
                      Session(datetime(2026, 10, 25, 17, 0, tzinfo=UTC), datetime(2026, 10, 25, 18, 0, tzinfo=UTC))]
    start, end = autumn[0]  # a Session is also a (start, end) pair
    assert end - start == autumn[0].end - autumn[0].start


# ---- deadline and places -----------------------------------------------------------------------


def test_the_deadline_is_whole_days_before_the_first_session():
    first = datetime(2026, 12, 10, 17, 0, tzinfo=UTC)
    assert deadline(first, 0) == first
    assert deadline(first, 2) == datetime(2026, 12, 8, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("capacity, live, waiting, free", [
    (12, 0, 0, 12), (12, 9, 0, 3), (12, 12, 0, 0), (12, 12, 5, 0),
    (12, 11, 2, 0),  # a place freed while people wait is theirs, not a newcomer's
    (12, 10, 1, 1),
    (3, 5, 0, 0),  # never below zero, even if a capacity was lowered by hand
])
def test_free_places_leave_the_waiting_list_first(capacity, live, waiting, free):
    assert free_places(capacity, live, waiting) == free


def test_a_capacity_is_at_least_one_and_never_below_the_places_taken():
    assert capacity_fits(5, 5) and capacity_fits(1, 0)
    assert not capacity_fits(0, 0) and not capacity_fits(4, 5) and not capacity_fits(10_001, 0)


# ---- the `course add` line ---------------------------------------------------------------------


def test_the_course_add_line_reads_quoted_names_sessions_and_options():
    new = parse_new_course('"Yoga am Abend" „Linz Süd“ 8 2026-12-15 19:00-20:00, 2026-12-22 19:00-20:00 '
                           "preis=80.50 min=3 frist=1")
    assert (new.name, new.location, new.capacity) == ("Yoga am Abend", "Linz Süd", 8)
    assert [(s.day.day, s.start, s.end) for s in new.sessions] == [(15, 1140, 1200), (22, 1140, 1200)]
    assert (new.price, new.min_participants, new.deadline_days) == ("80.50", 3, 1)
    plain = parse_new_course("Yoga Linz 1 2026-12-15 19:00-20:00")
    assert (plain.price, plain.min_participants, plain.deadline_days) == (None, None, 0)


@pytest.mark.parametrize("line, found", [
    ("Yoga Linz 12", ("line", "Yoga Linz 12", "usage")),
    ("Yoga Linz 0 2026-12-15 19:00-20:00", ("capacity", "0", "capacity")),
    ("Yoga Linz ١٢ 2026-12-15 19:00-20:00", ("capacity", "١٢", "capacity")),
    ("Yoga Linz 10001 2026-12-15 19:00-20:00", ("capacity", "10001", "capacity")),
    ("Yoga Linz twelve 2026-12-15 19:00-20:00", ("capacity", "twelve", "capacity")),
    ("Yoga Linz 12 2026-12-15 19:00-20:00 min=13", ("min", "13", "min")),
    ("Yoga Linz 12 2026-12-15 19:00-20:00 min=0", ("min", "0", "min")),
    ("Yoga Linz 12 2026-12-15 19:00-20:00 price=1,50", ("price", "1,50", "price")),
    ("Yoga Linz 12 2026-12-15 19:00-20:00 deadline=400", ("deadline", "400", "deadline")),
    ("Yoga Linz 12 price=80", ("line", "Yoga Linz 12 price=80", "usage")),
    ("Yoga Linz 12 , , price=80 min=2", ("sessions", "", "none")),
])
def test_a_bad_course_add_line_names_the_part_that_is_wrong(line, found):
    assert problem(parse_new_course, line) == found


def test_a_trailing_comma_after_the_sessions_is_forgiven():
    assert len(parse_new_course("Yoga Linz 12 2026-12-15 19:00-20:00,").sessions) == 1


def test_a_code_target_names_one_hold_of_one_place():
    assert read_target("place:12:2026-12-01T09:10:00+00:00") == (12, datetime(2026, 12, 1, 9, 10, tzinfo=UTC))
    assert read_target("place:x:2026-12-01T09:10:00+00:00") is None
    assert read_target("appointment:12") is None
    assert read_target("place:12:soon") is None


# ---- the setup file --------------------------------------------------------------------------


def error_for(text: str) -> str:
    with pytest.raises(SetupError) as caught:
        parse_setup(EXAMPLE.read_text() + text, "practice.toml")
    return str(caught.value)


def line_of(needle: str) -> int:
    lines = (EXAMPLE.read_text() + COURSE).splitlines()
    return next(i for i, line in enumerate(lines) if needle in line) + 1


def test_a_course_in_the_setup_file_is_read():
    spec = parse_setup(EXAMPLE.read_text() + COURSE, "practice.toml")
    [course] = spec.courses
    assert (course.name, course.location, course.capacity, course.price) == ("Rückenfit", "Linz", 12, "120.00")
    assert (course.min_participants, course.booking_deadline_days) == (4, 2)
    assert [s.day for s in course.sessions] == [date(2026, 12, 10), date(2026, 12, 17)]
    bare = parse_setup(EXAMPLE.read_text() + COURSE.replace('price = "120.00"\n', "")
                       .replace("min_participants = 4\n", "").replace("booking_deadline_days = 2\n", ""), "p.toml")
    assert (bare.courses[0].price, bare.courses[0].min_participants, bare.courses[0].booking_deadline_days) == (
        None, None, 0)


@pytest.mark.parametrize("old, new, needle, message", [
    ('"2026-12-17 18:00-19:30"', '"2026-12-17 18:00"', "sessions =",
     'courses "Rückenfit" sessions: "2026-12-17 18:00" has no valid time range'),
    ('"2026-12-17 18:00-19:30"', '"17.12.2026 18:00-19:30"', "sessions =",
     'courses "Rückenfit" sessions: "17.12.2026 18:00-19:30" does not start with a real date'),
    ('"2026-12-17 18:00-19:30"', '"2026-12-10 19:00-20:00"', "sessions =",
     'courses "Rückenfit" sessions: "2026-12-10 19:00-20:00" overlaps another session'),
    ("capacity = 12", "capacity = 0", "capacity =",
     'courses "Rückenfit" capacity: 0 must be a whole number of at least 1'),
    ("capacity = 12", 'capacity = "12"', "capacity =",
     'courses "Rückenfit" capacity: "12" must be a whole number of at least 1'),
    ("min_participants = 4", "min_participants = 13", "min_participants =",
     'courses "Rückenfit" min_participants: 13 must be at most 12'),
    ('location = "Linz"', 'location = "Graz"', "location =",
     'courses "Rückenfit" location: "Graz" is not a location of [[locations]] (Linz, Wels)'),
    ("booking_deadline_days = 2", "booking_deadline_days = -1", "booking_deadline_days",
     'courses "Rückenfit" booking_deadline_days: -1 must be a whole number of at least 0'),
    ('price = "120.00"', "price = 120.5", "price =", 'courses "Rückenfit" price: 120.5 is not a price'),
    ("capacity = 12", "capacity = 12\nteacher = \"Eva\"", "teacher =", 'unknown key "teacher" in [[courses]]'),
    ('name = "Rückenfit"', 'name = "Rücken „fit“"', "name =", 'name: "Rücken „fit“" must not hold quotation marks'),
])
def test_a_bad_course_in_the_setup_file_names_file_line_key_and_value(old, new, needle, message):
    text = COURSE.replace(old, new)
    assert text != COURSE
    found = error_for(text)
    lines = (EXAMPLE.read_text() + text).splitlines()
    line = next(i for i, row in enumerate(lines) if needle in row and i > len(EXAMPLE.read_text().splitlines())) + 1
    assert found.startswith(f"practice.toml:{line}: "), found
    assert message in found


def test_a_course_without_sessions_or_twice_by_name_is_refused():
    assert 'courses "Rückenfit": missing key "sessions"' in error_for(
        COURSE.replace('sessions = ["2026-12-10 18:00-19:30",\n            "2026-12-17 18:00-19:30"]\n', ""))
    assert 'sessions: [] must list at least one session' in error_for(
        COURSE.replace('["2026-12-10 18:00-19:30",\n            "2026-12-17 18:00-19:30"]', "[]"))
    assert 'name: "RÜCKENFIT" is used by more than one of [[courses]]' in error_for(
        COURSE + COURSE.replace('"Rückenfit"', '"RÜCKENFIT"'))
