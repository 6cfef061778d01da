"""Calendar invitations (RFC 5545) for confirmations, moves and cancellations."""
from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

from handlers.messages import Attachment


def invite(*, uid: str, sequence: int, method: str, start: datetime, end: datetime, summary: str,
           location: str | None, organizer: str, stamp: datetime) -> Attachment:
    """An ICS file; the UID stays, SEQUENCE rises, so calendars update the same event."""
    calendar = Calendar()
    calendar.add("prodid", "-//frontdesk//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("organizer", f"mailto:{organizer}")
    if location:
        event.add("location", location)
    calendar.add_component(event)
    return Attachment("appointment.ics", f"text/calendar; method={method}", calendar.to_ical())
