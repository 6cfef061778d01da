"""Erasing a person: future appointments cancelled as a normal cancel does, then everything that names them
deleted or emptied, and what the law keeps (invoices, the audit trail, past appointments) left under a
pseudonym. The person's row stays as that pseudonym, so invoices and audit rows still point somewhere.

The notices of the cancellation are queued like any other and must go out as written; once delivered,
the scrub job empties them (and anything else still waiting for them then).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy import delete as delete_rows

from handlers.appointments import live_condition, release
from handlers.booking.manage import MANAGER, tell_cancellation
from handlers.context import Context, table
from handlers.courses.joining import give_up_places
from handlers.customers import like_pattern
from handlers.jobs.table import Due, schedule
from handlers.privacy.export import Subject, subject_of
from handlers.privacy.rules import Traces, pseudonym
from handlers.privacy.sweep import sweep
from storage.db import UnitOfWork
from storage.models import (
    Address,
    Appointment,
    BillingAddress,
    Choice,
    Code,
    Conversation,
    CoursePlace,
    Credential,
    CustomerGroupMember,
    CustomerNote,
    ExportPreset,
    ImportBatch,
    Invoice,
    LicenceBatch,
    LicenceSchool,
    MailIntake,
    Member,
    Outbox,
    Person,
    ProfileChange,
    Role,
    Staff,
    StaffHours,
    StaffService,
    Ticket,
    TicketMessage,
)

SCRUB_JOB = "privacy_scrub"
SCRUB_AGAIN = timedelta(hours=1)  # a notice not yet delivered is looked at again after this
# Rows about the person alone, gone entirely (by their person_id).
DELETED_BY_PERSON = (Role, Staff, StaffService, StaffHours, CustomerNote, ProfileChange, CustomerGroupMember,
                     Credential, ExportPreset, BillingAddress)
EMPTY_MAIL: dict[str, Any] = {"subject": None, "text": "", "html": None, "attachments": [], "headers": {}}


@dataclass
class Erased:
    """What an erasure did, for the admin's answer and the audit."""

    pseudonym: str
    cancelled: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    emptied: dict[str, int] = field(default_factory=dict)
    replaced: int = 0  # rows elsewhere where a name or address became the pseudonym
    waiting: int = 0  # messages still to be delivered, emptied by the scrub job afterwards


async def traces_of(uow: UnitOfWork, who: Subject) -> Traces:
    """Every string that names the person: addresses, emails (their tickets' too), names they went by."""
    session, pid = uow.session, who.person.id
    names: list[str | None] = [who.person.name]
    member = await session.get(Member, pid)
    if member is not None:
        names.append(" ".join(p for p in (member.first_name, member.last_name) if p))
    emails: list[str | None] = list(who.emails)
    changes = select(ProfileChange.field, ProfileChange.old_value, ProfileChange.new_value)
    for field_name, old, new in await session.execute(changes.where(ProfileChange.person_id == pid)):
        (names if field_name == "name" else emails).extend((old, new))
    emails += (await session.scalars(select(Ticket.email).where(Ticket.customer_id == pid))).all()
    known = [e for e in emails if e]
    return Traces.of([*who.addresses, *(f"email:{e}" for e in known)], known, names)


async def erase(ctx: Context, person: Person) -> Erased:
    """Forget `person` in the caller's transaction (the caller has claimed the row: see forget.claim)."""
    who = await subject_of(ctx.uow, person)
    traces = await traces_of(ctx.uow, who)
    done = Erased(pseudonym(ctx.config.secret_key, person.id))
    done.cancelled = await cancel_future(ctx, person.id)
    done.cancelled += await give_up_places(ctx, person.id)
    waiting = await still_waiting(ctx.uow, traces)
    await ctx.session.flush()
    await delete_own_rows(ctx, who, traces, done)
    await empty_texts(ctx, who, traces, done)
    done.replaced = await sweep(ctx.uow, person.id, traces, done.pseudonym)
    person.name, person.language = done.pseudonym, None
    done.waiting = len(waiting)
    if waiting:
        theirs = [i for i, to in waiting.items() if to in traces.addresses + traces.emails]
        await schedule(ctx.uow, SCRUB_JOB, f"{done.pseudonym}:1", ctx.now + SCRUB_AGAIN, ctx.now,
                       {"outbox": sorted(waiting), "theirs": sorted(theirs), "pseudonym": done.pseudonym, "round": 1})
    return done


async def cancel_future(ctx: Context, person_id: int) -> int:
    """Cancel every live appointment ahead, as customer or as staff, telling the customer and staff."""
    rows = (await ctx.session.scalars(
        select(Appointment).where(or_(Appointment.customer_id == person_id, Appointment.staff_id == person_id),
                                  Appointment.start_at > ctx.now, live_condition(ctx.now))
        .order_by(Appointment.start_at).with_for_update())).all()
    for appointment in rows:
        was = appointment.status
        await release(ctx.uow, appointment, "cancelled", ctx.sender, None, ctx.now)
        await tell_cancellation(ctx, appointment, was, MANAGER, "")
        await ctx.audit("appointment_cancelled", f"appointment:{appointment.id}", role=MANAGER, was=was,
                        reason="forget")
    return len(rows)


async def still_waiting(uow: UnitOfWork, traces: Traces) -> dict[int, str]:
    """Messages not yet delivered that go to the person or name them: {outbox id: recipient}."""
    o = table(Outbox).c
    named = [column.ilike(like_pattern(needle), escape="\\") for needle in traces.like_needles()
             for column in (o.subject, o.text, o.html)]
    rows = await uow.session.execute(select(o.id, o.recipient).where(
        o.status == "pending", or_(o.recipient.in_(traces.addresses + traces.emails), *named)))
    return {row.id: row.recipient for row in rows}


def counted(result: Any) -> int:
    return cast(CursorResult, result).rowcount


async def delete_own_rows(ctx: Context, who: Subject, traces: Traces, done: Erased) -> None:
    """Delete what is about the person alone: addresses, roles, staff rows, notes, changes, codes, state."""
    session, pid = ctx.session, who.person.id
    addresses = list(traces.addresses)
    for model in DELETED_BY_PERSON:
        t = table(model)
        done.deleted[t.name] = counted(await session.execute(delete_rows(t).where(t.c.person_id == pid)))
    plans: dict[type, Any] = {
        Code: or_(Code.address.in_(addresses), Code.target.in_(addresses + list(traces.emails))),
        Conversation: Conversation.address.in_(addresses),
        Choice: Choice.address.in_(addresses),
        Address: Address.person_id == pid,
    }
    for other, where in plans.items():
        result = await session.execute(delete_rows(other).where(where).execution_options(synchronize_session=False))
        done.deleted[table(other).name] = counted(result)


async def empty_texts(ctx: Context, who: Subject, traces: Traces, done: Erased) -> None:
    """Empty what the person wrote or was told, and the member account; the rows stay for the record."""
    session, pid, alias = ctx.session, who.person.id, done.pseudonym
    to_them = list(traces.addresses + traces.emails)
    tickets = select(Ticket.id).where(Ticket.customer_id == pid).scalar_subquery()
    steps: list[tuple[type, Any, dict[str, Any]]] = [
        (Member, Member.person_id == pid, dict.fromkeys(
            ("first_name", "last_name", "phone", "extension", "mobile", "contract_number", "device_model",
             "invitation_token", "failure_reason"))),
        (Appointment, Appointment.customer_id == pid, {"note": None, "closed_reason": None}),
        (TicketMessage, TicketMessage.ticket_id.in_(tickets), {"text": "", "attachments": []}),
        (Ticket, Ticket.customer_id == pid, {"subject": alias, "email": alias}),
        (CoursePlace, CoursePlace.person_id == pid, {"address": alias}),
        # Invoices are kept for their legal retention, their buyer named by the pseudonym.
        (Invoice, Invoice.buyer_person_id == pid, {"buyer_name": alias, "buyer_address": alias}),
        (MailIntake, MailIntake.sender.in_(to_them), {"sender": alias, "raw": None, "error": None}),
        (Outbox, (Outbox.recipient.in_(to_them)) & (Outbox.status != "pending"), {**EMPTY_MAIL, "recipient": alias}),
        (ImportBatch, ImportBatch.uploaded_by.in_(to_them), {"upload": None}),
        (LicenceSchool, LicenceSchool.email.in_(list(traces.emails)), {"contact": alias, "email": alias}),
        (LicenceBatch, LicenceBatch.uploaded_by.in_(to_them), {"rows": [], "uploaded_by": alias}),
    ]
    for model, where, values in steps:
        result = await session.execute(update(model).where(where).values(values)
                                       .execution_options(synchronize_session=False))
        done.emptied[table(model).name] = counted(result)


async def run_scrub(ctx: Context, due: Due) -> str | None:
    """Empty the erased person's messages that have gone out since; look again later at those still waiting."""
    ids, theirs = list(due.payload["outbox"]), set(due.payload["theirs"])
    o = table(Outbox).c
    delivered = set((await ctx.session.scalars(select(o.id).where(o.id.in_(ids), o.status != "pending"))).all())
    if delivered:
        await ctx.session.execute(update(table(Outbox)).where(o.id.in_(delivered)).values(EMPTY_MAIL))
        await ctx.session.execute(update(table(Outbox)).where(o.id.in_(delivered & theirs))
                                  .values(recipient=due.payload["pseudonym"]))
    present = set((await ctx.session.scalars(select(o.id).where(o.id.in_(ids)))).all())
    left = sorted(present - delivered)
    if left:
        next_round = int(due.payload.get("round", 1)) + 1
        await schedule(ctx.uow, SCRUB_JOB, f"{due.payload['pseudonym']}:{next_round}", ctx.now + SCRUB_AGAIN,
                       ctx.now, {**due.payload, "outbox": left, "round": next_round})
    if not delivered:
        return f"{len(left)} message(s) not delivered yet; looked at again later"
    return None
