"""Enrolling one member into a group: a free seat (unless they hold one already), then an invitation.

A manager manages seats and nothing else: enrolling an address that is known already never changes
that person's data or open invitation.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal
from handlers.identity import normalise_email
from handlers.members.groups import find_seat_group
from handlers.members.membership import (
    Invitee,
    add_memberships,
    current_membership,
    member_statuses,
    seats_missing,
    take_seats,
    welcome_members,
)
from handlers.members.rules import MAX_NAME
from handlers.messages import Reply
from handlers.rules.words import split_words
from storage.models import Address, Person, SeatGroup


async def enroll(ctx: Context, args: str) -> list[Reply]:
    """`enroll GROUP NAME EMAIL`: take a free seat and invite the member (pending until they accept)."""
    tokens = split_words(args)
    if len(tokens) < 3 or "@" not in tokens[-1]:
        raise Refusal("groups_usage", word="enroll")
    email = normalise_email(tokens[-1])
    group, rest = await find_seat_group(ctx, tokens[:-1], whole=False)
    name = " ".join(" ".join(rest).split())
    if not name or len(name) > MAX_NAME:
        raise Refusal("groups_usage", word="enroll")
    return await enroll_one(ctx, group, name, email)


async def enroll_one(ctx: Context, group: SeatGroup, name: str, email: str) -> list[Reply]:
    """One member: a seat (unless they hold one already), then an invitation, or a notice if already active."""
    person_id = await ctx.session.scalar(select(Address.person_id).where(Address.address == f"email:{email}"))
    held = await current_membership(ctx, group.id, person_id)
    active = (await member_statuses(ctx, [person_id] if person_id else [])).get(person_id) == "activated"
    if held is not None and (held.seat_used or active):
        raise Refusal("groups_refused", reason="already_member", value=email)
    if held is None and not await take_seats(ctx, group.id, 1):
        raise await seats_missing(ctx, group.id, 1)
    fresh = person_id is None
    try:
        async with ctx.session.begin_nested():
            person_id = person_id or await new_person(ctx, name, email)
            if held is None:
                await add_memberships(ctx, group, [person_id], active)
            kept = await welcome_members(ctx, group, [Invitee(person_id, email, fresh=fresh)])
    except IntegrityError:  # the same address enrolled at the same moment elsewhere
        raise Refusal("groups_refused", reason="busy", value=email) from None
    await ctx.audit("member_enrolled", f"email:{email}", group=group.id, again=held is not None, active=active,
                    kept_invitation=bool(kept))
    await ctx.session.refresh(group)
    return [ctx.say("groups_enrolled", group=group, member=name, email=email, again=held is not None, active=active,
                    kept=bool(kept))]


async def new_person(ctx: Context, name: str, email: str) -> int:
    """A person known only by the address a manager typed: unverified until they accept."""
    person = Person(name=name, created_at=ctx.now)
    ctx.session.add(person)
    await ctx.session.flush()
    ctx.session.add(Address(address=f"email:{email}", kind="email", person_id=person.id, verified=False,
                            created_at=ctx.now))
    await ctx.session.flush()
    return person.id
