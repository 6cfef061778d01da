"""[[products]] of the setup file (examples/publisher.toml): the example parses, defaults apply, and every
mistake names file, line, key and value."""
from __future__ import annotations

from pathlib import Path

import pytest

from handlers.setup import SetupError, load_setup, parse_setup
from handlers.setup.spec import ProductSpec
from tests.unit.test_setupfile import line_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "publisher.toml"
TEXT = EXAMPLE.read_text(encoding="utf-8")
PRICE = 'price_per_school = "80.00"     # per school and year, for a carrier\'s order\n'


def error_for(text: str) -> str:
    with pytest.raises(SetupError) as caught:
        parse_setup(text, "publisher.toml")
    return str(caught.value)


def edited(old: str, new: str) -> str:
    assert old in TEXT, old
    return TEXT.replace(old, new, 1)


def test_the_publisher_example_parses():
    assert load_setup(EXAMPLE).products == (ProductSpec("Mathe digital", "80.00", "120.00", 12, 42, 7),)


def test_only_name_and_price_are_required_the_rest_has_defaults():
    text = TEXT.split("[[products]]")[0] + '[[products]]\nname = "Deutsch"\nprice_per_school = 65\n'
    assert parse_setup(text, "publisher.toml").products == (ProductSpec("Deutsch", "65", None, 12, 42, 7),)


@pytest.mark.parametrize(("old", "new", "needle", "expected"), [
    ('price_per_school = "80.00"', 'price_per_school = "achtzig"', "achtzig",
     'products "Mathe digital" price_per_school: "achtzig" is not a price; write it as a string like "65.00"'),
    ('price_per_school = "80.00"', "price_per_school = 80.5", "80.5",
     'products "Mathe digital" price_per_school: 80.5 is not a price; write it as a string like "65.00"'),
    ('single_price = "120.00"', 'single_price = "12,00"', "12,00",
     'products "Mathe digital" single_price: "12,00" is not a price; write it as a string like "65.00"'),
    ("term_months = 12", "term_months = 0", "term_months",
     'products "Mathe digital" term_months: 0 must be a whole number of at least 1'),
    ("term_months = 12", 'term_months = "12"', "term_months",
     'products "Mathe digital" term_months: "12" must be a whole number of at least 1'),
    ("renewal_notice_days = 42", "renewal_notice_days = -1", "renewal_notice_days",
     'products "Mathe digital" renewal_notice_days: -1 must be a whole number of at least 0'),
    ("invoice_after_days = 7", "invoice_after_days = true", "invoice_after_days",
     'products "Mathe digital" invoice_after_days: true must be a whole number of at least 0'),
    ('name = "Mathe digital"', 'name = ""', 'name = ""', 'products #1 name: "" must be a non-empty string'),
    ("invoice_after_days = 7", "invoice_after_days = 7\nprice = 1", "price = 1",
     'unknown key "price" in [[products]] "Mathe digital"'),
])
def test_a_bad_product_names_file_line_key_and_value(old, new, needle, expected):
    text = edited(old, new)
    assert error_for(text).endswith(expected)
    assert error_for(text).startswith(f"publisher.toml:{line_of(text, needle, after='[[products]]')}: ")


def test_a_missing_price_points_at_the_products_table():
    text = edited(PRICE, "")
    assert error_for(text) == (f'publisher.toml:{line_of(text, "[[products]]")}: '
                               'products "Mathe digital": missing key "price_per_school"')


def test_a_product_named_twice_in_any_case_is_refused():
    text = TEXT + '\n[[products]]\nname = "mathe DIGITAL"\nprice_per_school = "1.00"\n'
    assert error_for(text) == (f'publisher.toml:{line_of(text, "mathe DIGITAL")}: products "mathe DIGITAL" name: '
                               '"mathe DIGITAL" is used by more than one of [[products]]')
