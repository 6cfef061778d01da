"""Member accounts (seed 004, an admin portal for users): adding, changing, reading, grouping and deleting
member records.

A member added by an admin is *pending* until they accept the invitation (membership owns it), then
*activated*. Pending members may be edited in profile and services and put into groups, but not deleted
nor changed in configuration (number, extension, device).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal
from handlers.identity import normalise_email
from handlers.members.groups import find_seat_group
from handlers.members.membership import display_name, expire_invitations, invite, subject, take_seats
from handlers.members.rules import ADMINS, LIST_LIMIT
from handlers.messages import Reply
from handlers.rules import profile as rules
from handlers.rules.words import first_word, parse_id, split_words, unquote
from storage.models import Address, Credential, Member, Membership, Person, SeatGroup

DELETE_FLOW = "member_delete"
COLUMNS = {"first": "first_name", "last": "last_name", "phone": "phone", "extension": "extension",
           "mobile": "mobile", "contract": "contract_number", "device": "device_model", "services": "services"}
YES = {"yes", "y", "ja", "j", "delete", "löschen", "loeschen"}
NO = {"no", "n", "nein", "keep", "behalten", "abort", "abbrechen"}


# ---- small helpers ------------------------------------------------------------------------------

def ephemeral(reply: Reply, seconds: int) -> Reply:
    """Mark a reply as shown once: chat edges remove it (and the message that asked) after `seconds`."""
    reply.ephemeral_seconds = seconds
    return reply


async def denied(ctx: Context, what: str) -> list[Reply]:
    """Refuse a sub-word the speaker's roles do not allow, and log the attempt as the router does."""
    await ctx.audit("denied", what)
    return [ctx.say("not_allowed", word=what)]


async def find_member(ctx: Context, text: str) -> Member:
    """The member with this id (or email), or a refusal naming what was typed (member words are for admins)."""
    person_id = await person_id_for(ctx, text)
    member = await ctx.session.get(Member, person_id) if person_id else None
    if member is None:
        raise Refusal("accounts_unknown", value=text.strip()[:80])
    return member


async def person_id_for(ctx: Context, text: str) -> int | None:
    """An id typed as 12, #12 or an email address → the person's id (None: no such address)."""
    if "@" in text:
        return await ctx.session.scalar(select(Address.person_id).where(
            Address.address == f"email:{normalise_email(text)}"))
    number = parse_id(text)
    if number is None:
        raise Refusal("accounts_bad_id", value=text.strip()[:40])
    return number


async def member_email(ctx_or_uow, person_id: int) -> str | None:
    """The member's email address, a verified one first."""
    session = ctx_or_uow.session
    address = await session.scalar(select(Address.address).where(
        Address.person_id == person_id, Address.kind == "email").order_by(Address.verified.desc(), Address.id).limit(1))
    return address.split(":", 1)[1] if address else None


def region(ctx: Context) -> str:
    return rules.region_for(ctx.tz)



# ---- adding and changing ------------------------------------------------------------------------

async def add_member(ctx: Context, args: str) -> list[Reply]:
    """`member add NAME EMAIL [field=value …]`: a pending member, invited by mail."""
    words, options = rules.parse_options(args)
    if len(words) < 2 or "@" not in words[-1]:
        raise Refusal("accounts_add_usage")
    email, name = normalise_email(words[-1]), " ".join(words[:-1])
    first, last = rules.split_name(name)
    values = rules.clean_fields({"first": first, "last": last, **options}, region(ctx))
    phone = values.get("phone")  # a cleaned phone is an E.164 string, or None when cleared
    if isinstance(phone, str) and phone and "extension" not in values:
        values["extension"] = rules.default_extension(phone)
    person = await person_for_email(ctx, email, name)
    member = Member(person_id=person.id, status="pending", services=[])
    await store_fields(ctx, member, values, new=True)
    link = await invite(ctx, member, email)
    await ctx.audit("member_added", subject(person.id), email=email, **audit_values(values))
    return [ctx.say("accounts_added", member=member, who=display_name(member, person), email=email, link=link)]


async def reinvite(ctx: Context, args: str) -> list[Reply]:
    """`member invite ID`: a new invitation for a pending or failed member (e.g. after a bounce)."""
    member = await find_member(ctx, args)
    if member.status == "activated":
        raise Refusal("accounts_already_active", who=display_name(member))
    email = await member_email(ctx, member.person_id)
    if email is None:
        raise Refusal("accounts_no_email", who=display_name(member))
    member.status, member.failure_reason = "pending", None
    link = await invite(ctx, member, email)
    await ctx.audit("member_invited", subject(member.person_id), email=email)
    return [ctx.say("accounts_invited", member=member, who=display_name(member), email=email, link=link)]


async def person_for_email(ctx: Context, email: str, name: str) -> Person:
    """The person who has this address already (an existing customer), or a new one with it unverified."""
    owner = await ctx.session.scalar(select(Address.person_id).where(Address.address == f"email:{email}"))
    if owner is not None:
        existing = await ctx.session.get(Member, owner)
        if existing is not None:
            raise Refusal("accounts_already_member", id=owner, email=email, status=existing.status)
        return await ctx.session.get(Person, owner)
    person = Person(name=" ".join(name.split())[:200], created_at=ctx.now)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(person)
            await ctx.session.flush()
            # An admin typed it, nobody proved it: accepting the invitation by its code verifies it.
            ctx.session.add(Address(address=f"email:{email}", kind="email", person_id=person.id, verified=False,
                                    created_at=ctx.now))
            await ctx.session.flush()
    except IntegrityError:  # the same address arrived at the same moment through another message
        raise Refusal("accounts_taken_meanwhile") from None
    return person


def audit_values(values: dict) -> dict:
    return {k: v for k, v in values.items() if v not in (None, "", [])}


async def store_fields(ctx: Context, member: Member, values: dict, new: bool = False) -> None:
    """Write checked fields; a number or extension someone else has is refused naming them."""
    for field, column in (("phone", Member.phone), ("extension", Member.extension)):
        await refuse_clash(ctx, member.person_id, field, column, values.get(field))
    for field, value in values.items():
        setattr(member, COLUMNS[field], value)
    try:
        async with ctx.session.begin_nested():
            if new:
                ctx.session.add(member)
            await ctx.session.flush()
    except IntegrityError:  # someone took the number or extension a moment ago
        for field, column in (("phone", Member.phone), ("extension", Member.extension)):
            await refuse_clash(ctx, member.person_id, field, column, values.get(field))
        raise Refusal("accounts_taken_meanwhile") from None


async def refuse_clash(ctx: Context, person_id: int, field: str, column, value) -> None:
    """Numbers and extensions are unique in the organisation: name who has it."""
    if value is None:
        return
    other = await ctx.session.scalar(select(Member).where(column == value, Member.person_id != person_id))
    if other is not None:
        person = await ctx.session.get(Person, other.person_id)
        raise Refusal("accounts_clash", field=field, value=value, other=display_name(other, person),
                      other_id=other.person_id)


async def set_fields(ctx: Context, args: str) -> list[Reply]:
    """`member set ID field=value …`: profile and services for anyone, configuration only once activated."""
    id_text, rest = first_word(args)
    member = await find_member(ctx, id_text)
    words, options = rules.parse_options(rest)
    if words or not options:
        raise Refusal("accounts_set_usage")
    values = rules.clean_fields(options, region(ctx))
    configuration = sorted(rules.CONFIGURATION & values.keys())
    if configuration and member.status != "activated":
        raise Refusal("accounts_config_not_active", status=member.status, fields=configuration,
                      who=display_name(member))
    if configuration and not ctx.roles & ADMINS:
        return await denied(ctx, "member set " + ",".join(configuration))
    changes = await change_fields(ctx, member, values)
    await ctx.audit("member_changed", subject(member.person_id), **changes)
    return [ctx.say("accounts_changed", member=member, who=display_name(member), changes=changes)]


async def change_fields(ctx: Context, member: Member, values: dict) -> dict[str, list]:
    """Apply changed values ({field: [old, new]}); a default extension follows a new number."""
    if "phone" in values and "extension" not in values and member.extension == rules.default_extension(member.phone):
        values["extension"] = rules.default_extension(values["phone"])
    changes = {f: [getattr(member, COLUMNS[f]), v] for f, v in values.items() if getattr(member, COLUMNS[f]) != v}
    if not changes:
        raise Refusal("accounts_nothing_changed", who=display_name(member))
    await store_fields(ctx, member, {f: new for f, (_, new) in changes.items()})
    if changes.keys() & {"first", "last"}:
        person = await ctx.session.get(Person, member.person_id)
        person.name = display_name(member, person)
    return changes



# ---- reading ------------------------------------------------------------------------------------

async def list_members(ctx: Context, args: str) -> list[Reply]:
    """`member list [pending|activated|failed]`: the member accounts, with failure reasons."""
    await expire_invitations(ctx.uow, ctx.now)
    status = args.strip().lower()
    query = select(Member, Person).join(Person, Person.id == Member.person_id)
    if status:
        if status not in ("pending", "activated", "failed"):
            raise Refusal("accounts_list_usage", value=status[:20])
        query = query.where(Member.status == status)
    rows = (await ctx.session.execute(query.order_by(Member.last_name, Member.first_name, Member.person_id)
                                      .limit(LIST_LIMIT + 1))).all()
    lines = [(m, display_name(m, p)) for m, p in rows[:LIST_LIMIT]]
    return [ctx.say("accounts_list", lines=lines, status=status, more=len(rows) > LIST_LIMIT)]


async def show_member(ctx: Context, args: str) -> list[Reply]:
    """`member ID`: status (with the failure reason), profile, configuration, groups and credentials."""
    await expire_invitations(ctx.uow, ctx.now)
    member = await find_member(ctx, args)
    person = await ctx.session.get(Person, member.person_id)
    emails = (await ctx.session.scalars(select(Address).where(
        Address.person_id == member.person_id, Address.kind == "email").order_by(Address.id))).all()
    groups = (await ctx.session.scalars(select(SeatGroup).join(Membership, Membership.group_id == SeatGroup.id)
                                        .where(Membership.person_id == member.person_id)
                                        .order_by(SeatGroup.name))).all()
    credentials = (await ctx.session.scalars(select(Credential).where(
        Credential.person_id == member.person_id).order_by(Credential.kind))).all()
    return [ctx.say("accounts_card", choices=card_choices(ctx, member), member=member,
                    who=display_name(member, person), emails=emails, groups=groups, credentials=credentials)]


def card_choices(ctx: Context, member: Member) -> list:
    """Buttons under the card for admins: credentials and delete once activated, else a new invitation."""
    if not ctx.roles & ADMINS:
        return []
    pid = member.person_id
    if member.status == "activated":
        return [ctx.choice("accounts.button_credentials", f"credentials {pid}"),
                ctx.choice("accounts.button_delete", f"member delete {pid}")]
    return [ctx.choice("accounts.button_invite", f"member invite {pid}")]



# ---- groups -------------------------------------------------------------------------------------

async def account_group(ctx: Context, text: str) -> SeatGroup:
    """A seat group by name (quoted or not, any case) or number ('12' or '#12'), found as every group word
    finds one (find_seat_group), or a refusal naming what was typed."""
    tokens = split_words(text)
    if not tokens:
        raise Refusal("accounts_group_usage")
    number = parse_id(text)
    try:
        return (await find_seat_group(ctx, [f"#{number}"] if number else tokens))[0]
    except Refusal:  # the only refusal: no such group; the one who asks here sees every group
        raise Refusal("accounts_group_unknown", group=unquote(text)[:120]) from None


async def warn_if_pending_in_queue(ctx: Context, person_id: int, group: SeatGroup) -> Reply | None:
    """A warning when a member who is not activated joins a queue (seed: they cannot take calls yet)."""
    if group.kind != "queue":
        return None
    member = await ctx.session.get(Member, person_id)
    if member is None or member.status == "activated":
        return None
    return ctx.say("accounts_queue_warning", who=display_name(member), group=group.name, status=member.status)


async def put_in_group(ctx: Context, args: str) -> list[Reply]:
    """`member group ID GROUP`: the member takes a free seat of the group (pending members may too)."""
    id_text, name = first_word(args)
    member = await find_member(ctx, id_text)
    group = await account_group(ctx, name)
    if await ctx.session.scalar(select(exists().where(Membership.group_id == group.id,
                                                      Membership.person_id == member.person_id))):
        raise Refusal("accounts_group_already", who=display_name(member), group=group.name)
    if not await take_seats(ctx, group.id, 1):
        raise Refusal("accounts_group_full", group=group.name)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(Membership(group_id=group.id, person_id=member.person_id, holds_seat=True,
                                       seat_used=member.status == "activated", enrolled_at=ctx.now,
                                       enrolled_by=ctx.sender))
            await ctx.session.flush()
    except IntegrityError:  # put into the same group at the same moment; the refusal undoes the seat too
        raise Refusal("accounts_group_already", who=display_name(member), group=group.name) from None
    await ctx.audit("member_grouped", subject(member.person_id), group=group.name)
    warning = await warn_if_pending_in_queue(ctx, member.person_id, group)
    return [ctx.say("accounts_grouped", who=display_name(member), group=group.name)] + ([warning] if warning else [])



# ---- deleting -----------------------------------------------------------------------------------

async def delete_member(ctx: Context, args: str) -> list[Reply]:
    """`member delete ID`: for activated members only, after an explicit confirmation."""
    id_text, answer = first_word(args)
    member = await find_member(ctx, id_text)
    if answer:
        return await answer_delete(ctx, member.person_id, answer)
    if member.status != "activated":
        raise Refusal("accounts_delete_not_active", who=display_name(member), status=member.status)
    groups = await member_groups(ctx, member.person_id)
    await ctx.start_flow(DELETE_FLOW, "confirm", {"person_id": member.person_id}, ttl=timedelta(minutes=10))
    pid = member.person_id
    return [ctx.say("accounts_delete_ask", member=member, who=display_name(member), groups=[g.name for g in groups],
                    choices=[ctx.choice("accounts.button_delete_yes", f"member delete {pid} yes"),
                             ctx.choice("accounts.button_delete_no", f"member delete {pid} no")])]


async def delete_step(ctx: Context, text: str) -> list[Reply]:
    """The open delete question: a typed yes or no."""
    if ctx.conversation is None:
        raise Refusal("accounts_delete_not_asked")
    return await answer_delete(ctx, ctx.conversation.data.get("person_id"), text)


async def answer_delete(ctx: Context, person_id: int | None, answer: str) -> list[Reply]:
    """Delete on yes, keep on no; a yes without an open question for that member does nothing."""
    word = answer.strip().lower()
    conversation = ctx.conversation
    if (person_id is None or conversation is None or conversation.flow != DELETE_FLOW
            or conversation.data.get("person_id") != person_id):
        raise Refusal("accounts_delete_not_asked")
    if word in NO:
        await ctx.end_flow()
        return [ctx.say("accounts_delete_kept")]
    if word not in YES:
        return [ctx.say("accounts_delete_yes_or_no")]
    await ctx.end_flow()
    return await remove_member(ctx, person_id)


async def member_groups(ctx: Context, person_id: int) -> list[SeatGroup]:
    """The groups the person is in, by name."""
    return list((await ctx.session.scalars(select(SeatGroup).join(Membership, Membership.group_id == SeatGroup.id)
                                           .where(Membership.person_id == person_id).order_by(SeatGroup.name))).all())


async def remove_member(ctx: Context, person_id: int) -> list[Reply]:
    """Delete the account for good: out of every group (used seats stay used), number freed at once."""
    member = await ctx.session.get(Member, person_id)
    if member is None or member.status != "activated":
        raise Refusal("accounts_delete_not_active", who=f"#{person_id}", status=member.status if member else "-")
    name, phone, extension = display_name(member), member.phone, member.extension
    groups = await member_groups(ctx, person_id)
    told = await tell_group_members(ctx, person_id, name, groups)
    # Seats are not refunded (seed 000): the memberships go, seats_taken stays as it is.
    await ctx.session.execute(delete(Membership).where(Membership.person_id == person_id))
    await ctx.session.execute(delete(Credential).where(Credential.person_id == person_id))
    await ctx.session.delete(member)
    await ctx.session.flush()  # the number and extension are free for the next member now
    await ctx.audit("member_deleted", subject(person_id), name=name, phone=phone, extension=extension,
                    groups=[g.name for g in groups], told=told)
    return [ctx.say("accounts_deleted", who=name, phone=phone, extension=extension,
                    groups=[g.name for g in groups], told=told)]


async def tell_group_members(ctx: Context, person_id: int, name: str, groups: list[SeatGroup]) -> int:
    """Tell the other members of those groups (seed: "inform the other members"); returns how many."""
    shared: dict[int, list[str]] = defaultdict(list)
    for group_id, other in await ctx.session.execute(select(Membership.group_id, Membership.person_id).where(
            Membership.group_id.in_([g.id for g in groups]), Membership.person_id != person_id)):
        shared[other].append(next(g.name for g in groups if g.id == group_id))
    told = 0
    for other, names in shared.items():
        told += await tell_one(ctx, other, who=name, groups=sorted(names))
    return told


async def tell_one(ctx: Context, person_id: int, **values) -> int:
    """A chat message where the person has a chat, else a mail; 1 if they could be told.

    The mail may go to an address not yet confirmed: an admin entered it for the member, as for the invitation.
    """
    person = await ctx.session.get(Person, person_id)
    lang = ctx.language_for(person.language if person else None)
    addresses = (await ctx.session.scalars(select(Address).where(Address.person_id == person_id)
                                           .order_by(Address.verified.desc(), Address.id))).all()
    chat = next((a for a in addresses if a.kind in ("telegram", "console")), None)
    mail = next((a for a in addresses if a.kind == "email"), None)
    if chat is not None:
        await ctx.notify(chat.address, "accounts_deleted_notice", lang=lang, **values)
    elif mail is not None:
        await ctx.mail(mail.address.split(":", 1)[1], "accounts_deleted_notice", lang=lang, **values)
    return int(chat is not None or mail is not None)
