"""Removing members from a group, and refunds: a removed member's seat stays taken; only a refund gives it back."""
from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Row

from handlers.context import Context, Refusal
from handlers.identity import normalise_email
from handlers.members.groups import find_seat_group
from handlers.members.membership import current_membership, retire_invitation
from handlers.members.rules import NUMBER, REFUNDERS, seat_count
from handlers.messages import Reply
from handlers.rules.words import split_words
from storage.models import Address, Member, Membership, SeatGroup


async def remove(ctx: Context, args: str) -> list[Reply]:
    """`remove GROUP EMAIL`: take the member out; their seat stays taken, used or not (only a refund returns it)."""
    tokens = split_words(args)
    if len(tokens) < 2:
        raise Refusal("groups_usage", word="remove")
    email = normalise_email(tokens[-1])
    group, _ = await find_seat_group(ctx, tokens[:-1])
    person_id = await ctx.session.scalar(select(Address.person_id).where(Address.address == f"email:{email}"))
    # The member row first, as an acceptance takes it (member, then membership): locked in the other
    # order, a remove racing an accept deadlocks on PostgreSQL.
    await ctx.session.execute(select(Member.person_id).where(Member.person_id == person_id).with_for_update())
    gone = await delete_membership(ctx, await current_membership(ctx, group.id, person_id))
    if gone is None:
        raise Refusal("groups_refused", reason="not_member", value=email)
    # Seed 000: removing never gives a seat back; even one added by mistake and never used goes back only
    # through support ("versehentlich hinzugefügt … Erstattung über den Support"): `refund`.
    if gone.holds_seat and not gone.seat_used:
        await retire_invitation(ctx, person_id)
    await ctx.audit("member_removed", f"email:{email}", group=group.id, seat_used=gone.seat_used)
    await ctx.session.refresh(group)
    return [ctx.say("groups_removed", group=group, email=email, used=gone.seat_used)]


async def delete_membership(ctx: Context, held: Membership | None) -> Row | None:
    """Delete the membership and say what it held as it was deleted (None: it was gone already).

    The row's state comes from the DELETE itself: a read before it could miss an accept that used the
    seat meanwhile, or a second remove that already gave the seat back.
    """
    if held is None:
        return None
    return (await ctx.session.execute(
        delete(Membership).where(Membership.id == held.id)
        .returning(Membership.holds_seat, Membership.seat_used))).one_or_none()


async def refund(ctx: Context, args: str) -> list[Reply]:
    """`refund GROUP N REASON` (support or the owner): put N seats back by hand, never below the seats held."""
    group, rest = await find_seat_group(ctx, split_words(args), whole=False, full=REFUNDERS)
    if not rest or not NUMBER.fullmatch(rest[0]):
        raise Refusal("groups_usage", word="refund")
    seats, reason = seat_count(rest[0]), " ".join(rest[1:]).strip()
    if not reason:
        raise Refusal("groups_refused", reason="reason_missing", value=group.name)
    before = await put_back(ctx, group.id, seats)
    await ctx.audit("seats_refunded", f"group:{group.id}", seats=seats, reason=reason[:500], taken_before=before)
    await ctx.session.refresh(group)
    return [ctx.say("groups_refunded", group=group, seats=seats, reason=reason)]


async def put_back(ctx: Context, group_id: int, seats: int) -> int:
    """Lower seats_taken in one conditional UPDATE, never below the seats members hold; return the old count."""
    # Lock the row first: on PostgreSQL the holders' count below must see every committed enrolment.
    group = await ctx.session.scalar(select(SeatGroup).where(SeatGroup.id == group_id).with_for_update()
                                     .execution_options(populate_existing=True))
    holders = (select(func.count()).select_from(Membership)
               .where(Membership.group_id == group_id, Membership.holds_seat).scalar_subquery())
    done = await ctx.session.execute(
        update(SeatGroup).where(SeatGroup.id == group_id, SeatGroup.seats_taken - seats >= holders)
        .values(seats_taken=SeatGroup.seats_taken - seats).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        held = await ctx.session.scalar(select(holders))
        raise Refusal("groups_refused", reason="refund_too_many", value=str(seats), most=group.seats_taken - held)
    return group.seats_taken
