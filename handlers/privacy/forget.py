"""`forget PERSON`: an admin erases a person, after a question that shows what goes and what is kept.

`forget PERSON` asks (with Erase and Keep buttons); `forget PERSON confirm` erases, but only while that
question is open for the same person and nothing about them changed since it was shown (else it is
shown again); `forget PERSON keep` drops the question. PERSON is an id, an address (telegram:…,
email:…), an email address, or a name that only one person has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update

from handlers.appointments import live_condition
from handlers.context import Context, Refusal, table
from handlers.customers import like_pattern
from handlers.messages import Reply
from handlers.notices import AppointmentView, view
from handlers.privacy.erase import erase
from handlers.privacy.export import Subject, subject_of
from handlers.rules.addresses import canonical_address, canonical_email
from handlers.rules.words import fold, parse_id, unquote
from storage.models import (
    Address,
    Appointment,
    Audit,
    Code,
    CustomerGroupMember,
    CustomerNote,
    MailIntake,
    Member,
    Membership,
    Outbox,
    Person,
    Role,
    SeatOrder,
    Ticket,
    TicketMessage,
)

FLOW = "privacy"
CONFIRM_WORDS = frozenset({"confirm", "yes", "bestätigen", "bestaetigen", "ja"})
KEEP_WORDS = frozenset({"keep", "no", "abort", "behalten", "nein", "abbrechen"})
ADDRESS_KINDS = ("telegram", "email", "console")
SHOWN = 10  # namesakes listed when a name is not unique


@dataclass
class Plan:
    """What erasing a person takes away and what it keeps, as the question shows it."""

    person: Person
    addresses: list[str]
    upcoming: list[AppointmentView]
    goes: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        """What the admin saw, without a name or address (it waits in the admin's conversation)."""
        return {"addresses": len(self.addresses), "upcoming": [v.id for v in self.upcoming], **self.goes,
                **{f"kept_{k}": n for k, n in self.kept.items()}}


async def forget(ctx: Context, args: str) -> list[Reply]:
    """Ask about erasing a person, erase them after the question, or drop the question."""
    words = args.split()
    action = fold(words[-1]) if words else ""
    if action in CONFIRM_WORDS | KEEP_WORDS:
        words.pop()
    person = await find_person(ctx, " ".join(words))
    if action in KEEP_WORDS:
        if asked(ctx, person.id) is not None:
            await ctx.end_flow()
        return [ctx.say("privacy_forget_kept", target=person)]
    plan = await plan_for(ctx, person)
    question = asked(ctx, person.id)
    if action in CONFIRM_WORDS and question == plan.fingerprint():
        return await confirm(ctx, person)
    return await ask(ctx, plan, changed=action in CONFIRM_WORDS and question is not None,
                     unasked=action in CONFIRM_WORDS and question is None)


async def find_person(ctx: Context, text: str) -> Person:
    """The person an admin means, refusing an unknown one, oneself, the owner and someone already erased."""
    text = unquote(text)
    if not text:
        raise Refusal("privacy_forget_usage")
    person = await lookup(ctx, text)
    if person is None:
        raise Refusal("privacy_forget_unknown", value=text[:80])
    if person.id == ctx.person.id:
        raise Refusal("privacy_forget_self")
    if await ctx.session.scalar(select(Role.id).where(Role.person_id == person.id, Role.role == "owner").limit(1)):
        raise Refusal("privacy_forget_owner", target=person)
    if person.erased_at is not None:
        raise Refusal("privacy_forget_done", target=person)
    return person


async def lookup(ctx: Context, text: str) -> Person | None:
    """By id, by address, by email (any case), else by a name only one person has (several: a refusal)."""
    number = parse_id(text)
    if number is not None:
        return await ctx.session.get(Person, number)
    kind, _, rest = text.partition(":")
    if kind.lower() in ADDRESS_KINDS and rest:
        return await by_address(ctx, canonical_address(f"{kind.lower()}:{rest.strip()}"))
    if "@" in text:
        email = canonical_email(text)
        return await by_address(ctx, f"email:{email}") if email else None
    found = (await ctx.session.scalars(
        select(Person).where(Person.name.ilike(like_pattern(text), escape="\\"), Person.erased_at.is_(None))
        .order_by(Person.id).limit(SHOWN + 1))).all()
    exact = [p for p in found if fold(p.name or "") == fold(text)]
    if len(found) > 1 and len(exact) != 1:
        raise Refusal("privacy_forget_ambiguous", value=text[:80], people=found[:SHOWN], more=len(found) > SHOWN)
    return exact[0] if len(found) > 1 else (found[0] if found else None)


async def by_address(ctx: Context, address: str) -> Person | None:
    return await ctx.session.scalar(select(Person).join(Address, Address.person_id == Person.id)
                                    .where(func.lower(Address.address) == address.lower()).limit(1))


def asked(ctx: Context, person_id: int) -> dict[str, Any] | None:
    """What the open question about this person showed, if one is open."""
    conversation = ctx.conversation
    if conversation is None or conversation.flow != FLOW or conversation.data.get("person_id") != person_id:
        return None
    return dict(conversation.data.get("seen") or {})


async def plan_for(ctx: Context, person: Person) -> Plan:
    """Count what goes and what stays."""
    who = await subject_of(ctx.uow, person)
    rows = (await ctx.session.scalars(select(Appointment).where(
        or_(Appointment.customer_id == person.id, Appointment.staff_id == person.id),
        Appointment.start_at > ctx.now, live_condition(ctx.now)).order_by(Appointment.start_at))).all()
    plan = Plan(person, list(who.addresses), [await view(ctx.uow, a) for a in rows])
    plan.goes = {key: await ctx.session.scalar(select(func.count()).select_from(model).where(where))
                 for key, (model, where) in goes(who).items()}
    plan.kept = {key: await ctx.session.scalar(select(func.count()).select_from(model).where(where))
                 for key, (model, where) in kept(who).items()}
    return plan


def goes(who: Subject) -> dict[str, tuple[type, Any]]:
    pid, to_them = who.person.id, list(who.addresses + who.emails)
    tickets = select(Ticket.id).where(Ticket.customer_id == pid).scalar_subquery()
    return {
        "notes": (CustomerNote, CustomerNote.person_id == pid),
        "tickets": (Ticket, Ticket.customer_id == pid),
        "ticket_messages": (TicketMessage, TicketMessage.ticket_id.in_(tickets)),
        "mails_sent": (Outbox, Outbox.recipient.in_(to_them)),
        "mails_received": (MailIntake, MailIntake.sender.in_(list(who.addresses))),
        "codes": (Code, Code.address.in_(list(who.addresses))),
        "customer_groups": (CustomerGroupMember, CustomerGroupMember.person_id == pid),
        "member_account": (Member, Member.person_id == pid),
    }


def kept(who: Subject) -> dict[str, tuple[type, Any]]:
    pid = who.person.id
    return {
        "appointments": (Appointment, (Appointment.customer_id == pid) | (Appointment.staff_id == pid)),
        "memberships": (Membership, Membership.person_id == pid),
        "invoices": (SeatOrder, SeatOrder.buyer_id == pid),
        "audit": (Audit, or_(Audit.person_id == pid, Audit.actor.in_(list(who.addresses)),
                             Audit.subject.in_(who.audit_subjects))),
    }


async def ask(ctx: Context, plan: Plan, changed: bool = False, unasked: bool = False) -> list[Reply]:
    """Show what goes and what stays, with Erase and Keep; the question waits in the admin's conversation."""
    await ctx.start_flow(FLOW, "forget", {"person_id": plan.person.id, "seen": plan.fingerprint()})
    pid = plan.person.id
    choices = [ctx.choice("privacy.erase", f"forget {pid} confirm"), ctx.choice("privacy.keep", f"forget {pid} keep")]
    return [ctx.say("privacy_forget_ask", choices=choices, plan=plan, changed=changed, unasked=unasked)]


async def confirm(ctx: Context, person: Person) -> list[Reply]:
    """Erase, once: a second confirmation racing this one finds the person claimed and is refused."""
    claimed = cast(CursorResult, await ctx.session.execute(
        update(table(Person)).where(table(Person).c.id == person.id, table(Person).c.erased_at.is_(None))
        .values(erased_at=ctx.now)))
    if claimed.rowcount != 1:
        raise Refusal("privacy_forget_done", target=person)
    await ctx.end_flow()
    done = await erase(ctx, person)
    await ctx.audit("person_forgotten", done.pseudonym, person=person.id, cancelled=done.cancelled,
                    deleted=done.deleted, emptied=done.emptied, replaced=done.replaced, waiting=done.waiting)
    return [ctx.say("privacy_forgotten", done=done)]
