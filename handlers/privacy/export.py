"""Everything stored about one person, as one JSON-ready dict: one section per part of the desk.

The sections are the ones handlers/privacy/coverage.py names. Secrets never leave: no code or password
digests, no invitation tokens, and a code in a mail's subject is hidden. Other people's data stays out
too: an appointment a staff member gives shows no customer, a note shows no author.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from handlers.privacy.rules import hide_codes
from handlers.rules.words import hhmm
from storage.db import UnitOfWork
from storage.models import (
    Address,
    Appointment,
    Audit,
    BillingAddress,
    CarrierBuyer,
    Choice,
    Closure,
    Code,
    Conversation,
    Course,
    CoursePlace,
    Credential,
    CustomerGroup,
    CustomerGroupMember,
    CustomerNote,
    ExportPreset,
    ImportBatch,
    Invoice,
    Licence,
    LicenceBatch,
    LicenceSchool,
    Location,
    MailIntake,
    Member,
    Membership,
    Outbox,
    Person,
    ProfileChange,
    Role,
    SeatGroup,
    SeatOrder,
    Service,
    Staff,
    StaffHours,
    StaffService,
    Ticket,
    TicketMessage,
)


@dataclass(frozen=True)
class Subject:
    """Whose data is gathered: the person and every address they are known by."""

    person: Person
    addresses: tuple[str, ...]  # "email:kim@example.org", "telegram:1001"

    @property
    def emails(self) -> tuple[str, ...]:
        return tuple(a.split(":", 1)[1] for a in self.addresses if a.startswith("email:"))

    @property
    def audit_subjects(self) -> tuple[str, ...]:
        """How audit rows name this person as the one acted upon."""
        pid = self.person.id
        return (*self.addresses, f"customer:{pid}", f"member:{pid}", f"person:{pid}")


async def subject_of(uow: UnitOfWork, person: Person) -> Subject:
    addresses = (await uow.session.scalars(select(Address.address).where(Address.person_id == person.id)
                                           .order_by(Address.id))).all()
    return Subject(person, tuple(addresses))


def stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


Section = Callable[[UnitOfWork, Subject], Awaitable[Any]]


async def person_section(uow: UnitOfWork, who: Subject) -> dict:
    p = who.person
    return {"id": p.id, "name": p.name, "language": p.language, "created_at": stamp(p.created_at)}


async def addresses_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(Address).where(Address.person_id == who.person.id).order_by(Address.id))
    return [{"address": a.address, "kind": a.kind, "verified": a.verified, "created_at": stamp(a.created_at)}
            for a in rows]


async def roles_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(Role).where(Role.person_id == who.person.id).order_by(Role.id))
    return [{"role": r.role, "scope": r.scope} for r in rows]


async def staff_section(uow: UnitOfWork, who: Subject) -> dict | None:
    """The staff row with the services given and the bookable hours (None for someone who does not work here)."""
    staff = await uow.session.get(Staff, who.person.id)
    if staff is None:
        return None
    services = (await uow.session.scalars(select(Service.name).join(StaffService, StaffService.service_id == Service.id)
                                          .where(StaffService.person_id == who.person.id)
                                          .order_by(Service.name))).all()
    hours = await uow.session.execute(
        select(Location.name, StaffHours.weekday, StaffHours.start_minute, StaffHours.end_minute)
        .join(Location, Location.id == StaffHours.location_id).where(StaffHours.person_id == who.person.id)
        .order_by(StaffHours.weekday, StaffHours.start_minute))
    return {"kind": staff.kind, "rights": list(staff.rights or []), "services": list(services),
            "hours": [{"location": loc, "weekday": day, "from": hhmm(a), "to": hhmm(b)} for loc, day, a, b in hours]}


async def appointments_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    """Appointments as customer (with service, staff and location names) and as staff (without the customer)."""
    staff = aliased(Person)
    pid = who.person.id
    rows = await uow.session.execute(
        select(Appointment, Service.name, staff.name, Location.name)
        .join(Service, Service.id == Appointment.service_id).join(staff, staff.id == Appointment.staff_id)
        .outerjoin(Location, Location.id == Appointment.location_id)
        .where(or_(Appointment.customer_id == pid, Appointment.staff_id == pid))
        .order_by(Appointment.start_at, Appointment.id))
    found = []
    for a, service, staff_name, location in rows:
        line = {"id": a.id, "as": "customer" if a.customer_id == pid else "staff", "service": service,
                "staff": staff_name, "location": location, "start": stamp(a.start_at), "end": stamp(a.end_at),
                "status": a.status, "booked_at": stamp(a.created_at), "channel": a.channel,
                "closed_at": stamp(a.closed_at)}
        if a.customer_id == pid:
            line.update(closed_reason=a.closed_reason, note=a.note)
        found.append(line)
    return found


async def closures_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(Closure).where(Closure.staff_id == who.person.id)
                                     .order_by(Closure.start_at))
    return [{"kind": c.kind, "start": stamp(c.start_at), "end": stamp(c.end_at)} for c in rows]


async def notes_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(CustomerNote).where(CustomerNote.person_id == who.person.id)
                                     .order_by(CustomerNote.created_at, CustomerNote.id))
    return [{"text": n.text, "created_at": stamp(n.created_at)} for n in rows]


async def export_presets_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(ExportPreset).where(ExportPreset.person_id == who.person.id)
                                     .order_by(ExportPreset.name_key))
    return [{"name": p.name, "list": p.list_name, "kind": p.kind, "fields": list(p.fields), "args": p.args,
             "saved_at": stamp(p.updated_at)} for p in rows]


async def profile_changes_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(ProfileChange).where(ProfileChange.person_id == who.person.id)
                                     .order_by(ProfileChange.id))
    return [{"field": c.field, "old": c.old_value, "new": c.new_value, "status": c.status,
             "created_at": stamp(c.created_at)} for c in rows]


async def customer_groups_section(uow: UnitOfWork, who: Subject) -> list[str]:
    rows = await uow.session.scalars(select(CustomerGroup.name).join(CustomerGroupMember)
                                     .where(CustomerGroupMember.person_id == who.person.id)
                                     .order_by(CustomerGroup.name))
    return list(rows)


async def groups_created_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(SeatGroup).where(SeatGroup.created_by.in_(who.addresses))
                                     .order_by(SeatGroup.id))
    return [{"name": g.name, "kind": g.kind, "seats_bought": g.seats_bought, "created_at": stamp(g.created_at)}
            for g in rows]


async def courses_created_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(Course).where(Course.created_by.in_(who.addresses)).order_by(Course.id))
    return [{"name": c.name, "capacity": c.capacity, "status": c.status} for c in rows]


async def memberships_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.execute(
        select(Membership, SeatGroup.name, SeatGroup.kind).join(SeatGroup, SeatGroup.id == Membership.group_id)
        .where(Membership.person_id == who.person.id).order_by(Membership.id))
    return [{"group": name, "kind": kind, "holds_seat": m.holds_seat, "seat_used": m.seat_used,
             "enrolled_at": stamp(m.enrolled_at)} for m, name, kind in rows]


async def invoices_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.execute(
        select(SeatOrder, SeatGroup.name).join(SeatGroup, SeatGroup.id == SeatOrder.group_id)
        .where(SeatOrder.buyer_id == who.person.id).order_by(SeatOrder.id))
    return [{"invoice_number": o.invoice_number, "status": o.status, "group": name, "seats": o.seats,
             "lines": o.lines, "total": o.total, "created_at": stamp(o.created_at)} for o, name in rows]


async def invoices_issued_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(Invoice).where(Invoice.buyer_person_id == who.person.id)
                                     .order_by(Invoice.id))
    return [{"number": i.number, "kind": i.kind, "issue_date": i.issue_date.isoformat(), "buyer_name": i.buyer_name,
             "buyer_address": i.buyer_address, "lines": i.lines, "net_cents": i.net_cents, "vat_cents": i.vat_cents,
             "gross_cents": i.gross_cents, "corrects": i.corrects} for i in rows]


async def course_places_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.execute(select(CoursePlace, Course.name).join(Course, Course.id == CoursePlace.course_id)
                                     .where(CoursePlace.person_id == who.person.id).order_by(CoursePlace.id))
    return [{"course": name, "status": p.status, "joined_from": p.address, "channel": p.channel,
             "created_at": stamp(p.created_at), "confirmed_at": stamp(p.confirmed_at) if p.confirmed_at else None}
            for p, name in rows]


async def billing_address_section(uow: UnitOfWork, who: Subject) -> dict | None:
    billing = await uow.session.get(BillingAddress, who.person.id)
    return None if billing is None else {"name": billing.name, "address": billing.address,
                                         "updated_at": stamp(billing.updated_at)}


async def member_section(uow: UnitOfWork, who: Subject) -> dict | None:
    """The member account (never its invitation token, which only an HMAC of the link is anyway)."""
    m = await uow.session.get(Member, who.person.id)
    if m is None:
        return None
    return {"status": m.status, "failure_reason": m.failure_reason, "first_name": m.first_name,
            "last_name": m.last_name, "phone": m.phone, "extension": m.extension, "mobile": m.mobile,
            "contract_number": m.contract_number, "device_model": m.device_model, "services": m.services,
            "invited_at": stamp(m.invited_at), "invitation_expires_at": stamp(m.invitation_expires_at),
            "activated_at": stamp(m.activated_at)}


async def credentials_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    """That credentials exist and their state; never the hash."""
    rows = await uow.session.scalars(select(Credential).where(Credential.person_id == who.person.id)
                                     .order_by(Credential.id))
    return [{"kind": c.kind, "created_at": stamp(c.created_at), "failed_attempts": c.failed_attempts,
             "locked_at": stamp(c.locked_at), "reset_requested_at": stamp(c.reset_requested_at)} for c in rows]


async def imports_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(ImportBatch).where(ImportBatch.uploaded_by.in_(who.addresses))
                                     .order_by(ImportBatch.id))
    return [{"file": b.filename, "status": b.status, "rows": len(b.rows or []), "created_at": stamp(b.created_at)}
            for b in rows]


async def licences_section(uow: UnitOfWork, who: Subject) -> dict:
    """Licences bought, carriers bought for, schools one is the contact of, and uploaded licence lists."""
    session = uow.session
    bought = await session.scalars(select(Licence).where(Licence.buyer_person_id == who.person.id))
    carriers = await session.scalars(select(CarrierBuyer.carrier).where(CarrierBuyer.person_id == who.person.id))
    contact = await session.scalars(select(LicenceSchool).where(LicenceSchool.email.in_(who.emails)))
    batches = await session.scalars(select(LicenceBatch).where(LicenceBatch.uploaded_by.in_(who.addresses)))
    return {"bought": [{"id": r.id, "carrier": r.carrier, "status": r.status, "ends_on": r.ends_on.isoformat()}
                       for r in bought],
            "buyer_of": list(carriers),
            "contact_of": [{"licence": r.licence_id, "contact": r.contact, "email": r.email, "state": r.state}
                           for r in contact],
            "uploads": [{"kind": b.kind, "file": b.filename, "status": b.status, "created_at": stamp(b.created_at)}
                        for b in batches]}


async def tickets_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    """The person's tickets with every message on them, in order."""
    tickets = (await uow.session.scalars(select(Ticket).where(Ticket.customer_id == who.person.id)
                                         .order_by(Ticket.id))).all()
    messages: dict[int, list[dict]] = {t.id: [] for t in tickets}
    for m in await uow.session.scalars(select(TicketMessage).where(TicketMessage.ticket_id.in_(list(messages)))
                                       .order_by(TicketMessage.created_at, TicketMessage.id)):
        messages[m.ticket_id].append({"direction": m.direction, "text": m.text, "attachments": m.attachments,
                                      "created_at": stamp(m.created_at)})
    return [{"id": t.id, "subject": t.subject, "email": t.email, "status": t.status,
             "created_at": stamp(t.created_at), "updated_at": stamp(t.updated_at), "messages": messages[t.id]}
            for t in tickets]


async def mails_received_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(MailIntake).where(MailIntake.sender.in_(who.addresses))
                                     .order_by(MailIntake.id))
    return [{"message_id": m.message_id, "status": m.status, "received_at": stamp(m.received_at),
             "raw_kept": m.raw is not None} for m in rows]


async def codes_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    """Codes asked for from the person's addresses: when and what for, never the code or its digest."""
    rows = await uow.session.scalars(select(Code).where(Code.address.in_(who.addresses)).order_by(Code.id))
    return [{"purpose": c.purpose, "created_at": stamp(c.created_at), "expires_at": stamp(c.expires_at),
             "used_at": stamp(c.used_at), "wrong_tries": c.attempts + c.other_attempts} for c in rows]


async def conversations_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(Conversation).where(Conversation.address.in_(who.addresses)))
    return [{"address": c.address, "flow": c.flow, "step": c.step, "expires_at": stamp(c.expires_at)} for c in rows]


async def buttons_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    rows = await uow.session.scalars(select(Choice).where(Choice.address.in_(who.addresses))
                                     .order_by(Choice.created_at))
    return [{"address": c.address, "command": c.command, "created_at": stamp(c.created_at)} for c in rows]


async def mails_sent_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    """What went (or goes) out to the person: channel, subject, time and status, not the text."""
    rows = await uow.session.scalars(select(Outbox).where(Outbox.recipient.in_(who.addresses + who.emails))
                                     .order_by(Outbox.id))
    return [{"channel": o.channel, "to": o.recipient, "subject": hide_codes(o.subject),
             "created_at": stamp(o.created_at), "status": o.status, "sent_at": stamp(o.sent_at)} for o in rows]


async def audit_section(uow: UnitOfWork, who: Subject) -> list[dict]:
    """Audit rows where the person acted or was acted upon."""
    rows = await uow.session.scalars(select(Audit).where(or_(
        Audit.person_id == who.person.id, Audit.actor.in_(who.addresses), Audit.subject.in_(who.audit_subjects)))
        .order_by(Audit.at, Audit.id))
    return [{"at": stamp(a.at), "action": a.action, "channel": a.channel, "subject": a.subject,
             "detail": a.detail, "by_you": a.person_id == who.person.id or a.actor in who.addresses} for a in rows]


SECTIONS: dict[str, Section] = {
    "person": person_section,
    "addresses": addresses_section,
    "roles": roles_section,
    "staff": staff_section,
    "appointments": appointments_section,
    "closures": closures_section,
    "notes": notes_section,
    "profile_changes": profile_changes_section,
    "customer_groups": customer_groups_section,
    "groups_created": groups_created_section,
    "courses_created": courses_created_section,
    "memberships": memberships_section,
    "invoices": invoices_section,
    "invoices_issued": invoices_issued_section,
    "billing_address": billing_address_section,
    "course_places": course_places_section,
    "member_account": member_section,
    "credentials": credentials_section,
    "export_presets": export_presets_section,
    "imports": imports_section,
    "licences": licences_section,
    "tickets": tickets_section,
    "mails_received": mails_received_section,
    "codes": codes_section,
    "conversations": conversations_section,
    "buttons": buttons_section,
    "mails_sent": mails_sent_section,
    "audit": audit_section,
}


async def collect(uow: UnitOfWork, person: Person, now: datetime, business: str | None) -> dict[str, Any]:
    """Everything about `person`, section by section, with when it was exported and by which business."""
    who = await subject_of(uow, person)
    data: dict[str, Any] = {"exported_at": stamp(now), "business": business}
    for name, section in SECTIONS.items():
        data[name] = await section(uow, who)
    return data
