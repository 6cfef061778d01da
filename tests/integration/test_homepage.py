"""The homepage's reads against a real store: the offer follows the chat's rules (SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, select, update

from handlers import homepage
from handlers.booking.catalog import load_catalog, offering
from handlers.setup import apply_setup
from storage.models import Business, Location, Service, StaffHours
from tests.helpers import practice_setup

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)


@pytest.fixture
async def practice(store):
    async with store.uow() as uow:
        # Tuesday 8 December's holiday left out, as in the other dated tests (tests/helpers.practice_setup)
        await apply_setup(uow, practice_setup(), MONDAY)
        await uow.commit()
    return store


async def test_where_a_service_is_offered_is_the_booking_walks_rule_for_every_service(practice):
    async with practice.uow() as uow:
        # nobody works in Wels any more: it stays a location, with nothing offered there
        wels = await uow.session.scalar(select(Location.id).where(Location.name == "Wels"))
        await uow.session.execute(delete(StaffHours).where(StaffHours.location_id == wels))
        await uow.commit()
    async with practice.uow() as uow:
        bulk, catalog = await homepage.offered_at(uow), await load_catalog(uow)
        for service in catalog.services.values():
            assert bulk.get(service.id, set()) == set(await offering(uow, service.id)), service.name
        offer = await homepage.load_offer(uow)
        assert await homepage.free_times(uow, MONDAY, "Massage", "2026-12-08", "Wels") == []  # a place, no times
        assert {t.location for t in await homepage.free_times(uow, MONDAY, "Massage", "2026-12-08")} == {"Linz"}
    assert offer.location("Wels").services == ()
    assert offer.service("Massage").locations == ("Linz",)


async def test_a_deleted_service_is_neither_listed_nor_bookable(practice):
    async with practice.uow() as uow:
        await uow.session.execute(update(Service).where(Service.name == "Erstberatung").values(deleted_at=MONDAY))
        await uow.commit()
    async with practice.uow() as uow:
        offer = await homepage.load_offer(uow)
        assert [s.name for s in offer.services] == ["Massage", "Heilgymnastik"]
        with pytest.raises(homepage.HomepageError) as refused:
            await homepage.free_times(uow, MONDAY, "Erstberatung", "2026-12-08")
    assert refused.value.code == "unknown_service"
    assert refused.value.message("en") == "There is no service called “Erstberatung”. Services: Massage, Heilgymnastik."


async def test_before_any_setup_there_is_no_business_and_nothing_to_book(store):
    async with store.uow() as uow:
        offer = await homepage.load_offer(uow)
        assert offer.business is None and offer.services == () and offer.locations == ()
        with pytest.raises(homepage.HomepageError):
            await homepage.free_times(uow, MONDAY, "Massage", "2026-12-08")
        assert await homepage.course_views(uow, MONDAY) == []


async def test_free_times_follow_the_business_timezone(practice):
    async with practice.uow() as uow:
        await uow.session.execute(update(Business).values(timezone="Europe/London"))
        await uow.commit()
    async with practice.uow() as uow:
        [first, *_] = await homepage.free_times(uow, MONDAY, "Massage", "2026-12-08", "Linz")
        assert (await uow.session.scalar(select(Business.timezone))) == "Europe/London"
    assert first.start.isoformat() == "2026-12-08T08:00:00+00:00"  # Lukas's 08:00, now on London's clock
