"""The booking page's pure rules: signed stamps and holds, robots, colours, client addresses, page parameters, the
setup file's widget keys, and words in both languages."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from handlers.booking.form import ANY, BookingQuery
from handlers.homepage.guard import (
    Wanted,
    accent,
    client_address,
    hold_of,
    hold_token,
    holder,
    mask,
    params_of,
    robot,
    stamp,
    text_on,
)
from handlers.setup import SetupError, parse_setup
from templates import _words

KEY = b"k" * 32
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)
SETUP = """\
[business]
name = "Studio"
timezone = "Europe/Berlin"
language = "en"
{extra}
"""


def test_a_person_passes_and_robots_are_named():
    handed_out = stamp(KEY, NOW)
    assert robot(KEY, "", handed_out, NOW + timedelta(seconds=4)) is None
    assert robot(KEY, "http://spam.example", handed_out, NOW + timedelta(seconds=40)) == "honeypot"
    assert robot(KEY, "", handed_out, NOW + timedelta(seconds=2)) == "too_fast"
    assert robot(KEY, "", handed_out, NOW + timedelta(hours=13)) == "too_old"
    assert robot(KEY, "", stamp(b"other" * 8, NOW), NOW + timedelta(seconds=9)) == "unsigned"
    seconds, signature = handed_out.split(".")
    assert robot(KEY, "", f"{int(seconds) - 60}.{signature}", NOW + timedelta(seconds=9)) == "unsigned"
    assert robot(KEY, "", "", NOW) == "unsigned" and robot(KEY, "", "abc.def", NOW) == "unsigned"


def test_hold_tokens_are_signed_and_cannot_pass_for_stamps():
    token = hold_token(KEY, 42)
    assert hold_of(KEY, token) == 42
    assert hold_of(KEY, token.replace("42.", "43.")) is None
    assert hold_of(b"x" * 32, token) is None
    assert hold_of(KEY, stamp(KEY, NOW)) is None  # a form stamp is signed under another label
    assert hold_of(KEY, "9" * 40 + "." + "0" * 16) is None and hold_of(KEY, "") is None


def test_holders_hide_the_address_and_differ_by_kind():
    email, client = holder(KEY, "email", "kim@example.com"), holder(KEY, "client", "kim@example.com")
    assert email != client and "kim" not in email and len(email) == 40
    assert holder(KEY, "email", "kim@example.com") == email


@pytest.mark.parametrize("given, expected", [
    ("#AA3300", "#aa3300"), ("aa3300", "#aa3300"), (" #10ac84 ", "#10ac84"),
    ("red", None), ("#abc", None), ("aa3300;}", None), ("", None), (None, None)])
def test_a_test_colour_is_a_hex_colour_or_nothing(given, expected):
    assert accent(given) == expected


def test_text_on_a_colour_is_the_one_that_reads_better():
    assert text_on("#ffffff") == "#000000" and text_on("#000000") == "#ffffff"
    assert text_on("#aa3300") == "#ffffff" and text_on("#2e86de") == "#000000"  # 5.4:1 beats 3.9:1


def test_the_client_is_the_peer_unless_a_trusted_proxy_names_it():
    assert client_address("203.0.113.5", "198.51.100.1", frozenset()) == "203.0.113.5"
    proxies = frozenset({"10.0.0.2", "10.0.0.3"})
    assert client_address("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.3", proxies) == "198.51.100.7"
    assert client_address("10.0.0.2", "", proxies) == "10.0.0.2"
    assert client_address(None, "", frozenset()) == "unknown"


def test_page_parameters_read_as_the_chats_typed_form_and_back():
    wanted = Wanted.of({"service": " Massage ", "location": "Linz", "staff": "any", "day": "2026-12-08",
                        "time": "10:00", "other": "x"})
    assert wanted.typed == "Massage at Linz with any on 2026-12-08 at 10:00"
    assert Wanted.of({"location": "Linz"}).typed == ""  # nothing is asked without a service
    assert Wanted.of({"service": "x" * 500}).service == "x" * 120
    query = BookingQuery("Massage", "Linz", ANY, date(2026, 12, 8), 600)
    assert params_of(query) == {"service": "Massage", "location": "Linz", "staff": "any", "day": "2026-12-08",
                                "time": "10:00"}
    assert params_of(BookingQuery("Massage")) == {"service": "Massage"}


def test_a_shown_address_is_masked():
    assert mask("kim@example.com") == "k…\u2060@example.com"


def test_the_page_words_exist_in_both_languages():
    assert set(_words("de")["bookpage"]) == set(_words("en")["bookpage"])
    for name in ("booking_page_code_mail", "booking_page_open_holds", "booking_page_choose",
                 "booking_page_course_already"):
        for lang in ("de", "en"):
            assert (Path(__file__).parents[2] / "templates" / lang / f"{name}.j2").exists(), (lang, name)


# ---- the setup file's widget keys ---------------------------------------------------------------


def setup(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "studio.toml"
    path.write_text(SETUP.format(extra=extra), encoding="utf-8")
    return parse_setup(path.read_text(encoding="utf-8"), str(path))


def refused(tmp_path: Path, extra: str) -> str:
    with pytest.raises(SetupError) as caught:
        setup(tmp_path, extra)
    return str(caught.value)


def test_widget_keys_are_read_and_the_css_file_kept_as_text(tmp_path):
    (tmp_path / "site.css").write_text(".card > h1 { color: #123456; }\n", encoding="utf-8")
    spec = setup(tmp_path, 'widget_accent = "#AA3300"\nwidget_font = \'"Source Sans 3", Arial, sans-serif\'\n'
                           'widget_css = "site.css"')
    business = spec.business  # type: ignore[attr-defined]
    assert business.widget_accent == "#aa3300"
    assert business.widget_font == '"Source Sans 3", Arial, sans-serif'
    assert business.widget_css == ".card > h1 { color: #123456; }\n"


@pytest.mark.parametrize("extra, words", [
    ('widget_accent = "red"', 'business widget_accent: "red" is not a colour like "#2e86de"'),
    ('widget_font = "Arial; } body { display: none"', 'business widget_font: "Arial; } body { display: none" is not'),
    ('widget_css = "missing.css"', 'business widget_css: "missing.css" cannot be read'),
])
def test_bad_widget_values_name_file_line_key_and_value(tmp_path, extra, words):
    message = refused(tmp_path, extra)
    assert message.startswith(f"{tmp_path / 'studio.toml'}:5: ") and words in message  # the key's line


def test_a_css_file_too_big_not_text_or_leaving_its_style_element_is_refused(tmp_path):
    (tmp_path / "big.css").write_text("a{}" * 6000)
    assert "is 18000 bytes; at most 16384 are taken" in refused(tmp_path, 'widget_css = "big.css"')
    (tmp_path / "bin.css").write_bytes(b"\xff\xfe\x00a")
    assert "is not UTF-8 text" in refused(tmp_path, 'widget_css = "bin.css"')
    (tmp_path / "out.css").write_text("a{}</style><script>alert(1)</script>")
    assert 'holds "</" or "<!--"' in refused(tmp_path, 'widget_css = "out.css"')
