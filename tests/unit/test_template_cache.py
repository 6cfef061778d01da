"""Message templates are compiled once and kept for good: compiling one costs ~30 times rendering it; dates
and times are formatted once per value, zone and language."""
from datetime import date, datetime, timezone
from importlib import resources

from templates import LANGUAGES, environment, word


def message_templates() -> list[str]:
    return sorted(f"{lang}/{entry.name}" for lang in LANGUAGES
                  for entry in resources.files("templates").joinpath(lang).iterdir() if entry.name.endswith(".j2"))


def test_every_message_template_stays_compiled_once_all_were_used():
    names = message_templates()
    env = environment()
    first = env.get_template(names[0])
    for name in names[1:]:
        env.get_template(name)
    assert env.get_template(names[0]) is first


def test_a_formatted_time_is_kept_per_zone_and_language_not_only_per_instant():
    # The same instant twice, in two zones and two languages: each answer is its own, also when cached.
    instant = datetime(2026, 3, 16, 8, 30, tzinfo=timezone.utc)
    for _ in range(2):
        assert word("en", "booking_label.time", start=instant, tz="Europe/Berlin") == "09:30"
        assert word("en", "booking_label.time", start=instant, tz="America/New_York") == "04:30"
        assert word("de", "booking_label.day", day=date(2026, 3, 16)).startswith("Mo")
        assert word("en", "booking_label.day", day=date(2026, 3, 16)).startswith("Mon")


def test_a_day_given_as_a_moment_is_the_local_day_of_the_zone():
    late = datetime(2026, 3, 16, 23, 30, tzinfo=timezone.utc)  # already Tuesday in Berlin
    assert render_day(late, "Europe/Berlin").startswith("Tue")
    assert render_day(late, "UTC").startswith("Mon")


def render_day(value: datetime, tz: str) -> str:
    return environment().from_string("{{ value|date('EEE d MMM') }}").render(value=value, tz=tz, lang="en")
