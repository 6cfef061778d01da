"""The lists of people: `customers [query|group]` (admins) and `members [GROUP]` (a manager: their groups)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from handlers.appointments import live_condition
from handlers.context import Context
from handlers.customers.finding import search_condition
from handlers.customers.parsing import MAX_NAME, is_customer
from handlers.members.groups import find_seat_group, visible_groups
from handlers.members.rules import MANAGERS
from handlers.registry import ExportList
from handlers.rules.profile import phone_cell
from handlers.rules.roles import ADMINS
from handlers.rules.words import split_words
from storage.models import (
    Address,
    Appointment,
    CustomerGroup,
    CustomerGroupMember,
    Member,
    Membership,
    Person,
    ProfileChange,
    SeatGroup,
)

CUSTOMER_FIELDS = ("id", "name", "email", "phone", "groups", "upcoming", "language", "created")
CUSTOMER_DEFAULT = ("id", "name", "email", "phone", "groups")
MEMBER_FIELDS = ("group", "id", "name", "first_name", "last_name", "email", "phone", "status", "enrolled",
                 "seat_used", "activated")
MEMBER_DEFAULT = ("group", "name", "email", "phone", "status", "enrolled")


async def customer_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    """`export customers [query|group]`: every customer (or those the query finds), as the record has them."""
    query = " ".join(args.split())[:MAX_NAME]
    chosen = is_customer() & search_condition(query) if query else is_customer()
    ids = select(Person.id).where(chosen)  # a subquery, not a list of ids: a long list stays one statement
    emails = await record_emails(ctx, ids)
    groups: dict[int, list[str]] = defaultdict(list)
    for person_id, name in await ctx.session.execute(
            select(CustomerGroupMember.person_id, CustomerGroup.name).join(CustomerGroup)
            .where(CustomerGroupMember.person_id.in_(ids)).order_by(CustomerGroup.name)):
        groups[person_id].append(name)
    phones = dict((await ctx.session.execute(
        select(Member.person_id, Member.phone).where(Member.person_id.in_(ids), Member.phone.is_not(None)))).all())
    upcoming = dict((await ctx.session.execute(
        select(Appointment.customer_id, func.count()).where(
            Appointment.customer_id.in_(ids), Appointment.start_at >= ctx.now, live_condition(ctx.now))
        .group_by(Appointment.customer_id))).all())
    people = await ctx.session.execute(
        select(Person.id, Person.name, Person.language, Person.created_at).where(chosen)
        .order_by(Person.name.is_(None), func.lower(Person.name), Person.id))
    return [{"id": pid, "name": name, "email": emails[pid], "phone": phone_cell(phones.get(pid)) or None,
             "groups": groups[pid], "upcoming": upcoming.get(pid, 0), "language": language, "created": created}
            for pid, name, language, created in people]


async def record_emails(ctx: Context, ids) -> dict[int, list[str]]:
    """Each person's emails as the business's record shows them: a customer's own new one only once accepted."""
    unaccepted = set((await ctx.session.execute(
        select(ProfileChange.person_id, ProfileChange.new_value).where(
            ProfileChange.person_id.in_(ids), ProfileChange.field == "email", ProfileChange.status != "accepted")
    )).all())
    found: dict[int, list[str]] = defaultdict(list)
    for person_id, address in await ctx.session.execute(
            select(Address.person_id, Address.address).where(Address.person_id.in_(ids), Address.kind == "email")
            .order_by(Address.id)):
        value = address.split(":", 1)[1]
        if (person_id, value) not in unaccepted:
            found[person_id].append(value)
    return found


async def member_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    """`export members [GROUP]`: the members of that group, or of every group the asker sees."""
    tokens = split_words(args)
    if tokens:
        group_ids = [(await find_seat_group(ctx, tokens))[0].id]  # unknown and foreign groups look alike
    else:
        group_ids = [gid for gid, _ in await visible_groups(ctx, ADMINS)]
    email = (select(func.min(Address.address)).where(Address.person_id == Membership.person_id,
                                                     Address.kind == "email").scalar_subquery())
    rows = await ctx.session.execute(
        select(SeatGroup.name, Person.id, Person.name, Member.first_name, Member.last_name, email, Member.phone,
               Member.status, Member.invitation_expires_at, Membership.enrolled_at, Membership.seat_used,
               Member.activated_at)
        .join(SeatGroup, SeatGroup.id == Membership.group_id).join(Person, Person.id == Membership.person_id)
        .outerjoin(Member, Member.person_id == Membership.person_id)
        .where(Membership.group_id.in_(group_ids))
        .order_by(SeatGroup.name, Membership.enrolled_at, Membership.id))
    return [{"group": group, "id": pid, "name": name, "first_name": first, "last_name": last,
             "email": address.split(":", 1)[1] if address else None, "phone": phone_cell(phone) or None,
             "status": member_status(status, expires, ctx), "enrolled": enrolled, "seat_used": used,
             "activated": activated}
            for group, pid, name, first, last, address, phone, status, expires, enrolled, used, activated in rows]


def member_status(status: str | None, expires, ctx: Context) -> str:
    """The account's status; an invitation that ran out counts as failed, as the member list would make it."""
    if status == "pending" and expires is not None and expires <= ctx.now:
        return "failed"
    return status or "none"


def people_lists() -> dict[str, ExportList]:
    return {
        # The whole customer record in one file: admins only, though the team may look customers up one by one.
        "customers": ExportList("customers", customer_rows, CUSTOMER_FIELDS, CUSTOMER_DEFAULT, allowed=ADMINS,
                                aliases=("kunden",)),
        "members": ExportList("members", member_rows, MEMBER_FIELDS, MEMBER_DEFAULT, allowed=MANAGERS,
                              aliases=("mitglieder",)),
    }
