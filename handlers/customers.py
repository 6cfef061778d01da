"""Customers: find them, read their card, and keep the business's record right.

The record is the business's own: an admin fixes pseudonyms ("Der korrekte Name ist nur für Sie
in Ihrer Datenbank ersichtlich"), adds notes and groups. A customer's own change of name or email
does not overwrite it; it waits as a ProfileChange for an admin to accept or ignore.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from handlers.appointments import live_condition
from handlers.context import Context, Refusal, known_id
from handlers.identity import normalise_email
from handlers.messages import Choice, Reply
from handlers.names import name_key, unquote
from handlers.router import Command, Handlers
from storage.dialect import insert_ignoring_conflicts
from storage.models import (
    Address, Appointment, CustomerGroup, CustomerGroupMember, CustomerNote, Location, Person, ProfileChange, Role,
    Service, Staff,
)

ADMINS = frozenset({"owner", "admin"})
TEAM = ADMINS | {"staff"}
TEAM_ROLES = ("owner", "admin", "staff", "support")  # people who work here are not listed as customers
LIST_LIMIT = 20
CARD_LIMIT = 10
MAX_NAME = 200  # person.name
MAX_GROUP = 120  # customer_group.name
MAX_NOTE = 2000
ID = re.compile(r"^#?(\d{1,12})$", re.ASCII)
CLEAR = "-"  # `booking note ID -` removes the note


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


# ---- parsing and checks -------------------------------------------------------------------------

def one_line(text: str, limit: int, empty: str) -> str:
    """Collapse whitespace; refuse an empty value or one longer than its column holds."""
    value = " ".join(text.split())
    if not value:
        raise Refusal(empty)
    if len(value) > limit:
        raise Refusal("customers_too_long", limit=limit, length=len(value))
    return value


def note_text(text: str) -> str:
    """A note keeps its line breaks; refuse empty or overlong text."""
    value = text.strip()
    if not value:
        raise Refusal("customers_note_empty")
    if len(value) > MAX_NOTE:
        raise Refusal("customers_too_long", limit=MAX_NOTE, length=len(value))
    return value


def parse_id(text: str) -> int | None:
    """'12' or '#12' → 12; anything else → None. Ids beyond the column range come back as 0 (unknown)."""
    match = ID.match(text.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return known_id(number)


def split_first(text: str) -> tuple[str, str]:
    """'12 Anna Berger' → ('12', 'Anna Berger')."""
    parts = text.strip().split(None, 1)
    return (parts[0], parts[1].strip()) if len(parts) == 2 else ((parts[0], "") if parts else ("", ""))


def like_pattern(text: str) -> str:
    """A LIKE pattern for a substring, with the wildcards the user typed taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def is_customer():
    """Persons who do not work here (no staff row, no team role)."""
    return ~exists().where(Staff.person_id == Person.id) & ~exists().where(
        Role.person_id == Person.id, Role.role.in_(TEAM_ROLES))


async def find_customer(ctx: Context, text: str) -> Person:
    """The customer with this id, or a refusal that says what was wrong."""
    number = parse_id(text)
    if number is None:
        raise Refusal("customers_bad_id", value=text.strip()[:40])
    person = await ctx.session.scalar(select(Person).where(Person.id == number, is_customer()))
    if person is None:
        raise Refusal("customers_unknown", id=number)
    return person


async def denied(ctx: Context, what: str, args: str) -> list[Reply]:
    """Refuse a word the speaker's roles do not allow, and log the attempt (as the router does)."""
    await ctx.audit("denied", what, args=args[:200])
    return [ctx.say("not_allowed", word=what)]


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


# ---- the card -----------------------------------------------------------------------------------

async def customer(ctx: Context, args: str) -> list[Reply]:
    """`customer ID` shows the card; `customer rename|note|group|ungroup|new …` changes the record (admins)."""
    head, rest = split_first(args)
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


# ---- admins change the record -------------------------------------------------------------------

async def rename(ctx: Context, args: str) -> list[Reply]:
    """`customer rename ID NEW NAME`: fix a pseudonym in the business's own record."""
    id_text, rest = split_first(args)
    person = await find_customer(ctx, id_text)
    name = one_line(rest, MAX_NAME, "customers_name_empty")
    old, person.name = person.name, name
    await ctx.audit("customer_renamed", f"customer:{person.id}", old=old, new=name)
    return [ctx.say("customers_renamed", customer=person, old=old)]


async def add_note(ctx: Context, args: str) -> list[Reply]:
    """`customer note ID TEXT`: a note on the customer, signed by the speaker's address."""
    id_text, rest = split_first(args)
    person = await find_customer(ctx, id_text)
    text = note_text(rest)
    ctx.session.add(CustomerNote(person_id=person.id, author=ctx.sender, text=text, created_at=ctx.now))
    await ctx.audit("customer_noted", f"customer:{person.id}", text=text[:200])
    return [ctx.say("customers_noted", customer=person)]


async def group(ctx: Context, args: str) -> list[Reply]:
    """`customer group ID GROUP`: add to a group, creating the group if it is new (several groups are fine)."""
    id_text, rest = split_first(args)
    person = await find_customer(ctx, id_text)
    name = one_line(unquote(rest), MAX_GROUP, "customers_group_empty")
    group_row, created = await find_or_create_group(ctx, name)
    added = await ctx.session.execute(
        insert_ignoring_conflicts(ctx.uow.dialect, CustomerGroupMember, ["group_id", "person_id"])
        .values(group_id=group_row.id, person_id=person.id))
    if not added.rowcount:
        raise Refusal("customers_already_in_group", id=person.id, group=group_row.name)
    await ctx.audit("customer_grouped", f"customer:{person.id}", group=group_row.name, new_group=created)
    return [ctx.say("customers_grouped", customer=person, group=group_row.name, created=created)]


async def find_group(ctx: Context, name: str) -> CustomerGroup | None:
    """Group names are matched regardless of case (name_key), so "VIP" and "vip" are one group."""
    return await ctx.session.scalar(select(CustomerGroup).where(CustomerGroup.name_key == name_key(name)))


async def find_or_create_group(ctx: Context, name: str) -> tuple[CustomerGroup, bool]:
    """The group of that name; a concurrent creation of the same name in any case is absorbed by the unique
    index on name_key (the database's word, not a check before the insert)."""
    found = await find_group(ctx, name)
    if found is not None:
        return found, False
    created = await ctx.session.execute(
        insert_ignoring_conflicts(ctx.uow.dialect, CustomerGroup, ["name_key"]).values(name=name))
    return await find_group(ctx, name), bool(created.rowcount)


async def ungroup(ctx: Context, args: str) -> list[Reply]:
    """`customer ungroup ID GROUP`: take the customer out of one group; the group itself stays."""
    id_text, rest = split_first(args)
    person = await find_customer(ctx, id_text)
    name = one_line(unquote(rest), MAX_GROUP, "customers_group_empty")
    group_row = await find_group(ctx, name)
    if group_row is None:
        raise Refusal("customers_group_unknown", group=name)
    removed = await ctx.session.execute(delete(CustomerGroupMember).where(
        CustomerGroupMember.group_id == group_row.id, CustomerGroupMember.person_id == person.id))
    if not removed.rowcount:
        raise Refusal("customers_not_in_group", id=person.id, group=group_row.name)
    await ctx.audit("customer_ungrouped", f"customer:{person.id}", group=group_row.name)
    return [ctx.say("customers_ungrouped", customer=person, group=group_row.name)]


async def new_customer(ctx: Context, args: str) -> list[Reply]:
    """`customer new NAME [EMAIL]`: a customer who does not book online.

    The email is stored unverified: an admin typed it, nobody proved it. So it never links anyone
    to this record; whoever later proves the mailbox with a code gets the address for their own
    account (identity.email_verified), and an address someone already uses is refused here.
    """
    words = args.split()
    email = normalise_email(words.pop()) if words and "@" in words[-1] else None
    name = one_line(" ".join(words), MAX_NAME, "customers_name_empty")
    if email is not None:
        await refuse_known_email(ctx, email)
    person = Person(name=name, created_at=ctx.now)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(person)
            await ctx.session.flush()
            if email is not None:
                ctx.session.add(Address(address=f"email:{email}", kind="email", person_id=person.id,
                                        verified=False, created_at=ctx.now))
                await ctx.session.flush()
    except IntegrityError:  # the same address arrived at the same moment through another message
        raise Refusal("customers_email_taken", email=email, id=None) from None
    await ctx.audit("customer_created", f"customer:{person.id}", name=name, email=email)
    return [ctx.say("customers_created", customer=person, email=email, namesakes=await namesakes(ctx, person))]


async def refuse_known_email(ctx: Context, email: str) -> None:
    """An address already in the database stays with its person; say whose it is if that is a customer."""
    # Case-insensitive: Max@ and max@ are one mailbox in practice, though identity keeps the case it was given.
    owner = await ctx.session.scalar(select(Address.person_id).where(
        func.lower(Address.address) == func.lower(f"email:{email}")).limit(1))
    if owner is not None:
        shown = await ctx.session.scalar(select(Person.id).where(Person.id == owner, is_customer()))
        raise Refusal("customers_email_taken", email=email, id=shown)


async def namesakes(ctx: Context, person: Person) -> list[Person]:
    """Other customers with the same name: a hint that this one may already exist."""
    return list((await ctx.session.scalars(select(Person).where(
        func.lower(Person.name) == func.lower(person.name), Person.id != person.id, is_customer())
        .order_by(Person.id).limit(5))).all())


async def booking(ctx: Context, args: str) -> list[Reply]:
    """`booking note ID TEXT`: set (or with "-" remove) an appointment's note; the card shows it."""
    head, rest = split_first(args)
    if head.lower() not in ("note", "notiz"):
        raise Refusal("customers_booking_usage")
    id_text, text = split_first(rest)
    number = parse_id(id_text)
    if number is None:
        raise Refusal("customers_bad_id", value=id_text[:40])
    appointment = await ctx.session.get(Appointment, number) if number else None
    if appointment is None:
        raise Refusal("customers_booking_unknown", id=number)
    note = None if text == CLEAR else note_text(text)
    old, appointment.note = appointment.note, note
    await ctx.audit("booking_noted", f"appointment:{appointment.id}", old=old, new=note)
    return [ctx.say("customers_booking_noted", appointment=appointment, note=note)]


# ---- the customer's own profile -----------------------------------------------------------------

async def own_name(ctx: Context, args: str) -> list[Reply]:
    """`name NEW NAME`: the first name is taken as given; a later change waits for an admin.

    The name a chat shows (Telegram's profile name) is only a stand-in until the person gives theirs."""
    name = one_line(args, MAX_NAME, "customers_name_empty")
    if not ctx.person.name or ctx.person.name == ctx.inbound.display_name:
        old, ctx.person.name = ctx.person.name, name
        await ctx.audit("name_set", f"customer:{ctx.person.id}", name=name, chat_name=old)
        return [ctx.say("customers_name_set", given=name)]
    await propose(ctx, "name", ctx.person.name, name)
    # The reply never repeats the record's name: it may be the admin's correction of a pseudonym.
    return [ctx.say("customers_name_pending", given=name)]


async def propose(ctx: Context, field: str, old: str | None, new: str) -> None:
    """File a pending change; an older pending change of the same field is superseded by it.

    The partial unique index ux_profile_change_pending keeps one pending change per person and field:
    when another message of the same person filed one meanwhile, ours supersedes it on the next round.
    """
    for _ in range(3):
        try:
            async with ctx.session.begin_nested():
                await file_change(ctx, field, old, new)
            return
        except IntegrityError:
            continue
    raise Refusal("customers_change_busy")


async def file_change(ctx: Context, field: str, old: str | None, new: str) -> None:
    """Supersede the pending change of this field, then add ours (unless it only undoes the record's value)."""
    await ctx.session.execute(
        update(ProfileChange)
        .where(ProfileChange.person_id == ctx.person.id, ProfileChange.field == field,
               ProfileChange.status == "pending")
        .values(status="superseded", decided_by=ctx.sender).execution_options(synchronize_session=False))
    if old == new:
        await ctx.audit(f"{field}_change_withdrawn", f"customer:{ctx.person.id}", value=new)
        return
    await ctx.session.execute(insert(ProfileChange).values(
        person_id=ctx.person.id, field=field, old_value=old, new_value=new, status="pending", created_at=ctx.now))
    await ctx.audit(f"{field}_change_proposed", f"customer:{ctx.person.id}", old=old, new=new)


async def record_email_change(ctx: Context, email: str, existing: Address | None) -> None:
    """Called before a proven email is attached: if the person already had a verified email, it is a change."""
    if existing is not None and existing.verified:
        return  # the speaker's own again, or someone else's that this chat gets linked to: no change
    if existing is not None and existing.person_id != ctx.person.id:
        # An unverified address (e.g. typed by an admin) goes to whoever proves the mailbox; keep a trace.
        await ctx.audit("address_claimed", f"email:{email}", previous_person=existing.person_id)
    previous = await ctx.session.scalar(
        select(Address.address).where(Address.person_id == ctx.person.id, Address.kind == "email",
                                      Address.verified, Address.address != f"email:{email}")
        .order_by(Address.id).limit(1))
    if previous is not None:
        await propose(ctx, "email", previous.split(":", 1)[1], email)


# ---- admins decide on changes -------------------------------------------------------------------

def change_choices(ctx: Context, changes) -> list[Choice]:
    """An Accept and an Ignore button for each change."""
    choices = []
    for change in changes:
        choices.append(ctx.choice("customers.accept", f"accept {change.id}", id=change.id))
        choices.append(ctx.choice("customers.ignore", f"ignore {change.id}", id=change.id))
    return choices


async def list_changes(ctx: Context, args: str) -> list[Reply]:
    """`changes`: customers' own changes of name or email that wait for a decision, with buttons."""
    rows = (await ctx.session.execute(
        select(ProfileChange, Person.name).join(Person, Person.id == ProfileChange.person_id)
        .where(ProfileChange.status == "pending").order_by(ProfileChange.created_at, ProfileChange.id)
        .limit(LIST_LIMIT + 1))).all()
    shown = rows[:LIST_LIMIT]
    return [ctx.say("customers_changes", choices=change_choices(ctx, [c for c, _ in shown]),
                    changes=shown, more=len(rows) > LIST_LIMIT)]


async def accept(ctx: Context, args: str) -> list[Reply]:
    """`accept ID`: take a customer's change into the record."""
    change = await decide(ctx, args, "accepted")
    if change.field == "name":
        person = await ctx.session.get(Person, change.person_id)
        person.name = change.new_value
    elif change.old_value:
        # The record's email is replaced: the old address goes, the proven new one stays.
        await ctx.session.execute(delete(Address).where(
            Address.address == f"email:{change.old_value}", Address.person_id == change.person_id))
    await ctx.audit("change_accepted", f"customer:{change.person_id}", change=change.id, field=change.field,
                    old=change.old_value, new=change.new_value)
    return [ctx.say("customers_change_decided", change=change)]


async def ignore(ctx: Context, args: str) -> list[Reply]:
    """`ignore ID`: keep the record as it is."""
    change = await decide(ctx, args, "ignored")
    await ctx.audit("change_ignored", f"customer:{change.person_id}", change=change.id, field=change.field,
                    new=change.new_value)
    return [ctx.say("customers_change_decided", change=change)]


async def decide(ctx: Context, args: str, status: str) -> ProfileChange:
    """Mark a pending change decided, atomically, so two admins cannot both decide it."""
    number = parse_id(args)
    if number is None:
        raise Refusal("customers_bad_id", value=args.strip()[:40])
    change = await ctx.session.get(ProfileChange, number) if number else None
    if change is None:
        raise Refusal("customers_change_unknown", id=number)
    decided = await ctx.session.execute(
        update(ProfileChange).where(ProfileChange.id == change.id, ProfileChange.status == "pending")
        .values(status=status, decided_by=ctx.sender).execution_options(synchronize_session=False))
    if decided.rowcount != 1:
        raise Refusal("customers_change_closed", id=change.id, status=change.status)
    await ctx.session.refresh(change)
    return change


ACTIONS = {
    "rename": rename, "umbenennen": rename,
    "note": add_note, "notiz": add_note,
    "group": group, "gruppe": group,
    "ungroup": ungroup, "austragen": ungroup,
    "new": new_customer, "neu": new_customer,
}


def handlers() -> Handlers:
    return Handlers(commands=[
        Command("customers", list_customers, allowed=TEAM, aliases=("kunden",), section="staff", safe=True),
        Command("customer", customer, allowed=TEAM, aliases=("kunde",), section="staff"),
        Command("booking", booking, allowed=ADMINS, aliases=("buchung",), section="admin"),
        Command("changes", list_changes, allowed=ADMINS, aliases=("aenderungen", "änderungen"), section="admin",
                safe=True),
        Command("accept", accept, allowed=ADMINS, aliases=("uebernehmen", "übernehmen"), section="admin"),
        Command("ignore", ignore, allowed=ADMINS, aliases=("ignorieren",), section="admin"),
        Command("name", own_name),
    ])
