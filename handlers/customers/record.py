"""Admins change the record: rename, note, group and ungroup a customer, a new customer, an appointment's note."""
from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal
from handlers.customers.parsing import CLEAR, MAX_GROUP, MAX_NAME, find_customer, is_customer, note_text, one_line
from handlers.messages import Reply
from handlers.rules.addresses import normalise_email
from handlers.rules.names import name_key
from handlers.rules.words import first_word, parse_id, unquote
from storage.dialect import insert_ignoring_conflicts
from storage.models import Address, Appointment, CustomerGroup, CustomerGroupMember, CustomerNote, Person

# ---- admins change the record -------------------------------------------------------------------

async def rename(ctx: Context, args: str) -> list[Reply]:
    """`customer rename ID NEW NAME`: fix a pseudonym in the business's own record."""
    id_text, rest = first_word(args)
    person = await find_customer(ctx, id_text)
    name = one_line(rest, MAX_NAME, "customers_name_empty")
    old, person.name = person.name, name
    await ctx.audit("customer_renamed", f"customer:{person.id}", old=old, new=name)
    return [ctx.say("customers_renamed", customer=person, old=old)]


async def add_note(ctx: Context, args: str) -> list[Reply]:
    """`customer note ID TEXT`: a note on the customer, signed by the speaker's address."""
    id_text, rest = first_word(args)
    person = await find_customer(ctx, id_text)
    text = note_text(rest)
    ctx.session.add(CustomerNote(person_id=person.id, author=ctx.sender, text=text, created_at=ctx.now))
    await ctx.audit("customer_noted", f"customer:{person.id}", text=text[:200])
    return [ctx.say("customers_noted", customer=person)]


async def group(ctx: Context, args: str) -> list[Reply]:
    """`customer group ID GROUP`: add to a group, creating the group if it is new (several groups are fine)."""
    id_text, rest = first_word(args)
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


async def find_customer_group(ctx: Context, name: str) -> CustomerGroup | None:
    """Group names are matched regardless of case (name_key), so "VIP" and "vip" are one group."""
    return await ctx.session.scalar(select(CustomerGroup).where(CustomerGroup.name_key == name_key(name)))


async def find_or_create_group(ctx: Context, name: str) -> tuple[CustomerGroup, bool]:
    """The group of that name; a concurrent creation of the same name in any case is absorbed by the unique
    index on name_key (the database's word, not a check before the insert)."""
    found = await find_customer_group(ctx, name)
    if found is not None:
        return found, False
    created = await ctx.session.execute(
        insert_ignoring_conflicts(ctx.uow.dialect, CustomerGroup, ["name_key"]).values(name=name))
    group = await find_customer_group(ctx, name)
    assert group is not None, name  # inserted now, or the conflicting row is there
    return group, bool(created.rowcount)


async def ungroup(ctx: Context, args: str) -> list[Reply]:
    """`customer ungroup ID GROUP`: take the customer out of one group; the group itself stays."""
    id_text, rest = first_word(args)
    person = await find_customer(ctx, id_text)
    name = one_line(unquote(rest), MAX_GROUP, "customers_group_empty")
    group_row = await find_customer_group(ctx, name)
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
    head, rest = first_word(args)
    if head.lower() not in ("note", "notiz"):
        raise Refusal("customers_booking_usage")
    id_text, text = first_word(rest)
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


ACTIONS = {
    "rename": rename, "umbenennen": rename,
    "note": add_note, "notiz": add_note,
    "group": group, "gruppe": group,
    "ungroup": ungroup, "austragen": ungroup,
    "new": new_customer, "neu": new_customer,
}
