"""Finding staff, locations and services by the names people type."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.calendar.rights import Member
from handlers.calendar.words import ME, Invalid
from handlers.context import Context
from handlers.rules.words import fold
from storage.models import Location, Person, Service, Staff


@dataclass(frozen=True)
class Named:
    id: int
    name: str


def pick_by_name(items: Sequence, text: str) -> list:
    """Items whose whole name matches, else those whose first name does."""
    wanted = fold(text)
    exact = [item for item in items if fold(item.name) == wanted]
    return exact or [item for item in items if fold(item.name).split(" ")[0] == wanted]


async def staff_members(ctx: Context) -> list[Member]:
    rows = await ctx.session.execute(
        select(Person.id, Person.name, Staff.kind).join(Staff, Staff.person_id == Person.id).order_by(Person.name))
    return [Member(i, name or f"#{i}", kind) for i, name, kind in rows]


async def find_staff(ctx: Context, text: str) -> Member:
    """A staff member by full name, first name, or 'me'."""
    members = await staff_members(ctx)
    if fold(text) in ME:
        found = [m for m in members if m.id == ctx.person.id]
    else:
        found = pick_by_name(members, text)
    if len(found) != 1:
        raise Invalid("staff_ambiguous" if found else "staff", value=text, known=[m.name for m in members])
    return found[0]


async def locations(ctx: Context) -> list[Named]:
    rows = await ctx.session.execute(select(Location.id, Location.name).order_by(Location.id))
    return [Named(i, name) for i, name in rows]


async def active_services(ctx: Context) -> list[Service]:
    query = select(Service).where(Service.deleted_at.is_(None)).order_by(Service.name)
    return list((await ctx.session.scalars(query)).all())


def find_service(services: Sequence[Service], text: str) -> Service:
    found = [s for s in services if fold(s.name) == fold(text)]
    if not found:
        raise Invalid("service", value=text, known=[s.name for s in services])
    return found[0]


def local_date(ctx: Context, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(ctx.tz)).date()
