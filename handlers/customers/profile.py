"""The customer's own profile: `name`, and a proven new email; a change of the record waits for an admin."""
from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal
from handlers.customers.parsing import MAX_NAME, one_line
from handlers.messages import Reply
from storage.models import Address, ProfileChange

# ---- the customer's own profile -----------------------------------------------------------------

async def own_name(ctx: Context, args: str) -> list[Reply]:
    """`name NEW NAME`: the first name is taken as given; a later change waits for an admin.

    The name a chat shows (Telegram's profile name) is only a stand-in until the person gives theirs."""
    name = one_line(args, MAX_NAME, "customers_name_empty")
    if not ctx.person.name or ctx.person.name == ctx.inbound.display_name:
        old = ctx.person.name
        await ctx.update_person(name=name)
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
