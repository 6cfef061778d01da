"""Support rule 7 of the licences: a ticket from a school's address or a school contact's address names the
school and its carrier, so support knows whom the question concerns."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LicenceSchool, School

MAX_SCHOOLS = 5  # a contact of many schools (a carrier's IT service) is named with the first few


@dataclass(frozen=True)
class SchoolLink:
    """A school an email address belongs to: as the school's own address, or as a licence's contact."""

    number: str
    name: str
    carrier: str
    contact: str | None  # the contact's name when the address is a licence contact's


async def schools_of_email(session: AsyncSession, email: str) -> list[SchoolLink]:
    """The schools whose directory email or licence contact is `email` (case does not matter), by number."""
    address = email.strip().lower()
    if not address:
        return []
    own = await session.execute(select(School.number, School.name, School.carrier)
                                .where(func.lower(School.email) == address))
    contacts = await session.execute(
        select(School.number, School.name, School.carrier, LicenceSchool.contact)
        .join(School, School.id == LicenceSchool.school_id).where(func.lower(LicenceSchool.email) == address)
        .order_by(LicenceSchool.id.desc()))
    found: dict[str, SchoolLink] = {}
    for number, name, carrier, contact in contacts.all():
        found.setdefault(number, SchoolLink(number, name, carrier, contact))
    for number, name, carrier in own.all():
        found.setdefault(number, SchoolLink(number, name, carrier, None))
    return [found[number] for number in sorted(found)][:MAX_SCHOOLS]
