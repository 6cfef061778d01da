"""The homepage edge's small rules, pure: which language an asker reads, which origins and addresses are valid."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.api import accepted_language
from bot.api.schema import course_type
from bot.settings import Settings, describe_invalid
from handlers.homepage import CourseView, SessionView


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize("header, expected", [
    ("de-AT,de;q=0.9,en;q=0.8", "de"),
    ("en-US,en;q=0.9", "en"),
    ("fr-FR, fr;q=0.9, en;q=0.5, de;q=0.7", "de"),  # by weight, not by order
    ("fr, it", None),
    ("", None),
    ("de;q=0, en;q=0.1", "en"),  # q=0 means "not this one"
    ("de;q=abc, en", "en"),  # a weight that is no number is skipped, not a crash
    ("*", None),
])
def test_the_askers_language_is_the_first_of_ours_they_accept(header, expected):
    assert accepted_language(header) == expected


def test_api_origins_are_kept_as_browsers_send_them():
    configured = settings(api_origins=" https://WWW.Example.com/ ,http://localhost:8000,, https://[::1]:8443")
    assert configured.api_origin_list == ["https://www.example.com", "http://localhost:8000", "https://[::1]:8443"]
    assert settings().api_origin_list == [] and settings().api_listen == ""


@pytest.mark.parametrize("value", ["*", "www.example.com", "https://example.com/booking", "ftp://example.com"])
def test_an_api_origin_that_is_no_origin_is_refused_naming_the_variable(value):
    with pytest.raises(ValidationError) as caught:
        settings(api_origins=f"https://ok.example, {value}")
    assert describe_invalid(caught.value).startswith("FRONTDESK_API_ORIGINS must list origins such as "
                                                     "https://www.example.com, comma-separated")


@pytest.mark.parametrize("value", ["8080", "localhost", "127.0.0.1:http", "127.0.0.1:70000"])
def test_an_api_address_that_is_no_host_and_port_is_refused_naming_the_variable(value):
    with pytest.raises(ValidationError) as caught:
        settings(api_listen=value)
    assert describe_invalid(caught.value).startswith("FRONTDESK_API_LISTEN must be HOST:PORT")


def test_a_webhook_address_error_still_names_its_own_variable():
    with pytest.raises(ValidationError) as caught:
        settings(webhook_listen="nowhere")
    assert describe_invalid(caught.value).startswith("FRONTDESK_WEBHOOK_LISTEN must be HOST:PORT")


def test_a_course_is_served_on_the_business_clock():
    start = datetime(2027, 3, 27, 17, 0, tzinfo=timezone.utc)  # the Saturday before summer time begins
    view = CourseView("Rückenfit", "Linz", 12, 5, "120.00", (SessionView(start, start.replace(hour=18)),
                                                              SessionView(start.replace(day=28, hour=16),
                                                                          start.replace(day=28, hour=17))))
    course = course_type(view, ZoneInfo("Europe/Vienna"))
    assert (course.name, course.location, course.capacity, course.free_places, course.price) == (
        "Rückenfit", "Linz", 12, 5, "120.00")
    assert [(s.start, s.end) for s in course.sessions] == [
        ("2027-03-27T18:00:00+01:00", "2027-03-27T19:00:00+01:00"),
        ("2027-03-28T18:00:00+02:00", "2027-03-28T19:00:00+02:00")]
