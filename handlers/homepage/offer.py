"""The business, its locations and the services customers can book, as a homepage shows them (no personal data)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from handlers.booking import load_catalog
from storage.db import UnitOfWork
from storage.models import Business, Service, StaffHours, StaffService


@dataclass(frozen=True)
class BusinessView:
    name: str
    timezone: str
    language: str  # de or en


@dataclass(frozen=True)
class ServiceView:
    name: str
    minutes: int
    price: str | None  # decimal text, as the setup file gives it
    locations: tuple[str, ...]  # where someone offers it


@dataclass(frozen=True)
class LocationView:
    name: str
    services: tuple[str, ...]  # what someone offers there


@dataclass(frozen=True)
class Offer:
    """What one homepage request reads once: the business and the services and locations the chat offers."""

    business: BusinessView | None
    services: tuple[ServiceView, ...]
    locations: tuple[LocationView, ...]

    def service(self, name: str) -> ServiceView:
        return next(s for s in self.services if s.name == name)

    def location(self, name: str) -> LocationView:
        return next(location for location in self.locations if location.name == name)


async def offered_at(uow: UnitOfWork) -> dict[int, set[int]]:
    """Service id → the locations where a staff member qualified for it has bookable hours.

    The rule of the chat's `offering`, for every service in one query (tests hold the two equal)."""
    rows = await uow.session.execute(
        select(StaffService.service_id, StaffHours.location_id).distinct()
        .join(StaffHours, StaffHours.person_id == StaffService.person_id))
    found: dict[int, set[int]] = {}
    for service, location in rows:
        found.setdefault(service, set()).add(location)
    return found


async def load_offer(uow: UnitOfWork) -> Offer:
    """The business (None before any setup), the bookable services as the chat lists them, and every location."""
    business = await uow.session.get(Business, 1)
    catalog = await load_catalog(uow)
    where = await offered_at(uow)
    by_id = {location_id: name for name, location_id in catalog.locations.items()}
    services = tuple(ServiceView(s.name, s.minutes, s.price, tuple(by_id[i] for i in sorted(where.get(s.id, ()))))
                     for s in catalog.services.values())
    locations = tuple(LocationView(name, tuple(s.name for s in services if name in s.locations))
                      for name in catalog.locations)
    shown = BusinessView(business.name, business.timezone, business.language) if business else None
    return Offer(shown, services, locations)


@dataclass(frozen=True)
class Look:
    """How the booking page looks and speaks: the business's name, time zone and language, its colour (the setup's
    widget_accent, else the first service colour), font and extra stylesheet."""

    name: str | None
    timezone: str
    language: str | None
    accent: str | None
    font: str | None
    css: str | None
    requests: bool = False  # request mode: a code sends a request, it books nothing yet


async def load_look(uow: UnitOfWork, default_timezone: str) -> Look:
    """The business's look; before any setup only the configured time zone."""
    business = await uow.session.get(Business, 1)
    if business is None:
        return Look(None, default_timezone, None, None, None, None)
    colour = await uow.session.scalar(select(Service.colour).where(
        Service.deleted_at.is_(None), Service.colour.is_not(None)).order_by(Service.id).limit(1))
    return Look(business.name, business.timezone, business.language, business.widget_accent or colour,
                business.widget_font, business.widget_css, business.booking_mode == "request")
