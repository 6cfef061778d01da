"""The pure licence rules: eligibility per school type and the pro-rata credit."""
from __future__ import annotations

from datetime import date

from handlers.licences.rules import TypeCheck, add_months, credit_cents, eligibility


def test_all_or_more_than_half_qualifies_and_exactly_half_does_not():
    assert TypeCheck("GS", 4, 2).eligible is False and TypeCheck("GS", 4, 2).needed == 1
    assert TypeCheck("GS", 4, 3).eligible and TypeCheck("GS", 1, 1).eligible and TypeCheck("GS", 2, 2).eligible
    assert TypeCheck("GS", 2, 1).eligible is False and TypeCheck("GS", 2, 1).needed == 1
    assert TypeCheck("GS", 5, 0).needed == 3
    assert [c.type for c in eligibility({"GS": 3, "GY": 2}, {"GY": 1, "GS": 2})] == ["GS", "GY"]


def test_no_credit_with_exactly_three_months_or_less_left():
    assert credit_cents(12000, date(2026, 3, 1), date(2027, 3, 1), date(2026, 12, 1)) == 0  # exactly 3 months
    assert credit_cents(12000, date(2026, 3, 2), date(2027, 3, 2), date(2026, 12, 1)) == round(12000 * 91 / 365)


def test_credit_is_paid_times_remaining_over_term_days_rounded_half_up():
    assert credit_cents(12000, date(2026, 6, 30), date(2027, 6, 30), date(2026, 12, 1)) == 6937  # 6936.98
    assert credit_cents(100, date(2026, 1, 1), date(2026, 1, 1), date(2025, 1, 1)) == 0  # no term days


def test_months_end_on_the_last_day_of_a_shorter_month():
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2027, 6, 30), -12) == date(2026, 6, 30)
