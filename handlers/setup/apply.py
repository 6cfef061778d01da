"""Applying the setup file: the database brought in line with the spec, idempotently (a second run changes
nothing)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.courses.setup import apply_courses
from handlers.licences.setup import apply_products
from handlers.privacy.retention import schedule_retention
from handlers.reminders.schedule import agendas_in_line, remind_upcoming
from handlers.rules.words import hhmm
from handlers.setup.spec import (
    BUSINESS_KEYS,
    MANAGED_ROLES,
    ROLE_ROWS,
    BusinessSpec,
    Interval,
    LocationSpec,
    ServiceSpec,
    SetupError,
    SetupSpec,
    StaffSpec,
)
from storage.db import UnitOfWork
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


class _Conflict(Exception):
    """The file and the database disagree about who someone is."""


async def apply_setup(uow: UnitOfWork, spec: SetupSpec, now: datetime) -> list[str]:
    """Bring the database in line with the spec (no commit); returns one line per change."""
    session = uow.session
    business = await session.get(Business, 1)
    reminders_before = list(business.reminders) if business is not None else None
    changes = await _apply_business(session, spec.business)
    if spec.business.retention_days:
        # The daily deletion keeps itself going; this starts it (or finds it started: the same key).
        first = await schedule_retention(uow, spec.business.timezone, now)
        if first is not None:
            changes.append(f"+ retention: raw mails and closed tickets older than {spec.business.retention_days} "
                           f"days are deleted daily, first at {first.isoformat()}")
    location_ids = await _apply_locations(session, spec.locations, changes)
    service_ids = await _apply_services(session, spec.services, changes)
    seen: dict[int, str] = {}
    try:
        for staff in spec.staff:
            person_id = await _apply_staff(session, staff, location_ids, service_ids, now, changes)
            if person_id in seen:
                raise _Conflict(f'staff "{staff.name}" and "{seen[person_id]}" are the same person (#{person_id})')
            seen[person_id] = staff.name
    except _Conflict as exc:
        raise SetupError(f"{spec.filename}: {exc}") from None
    await session.flush()
    if reminders_before is not None and reminders_before != list(spec.business.reminders):
        await remind_upcoming(uow, now)  # appointments already confirmed get the new reminders too
    await agendas_in_line(uow, now)
    await apply_courses(uow, spec, location_ids, now, changes)
    await apply_products(uow, spec, changes)
    if changes:
        session.add(Audit(at=now, actor="setup", person_id=None, channel="setup", action="setup_applied",
                          subject=spec.filename[-340:], detail={"changes": len(changes)}))
    await session.flush()
    return changes


def _fmt(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _update(row: Any, values: dict[str, Any], labels: dict[str, str] | None = None) -> list[str]:
    """Set differing attributes; returns "field old → new" for each."""
    notes = []
    for field, value in values.items():
        old = getattr(row, field)
        if old != value:
            setattr(row, field, value)
            notes.append(f"{(labels or {}).get(field, field)} {_fmt(old)} → {_fmt(value)}")
    return notes


async def _apply_business(session: AsyncSession, spec: BusinessSpec) -> list[str]:
    values = {field: getattr(spec, field) for field in BUSINESS_KEYS}
    values["reminders"] = list(spec.reminders)  # stored as a JSON list
    row = await session.get(Business, 1)
    if row is None:
        session.add(Business(id=1, **values))
        return [f"+ business {spec.name}"]
    css = values.pop("widget_css")
    notes = _update(row, values)
    if row.widget_css != css:  # a stylesheet is not shown in the changes, only how long it is
        row.widget_css = css
        notes.append(f"widget_css → {len(css.encode()) if css else 0} bytes")
    return [f"~ business: {', '.join(notes)}"] if notes else []


async def _apply_locations(session: AsyncSession, specs: tuple[LocationSpec, ...],
                           changes: list[str]) -> dict[str, int]:
    rows = {row.name: row for row in (await session.scalars(select(Location))).all()}
    ids = {}
    for spec in specs:
        row = rows.get(spec.name)
        if row is None:
            row = Location(name=spec.name, holidays=spec.holidays)
            session.add(row)
            await session.flush()
            changes.append(f"+ location {spec.name}")
            await _replace_opening_hours(session, row.id, spec.hours)
        else:
            notes = _update(row, {"holidays": spec.holidays})
            if await _replace_opening_hours(session, row.id, spec.hours):
                notes.append("opening hours changed")
            if notes:
                changes.append(f"~ location {spec.name}: {', '.join(notes)}")
        ids[spec.name] = row.id
    return ids


async def _replace_opening_hours(session: AsyncSession, location_id: int, hours: tuple[Interval, ...]) -> bool:
    """Replace a location's opening hours if they differ; True if they did."""
    columns = (OpeningHours.weekday, OpeningHours.start_minute, OpeningHours.end_minute)
    rows = await session.execute(select(*columns).where(OpeningHours.location_id == location_id))
    current = sorted(tuple(r) for r in rows)
    wanted = sorted((i.weekday, i.start, i.end) for i in hours)
    if current == wanted:
        return False
    await session.execute(delete(OpeningHours).where(OpeningHours.location_id == location_id))
    session.add_all(OpeningHours(location_id=location_id, weekday=w, start_minute=s, end_minute=e)
                    for w, s, e in wanted)
    return True


async def _apply_services(session: AsyncSession, specs: tuple[ServiceSpec, ...],
                          changes: list[str]) -> dict[str, int]:
    # Services missing from the file stay: past appointments refer to them.
    rows = {row.name: row for row in (await session.scalars(select(Service))).all()}
    for spec in specs:
        values = {"minutes": spec.minutes, "colour": spec.colour, "price": spec.price, "kind": spec.kind}
        row = rows.get(spec.name)
        if row is None:
            rows[spec.name] = Service(name=spec.name, **values)
            session.add(rows[spec.name])
            changes.append(f"+ service {spec.name} ({spec.minutes} min)")
            continue
        notes = _update(row, values)
        if row.deleted_at is not None:
            row.deleted_at = None
            notes.append("restored")
        if notes:
            changes.append(f"~ service {spec.name}: {', '.join(notes)}")
    await session.flush()
    return {name: row.id for name, row in rows.items()}


async def _apply_staff(session: AsyncSession, spec: StaffSpec, location_ids: dict[str, int],
                       service_ids: dict[str, int], now: datetime, changes: list[str]) -> int:
    """One [[staff]] entry: person, addresses, staff row, role, services and hours; returns the person id."""
    person = await _staff_person(session, spec, now)
    row = await session.get(Staff, person.id)
    notes = [f'name "{person.name}" → "{spec.name}"'] if person.name != spec.name else []
    person.name = spec.name
    notes += await _staff_addresses(session, person.id, spec.addresses, now)
    if row is None:
        session.add(Staff(person_id=person.id, kind=spec.role, rights=list(spec.rights), agenda_minute=spec.agenda))
    else:
        notes += _update(row, {"kind": spec.role, "rights": list(spec.rights)}, {"kind": "role"})
        notes += _agenda(row, spec.agenda)
    if await _staff_role(session, person.id, spec.role) and not any(n.startswith("role ") for n in notes):
        notes.append(f"access set to {ROLE_ROWS[spec.role]}")
    notes += await _staff_services(session, person.id, [service_ids[n] for n in spec.services])
    wanted = [(location_ids[h.location], h.weekday, h.start, h.end) for h in spec.hours]
    if await _replace_staff_hours(session, person.id, wanted):
        notes.append("hours changed")
    if row is None:
        changes.append(f"+ staff {spec.name} ({spec.role})")
    elif notes:
        changes.append(f"~ staff {spec.name}: {', '.join(notes)}")
    return person.id


def _agenda(row: Staff, minute: int | None) -> list[str]:
    """Set the daily agenda's time (its job follows in agendas_in_line); a note if it changed."""
    if row.agenda_minute == minute:
        return []
    old, row.agenda_minute = row.agenda_minute, minute
    return [f"agenda {_clock(old)} → {_clock(minute)}"]


def _clock(minute: int | None) -> str:
    return "(none)" if minute is None else hhmm(minute)


async def _staff_person(session: AsyncSession, spec: StaffSpec, now: datetime) -> Person:
    """The person behind a staff entry: by address first (they may have written before), then by staff name."""
    owners = set((await session.scalars(select(Address.person_id).where(Address.address.in_(spec.addresses)))).all())
    if len(owners) > 1:
        raise _Conflict(f'staff "{spec.name}": {" and ".join(spec.addresses)} belong to different people '
                         f"(#{', #'.join(str(o) for o in sorted(owners))}); they must be merged first")
    if owners:
        return await session.get_one(Person, owners.pop())  # the address's person: a foreign key
    person = await session.scalar(select(Person).join(Staff, Staff.person_id == Person.id)
                                  .where(Person.name == spec.name).order_by(Person.id).limit(1))
    if person is None:
        person = Person(name=spec.name, created_at=now)
        session.add(person)
        await session.flush()
    return person


async def _staff_addresses(session: AsyncSession, person_id: int, addresses: tuple[str, ...],
                           now: datetime) -> list[str]:
    """Add missing addresses, verified: the file is trusted. Other addresses of the person stay."""
    rows = {r.address: r for r in (await session.scalars(select(Address).where(Address.address.in_(addresses)))).all()}
    notes = []
    for address in addresses:
        row = rows.get(address)
        if row is None:
            session.add(Address(address=address, kind=address.split(":", 1)[0], person_id=person_id,
                                verified=True, created_at=now))
            notes.append(f"+ {address}")
        elif not row.verified:
            row.verified = True
            notes.append(f"{address} verified")
    return notes


async def _staff_role(session: AsyncSession, person_id: int, role: str) -> bool:
    """Keep exactly the one global role row the staff role grants (scoped roles stay); True if changed."""
    wanted = ROLE_ROWS[role]
    rows = (await session.scalars(select(Role).where(
        Role.person_id == person_id, Role.scope == "", Role.role.in_(MANAGED_ROLES)))).all()
    current = sorted(r.role for r in rows)
    if current == [wanted]:
        return False
    for row in rows:
        if row.role != wanted:
            await session.delete(row)
    if wanted not in current:
        session.add(Role(person_id=person_id, role=wanted, scope=""))
    return True


async def _staff_services(session: AsyncSession, person_id: int, wanted: list[int]) -> list[str]:
    query = select(StaffService.service_id).where(StaffService.person_id == person_id)
    current = sorted((await session.scalars(query)).all())
    if current == sorted(wanted):
        return []
    named = select(Service.id, Service.name).where(Service.id.in_(current + wanted))
    names: dict[int, str] = {service_id: name for service_id, name in await session.execute(named)}
    await session.execute(delete(StaffService).where(StaffService.person_id == person_id))
    session.add_all(StaffService(person_id=person_id, service_id=s) for s in wanted)
    return [f"services {_fmt([names[s] for s in current])} → {_fmt([names[s] for s in wanted])}"]


async def _replace_staff_hours(session: AsyncSession, person_id: int,
                               wanted: list[tuple[int, int, int, int]]) -> bool:
    """Replace a staff member's bookable hours if they differ; True if they did."""
    columns = (StaffHours.location_id, StaffHours.weekday, StaffHours.start_minute, StaffHours.end_minute)
    current = sorted(tuple(r) for r in await session.execute(select(*columns).where(StaffHours.person_id == person_id)))
    if current == sorted(wanted):
        return False
    await session.execute(delete(StaffHours).where(StaffHours.person_id == person_id))
    session.add_all(StaffHours(person_id=person_id, location_id=loc, weekday=w, start_minute=s, end_minute=e)
                    for loc, w, s, e in sorted(wanted))
    return True
