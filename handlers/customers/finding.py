"""Finding customers: `customers [query|group]`, a page of them with emails, groups and upcoming appointments."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import exists, func, select

from handlers.appointments import live_condition
from handlers.context import Context
from handlers.customers.parsing import LIST_LIMIT, MAX_NAME, is_customer, like_pattern
from handlers.messages import Reply
from handlers.rules.names import name_key
from handlers.rules.words import unquote
from storage.models import Address, Appointment, CustomerGroup, CustomerGroupMember, Person, ProfileChange


@dataclass(frozen=True)
class CustomerLine:
    id: int
    name: str | None
    emails: list[str]
    groups: list[str]
    upcoming: int


@dataclass(frozen=True)
class AddressLine:
    kind: str
    value: str
    verified: bool
    change: str | None  # "pending" | "ignored" | …: a customer's own new email not (yet) in the record



# ---- finding customers --------------------------------------------------------------------------

def search_condition(query: str):
    """Name or email contains the query (case-insensitive), or the customer is in the group of that name."""
    pattern = like_pattern(query)
    email = exists().where(Address.person_id == Person.id, Address.kind == "email",
                           Address.address.ilike("email:" + pattern, escape="\\"))
    group = exists().where(CustomerGroupMember.person_id == Person.id,
                           CustomerGroupMember.group_id == CustomerGroup.id,
                           CustomerGroup.name_key == name_key(unquote(query)))
    return Person.name.ilike(pattern, escape="\\") | email | group


async def list_customers(ctx: Context, args: str) -> list[Reply]:
    """`customers [query|group]`: up to 20 customers with email, groups and upcoming appointments."""
    query = " ".join(args.split())[:MAX_NAME]
    statement = (select(Person.id, Person.name).where(is_customer())
                 .order_by(Person.name.is_(None), func.lower(Person.name), Person.id).limit(LIST_LIMIT + 1))
    if query:
        statement = statement.where(search_condition(query))
    rows = (await ctx.session.execute(statement)).all()
    lines = await customer_lines(ctx, rows[:LIST_LIMIT])
    groups = [] if query else await group_sizes(ctx)
    choices = [ctx.choice("customers.open", f"customer {line.id}", id=line.id, name=line.name or "–")
               for line in lines]
    return [ctx.say("customers_list", choices=choices, customers=lines, query=query,
                    more=len(rows) > LIST_LIMIT, limit=LIST_LIMIT, groups=groups)]


async def group_sizes(ctx: Context) -> list[tuple[str, int]]:
    """Every customer group with its number of members (empty groups too)."""
    return [tuple(row) for row in await ctx.session.execute(
        select(CustomerGroup.name, func.count(CustomerGroupMember.person_id))
        .outerjoin(CustomerGroupMember).group_by(CustomerGroup.id, CustomerGroup.name)
        .order_by(CustomerGroup.name))]


async def customer_lines(ctx: Context, rows) -> list[CustomerLine]:
    """Emails, groups and upcoming appointment counts for a page of customers, in three queries."""
    ids = [row.id for row in rows]
    emails = await addresses_of(ctx, ids)
    groups = defaultdict(list)
    for person_id, name in await ctx.session.execute(
            select(CustomerGroupMember.person_id, CustomerGroup.name).join(CustomerGroup)
            .where(CustomerGroupMember.person_id.in_(ids)).order_by(CustomerGroup.name)):
        groups[person_id].append(name)
    upcoming = dict((await ctx.session.execute(
        select(Appointment.customer_id, func.count()).where(
            Appointment.customer_id.in_(ids), Appointment.start_at >= ctx.now, live_condition(ctx.now))
        .group_by(Appointment.customer_id))).all())
    return [CustomerLine(r.id, r.name, in_record(emails[r.id]), groups[r.id], upcoming.get(r.id, 0)) for r in rows]


def in_record(addresses: list[AddressLine]) -> list[str]:
    """The emails the business's record shows: a customer's own new one only once it was accepted."""
    return [a.value for a in addresses if a.kind == "email" and a.change is None]


async def addresses_of(ctx: Context, ids: list[int]) -> dict[int, list[AddressLine]]:
    """Each person's addresses; an email that came in by a change not accepted is marked with that change."""
    unaccepted = {(c.person_id, c.new_value): c.status for c in await ctx.session.scalars(
        select(ProfileChange).where(ProfileChange.person_id.in_(ids), ProfileChange.field == "email",
                                    ProfileChange.status != "accepted").order_by(ProfileChange.id))}
    out: dict[int, list[AddressLine]] = defaultdict(list)
    for row in await ctx.session.scalars(
            select(Address).where(Address.person_id.in_(ids)).order_by(Address.kind, Address.id)):
        value = row.address.split(":", 1)[1]
        change = unaccepted.get((row.person_id, value)) if row.kind == "email" else None
        out[row.person_id].append(AddressLine(row.kind, value, row.verified, change))
    return out
