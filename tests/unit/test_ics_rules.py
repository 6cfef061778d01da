"""The calendar file itself (handlers.rules.ics), read back by vobject and ics: no store, no I/O."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import ics
import pytest
import vobject

from handlers.rules.ics import Party, invite
from templates import word

STAMP = datetime(2026, 10, 20, 12, 0, tzinfo=timezone.utc)


def make(start: datetime, method: str = "REQUEST", filename: str = "termin.ics"):
    return invite(uid="appointment-7@example.org", sequence=3, method=method, start=start,
                  end=start + timedelta(minutes=45), summary="Massage · Praxis", location=None,
                  organizer=Party("termine@praxis.example", "Praxis"), attendee=Party("kim@example.com"),
                  stamp=STAMP, filename=filename)


def test_a_local_time_is_written_as_the_same_moment_in_utc():
    # 01:30 on the autumn DST day in Berlin is still summer time: 23:30 UTC the day before
    start = datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    text = make(start).data.decode()
    assert "DTSTART:20261024T233000Z" in text and "DTEND:20261025T001500Z" in text
    assert "DTSTAMP:20261020T120000Z" in text
    assert vobject.readOne(text).vevent.dtstart.value == start
    assert next(iter(ics.Calendar(text).events)).begin.datetime == start


def test_a_time_without_a_zone_is_refused_rather_than_written_floating():
    with pytest.raises(ValueError, match="aware"):
        make(datetime(2026, 10, 25, 10, 0))


def test_a_cancellation_asks_nothing_of_the_attendee():
    attachment = make(datetime(2026, 10, 25, 9, 0, tzinfo=timezone.utc), method="CANCEL",
                      filename=word("en", "invitation.file"))
    assert (attachment.name, attachment.mime) == ("appointment.ics", "text/calendar; method=CANCEL")
    event = vobject.readOne(attachment.data.decode()).vevent
    assert (event.status.value, event.sequence.value) == ("CANCELLED", "3")
    assert "PARTSTAT" not in event.attendee.params and event.attendee.params["RSVP"] == ["FALSE"]


def test_the_file_name_and_summary_come_from_the_templates():
    assert (word("de", "invitation.file"), word("en", "invitation.file")) == ("termin.ics", "appointment.ics")
    assert word("de", "invitation.summary", service="Massage", business="Praxis") == "Massage · Praxis"
    assert word("en", "invitation.summary", service="Massage", business=None) == "Massage"
