"""Free-slot rules without I/O, including the DST change days in Europe/Vienna."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from handlers.rules.availability import (
    StaffCalendar,
    cells,
    day_bounds,
    free_slots,
    intersect,
    is_free,
    local_intervals,
    on_grid,
    pick_fairly,
    subtract,
)

VIENNA = ZoneInfo("Europe/Vienna")
UTC = timezone.utc
Q = timedelta(minutes=15)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def whole_day(day: date) -> StaffCalendar:
    return StaffCalendar(1, local_intervals(day, [(0, 1440)], VIENNA))


def test_spring_forward_day_has_23_hours_of_slots():
    day = date(2026, 3, 29)
    start, end = day_bounds(day, VIENNA)
    assert end - start == timedelta(hours=23)
    slots = free_slots([whole_day(day)], Q, Q, start, start)
    assert len(slots) == 23 * 4
    assert slots[0].start.astimezone(VIENNA).hour == 0 and slots[-1].end == end


def test_fall_back_day_has_25_hours_of_slots():
    day = date(2026, 10, 25)
    start, end = day_bounds(day, VIENNA)
    assert end - start == timedelta(hours=25)
    assert len(free_slots([whole_day(day)], Q, Q, start, start)) == 25 * 4


def test_opening_hours_are_wall_clock_times_on_both_sides_of_the_change():
    winter = local_intervals(date(2026, 3, 27), [(480, 720)], VIENNA)
    summer = local_intervals(date(2026, 3, 30), [(480, 720)], VIENNA)
    assert winter[0][0] == utc(2026, 3, 27, 7) and summer[0][0] == utc(2026, 3, 30, 6)


def test_busy_time_and_notice_remove_slots():
    day = date(2026, 12, 2)
    calendar = StaffCalendar(1, local_intervals(day, [(480, 600)], VIENNA),
                             busy=[(utc(2026, 12, 2, 8), utc(2026, 12, 2, 9))])
    start = day_bounds(day, VIENNA)[0]
    hour = timedelta(hours=1)
    slots = free_slots([calendar], hour, Q, start, start)
    # 08:00-10:00 local = 07:00-09:00 UTC; busy 08:00-09:00 UTC leaves only 07:00
    assert [s.start for s in slots] == [utc(2026, 12, 2, 7)]
    assert free_slots([calendar], hour, Q, start, utc(2026, 12, 2, 7, 1)) == []


def test_any_free_lists_every_free_staff_member_and_picks_the_least_loaded():
    day = date(2026, 12, 2)
    window = local_intervals(day, [(480, 540)], VIENNA)
    a, b = StaffCalendar(1, window), StaffCalendar(2, window, busy=[(utc(2026, 12, 2, 7, 30), utc(2026, 12, 2, 8))])
    start = day_bounds(day, VIENNA)[0]
    slots = free_slots([a, b], timedelta(minutes=30), timedelta(minutes=30), start, start)
    assert [(s.start, s.staff_ids) for s in slots] == [(utc(2026, 12, 2, 7), (1, 2)), (utc(2026, 12, 2, 7, 30), (1,))]
    assert pick_fairly([1, 2], {1: 3, 2: 1}) == 2 and pick_fairly([1, 2], {}) == 1


def test_interval_helpers():
    a = [(utc(2026, 1, 1, 8), utc(2026, 1, 1, 12))]
    b = [(utc(2026, 1, 1, 10), utc(2026, 1, 1, 14))]
    assert intersect(a, b) == [(utc(2026, 1, 1, 10), utc(2026, 1, 1, 12))]
    assert subtract(a, [(utc(2026, 1, 1, 9), utc(2026, 1, 1, 10))]) == [
        (utc(2026, 1, 1, 8), utc(2026, 1, 1, 9)), (utc(2026, 1, 1, 10), utc(2026, 1, 1, 12))]
    busy = [(utc(2026, 1, 1, 8), utc(2026, 1, 1, 9)), (utc(2026, 1, 1, 10), utc(2026, 1, 1, 11))]
    assert is_free(busy, utc(2026, 1, 1, 9), utc(2026, 1, 1, 10))
    assert not is_free(busy, utc(2026, 1, 1, 9), utc(2026, 1, 1, 10, 5))
    assert not is_free(busy, utc(2026, 1, 1, 7, 55), utc(2026, 1, 1, 8, 5))
    assert len(cells(utc(2026, 1, 1, 8), utc(2026, 1, 1, 9))) == 12
    assert on_grid(utc(2026, 1, 1, 8, 5)) and not on_grid(utc(2026, 1, 1, 8, 7))
