"""Telling people about appointments: the customer by email (with ICS), staff and admins in their chat."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import aliased

from handlers.context import Context
from handlers.messages import Attachment
from handlers.rules.ics import Party, invite
from handlers.rules.roles import ADMINS
from handlers.speaking import verified_email
from storage.db import UnitOfWork
from storage.dialect import insert_ignoring_conflicts
from storage.models import Address, Appointment, Installation, Location, Person, Role, Service
from templates import word


@dataclass(frozen=True)
class AppointmentView:
    """An appointment with the names a person reads."""

    id: int
    service: str
    colour: str | None
    location: str | None
    staff: str
    customer: str
    start: datetime
    end: datetime
    status: str
    note: str | None
    sequence: int


_STAFF, _CUSTOMER = aliased(Person, name="staff_person"), aliased(Person, name="customer_person")
# The names of a view in one statement, built once: a booking shows its view three or four times in one
# step, and rows loaded by id are not kept between the looks (the session holds them weakly).
VIEW_NAMES = (select(Service.name, Service.colour, Location.name, _STAFF.name, _CUSTOMER.name).select_from(Service)
              .join(_STAFF, _STAFF.id == bindparam("staff"))
              .join(_CUSTOMER, _CUSTOMER.id == bindparam("customer"))
              .outerjoin(Location, Location.id == bindparam("location"))
              .where(Service.id == bindparam("service")))


async def view(uow: UnitOfWork, appointment: Appointment) -> AppointmentView:
    service, colour, location, staff, customer = (await uow.session.execute(VIEW_NAMES, {
        "service": appointment.service_id, "location": appointment.location_id, "staff": appointment.staff_id,
        "customer": appointment.customer_id})).one()
    return AppointmentView(
        appointment.id, service, colour, location, staff or "?",
        customer or await display_address(uow, appointment.customer_id), appointment.start_at, appointment.end_at,
        appointment.status, appointment.note, appointment.sequence)


async def display_address(uow: UnitOfWork, person_id: int) -> str:
    return await uow.session.scalar(select(Address.address).where(Address.person_id == person_id).limit(1)) or "?"


async def ics_for(ctx: Context, v: AppointmentView, method: str, email: str, name: str | None,
                  lang: str) -> Attachment:
    """The invitation to the customer at `email`, from the address our mail goes out from, named in `lang`."""
    business = ctx.business.name if ctx.business else None
    return invite(
        uid=await event_uid(ctx.uow, v.id, ctx.config.mail_domain), sequence=v.sequence, method=method,
        start=v.start, end=v.end, summary=word(lang, "invitation.summary", service=v.service, business=business),
        location=v.location, organizer=Party(ctx.config.mail_from, business), attendee=Party(email, name),
        stamp=ctx.now, filename=word(lang, "invitation.file"))


async def event_uid(uow: UnitOfWork, appointment_id: int, mail_domain: str) -> str:
    """The appointment's UID: named after this installation, so it stays when FRONTDESK_MAIL_FROM changes."""
    install = await installation(uow)
    if appointment_id < install.first_appointment:
        return f"appointment-{appointment_id}@{mail_domain}"  # invited before the installation had an id
    return f"appointment-{appointment_id}@{install.key}.frontdesk"


async def installation(uow: UnitOfWork) -> Installation:
    """Row 1, made by a migration; a schema without it gets it here, once, whoever comes first."""
    found = await uow.session.get(Installation, 1)
    if found is None:
        await uow.session.execute(insert_ignoring_conflicts(uow.dialect, Installation, ["id"]).values(
            id=1, key=secrets.token_hex(16), first_appointment=0))
        found = await uow.session.get_one(Installation, 1)
    return found


async def tell_customer(ctx: Context, appointment: Appointment, template: str, message: str | None = None,
                        method: str | None = "REQUEST", v: AppointmentView | None = None,
                        email: str | None = None) -> bool:
    """Mail the customer (ICS attached when `method` is set); False if they have no confirmed email.
    `v` is the appointment's view and `email` the customer's confirmed address, if the caller has them already."""
    email = email or await verified_email(ctx.uow, appointment.customer_id)
    if email is None:
        return False
    v = v if v is not None else await view(ctx.uow, appointment)
    customer = await ctx.session.get_one(Person, appointment.customer_id)
    lang = customer_language(ctx, customer)
    attachments = [await ics_for(ctx, v, method, email, customer.name, lang)] if method else []
    await ctx.mail(email, template, lang=lang, attachments=attachments, appointment=v, message=message)
    return True


def customer_language(ctx: Context, customer: Person) -> str:
    """The customer's own choice; else the language they speak to us in, if they are the one acting;
    else the business's."""
    if customer.language:
        return ctx.language_for(customer.language)
    if customer.id == ctx.person.id:
        return ctx.lang
    return ctx.language_for(None)


async def tell_staff_and_admins(ctx: Context, appointment: Appointment, template: str,
                                v: AppointmentView | None = None, **values) -> int:
    """Notify the staff member concerned and every admin (not the one acting), each in their language.
    `v` is the appointment's view, if the caller has it already."""
    admins = (await ctx.session.scalars(select(Role.person_id).where(Role.role.in_(ADMINS)))).all()
    recipients = dict.fromkeys([appointment.staff_id, *admins])
    recipients.pop(ctx.person.id, None)
    v = v if v is not None else await view(ctx.uow, appointment)
    told = 0
    for person_id in recipients:
        if person_id is not None:
            told += await ctx.tell(person_id, template, appointment=v, **values)
    return told
