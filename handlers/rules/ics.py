"""Calendar invitations (RFC 5545, sent as iMIP, RFC 6047) for confirmations, moves and cancellations."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from icalendar import Calendar, Event, vCalAddress, vText

from handlers.messages import Attachment


@dataclass(frozen=True)
class Party:
    """Someone named in an invitation: a mail address and, where known, a name."""

    email: str
    name: str | None = None


def invite(*, uid: str, sequence: int, method: str, start: datetime, end: datetime, summary: str,
           location: str | None, organizer: Party, attendee: Party, stamp: datetime, filename: str) -> Attachment:
    """An ICS file named `filename`; the UID stays, SEQUENCE rises, so calendars update the same event.

    Times are in UTC (`Z`): every client shows them in its own zone, and no VTIMEZONE can disagree with the
    zone database that booked them. (Readers do disagree: the VTIMEZONE icalendar generates for Europe/Berlin
    makes vobject read 04:00 on the spring DST day an hour off.)

    Outlook and Gmail offer an invitation's controls only when it names an ORGANIZER (who sends it) and
    an ATTENDEE (who gets it). RSVP=FALSE: the appointment is settled, nobody is asked to answer.
    """
    calendar = Calendar()
    calendar.add("prodid", "-//frontdesk//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", utc(stamp))
    event.add("dtstart", utc(start))
    event.add("dtend", utc(end))
    event.add("summary", summary)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("organizer", address(organizer))
    guest = address(attendee)
    guest.params["ROLE"] = "REQ-PARTICIPANT"
    if method == "REQUEST":
        guest.params["PARTSTAT"] = "ACCEPTED"  # the customer booked it, or agreed to it with the team
    guest.params["RSVP"] = "FALSE"
    event.add("attendee", guest)
    if location:
        event.add("location", location)
    calendar.add_component(event)
    return Attachment(filename, f"text/calendar; method={method}", calendar.to_ical())


def address(party: Party) -> vCalAddress:
    """mailto:… with the name as CN when there is one."""
    value = vCalAddress(f"mailto:{party.email}")
    if party.name:
        value.params["CN"] = vText(party.name)
    return value


def utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive one would be written as floating time, read in each reader's own zone."""
    if moment.tzinfo is None:
        raise ValueError(f"an invitation needs aware times, not {moment.isoformat()}")
    return moment.astimezone(timezone.utc)
