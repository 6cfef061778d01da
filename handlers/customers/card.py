"""The customer's card: `customer ID` shows name, addresses, groups, notes, changes and appointments."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from handlers.appointments import live_condition
from handlers.context import Context, Refusal
from handlers.customers.changes import change_choices
from handlers.customers.finding import addresses_of
from handlers.customers.parsing import CARD_LIMIT, LIST_LIMIT, denied, find_customer
from handlers.customers.record import ACTIONS
from handlers.messages import Reply
from handlers.rules.roles import ADMINS
from handlers.rules.words import first_word
from storage.models import (
    Address,
    Appointment,
    CustomerGroup,
    CustomerGroupMember,
    CustomerNote,
    Location,
    Person,
    ProfileChange,
    Service,
)


@dataclass(frozen=True)
class AppointmentLine:
    id: int
    start: datetime
    end: datetime
    service: str
    staff: str | None
    location: str | None
    status: str
    note: str | None


# ---- the card -----------------------------------------------------------------------------------

async def customer(ctx: Context, args: str) -> list[Reply]:
    """`customer ID` shows the card; `customer rename|note|group|ungroup|new …` changes the record (admins)."""
    head, rest = first_word(args)
    action = ACTIONS.get(head.lower())
    if action is None:
        if not head:
            raise Refusal("customers_usage")
        return await show_card(ctx, await find_customer(ctx, head))
    if not ctx.roles & ADMINS:
        return await denied(ctx, f"customer {head.lower()}", rest)
    return await action(ctx, rest)


async def show_card(ctx: Context, person: Person) -> list[Reply]:
    """Name, addresses, groups, notes, pending changes, upcoming and past appointments."""
    addresses = (await addresses_of(ctx, [person.id]))[person.id]
    groups = (await ctx.session.scalars(select(CustomerGroup.name).join(CustomerGroupMember)
                                        .where(CustomerGroupMember.person_id == person.id)
                                        .order_by(CustomerGroup.name))).all()
    notes = (await ctx.session.scalars(select(CustomerNote).where(CustomerNote.person_id == person.id)
                                       .order_by(CustomerNote.created_at, CustomerNote.id))).all()
    changes = (await ctx.session.scalars(select(ProfileChange).where(
        ProfileChange.person_id == person.id, ProfileChange.status == "pending").order_by(ProfileChange.id))).all()
    upcoming, past, earlier = await card_appointments(ctx, person.id)
    choices = change_choices(ctx, changes) if ctx.roles & ADMINS else []
    return [ctx.say("customers_card", choices=choices, customer=person, addresses=addresses, groups=groups,
                    notes=notes, authors=await author_names(ctx, notes), changes=changes,
                    upcoming=upcoming, past=past, earlier=earlier)]


async def card_appointments(ctx: Context, person_id: int) -> tuple[list, list, int]:
    """Upcoming live appointments, the latest past ones (newest first) and how many older ones are left out."""
    staff = aliased(Person)
    base = (select(Appointment, Service.name, staff.name, Location.name)
            .join(Service, Service.id == Appointment.service_id).join(staff, staff.id == Appointment.staff_id)
            .outerjoin(Location, Location.id == Appointment.location_id)
            .where(Appointment.customer_id == person_id))
    upcoming = await ctx.session.execute(base.where(Appointment.start_at >= ctx.now, live_condition(ctx.now))
                                         .order_by(Appointment.start_at).limit(LIST_LIMIT))
    # Expired holds were never appointments; they stay in the table for the record only.
    was = (Appointment.start_at < ctx.now, Appointment.status.not_in(("held", "expired")))
    past = await ctx.session.execute(base.where(*was).order_by(Appointment.start_at.desc()).limit(CARD_LIMIT))
    past_lines = [appointment_line(*row) for row in past]
    total = await ctx.session.scalar(select(func.count()).select_from(Appointment)
                                     .where(Appointment.customer_id == person_id, *was))
    return [appointment_line(*row) for row in upcoming], past_lines, total - len(past_lines)


def appointment_line(row: Appointment, service: str, staff: str | None, location: str | None) -> AppointmentLine:
    return AppointmentLine(row.id, row.start_at, row.end_at, service, staff, location, row.status, row.note)


async def author_names(ctx: Context, notes) -> dict[str, str]:
    """Note authors are stored as addresses (who exactly wrote it); show their names where known."""
    authors = {n.author for n in notes}
    if not authors:
        return {}
    rows = await ctx.session.execute(select(Address.address, Person.name).join(Person)
                                     .where(Address.address.in_(authors)))
    return {address: name for address, name in rows if name}
