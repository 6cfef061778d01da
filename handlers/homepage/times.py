"""Free times for a homepage: exactly the times the chat's booking walk offers, by the walk's own functions."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from handlers.booking.catalog import Catalog, load_catalog, narrow, offering
from handlers.booking.catalog import free_times as offered_times
from handlers.booking.form import ANY, BookingQuery
from handlers.booking.rules import Rules, booking_rules
from handlers.homepage.errors import HomepageError
from handlers.rules.words import FIRST_YEAR, LAST_YEAR, OutOfRange, fold, iso_date
from storage.db import UnitOfWork
from storage.models import Business

SHOWN = 60  # characters of a bad value quoted back


@dataclass(frozen=True)
class FreeTime:
    """One bookable start: when (in the business's timezone), with whom (by display name) and where."""

    start: datetime
    end: datetime
    staff: str | None  # None only for a staff member the setup gave no name
    location: str


def read_day(text: str) -> date:
    """YYYY-MM-DD, a day that exists, in the years the desk works with."""
    try:
        return iso_date(text.strip())
    except OutOfRange:
        raise HomepageError("date_range", value=text[:SHOWN], first=FIRST_YEAR, last=LAST_YEAR) from None
    except ValueError:
        raise HomepageError("bad_date", value=text[:SHOWN]) from None


def pick(typed: str, names: Iterable[str], code: str, listed: str) -> str:
    """The stored name `typed` means (any case, any spacing, as the chat compares), or a refusal listing them."""
    names = list(names)
    found = next((name for name in names if fold(name) == fold(typed)), None)
    if found is None:
        raise HomepageError(code, value=typed[:SHOWN], **{listed: ", ".join(names)})
    return found


async def free_times(uow: UnitOfWork, now: datetime, service: str, day: str,
                     location: str | None = None) -> list[FreeTime]:
    """The times customers may book `service` on `day` (business-local), at `location` or at every location that
    offers it: one entry per start, place and free staff member, in time order.

    A day outside the booking window (past, or beyond max_days_ahead) has no free times, as in the chat."""
    wanted = read_day(day)
    catalog = await load_catalog(uow)
    name = pick(service, catalog.services, "unknown_service", "services")
    place = pick(location, catalog.locations, "unknown_location", "locations") if location is not None else None
    business = await uow.session.get(Business, 1)
    if business is None:
        return []
    rules, offer = booking_rules(business, now), await offering(uow, catalog.services[name].id)
    places = [catalog.locations[place]] if place is not None else list(offer)
    found: list[FreeTime] = []
    for location_id in (i for i in places if i in offer):  # a place where nobody offers it has no times
        found += await times_at(uow, catalog, name, catalog.location_name(location_id), offer, rules, wanted)
    order = {location_id: n for n, location_id in enumerate(catalog.locations.values())}
    return sorted(found, key=lambda t: (t.start, order[catalog.locations[t.location]], t.staff or ""))


async def times_at(uow: UnitOfWork, catalog: Catalog, service: str, location: str, offer: dict[int, list[int]],
                   rules: Rules, day: date) -> list[FreeTime]:
    """What the walk offers for `book SERVICE at LOCATION with any on DAY`, each start with every free staff member."""
    scope = narrow(catalog, catalog.services[service], BookingQuery(service=service, location=location, staff=ANY),
                   offer)
    names = {person_id: staff for staff, person_id in catalog.staff.items()}
    return [FreeTime(slot.start.astimezone(rules.tz), slot.end.astimezone(rules.tz), names.get(staff), location)
            for slot in await offered_times(uow, rules, scope, day) for staff in slot.staff_ids]
