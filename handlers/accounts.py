"""Member accounts (seed 004, an admin portal for users): status, profile, deletion and credentials.

A member added by an admin is *pending* until they accept the invitation (the `/start acc-…` link
or the code from the invitation mail), then *activated*; an invitation that expires or bounces makes
them *failed*, with the reason kept for the admin. Pending members may be edited in profile and
services and put into groups, but not deleted nor changed in configuration (number, extension,
device). Credentials are shown once and kept only as a hash. The connected system that checks
passwords is outside this product: it reports logins through `check_login`/`record_failed_login`.
"""
from __future__ import annotations

import asyncio
import os
import secrets
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from functools import partial

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from handlers import codes
from handlers import profile_rules as rules
from handlers.context import Context, Refusal
from handlers.customers import parse_id, split_first
from handlers.groups import claim_activation, secret_digest, take_seats, use_held_seats  # seats live in groups
from handlers.identity import confirm, issue_code, normalise_email
from handlers.messages import Attachment, Reply
from handlers.names import name_key, unquote
from handlers.names import split_first as split_name
from handlers.router import Command, Handlers
from storage.db import UnitOfWork
from storage.models import Address, Audit, Code, Credential, Member, Membership, Person, SeatGroup
from templates import language, render

ADMINS = frozenset({"owner", "admin"})
TEAM_ROLES = frozenset({"owner", "admin", "staff", "manager", "support"})
START_PREFIX = "acc"  # deep link: /start acc-<token>
INVITATION_PURPOSE = "account_invitation"
RESET_PURPOSE = "credential_reset"
DELETE_FLOW = "member_delete"
RESET_FLOW = "credential_reset"
INVITATION_TTL = timedelta(days=14)  # as group enrolments have it
REASON_EXPIRED = "invitation_expired"
LOCK_AFTER = 5  # failed logins before a credential locks
SHOW_SECONDS = 60  # how long a credential stays visible in a chat
FILE_SECONDS = 600  # the bulk CSV gets longer: it has to be downloaded first
MAX_BULK = 500  # scrypt takes ~30 ms per credential (spread over the cores); more would hold the write lock too long
LIST_LIMIT = 30
COLUMNS = {"first": "first_name", "last": "last_name", "phone": "phone", "extension": "extension",
           "mobile": "mobile", "contract": "contract_number", "device": "device_model", "services": "services"}
YES = {"yes", "y", "ja", "j", "delete", "löschen", "loeschen"}
NO = {"no", "n", "nein", "keep", "behalten", "abort", "abbrechen"}
ALL = {"all", "alle"}
ACCESS_CODE_WORDS = {"code", "access-code", "zugangscode"}


# ---- small helpers ------------------------------------------------------------------------------

def subject(person_id: int) -> str:
    return f"member:{person_id}"


def display_name(member: Member, person: Person | None = None) -> str:
    """The member's first and last name, else the person's name, else their number."""
    name = " ".join(p for p in (member.first_name, member.last_name) if p)
    return name or (person.name if person and person.name else f"#{member.person_id}")


def business_language(ctx: Context) -> str:
    return language(ctx.business.language if ctx.business else ctx.config.default_language)


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


def token_digest(key: bytes, token: str) -> str:
    """What is stored of an invitation link: its HMAC, so a copy of the database opens no account."""
    return secret_digest(key, INVITATION_PURPOSE, token)


def region(ctx: Context) -> str:
    return rules.region_for(ctx.tz)


# ---- status: expiry, bounce, acceptance ---------------------------------------------------------

async def mark_failed(uow: UnitOfWork, person_id: int, reason: str, *, now: datetime | None = None,
                      actor: str = "system") -> bool:
    """Make a pending member failed with the reason the admin sees (an invitation expired or bounced)."""
    now = now or datetime.now(timezone.utc)
    result = await uow.session.execute(
        update(Member).where(Member.person_id == person_id, Member.status == "pending")
        .values(status="failed", failure_reason=reason))
    if result.rowcount != 1:
        return False
    uow.session.add(Audit(at=now, actor=actor, person_id=None, channel="system", action="member_failed",
                          subject=subject(person_id), detail={"reason": reason}))
    return True


async def expire_invitations(uow: UnitOfWork, now: datetime) -> int:
    """Fail every pending member whose invitation ran out; returns how many (also fit for a scheduler).

    One conditional UPDATE says which rows it changed, so two runs at once never log a member twice;
    groups' member lists call it too (an invitation due at `now` counts as run out, as on accepting).
    """
    overdue = (await uow.session.scalars(
        update(Member).where(Member.status == "pending", Member.invitation_expires_at <= now)
        .values(status="failed", failure_reason=REASON_EXPIRED).returning(Member.person_id))).all()
    if overdue:
        await uow.session.execute(insert(Audit.__table__), [
            {"at": now, "actor": "system", "person_id": None, "channel": "system", "action": "member_failed",
             "subject": subject(person_id), "detail": {"reason": REASON_EXPIRED}} for person_id in overdue])
    return len(overdue)


def describe_failure(lang: str, member: Member, tz: str = "UTC") -> str | None:
    """The failure reason as the admin reads it (for `members GROUP` lists too)."""
    if member.status != "failed":
        return None
    return render("accounts_reason", lang, tz=tz, member=member).text


async def activate(ctx: Context, member: Member, via: str) -> list[Reply]:
    """Accept a pending member's invitation; an expired one makes them failed instead."""
    if member.status == "activated":
        return [ctx.say("accounts_already_activated")]
    if member.status == "pending" and member.invitation_expires_at and member.invitation_expires_at <= ctx.now:
        await mark_failed(ctx.uow, member.person_id, REASON_EXPIRED, now=ctx.now)
    if member.status != "pending":
        return [ctx.say("accounts_invitation_expired")]
    if not await claim_activation(ctx, member):  # another link or code accepted it a moment ago (PostgreSQL)
        await ctx.session.refresh(member)
        # A refusal, not a reply: the loser's chat must not be linked to the member after all.
        raise Refusal("accounts_already_activated" if member.status == "activated" else "accounts_invitation_expired")
    await retire_codes(ctx, INVITATION_PURPOSE, member.person_id)
    await use_held_seats(ctx.session, member.person_id)
    await ctx.audit("member_activated", subject(member.person_id), via=via)
    return [ctx.say("accounts_activated", who=display_name(member))]


async def accept_link(ctx: Context, payload: str) -> list[Reply]:
    """`/start acc-<token>`: the invited member accepts in Telegram; their chat joins their account."""
    token = payload.partition("-")[2]
    digest = token_digest(ctx.config.secret_key, token)
    member = await ctx.session.scalar(select(Member).where(Member.invitation_token == digest)) if token else None
    if member is None:
        await ctx.audit("member_link_unknown", payload[:64])
        return [ctx.say("accounts_link_invalid")]
    if member.person_id != ctx.person.id and await has_account(ctx):
        return [ctx.say("accounts_link_own_account")]
    replies = await activate(ctx, member, via="link")
    if member.status == "activated":
        await link_sender(ctx, member.person_id)
    return replies


async def has_account(ctx: Context) -> bool:
    """Whether the speaker is someone of their own here: a team role or a member account."""
    return bool(ctx.roles & TEAM_ROLES) or await ctx.session.get(Member, ctx.person.id) is not None


async def link_sender(ctx: Context, person_id: int) -> None:
    """Move the speaker's chat address to the member's person (as a verified email would)."""
    address = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
    if address is not None and address.person_id != person_id:
        address.person_id = person_id
        await ctx.audit("address_linked", ctx.sender, person=person_id)


async def accept_code(ctx: Context, row: Code) -> list[Reply]:
    """The code from the invitation mail, sent back from that mailbox: it also proves the address."""
    person_id = int(row.target.split(":", 1)[1])
    member = await ctx.session.get(Member, person_id)
    if member is None:
        return [ctx.say("accounts_link_invalid")]
    replies = await activate(ctx, member, via="code")
    address = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
    if member.status == "activated" and address is not None and address.person_id == person_id:
        address.verified = True
    return replies


# ---- invitations --------------------------------------------------------------------------------

async def retire_codes(ctx: Context, purpose: str, person_id: int) -> None:
    """Let earlier codes of this purpose for the member run out now: only the newest counts."""
    await ctx.session.execute(update(Code).where(
        Code.purpose == purpose, Code.target == subject(person_id), Code.used_at.is_(None),
        Code.expires_at > ctx.now).values(expires_at=ctx.now))


async def invite(ctx: Context, member: Member, email: str) -> str:
    """Give the member a fresh link and code, valid for a week, and mail both (the code in the subject)."""
    token = secrets.token_urlsafe(18)  # Telegram start payloads: ≤ 64 of [A-Za-z0-9_-]
    member.invitation_token = token_digest(ctx.config.secret_key, token)
    member.invited_at, member.invitation_expires_at = ctx.now, ctx.now + INVITATION_TTL
    await retire_codes(ctx, INVITATION_PURPOSE, member.person_id)
    code, target = codes.new_code(), subject(member.person_id)
    # Bound to the member's mailbox: the reply to the invitation mail comes from there.
    ctx.session.add(Code(address=f"email:{email}", purpose=INVITATION_PURPOSE, target=target, created_at=ctx.now,
                         expires_at=member.invitation_expires_at, attempts=0,
                         digest=codes.digest(ctx.config.secret_key, INVITATION_PURPOSE, target, code)))
    link = f"/start {START_PREFIX}-{token}"
    await ctx.mail(email, "accounts_invitation_mail", lang=business_language(ctx), code=code, link=link,
                   who=display_name(member), expires_at=member.invitation_expires_at)
    return link


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


# ---- adding and changing ------------------------------------------------------------------------

async def add_member(ctx: Context, args: str) -> list[Reply]:
    """`member add NAME EMAIL [field=value …]`: a pending member, invited by mail."""
    words, options = rules.parse_options(args)
    if len(words) < 2 or "@" not in words[-1]:
        raise Refusal("accounts_add_usage")
    email, name = normalise_email(words[-1]), " ".join(words[:-1])
    first, last = rules.split_name(name)
    values = rules.clean_fields({"first": first, "last": last, **options}, region(ctx))
    if values.get("phone") and "extension" not in values:
        values["extension"] = rules.default_extension(values["phone"])
    person = await person_for_email(ctx, email, name)
    member = Member(person_id=person.id, status="pending", services=[])
    await store_fields(ctx, member, values, new=True)
    link = await invite(ctx, member, email)
    await ctx.audit("member_added", subject(person.id), email=email, **audit_values(values))
    return [ctx.say("accounts_added", member=member, who=display_name(member, person), email=email, link=link)]


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
    id_text, rest = split_first(args)
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

async def find_group(ctx: Context, text: str) -> SeatGroup:
    """A seat group by name (quoted or not, any case) or number, or a refusal naming what was typed."""
    name = unquote(text)
    if not name:
        raise Refusal("accounts_group_usage")
    group = await ctx.session.scalar(select(SeatGroup).where(SeatGroup.name_key == name_key(name)))
    number = parse_id(name)
    if group is None and number:
        group = await ctx.session.get(SeatGroup, number)
    if group is None:
        raise Refusal("accounts_group_unknown", group=name[:120])
    return group


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
    id_text, name = split_first(args)
    member = await find_member(ctx, id_text)
    group = await find_group(ctx, name)
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
    id_text, answer = split_first(args)
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
    return await answer_delete(ctx, ctx.conversation.data.get("person_id"), text)


async def answer_delete(ctx: Context, person_id: int | None, answer: str) -> list[Reply]:
    """Delete on yes, keep on no; a yes without an open question for that member does nothing."""
    word = answer.strip().lower()
    conversation = ctx.conversation
    if conversation is None or conversation.flow != DELETE_FLOW or conversation.data.get("person_id") != person_id:
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
    """A chat message where the person has a chat, else a mail; 1 if they could be told."""
    person = await ctx.session.get(Person, person_id)
    lang = language(person.language) if person and person.language else business_language(ctx)
    addresses = (await ctx.session.scalars(select(Address).where(Address.person_id == person_id)
                                           .order_by(Address.verified.desc(), Address.id))).all()
    chat = next((a for a in addresses if a.kind in ("telegram", "console")), None)
    mail = next((a for a in addresses if a.kind == "email"), None)
    if chat is not None:
        await ctx.notify(chat.address, "accounts_deleted_notice", lang=lang, **values)
    elif mail is not None:
        await ctx.mail(mail.address.split(":", 1)[1], "accounts_deleted_notice", lang=lang, **values)
    return int(chat is not None or mail is not None)


# ---- credentials --------------------------------------------------------------------------------

def credential_request(rest: str) -> tuple[str, str | None]:
    """'' → a generated password, 'code' → a generated access code, anything else → the admin's chosen password."""
    if not rest:
        return "password", None
    if rest.lower() in ACCESS_CODE_WORDS:
        return "access_code", None
    return "password", rest


def generate(kind: str) -> str:
    """A fresh secret of that kind."""
    return rules.new_access_code() if kind == "access_code" else rules.new_password()


async def credentials(ctx: Context, args: str, *, show_seconds: int = SHOW_SECONDS,
                      file_seconds: int = FILE_SECONDS) -> list[Reply]:
    """`credentials ID|GROUP|all [code|PASSWORD]`: new credentials, shown once, kept only as a hash."""
    if ctx.inbound.channel == "email":
        raise Refusal("accounts_credentials_not_by_email")  # a mail cannot be taken back after a minute
    target, rest = split_name(args)  # a group name may be quoted, as in every command that takes one
    if not target:
        raise Refusal("accounts_credentials_usage")
    kind, chosen = credential_request(rest)
    if parse_id(target) is not None or "@" in target:
        return await credentials_one(ctx, await find_member(ctx, target), kind, chosen, show_seconds)
    return await credentials_many(ctx, target, kind, chosen, file_seconds)


async def personal_values(ctx: Context, member: Member) -> list[str]:
    """What a chosen password must not contain: the member's names and email."""
    person = await ctx.session.get(Person, member.person_id)
    return [v for v in (member.first_name, member.last_name, person.name if person else None,
                        await member_email(ctx, member.person_id)) if v]


async def check_chosen(ctx: Context, member: Member, chosen: str) -> None:
    """Refuse a chosen password that is too weak for this member, with every reason."""
    problems = rules.password_problems(chosen, await personal_values(ctx, member))
    if problems:
        raise Refusal("accounts_password_weak", problems=problems, who=display_name(member),
                      minimum=rules.PASSWORD_MIN, classes=rules.PASSWORD_CLASSES)


async def refuse_locked(ctx: Context, member: Member) -> None:
    """A locked account reopens only after the member tried the self-service reset (seed)."""
    if await locked_without_reset(ctx, member.person_id):
        raise Refusal("accounts_unlock_try_reset_first", who=display_name(member))


async def locked_without_reset(ctx: Context, person_id: int) -> bool:
    """Whether a credential of the person is locked and they have not tried the reset yet."""
    return bool(await ctx.session.scalar(select(exists().where(
        Credential.person_id == person_id, Credential.locked_at.is_not(None),
        Credential.reset_requested_at.is_(None)))))


async def credentials_one(ctx: Context, member: Member, kind: str, chosen: str | None,
                          seconds: int) -> list[Reply]:
    """New credentials for one activated member, in a message that goes away after `seconds`."""
    if member.status != "activated":
        raise Refusal("accounts_credentials_not_active", who=display_name(member), status=member.status)
    await refuse_locked(ctx, member)
    if chosen is not None:
        await check_chosen(ctx, member, chosen)
    secret = chosen or generate(kind)
    await replace_credentials(ctx, {member.person_id: secret}, kind)
    await ctx.audit("credentials_issued", subject(member.person_id), kind=kind, chosen=chosen is not None)
    reply = ctx.say("accounts_credentials_shown", who=display_name(member), kind=kind, secret=secret,
                    chosen=chosen is not None, seconds=seconds)
    return [ephemeral(reply, seconds)]


async def replace_credentials(ctx: Context, secrets_by_person: dict[int, str], kind: str) -> None:
    """Store fresh hashes (hashing off the event loop) in place of the old credentials of that kind."""
    ids = list(secrets_by_person)
    digests = await hash_on_every_core([secrets_by_person[i] for i in ids])
    await ctx.session.execute(delete(Credential).where(Credential.person_id.in_(ids), Credential.kind == kind))
    ctx.session.add_all([Credential(person_id=i, kind=kind, digest=d, created_at=ctx.now, failed_attempts=0)
                         for i, d in zip(ids, digests)])


async def hash_on_every_core(values: list[str]) -> list[str]:
    """Hash in threads, one slice per core (scrypt releases the GIL), in order: the write lock a bulk
    regeneration holds is shorter by as many cores as there are."""
    size = -(-len(values) // (os.cpu_count() or 1)) or 1
    slices = [values[start:start + size] for start in range(0, len(values), size)]
    hashed = await asyncio.gather(*[asyncio.to_thread(lambda part=part: [rules.hash_secret(v) for v in part])
                                    for part in slices])
    return [digest for part in hashed for digest in part]


async def bulk_targets(ctx: Context, target: str) -> tuple[str, list[tuple[Member, Person]]]:
    """The members of a group, or all members: (what was meant, rows)."""
    query = select(Member, Person).join(Person, Person.id == Member.person_id)
    if target.lower() in ALL:
        label = target.lower()
    else:
        group = await find_group(ctx, target)
        label = group.name
        query = query.where(Member.person_id.in_(select(Membership.person_id).where(Membership.group_id == group.id)))
    return label, list((await ctx.session.execute(query.order_by(Member.person_id))).all())


async def credentials_many(ctx: Context, target: str, kind: str, chosen: str | None, seconds: int) -> list[Reply]:
    """Regenerate for a group or everyone: a CSV of the new credentials, delivered once, stored nowhere."""
    label, rows = await bulk_targets(ctx, target)
    ready, skipped = await bulk_split(ctx, rows)
    if not ready:
        raise Refusal("accounts_bulk_none", target=label, skipped=len(skipped))
    if len(ready) > MAX_BULK:
        raise Refusal("accounts_bulk_too_many", count=len(ready), limit=MAX_BULK)
    if chosen is not None:
        await check_chosen_for_all(ctx, [m for m, _ in ready], chosen)
    issued = {m.person_id: chosen or generate(kind) for m, _ in ready}
    await replace_credentials(ctx, issued, kind)
    await ctx.audit("credentials_bulk", label, kind=kind, chosen=chosen is not None, count=len(issued),
                    members=list(issued), skipped=[m.person_id for m, _ in skipped])
    data = await bulk_csv(ctx, ready, issued, kind)
    file = ctx.say("accounts_bulk_file", seconds=seconds, count=len(issued))
    file.attachments.append(Attachment(f"credentials-{ctx.now:%Y%m%d-%H%M}.csv", "text/csv", data))
    summary = ctx.say("accounts_bulk_done", target=label, count=len(issued), kind=kind,
                      skipped=[(display_name(m, p), m.status) for m, p in skipped])
    return [summary, ephemeral(file, seconds)]


async def bulk_split(ctx: Context, rows) -> tuple[list, list]:
    """Activated members who may get credentials, and the others (not activated, or locked awaiting a reset)."""
    locked = set((await ctx.session.scalars(select(Credential.person_id).where(
        Credential.locked_at.is_not(None), Credential.reset_requested_at.is_(None)))).all())
    ready, skipped = [], []
    for member, person in rows:
        blocked = member.status != "activated" or member.person_id in locked
        (skipped if blocked else ready).append((member, person))
    return ready, skipped


async def check_chosen_for_all(ctx: Context, members: list[Member], chosen: str) -> None:
    """One chosen password for all: strong, and personal to none of them."""
    problems = rules.password_problems(chosen)
    if problems:
        raise Refusal("accounts_password_weak", problems=problems, who="", minimum=rules.PASSWORD_MIN,
                      classes=rules.PASSWORD_CLASSES)
    for member in members:
        await check_chosen(ctx, member, chosen)


async def bulk_csv(ctx: Context, rows, issued: dict[int, str], kind: str) -> bytes:
    """The file the admin downloads once: id, names, email, number, extension, kind, credential."""
    kind_word = ctx.word(f"accounts.kind.{kind}")
    emails = await emails_of(ctx, [m.person_id for m, _ in rows])
    lines = [[m.person_id, *csv_names(m, p), emails.get(m.person_id), rules.phone_cell(m.phone), m.extension,
              kind_word, issued[m.person_id]] for m, p in rows]
    return rules.csv_file(ctx.word("accounts.csv_header"), lines)


def csv_names(member: Member, person: Person) -> tuple[str, str]:
    """First and last name; a member enrolled by chat has only the name they were enrolled with."""
    if member.first_name or member.last_name:
        return member.first_name or "", member.last_name or ""
    return rules.split_name(person.name or "")


async def emails_of(ctx: Context, person_ids: list[int]) -> dict[int, str]:
    """Each person's email address (a verified one first), in one query."""
    found: dict[int, str] = {}
    for person_id, address in await ctx.session.execute(
            select(Address.person_id, Address.address).where(Address.person_id.in_(person_ids), Address.kind == "email")
            .order_by(Address.verified.desc(), Address.id)):
        found.setdefault(person_id, address.split(":", 1)[1])
    return found


# ---- locks and the self-service reset -----------------------------------------------------------

async def record_failed_login(uow: UnitOfWork, person_id: int, now: datetime, kind: str = "password",
                              actor: str = "connected-system") -> Credential | None:
    """Count a failed login reported by the connected system; the 5th locks the credential."""
    credential = await uow.session.scalar(select(Credential).where(
        Credential.person_id == person_id, Credential.kind == kind).order_by(Credential.id.desc()).limit(1))
    if credential is None:
        return None
    attempts = await uow.session.scalar(update(Credential).where(Credential.id == credential.id)
                                        .values(failed_attempts=Credential.failed_attempts + 1)
                                        .returning(Credential.failed_attempts))
    locked = attempts >= LOCK_AFTER and credential.locked_at is None
    if locked:
        await uow.session.execute(update(Credential).where(Credential.id == credential.id).values(locked_at=now))
    uow.session.add(Audit(at=now, actor=actor, person_id=None, channel="system", action="login_failed",
                          subject=subject(person_id), detail={"kind": kind, "attempts": attempts, "locked": locked}))
    await uow.session.refresh(credential)
    return credential


async def check_login(uow: UnitOfWork, person_id: int, secret: str, now: datetime, kind: str = "password") -> bool:
    """For the connected system: is this the member's credential? Failures count; a locked one never passes."""
    credential = await uow.session.scalar(select(Credential).where(
        Credential.person_id == person_id, Credential.kind == kind).order_by(Credential.id.desc()).limit(1))
    if credential is None or credential.locked_at is not None:
        return False
    if await asyncio.to_thread(rules.verify_secret, secret, credential.digest):
        # In SQL and only while unlocked: a lock taken while scrypt ran still wins, and no count is lost.
        reset = await uow.session.execute(
            update(Credential).where(Credential.id == credential.id, Credential.locked_at.is_(None))
            .values(failed_attempts=0).execution_options(synchronize_session="fetch"))
        return reset.rowcount == 1
    await record_failed_login(uow, person_id, now, kind)
    return False


async def unlock(ctx: Context, args: str) -> list[Reply]:
    """`unlock ID`: reopen a locked account, but only after the member tried the self-service reset."""
    member = await find_member(ctx, args)
    locked = (await ctx.session.scalars(select(Credential).where(
        Credential.person_id == member.person_id, Credential.locked_at.is_not(None)))).all()
    if not locked:
        raise Refusal("accounts_unlock_not_locked", who=display_name(member))
    await refuse_locked(ctx, member)
    for credential in locked:
        credential.locked_at, credential.failed_attempts, credential.reset_requested_at = None, 0, None
    await ctx.audit("credentials_unlocked", subject(member.person_id), kinds=[c.kind for c in locked])
    return [ctx.say("accounts_unlocked", who=display_name(member))]


async def reset(ctx: Context, args: str, *, show_seconds: int = SHOW_SECONDS) -> list[Reply]:
    """`reset`: a member asks for a reset code by mail; `reset CODE [NEW PASSWORD]` goes on from there."""
    if args.strip():
        return await reset_with_code(ctx, args, show_seconds)
    member = await ctx.session.get(Member, ctx.person.id)
    if member is None or member.status != "activated":
        return [ctx.say("accounts_reset_no_account")]
    return await send_reset_code(ctx, member)


async def reset_with_code(ctx: Context, args: str, show_seconds: int) -> list[Reply]:
    """`reset CODE [NEW PASSWORD]`: the code, perhaps with the new password; a typed password goes away."""
    code, _, password = args.strip().partition(" ")
    replies = await confirm(ctx, code)
    flow = ctx.conversation
    if password and flow is not None and flow.flow == RESET_FLOW:
        replies = await choose_password(ctx, password, show_seconds=show_seconds)
    return [ephemeral(r, show_seconds) for r in replies] if password else replies


async def send_reset_code(ctx: Context, member: Member) -> list[Reply]:
    """Mail the member a reset code; from a chat, that already counts as their self-service attempt."""
    if not await ctx.session.scalar(select(exists().where(Credential.person_id == member.person_id))):
        return [ctx.say("accounts_reset_no_credentials")]
    if ctx.inbound.channel != "email":  # a From: line is easy to fake; by email, the code coming back counts
        await note_reset_attempt(ctx, member.person_id)
    email = await member_email(ctx, member.person_id)
    if email is None:
        await ctx.audit("credential_reset_requested", subject(member.person_id), mailed=False)
        return [ctx.say("accounts_no_email", who=display_name(member))]
    code = await issue_code(ctx, RESET_PURPOSE, subject(member.person_id))
    await ctx.mail(email, "accounts_reset_mail", code=code, expires_at=ctx.now + ctx.config.code_ttl)
    await ctx.audit("credential_reset_requested", subject(member.person_id), mailed=True)
    return [ctx.say("accounts_reset_sent", email=email, expires_at=ctx.now + ctx.config.code_ttl)]


async def note_reset_attempt(ctx: Context, person_id: int) -> None:
    """Remember that the member tried the self-service reset: only then may an admin unlock them (seed)."""
    await ctx.session.execute(update(Credential).where(Credential.person_id == person_id)
                              .values(reset_requested_at=ctx.now))


async def reset_code_ok(ctx: Context, row: Code) -> list[Reply]:
    """The right reset code: now the member may choose a new password (the next message)."""
    person_id = int(row.target.split(":", 1)[1])
    await note_reset_attempt(ctx, person_id)
    await ctx.start_flow(RESET_FLOW, "password", {"person_id": person_id}, ttl=ctx.config.code_ttl)
    return [ctx.say("accounts_reset_ask_password", minimum=rules.PASSWORD_MIN, classes=rules.PASSWORD_CLASSES)]


async def choose_password(ctx: Context, text: str, *, show_seconds: int = SHOW_SECONDS) -> list[Reply]:
    """The open reset: check the typed password, store its hash, reopen the account; the message goes away."""
    member = await ctx.session.get(Member, ctx.conversation.data.get("person_id"))
    if member is None or member.status != "activated":
        await ctx.end_flow()
        return [ctx.say("accounts_reset_no_account")]
    problems = rules.password_problems(text.strip(), await personal_values(ctx, member))
    if problems:  # a reply, not a Refusal: the typed password must still be removed from the chat
        return [ephemeral(ctx.say("accounts_password_weak", problems=problems, who="", minimum=rules.PASSWORD_MIN,
                                  classes=rules.PASSWORD_CLASSES), show_seconds)]
    await replace_credentials(ctx, {member.person_id: text.strip()}, "password")
    await ctx.session.execute(update(Credential).where(Credential.person_id == member.person_id)
                              .values(reset_requested_at=None))
    await ctx.end_flow()
    await ctx.audit("credential_reset", subject(member.person_id))
    return [ephemeral(ctx.say("accounts_reset_done"), show_seconds)]


# ---- the words ----------------------------------------------------------------------------------

ACTIONS = {
    "add": add_member, "neu": add_member, "set": set_fields, "ändern": set_fields, "aendern": set_fields,
    "group": put_in_group, "gruppe": put_in_group, "delete": delete_member, "löschen": delete_member,
    "loeschen": delete_member, "invite": reinvite, "einladen": reinvite, "list": list_members,
    "liste": list_members,
}
ADMIN_ONLY = {add_member, delete_member, reinvite}


async def member(ctx: Context, args: str) -> list[Reply]:
    """`member …`: list, card, add, set, group, delete, invite; the first word picks which."""
    head, rest = split_first(args)
    action = ACTIONS.get(head.lower())
    if action is None:
        return await (show_member(ctx, args) if head else list_members(ctx, ""))
    if action in ADMIN_ONLY and not ctx.roles & ADMINS:
        return await denied(ctx, f"member {head.lower()}")
    return await action(ctx, rest)


def handlers(show_seconds: int = SHOW_SECONDS, file_seconds: int = FILE_SECONDS) -> Handlers:
    """The account words; `show_seconds` is how long a credential stays visible in a chat."""
    return Handlers(
        commands=[
            # Admins only: a group manager manages seats (groups.py), never people's records (phone, contract,
            # credentials state) nor their names, which others read in notices.
            Command("member", member, allowed=ADMINS, aliases=("mitglied", "benutzer"), section="admin"),
            # "safe" because by email it only ever refuses: an email round trip would first store the
            # command, with a chosen password in it, in the code row and the audit log.
            Command("credentials", partial(credentials, show_seconds=show_seconds, file_seconds=file_seconds),
                    allowed=ADMINS, aliases=("zugangsdaten",), section="admin", safe=True),
            Command("unlock", unlock, allowed=ADMINS, aliases=("entsperren",), section="admin"),
            # Everyone may ask: a refusal by role would log the typed arguments, and they can hold a password.
            # No email round trip either (it would store them too): the reset code goes to the mailbox on file.
            Command("reset", partial(reset, show_seconds=show_seconds), aliases=("zuruecksetzen", "zurücksetzen"),
                    safe=True),
        ],
        flows={DELETE_FLOW: delete_step, RESET_FLOW: partial(choose_password, show_seconds=show_seconds)},
        completions={INVITATION_PURPOSE: accept_code, RESET_PURPOSE: reset_code_ok},
        start_payloads={START_PREFIX: accept_link},
    )
