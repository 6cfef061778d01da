"""Member profile rules without I/O: names, numbers, extensions, passwords, hashes, CSV cells."""
import csv
import io

import pytest

from handlers.context import Refusal
from handlers.rules import profile as rules


def refusal(call, *args, **kwargs) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call(*args, **kwargs)
    return caught.value


# ---- names --------------------------------------------------------------------------------------

def test_first_name_holds_23_characters_and_last_name_30():
    assert rules.check_name("A" * 23, "first") == "A" * 23
    assert rules.check_name("B" * 30, "last") == "B" * 30
    too_long = refusal(rules.check_name, "A" * 24, "first")
    assert too_long.template == "accounts_name_too_long"
    assert too_long.values["limit"] == 23 and too_long.values["length"] == 24
    assert refusal(rules.check_name, "B" * 31, "last").values["limit"] == 30


def test_names_are_trimmed_before_counting():
    assert rules.check_name("  Anna   Maria  ", "first") == "Anna Maria"


def test_a_full_name_splits_into_first_names_and_last_name():
    assert rules.split_name("Anna Maria Berger") == ("Anna Maria", "Berger")
    assert rules.split_name("Cher") == ("", "Cher")


# ---- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["+43 1 2345678", "0043 1 234 56 78", "01/234 56 78", "+43 (0) 1 2345678",
                                   "01-2345678"])
def test_a_vienna_number_in_any_notation_becomes_e164(typed):
    assert rules.parse_phone(typed, "AT") == "+4312345678"


@pytest.mark.parametrize(("typed", "expected"), [
    ("0664/123 45 67", "+436641234567"),
    ("+49 (0)30 123456-78", "+493012345678"),
    ("030 1234567", "+49301234567"),
    ("0049 30 1234567", "+49301234567"),
    ("(030) 12345678", "+493012345678"),
    ("0171 1234567", "+491711234567"),
])
def test_austrian_and_german_numbers_become_e164(typed, expected):
    region = "AT" if typed.startswith("0664") else "DE"
    assert rules.parse_phone(typed, region) == expected


def test_a_number_with_a_country_code_ignores_the_default_region():
    assert rules.parse_phone("+49 30 1234567", "AT") == "+49301234567"


@pytest.mark.parametrize("typed", ["12", "abc", "+43 1", "0000000", ""])
def test_an_invalid_number_is_refused_naming_the_value(typed):
    refused = refusal(rules.parse_phone, typed, "DE")
    assert refused.template == "accounts_phone_invalid"
    assert refused.values["value"] == typed.strip()


def test_the_region_follows_the_business_timezone():
    assert rules.region_for("Europe/Vienna") == "AT"
    assert rules.region_for("Europe/Berlin") == "DE"
    assert rules.region_for(None) == "DE"
    assert rules.region_for("Europe/Luxembourg") == "LU"


def test_the_extension_defaults_to_the_last_four_digits():
    assert rules.default_extension("+4312345678") == "5678"
    assert rules.default_extension(None) is None


def test_an_extension_is_two_to_eight_digits():
    assert rules.check_extension(" 0815 ") == "0815"
    assert refusal(rules.check_extension, "12a").template == "accounts_extension_invalid"
    assert refusal(rules.check_extension, "1").template == "accounts_extension_invalid"


# ---- typed fields -------------------------------------------------------------------------------

def test_options_take_values_with_spaces_until_the_next_field():
    words, options = rules.parse_options("Kim Novak kim@example.com phone=+43 1 234 56 78 device=Yealink T54W")
    assert words == ["Kim", "Novak", "kim@example.com"]
    assert options == {"phone": "+43 1 234 56 78", "device": "Yealink T54W"}


def test_german_field_names_mean_the_same_fields():
    _, options = rules.parse_options("telefon=0664 1234567 durchwahl=42 gerät=ohne dienste=Voicemail")
    assert set(options) == {"phone", "extension", "device", "services"}


def test_an_unknown_field_is_refused_with_the_known_ones():
    refused = refusal(rules.parse_options, "set colour=red")
    assert refused.template == "accounts_field_unknown"
    assert "phone" in refused.values["known"]


def test_fields_are_cleaned_and_empty_optional_values_clear_them():
    values = rules.clean_fields({"phone": "01 2345678", "mobile": "", "device": "none",
                                 "services": "Voicemail, call centre,voicemail", "contract": " K-1 "}, "AT")
    assert values == {"phone": "+4312345678", "mobile": None, "device": "none",
                      "services": ["Voicemail", "call centre"], "contract": "K-1"}


def test_no_desk_phone_is_spelled_none():
    assert rules.parse_device("ohne") == "none"
    assert rules.parse_device("Yealink  T54W") == "Yealink T54W"


# ---- passwords ----------------------------------------------------------------------------------

def test_a_strong_password_has_no_problems():
    assert rules.password_problems("Blue!Harbour42", ["Kim", "Novak", "kim@example.com"]) == []


def test_weak_passwords_get_each_reason():
    assert rules.password_problems("Ab1!") == ["too_short"]
    assert rules.password_problems("abcdefghijkl") == ["few_classes"]
    assert rules.password_problems("Novak-Rocks-2026", ["Kim", "Novak"]) == ["personal"]
    assert rules.password_problems("kimmy#Secret9", ["kim@example.com"]) == ["personal"]
    assert rules.password_problems("=Formula!Pass1") == ["formula_start"]
    assert rules.password_problems("two words Are9") == ["whitespace"]
    assert rules.password_problems("short") == ["too_short", "few_classes"]


def test_generated_passwords_pass_the_rules_and_start_with_a_letter():
    for _ in range(200):
        password = rules.new_password()
        assert len(password) == 16 and password[0].isalpha()
        assert rules.password_problems(password) == []


def test_access_codes_are_digits():
    code = rules.new_access_code()
    assert len(code) == 8 and code.isdigit()


def test_a_hash_verifies_its_secret_only():
    digest = rules.hash_secret("Blue!Harbour42")
    assert "Blue!Harbour42" not in digest and digest.startswith("scrypt$")
    assert rules.verify_secret("Blue!Harbour42", digest)
    assert not rules.verify_secret("Blue!Harbour43", digest)
    assert rules.hash_secret("Blue!Harbour42") != digest  # salted
    assert not rules.verify_secret("x", "garbage")


# ---- CSV ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tx"])
def test_formula_cells_are_neutralised(cell):
    assert rules.csv_cell(cell) == "'" + cell


def test_plain_cells_stay_as_they_are():
    assert rules.csv_cell("Kim") == "Kim"
    assert rules.csv_cell(None) == ""
    assert rules.csv_cell(12) == "12"
    assert rules.csv_cell("+4312345678") == "+4312345678"  # a number, not a sum: no quote to show


@pytest.mark.parametrize("cell", ["+49 30 1234567", "+4930123456", "-12", "-2.5", "+1,5", "-", "0123"])
def test_numbers_and_phone_numbers_get_no_quote(cell):
    assert rules.csv_cell(cell) == cell


@pytest.mark.parametrize("cell", ["+49 30 123-456", "-1 +2", "+ 1", "+49(30)1", "-A1", "=1", "@x", "+1e5"])
def test_a_sign_before_anything_but_a_plain_number_is_neutralised(cell):
    assert rules.csv_cell(cell) == "'" + cell


def test_phone_numbers_are_written_in_groups_of_digits_so_they_stay_text():
    assert rules.phone_cell("+4930123456") == "+49 30 123456"
    assert rules.phone_cell("+16502530000") == "+1 650 253 0000"
    assert rules.phone_cell(None) == ""


def test_access_codes_never_start_with_a_zero():
    # a spreadsheet opens "0123…" as the number 123…; with 1 000 codes a leading zero would come ~100 times
    codes = [rules.new_access_code() for _ in range(1000)]
    assert all(len(code) == rules.ACCESS_CODE_DIGITS and code.isdigit() and code[0] != "0" for code in codes)


def test_a_csv_file_has_a_bom_a_header_and_neutralised_rows():
    data = rules.csv_file(["ID", "Name"], [[1, "=cmd|' /C calc'!A0"], [2, "Kim; Novak"]])
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows == [["ID", "Name"], ["1", "'=cmd|' /C calc'!A0"], ["2", "Kim; Novak"]]


async def test_hashing_on_every_core_keeps_the_order_and_each_hash_verifies():
    from handlers.members.credentials import hash_on_every_core

    values = [f"Secret-{n}-x" for n in range(7)]
    digests = await hash_on_every_core(values)
    assert len(digests) == 7 and len(set(digests)) == 7
    assert all(rules.verify_secret(v, d) for v, d in zip(values, digests))
    assert not rules.verify_secret(values[0], digests[1])
    assert await hash_on_every_core([]) == []
