"""Membership: seats of a group, and the one invitation lifecycle of a member row (issue, accept, expire, bounce).

A member is *pending* from their invitation until they accept it, then *activated*; an invitation that
expires or bounces makes them *failed*, with the reason kept for the admin. Groups enrol people (a seat
each, invitations in bulk: `/start inv-…` links and codes mailed to the address) and admins add accounts
(`/start acc-…` links and codes bound to the member): both write the same Member row, and both are
accepted here, by one conditional UPDATE on that row. Only an HMAC of a link token is stored, keyed by
the link's kind, so the links of either kind ever mailed keep working.
Seat arithmetic is a conditional UPDATE too, so two managers racing for the last seat cannot both win.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import cast

from sqlalchemy import CursorResult, bindparam, func, insert, select, update

from handlers.bounces import Bounce, purpose_headers
from handlers.context import Context, Refusal, table
from handlers.jobs.table import schedule
from handlers.members.imports import ImportRow
from handlers.members.rules import deep_link, missing_seats, quote
from handlers.messages import Reply
from handlers.rules import codes
from handlers.rules.roles import ACCOUNT_ROLES, ADMINS
from handlers.speaking import mail_row
from storage.bulk import insert_rows
from storage.db import UnitOfWork
from storage.dialect import serialize
from storage.models import Address, Audit, Code, Member, Membership, Outbox, Person, SeatGroup, Service
from templates import Rendered, render

INVITATION = "invitation"  # `/start inv-…` links and the codes of group invitations (target: the email)
ACCOUNT_INVITATION = "account_invitation"  # `/start acc-…` links and account codes (target: member:ID)
LINKS = {"inv": INVITATION, "acc": ACCOUNT_INVITATION}  # a link's prefix → the HMAC purpose of its token
INVITATION_TTL = timedelta(days=14)
CODE_GRACE = timedelta(days=30)  # a late group code still finds its invitation, to say that it expired
REASON_EXPIRED = "invitation_expired"  # Member.failure_reason (others, e.g. a bounce, are shown as stored)
EXPIRY_JOB = "invitations_expire"  # one job per expiry time fails whoever is still pending then (members/expiry)
INVITATIONS_PER_DAY = 200  # per buyer (admins and owners are not capped)
SENT = "invitations_sent"  # audit action that counts a buyer's invitation mails
CHUNK = 1_000  # IN lists stay far below SQLite's and asyncpg's parameter limits


# ---- small helpers ------------------------------------------------------------------------------

def subject(person_id: int) -> str:
    return f"member:{person_id}"


def display_name(member: Member, person: Person | None = None) -> str:
    """The member's first and last name, else the person's name, else their number."""
    name = " ".join(p for p in (member.first_name, member.last_name) if p)
    return name or (person.name if person and person.name else f"#{member.person_id}")


def secret_digest(key: bytes, purpose: str, token: str) -> str:
    """Only an HMAC of a link token is stored: a leaked table opens no invitation."""
    return hmac.new(key, f"{purpose}\x00{token}".encode(), hashlib.sha256).hexdigest()


def link_digest(key: bytes, prefix: str, token: str) -> str:
    """What is stored of an invitation link `/start PREFIX-TOKEN` (inv or acc)."""
    return secret_digest(key, LINKS[prefix], token)


# ---- seats --------------------------------------------------------------------------------------

async def take_seats(ctx: Context, group_id: int, count: int) -> bool:
    """Take seats only if enough are free, in one statement: exactly one of two racing takers wins."""
    taken = await ctx.session.execute(
        update(SeatGroup).where(SeatGroup.id == group_id, SeatGroup.seats_taken + count <= SeatGroup.seats_bought)
        .values(seats_taken=SeatGroup.seats_taken + count).execution_options(synchronize_session=False))
    return taken.rowcount == 1


async def seats_missing(ctx: Context, group_id: int, needed: int) -> Refusal:
    """The refusal for too few free seats: how many are missing and how to buy them."""
    group = await ctx.session.get(SeatGroup, group_id, populate_existing=True)
    missing = missing_seats(needed, group.seats_bought, group.seats_taken)
    return Refusal("groups_seats_missing", group=group, needed=needed, free=group.seats_bought - group.seats_taken,
                   missing=missing, command=f"seats {quote(group.name)} +{missing}")


async def course_of(ctx: Context, group: SeatGroup) -> Service | None:
    """The course the group's seats are for, if any."""
    return await ctx.session.get(Service, group.service_id) if group.service_id else None


async def current_membership(ctx: Context, group_id: int, person_id: int | None) -> Membership | None:
    """The person's membership in the group, if any."""
    if person_id is None:
        return None
    return await ctx.session.scalar(select(Membership).where(Membership.group_id == group_id,
                                                             Membership.person_id == person_id))


async def add_memberships(ctx: Context, group: SeatGroup, person_ids: list[int], used: bool | set[int]) -> None:
    """Memberships holding a seat; an already active member uses it at once (as accounts' `member group` does)."""
    await insert_rows(ctx.session, table(Membership), [
        {"group_id": group.id, "person_id": pid, "holds_seat": True, "enrolled_at": ctx.now,
         "seat_used": pid in used if isinstance(used, set) else used, "enrolled_by": ctx.sender}
        for pid in person_ids])


async def use_held_seats(session, person_id: int) -> int:
    """An accepted member has used the seats they hold (used seats are never refunded automatically)."""
    used = await session.execute(update(Membership).where(
        Membership.person_id == person_id, Membership.holds_seat, Membership.seat_used.is_(False))
        .values(seat_used=True).execution_options(synchronize_session=False))
    return used.rowcount


async def member_statuses(ctx: Context, person_ids: list[int]) -> dict[int, str]:
    rows = await in_chunks(ctx, lambda chunk: select(Member.person_id, Member.status).where(
        Member.person_id.in_(chunk)), person_ids)
    return dict(rows)


async def in_chunks(ctx: Context, query_for, values: list) -> list:
    """Run `query_for(chunk)` over the values in chunks and gather the rows."""
    found = []
    for start in range(0, len(values), CHUNK):
        found += (await ctx.session.execute(query_for(values[start:start + CHUNK]))).all()
    return found


# ---- issuing invitations ------------------------------------------------------------------------

async def invite(ctx: Context, member: Member, email: str) -> str:
    """An admin's invitation to an account: a fresh `acc-` link and code, mailed both (the code in the subject)."""
    token = secrets.token_urlsafe(18)  # Telegram start payloads: ≤ 64 of [A-Za-z0-9_-]
    member.invitation_token = link_digest(ctx.config.secret_key, "acc", token)
    member.invited_at, member.invitation_expires_at = ctx.now, ctx.now + INVITATION_TTL
    await schedule(ctx.uow, EXPIRY_JOB, member.invitation_expires_at.isoformat(), member.invitation_expires_at, ctx.now)
    await retire_codes(ctx, member.person_id)
    code, target = codes.new_code(), subject(member.person_id)
    # Bound to the member's mailbox: the reply to the invitation mail comes from there.
    ctx.session.add(Code(address=f"email:{email}", purpose=ACCOUNT_INVITATION, target=target, created_at=ctx.now,
                         expires_at=member.invitation_expires_at, attempts=0,
                         digest=codes.digest(ctx.config.secret_key, ACCOUNT_INVITATION, target, code)))
    link = f"/start acc-{token}"
    await ctx.mail(email, "accounts_invitation_mail", lang=ctx.language_for(None), code=code, link=link,
                   who=display_name(member), expires_at=member.invitation_expires_at,
                   headers=purpose_headers(ACCOUNT_INVITATION, member.person_id))
    return link



@dataclass(frozen=True)
class Invitee:
    person_id: int
    email: str
    row: ImportRow | None = None  # profile data from an import
    fresh: bool = False  # the person was made by this enrolment: only then does the typed profile count


async def welcome_members(ctx: Context, group: SeatGroup, invitees: list[Invitee]) -> list[Invitee]:
    """Invite the new and failed; tell the active that they are in, and those with an open invitation that it
    still counts (it is theirs or an admin's: never replaced). Returns the latter. All in bulk."""
    await count_invitations(ctx, len(invitees))
    statuses = await member_statuses(ctx, [i.person_id for i in invitees])
    told = [i for i in invitees if statuses.get(i.person_id) in ("activated", "pending")]
    invited = [i for i in invitees if statuses.get(i.person_id) not in ("activated", "pending")]
    await send_invitations(ctx, group, invited, statuses)
    course = await course_of(ctx, group)
    lang = ctx.language_for(None)  # invitees have not spoken yet: they are written to in the business's language
    # The notice names no one: rendered once for the pending and once for the active, not per member.
    texts = {pending: ctx.render("groups_added_mail", lang, group=group, course=course, manager=ctx.person,
                                 pending=pending) for pending in {statuses[i.person_id] == "pending" for i in told}}
    notices = [mail_row(ctx.now, ctx.config.mail_domain, i.email, texts[statuses[i.person_id] == "pending"])
               for i in told]
    await insert_rows(ctx.session, table(Outbox), notices)
    return [i for i in told if statuses[i.person_id] == "pending"]


async def count_invitations(ctx: Context, count: int) -> None:
    """At most INVITATIONS_PER_DAY mails to invitees per buyer and day (admins are not capped); counted here.

    The count is serialised per buyer (PostgreSQL: a transaction lock; SQLite writers take turns anyway),
    so two enrolments at once cannot both squeeze past the cap.
    """
    if ctx.roles & ADMINS or not count:
        return
    await serialize(ctx.session, f"invitations:{ctx.person.id}")
    sent = await ctx.session.scalar(select(func.coalesce(func.sum(Audit.detail["count"].as_integer()), 0)).where(
        Audit.action == SENT, Audit.person_id == ctx.person.id, Audit.at > ctx.now - timedelta(days=1)))
    if sent + count > INVITATIONS_PER_DAY:
        raise Refusal("groups_refused", reason="invitation_cap", value=str(count), limit=INVITATIONS_PER_DAY,
                      left=max(0, INVITATIONS_PER_DAY - sent))
    await ctx.audit(SENT, f"person:{ctx.person.id}", count=count)


async def send_invitations(ctx: Context, group: SeatGroup, invitees: list[Invitee], statuses: dict[int, str]) -> None:
    """Fresh invitation tokens and codes for each invitee, their Member rows, and the mails, in bulk."""
    expires = ctx.now + INVITATION_TTL
    await schedule(ctx.uow, EXPIRY_JOB, expires.isoformat(), expires, ctx.now)
    mail = InvitationMail(ctx, group, await course_of(ctx, group), expires)
    new_members: list[dict] = []
    updates: list[dict] = []
    code_rows: list[dict] = []
    mails: list[dict] = []
    for invitee in invitees:
        token, code = secrets.token_urlsafe(24), codes.new_code()
        member = invitation_fields(ctx, invitee, token, expires, invitee.person_id not in statuses)
        (updates if invitee.person_id in statuses else new_members).append(member)
        code_rows.append(code_row(ctx, invitee.email, code, expires))
        mails.append(mail_row(ctx.now, ctx.config.mail_domain, invitee.email, mail.render(code, f"inv-{token}")))
    await bulk_write(ctx, new_members, updates, code_rows, mails)


class InvitationMail:
    """The invitation rendered once, with markers where each invitee's code and link go.

    Rendering Jinja per invitee costs more than the whole bulk insert of a 10 000-row import;
    the code and the link are plain ASCII, so putting them into the rendered text is safe.
    """

    CODE, PAYLOAD = "\x00CODE\x00", "\x00PAYLOAD\x00"

    def __init__(self, ctx: Context, group: SeatGroup, course: Service | None, expires):
        self.rendered = ctx.render("groups_invitation_mail", ctx.language_for(None), group=group, course=course,
                                   code=self.CODE, expires_at=expires, link=deep_link(ctx, self.PAYLOAD),
                                   manager=ctx.person)

    def render(self, code: str, payload: str) -> Rendered:
        def fill(text: str) -> str:
            return text.replace(self.CODE, code).replace(self.PAYLOAD, payload)
        rendered = self.rendered
        return Rendered(rendered.subject and fill(rendered.subject), fill(rendered.text),
                        rendered.html and fill(rendered.html))


def invitation_fields(ctx: Context, invitee: Invitee, token: str, expires, new: bool) -> dict:
    """A Member row's invitation columns; a new row also gets the profile an import carried, but only for a
    person this import made (a manager's list never writes over someone known already)."""
    fields = {"person_id": invitee.person_id, "status": "pending", "failure_reason": None, "invited_at": ctx.now,
              "invitation_expires_at": expires,
              "invitation_token": link_digest(ctx.config.secret_key, "inv", token)}
    if new:
        row = invitee.row if invitee.fresh else None
        fields.update(services=[], first_name=row and row.first_name, last_name=row and row.last_name,
                      phone=row and row.phone)
    return fields


def code_row(ctx: Context, email: str, code: str, expires) -> dict:
    """The 6 digits of the mail, for `confirm CODE` or a reply from that mailbox (only its HMAC is kept)."""
    return {"address": f"email:{email}", "purpose": INVITATION, "target": email, "created_at": ctx.now,
            "digest": codes.digest(ctx.config.secret_key, INVITATION, email, code),
            "expires_at": expires + CODE_GRACE, "attempts": 0}


async def bulk_write(ctx: Context, new_members: list, updates: list, code_rows: list, mails: list) -> None:
    """One executemany per table for the inserts and one for the updates (never row by row)."""
    session = ctx.session
    await insert_rows(session, table(Member), new_members)
    if updates:
        members = table(Member)
        await session.execute(update(members).where(members.c.person_id == bindparam("pid")).values(
            {k: bindparam(k) for k in updates[0] if k != "person_id"}),
            [{**row, "pid": row["person_id"]} for row in updates])
    await insert_rows(session, table(Code), code_rows)
    await insert_rows(session, table(Outbox), mails)


# ---- expiry, bounce and voiding -----------------------------------------------------------------

async def mark_failed(uow: UnitOfWork, person_id: int, reason: str, *, now: datetime | None = None,
                      actor: str = "system") -> bool:
    """Make a pending member failed with the reason the admin sees (an invitation expired or bounced)."""
    now = now or datetime.now(timezone.utc)
    result = cast(CursorResult, await uow.session.execute(
        update(Member).where(Member.person_id == person_id, Member.status == "pending")
        .values(status="failed", failure_reason=reason)))
    if result.rowcount != 1:
        return False
    uow.session.add(Audit(at=now, actor=actor, person_id=None, channel="system", action="member_failed",
                          subject=subject(person_id), detail={"reason": reason}))
    return True


async def invitation_bounced(uow: UnitOfWork, bounce: Bounce) -> None:
    """An invitation mail bounced: the member has failed, with the bounce as the reason the admin sees."""
    await mark_failed(uow, int(bounce.target), bounce.reason, now=bounce.at, actor="mail")


async def expire_invitations(uow: UnitOfWork, now: datetime) -> int:
    """Fail every pending member whose invitation ran out; returns how many (also fit for a scheduler).

    One conditional UPDATE says which rows it changed, so two runs at once never log a member twice;
    groups' member lists call it too (an invitation due at `now` counts as run out, as on accepting).
    """
    overdue = (await uow.session.scalars(
        update(Member).where(Member.status == "pending", Member.invitation_expires_at <= now)
        .values(status="failed", failure_reason=REASON_EXPIRED).returning(Member.person_id))).all()
    if overdue:
        await uow.session.execute(insert(table(Audit)), [
            {"at": now, "actor": "system", "person_id": None, "channel": "system", "action": "member_failed",
             "subject": subject(person_id), "detail": {"reason": REASON_EXPIRED}} for person_id in overdue])
    return len(overdue)


def describe_failure(lang: str, member: Member, tz: str = "UTC") -> str | None:
    """The failure reason as the admin reads it (for `members GROUP` lists too)."""
    if member.status != "failed":
        return None
    return render("accounts_reason", lang, tz=tz, member=member).text



async def expire_if_due(ctx: Context, member: Member) -> bool:
    """An invitation past its date cannot be accepted: a pending member fails, with the reason (kept: no refusal).
    Due at `now` counts as run out, as in `expire_invitations`."""
    due = member.invitation_expires_at
    if member.status == "activated" or due is None or due > ctx.now:
        return False
    if member.status == "pending":
        await mark_failed(ctx.uow, member.person_id, REASON_EXPIRED, now=ctx.now)
    return True


async def retire_codes(ctx: Context, person_id: int) -> None:
    """Let earlier account codes for the member run out now: only the newest counts."""
    await ctx.session.execute(update(Code).where(
        Code.purpose == ACCOUNT_INVITATION, Code.target == subject(person_id), Code.used_at.is_(None),
        Code.expires_at > ctx.now).values(expires_at=ctx.now))


async def retire_invitation(ctx: Context, person_id: int) -> None:
    """With no unused seat left anywhere, the person's open invitation leads nowhere: void it."""
    await ctx.session.flush()
    waiting = await ctx.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.person_id == person_id, Membership.holds_seat, Membership.seat_used.is_(False)))
    if waiting:
        return
    await ctx.session.execute(update(Member).where(Member.person_id == person_id)
                              .values(invitation_token=None).execution_options(synchronize_session=False))
    await void_invitation_codes(ctx, person_id)


async def void_invitation_codes(ctx: Context, person_id: int) -> None:
    """Invitation codes mailed to any of the person's addresses stop working now."""
    addresses = select(Address.address).where(Address.person_id == person_id)
    await ctx.session.execute(update(Code).where(
        Code.purpose == INVITATION, Code.used_at.is_(None), Code.address.in_(addresses))
        .values(expires_at=ctx.now).execution_options(synchronize_session=False))


# ---- accepting, by link or by code --------------------------------------------------------------

async def member_by_link(ctx: Context, payload: str) -> Member | None:
    """The member a `/start inv-…` or `/start acc-…` link names (by the HMAC of its token), if any."""
    prefix, _, token = payload.partition("-")
    if prefix not in LINKS or not token:
        return None
    digest = link_digest(ctx.config.secret_key, prefix, token)
    return await ctx.session.scalar(select(Member).where(Member.invitation_token == digest))


async def claim_activation(ctx: Context, member: Member) -> bool:
    """Activate only if the member is still as read (status and token): of two racing acceptances, one wins.

    The token goes with it: an invitation link is a bearer secret and works once.
    """
    token = Member.invitation_token
    same_token = token.is_(None) if member.invitation_token is None else token == member.invitation_token
    claimed = await ctx.session.execute(
        update(Member).where(Member.person_id == member.person_id, Member.status == member.status, same_token)
        .values(status="activated", failure_reason=None, invitation_token=None,
                activated_at=member.activated_at or ctx.now)
        .execution_options(synchronize_session="fetch"))  # the caller's Member object follows the row
    return claimed.rowcount == 1


async def accept(ctx: Context, member: Member) -> bool:
    """Accept the invitation, by link or code of either kind: claim the member row (False: someone else's
    acceptance won), mark the seats they hold used, and void every invitation code still open for them."""
    if not await claim_activation(ctx, member):
        return False
    await use_held_seats(ctx.session, member.person_id)
    await void_invitation_codes(ctx, member.person_id)
    await retire_codes(ctx, member.person_id)
    return True


# Group invitations (`inv-` links, codes mailed to the address): the chat joins the member, who sees their groups.

async def open_invitation(ctx: Context, payload: str) -> list[Reply]:
    """`/start inv-<token>`: accept the invitation and bind this chat to the member."""
    member = await member_by_link(ctx, payload)
    if member is None:
        return [ctx.say("groups_invitation_invalid")]
    if await expire_if_due(ctx, member):
        return [ctx.say("groups_invitation_expired")]
    await bind_chat(ctx, member.person_id)
    return await activate(ctx, member)


async def accept_by_code(ctx: Context, row: Code) -> list[Reply]:
    """A right invitation code (typed, or in a reply to the mail) from the invited mailbox."""
    person_id = await ctx.session.scalar(select(Address.person_id).where(Address.address == f"email:{row.target}"))
    member = await ctx.session.get(Member, person_id) if person_id else None
    if member is None:
        return [ctx.say("groups_invitation_invalid")]
    if await expire_if_due(ctx, member):
        return [ctx.say("groups_invitation_expired")]
    return await activate(ctx, member, row.target)


async def bind_chat(ctx: Context, person_id: int) -> None:
    """Move this chat address to the invited person, unless it already stands for someone with more."""
    if ctx.person.id == person_id:
        return
    others = await ctx.session.scalar(select(func.count()).select_from(Address).where(
        Address.person_id == ctx.person.id, Address.address != ctx.sender))
    if others or ctx.roles - {"everyone", "customer"} or ctx.inbound.channel == "email":
        raise Refusal("groups_refused", reason="other_account", value=ctx.sender)
    address = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
    address.person_id = person_id
    await ctx.audit("address_linked", ctx.sender, person=person_id)
    ctx.person = await ctx.session.get(Person, person_id)


async def activate(ctx: Context, member: Member, email: str | None = None) -> list[Reply]:
    """Accept a group invitation, and count the invited address as proven."""
    if not await accept(ctx, member):  # a refusal: the chat bound to the member goes back too
        raise Refusal("groups_invitation_invalid")
    pid = member.person_id
    proven = Address.address == f"email:{email}" if email else Address.kind == "email"
    await ctx.session.execute(update(Address).where(Address.person_id == pid, proven).values(verified=True)
                              .execution_options(synchronize_session=False))
    names = (await ctx.session.scalars(select(SeatGroup.name).join(Membership).where(Membership.person_id == pid)
                                       .order_by(SeatGroup.name))).all()
    await ctx.audit("invitation_accepted", f"person:{pid}", groups=list(names))
    return [ctx.say("groups_accepted", groups=names)]


# Account invitations (`acc-` links, codes bound to the member): the chat joins the account.

async def activate_account(ctx: Context, member: Member, via: str) -> list[Reply]:
    """Accept a pending member's account invitation; an expired one makes them failed instead."""
    if member.status == "activated":
        return [ctx.say("accounts_already_activated")]
    await expire_if_due(ctx, member)
    if member.status != "pending":
        return [ctx.say("accounts_invitation_expired")]
    if not await accept(ctx, member):  # another link or code accepted it a moment ago (PostgreSQL)
        await ctx.session.refresh(member)
        # A refusal, not a reply: the loser's chat must not be linked to the member after all.
        raise Refusal("accounts_already_activated" if member.status == "activated" else "accounts_invitation_expired")
    await ctx.audit("member_activated", subject(member.person_id), via=via)
    return [ctx.say("accounts_activated", who=display_name(member))]


async def accept_link(ctx: Context, payload: str) -> list[Reply]:
    """`/start acc-<token>`: the invited member accepts in Telegram; their chat joins their account."""
    member = await member_by_link(ctx, payload)
    if member is None:
        await ctx.audit("member_link_unknown", payload[:64])
        return [ctx.say("accounts_link_invalid")]
    if member.person_id != ctx.person.id and await has_account(ctx):
        return [ctx.say("accounts_link_own_account")]
    replies = await activate_account(ctx, member, via="link")
    if member.status == "activated":
        await link_sender(ctx, member.person_id)
    return replies


async def has_account(ctx: Context) -> bool:
    """Whether the speaker is someone of their own here: a team role or a member account."""
    return bool(ctx.roles & ACCOUNT_ROLES) or await ctx.session.get(Member, ctx.person.id) is not None


async def link_sender(ctx: Context, person_id: int) -> None:
    """Move the speaker's chat address to the member's person (as a verified email would)."""
    address = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
    if address is not None and address.person_id != person_id:
        address.person_id = person_id
        await ctx.audit("address_linked", ctx.sender, person=person_id)


async def accept_code(ctx: Context, row: Code) -> list[Reply]:
    """The code from the account invitation mail, sent back from that mailbox: it also proves the address."""
    person_id = int(row.target.split(":", 1)[1])
    member = await ctx.session.get(Member, person_id)
    if member is None:
        return [ctx.say("accounts_link_invalid")]
    replies = await activate_account(ctx, member, via="code")
    address = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
    if member.status == "activated" and address is not None and address.person_id == person_id:
        address.verified = True
    return replies
