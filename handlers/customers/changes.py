"""Admins decide on customers' own changes: `changes` lists them, `accept ID` and `ignore ID` settle one."""
from __future__ import annotations

from sqlalchemy import delete, select, update

from handlers.context import Context, Refusal
from handlers.customers.parsing import LIST_LIMIT
from handlers.messages import Choice, Reply
from handlers.rules.words import parse_id
from storage.models import Address, Person, ProfileChange

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
