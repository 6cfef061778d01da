"""Applying the setup file to a real store (SQLite and PostgreSQL): creates, is idempotent, reports changes."""
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.setup import SetupError, apply_setup, load_setup, parse_setup
from storage.models import (
    Address,
    Audit,
    Business,
    Location,
    OpeningHours,
    Person,
    Role,
    Service,
    Staff,
    StaffHours,
    StaffService,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "practice.toml"
TEXT = EXAMPLE.read_text(encoding="utf-8")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


async def apply(store, spec) -> list[str]:
    async with store.uow() as uow:
        changes = await apply_setup(uow, spec, NOW)
        await uow.commit()
    return changes


async def count(session, model, *where) -> int:
    return await session.scalar(select(func.count()).select_from(model).where(*where))


async def person_of(session, address: str) -> int:
    return await session.scalar(select(Address.person_id).where(Address.address == address))


async def test_applying_the_example_creates_everything(store):
    changes = await apply(store, load_setup(EXAMPLE))
    assert changes == [
        "+ business Physio am Park",
        "+ location Linz",
        "+ location Wels",
        "+ service Massage (60 min)",
        "+ service Heilgymnastik (45 min)",
        "+ service Erstberatung (30 min)",
        "+ staff Anna Berger (owner)",
        "+ staff Lukas Huber (provider)",
        "+ staff Eva Wimmer (assistant)",
    ]
    async with store.uow() as uow:
        s = uow.session
        business = await s.get(Business, 1)
        assert (business.name, business.timezone, business.language) == ("Physio am Park", "Europe/Vienna", "de")
        assert business.support_email == "hilfe@physio-am-park.example"
        linz = await s.scalar(select(Location.id).where(Location.name == "Linz"))
        assert await count(s, OpeningHours, OpeningHours.location_id == linz) == 8
        assert await count(s, OpeningHours) == 10
        massage = await s.scalar(select(Service).where(Service.name == "Massage"))
        assert (massage.minutes, massage.colour, massage.price) == (60, "#2e86de", "65.00")
        assert await count(s, Service) == 3

        anna, lukas, eva = [await person_of(s, f"telegram:{n}") for n in (1001, 1002, 1003)]
        assert await person_of(s, "email:anna@physio-am-park.example") == anna
        assert (await s.get(Person, anna)).name == "Anna Berger"
        assert await count(s, Address, Address.verified.is_(True)) == 6
        assert await count(s, Person) == 3
        roles = dict((await s.execute(select(Role.person_id, Role.role).where(Role.scope == ""))).all())
        assert roles == {anna: "owner", lukas: "staff", eva: "staff"}
        staff = {r.person_id: (r.kind, r.rights) for r in (await s.scalars(select(Staff))).all()}
        assert staff == {
            anna: ("owner", []), lukas: ("provider", ["own_hours"]), eva: ("assistant", ["book_for_colleagues"]),
        }
        assert await count(s, StaffService, StaffService.person_id == anna) == 3
        assert await count(s, StaffService, StaffService.person_id == lukas) == 2
        assert await count(s, StaffService, StaffService.person_id == eva) == 0
        assert await count(s, StaffHours, StaffHours.person_id == anna) == 4
        assert await count(s, StaffHours, StaffHours.person_id == lukas) == 5
        audit = (await s.scalars(select(Audit))).all()
        assert [(a.actor, a.channel, a.action, a.subject, a.detail) for a in audit] == [
            ("setup", "setup", "setup_applied", str(EXAMPLE), {"changes": 9})
        ]


async def test_applying_twice_changes_nothing(store):
    spec = load_setup(EXAMPLE)
    assert await apply(store, spec)
    assert await apply(store, load_setup(EXAMPLE)) == []
    async with store.uow() as uow:
        assert await count(uow.session, Audit) == 1
        assert await count(uow.session, Person) == 3
        assert await count(uow.session, OpeningHours) == 10
        assert await count(uow.session, StaffHours) == 9


async def test_changed_minutes_and_hours_are_reported(store):
    await apply(store, parse_setup(TEXT, "practice.toml"))
    text = TEXT.replace("minutes = 60\n", "minutes = 45\n", 1)
    text = text.replace('hours.thu = ["09:00-17:00"]', 'hours.thu = ["10:00-16:00"]')
    assert await apply(store, parse_setup(text, "practice.toml")) == [
        "~ location Wels: opening hours changed",
        "~ service Massage: minutes 60 → 45",
    ]
    async with store.uow() as uow:
        s = uow.session
        assert await s.scalar(select(Service.minutes).where(Service.name == "Massage")) == 45
        wels = await s.scalar(select(Location.id).where(Location.name == "Wels"))
        rows = (await s.execute(select(OpeningHours.weekday, OpeningHours.start_minute, OpeningHours.end_minute)
                                .where(OpeningHours.location_id == wels).order_by(OpeningHours.weekday))).all()
        assert [tuple(r) for r in rows] == [(1, 540, 1020), (3, 600, 960)]
        assert await count(s, Audit) == 2
    assert await apply(store, parse_setup(text, "practice.toml")) == []


async def test_staff_changes_are_reported(store):
    await apply(store, parse_setup(TEXT, "practice.toml"))
    text = (TEXT.replace('role = "provider"', 'role = "admin"')
            .replace('services = ["Massage", "Heilgymnastik"]', 'services = ["Massage"]')
            .replace('hours.Linz.fri = ["08:00-14:00"]', 'hours.Linz.fri = ["08:00-13:00"]'))
    assert await apply(store, parse_setup(text, "practice.toml")) == [
        "~ staff Lukas Huber: role provider → admin, services [Massage, Heilgymnastik] → [Massage], hours changed",
    ]
    async with store.uow() as uow:
        lukas = await person_of(uow.session, "telegram:1002")
        assert (await uow.session.scalars(select(Role.role).where(Role.person_id == lukas))).all() == ["admin"]


async def test_services_missing_from_the_file_are_kept(store):
    await apply(store, parse_setup(TEXT, "practice.toml"))
    text = TEXT.replace('services = ["Massage", "Heilgymnastik", "Erstberatung"]', 'services = ["Massage"]')
    text = text.replace('[[services]]\nname = "Erstberatung"\nminutes = 30\ncolour = "#f368e0"\n', "")
    assert await apply(store, parse_setup(text, "practice.toml")) == [
        "~ staff Anna Berger: services [Massage, Heilgymnastik, Erstberatung] → [Massage]",
    ]
    async with store.uow() as uow:
        assert await count(uow.session, Service, Service.name == "Erstberatung") == 1


async def test_staff_who_wrote_before_is_attached_to_their_person(store):
    async with store.uow() as uow:
        customer = Person(name="Lukas H.", created_at=NOW)
        uow.session.add(customer)
        await uow.flush()
        uow.session.add(Address(address="telegram:1002", kind="telegram", person_id=customer.id, verified=False,
                                created_at=NOW))
        await uow.commit()
    changes = await apply(store, parse_setup(TEXT, "practice.toml"))
    assert "+ staff Lukas Huber (provider)" in changes
    async with store.uow() as uow:
        s = uow.session
        assert await count(s, Address, Address.address == "telegram:1002") == 1
        assert await person_of(s, "telegram:1002") == customer.id
        assert await person_of(s, "email:lukas@physio-am-park.example") == customer.id
        assert (await s.get(Person, customer.id)).name == "Lukas Huber"
        assert await s.scalar(select(Address.verified).where(Address.address == "telegram:1002")) is True
        assert (await s.get(Staff, customer.id)).kind == "provider"
        assert await count(s, Person) == 3
    assert await apply(store, parse_setup(TEXT, "practice.toml")) == []


async def test_addresses_of_two_different_people_are_refused(store):
    async with store.uow() as uow:
        for name, address in (("Kim", "telegram:1001"), ("Lee", "email:anna@physio-am-park.example")):
            person = Person(name=name, created_at=NOW)
            uow.session.add(person)
            await uow.flush()
            uow.session.add(Address(address=address, kind=address.split(":")[0], person_id=person.id,
                                    created_at=NOW))
        await uow.commit()
    with pytest.raises(SetupError, match=r'^practice.toml: staff "Anna Berger": telegram:1001 and email:anna@'):
        await apply(store, parse_setup(TEXT, "practice.toml"))
    async with store.uow() as uow:
        assert await count(uow.session, Staff) == 0


async def test_the_seat_approval_limit_comes_from_the_setup_file(store):
    from storage.models import Business

    text = '[business]\nname = "A"\ntimezone = "Europe/Berlin"\nlanguage = "de"\n'
    assert parse_setup(text, "a.toml").business.max_seats_without_approval == 20
    for bad, problem in (("-1", "a whole number of at least 0"), ('"ten"', "a whole number of at least 0"),
                         ("60000", "at most 50000")):
        with pytest.raises(SetupError, match=f"max_seats_without_approval: .* must be {problem}"):
            parse_setup(text + f"max_seats_without_approval = {bad}\n", "a.toml")
    spec = parse_setup(text + "max_seats_without_approval = 5\n", "a.toml")
    async with store.uow() as uow:
        await apply_setup(uow, spec, datetime.now(timezone.utc))
        await uow.commit()
    async with store.uow() as uow:
        assert (await uow.session.get(Business, 1)).max_seats_without_approval == 5


async def test_holiday_codes_are_stored_and_a_changed_one_is_reported(store):
    await apply(store, parse_setup(TEXT, "practice.toml"))
    async with store.uow() as uow:
        assert (await uow.session.get(Business, 1)).holidays == "AT-4"
        assert (await uow.session.scalars(select(Location.holidays).order_by(Location.id))).all() == [None, None]
    text = TEXT.replace('name = "Wels"\n', 'name = "Wels"\nholidays = "DE-BY"\n')
    assert await apply(store, parse_setup(text, "practice.toml")) == ["~ location Wels: holidays (none) → DE-BY"]
    assert await apply(store, parse_setup(text, "practice.toml")) == []
    text = text.replace('holidays = "AT-4"', 'holidays = "AT-9"')
    assert await apply(store, parse_setup(text, "practice.toml")) == ["~ business: holidays AT-4 → AT-9"]
    async with store.uow() as uow:
        assert (await uow.session.scalars(select(Location.holidays).order_by(Location.id))).all() == [None, "DE-BY"]
