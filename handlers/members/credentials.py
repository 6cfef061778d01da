"""Member credentials: issued once and kept only as a hash, for one member or a whole group; locks after
failed logins, and the self-service reset by a mailed code.

The connected system that checks passwords is outside this product: it reports logins through
`check_login`/`record_failed_login`.
"""
from __future__ import annotations

import asyncio
import os
from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, delete, exists, select, update

from handlers.context import Context, Refusal
from handlers.identity import confirm, issue_code
from handlers.members.accounts import account_group, ephemeral, find_member, member_email
from handlers.members.membership import display_name, subject
from handlers.messages import Attachment, Reply
from handlers.rules import profile as rules
from handlers.rules.words import parse_id, split_first
from storage.db import UnitOfWork
from storage.models import Address, Audit, Code, Credential, Member, Membership, Person

RESET_PURPOSE = "credential_reset"
RESET_FLOW = "credential_reset"
LOCK_AFTER = 5  # failed logins before a credential locks
SHOW_SECONDS = 60  # how long a credential stays visible in a chat
FILE_SECONDS = 600  # the bulk CSV gets longer: it has to be downloaded first
MAX_BULK = 500  # scrypt takes ~30 ms per credential (spread over the cores); more would hold the write lock too long
ALL = {"all", "alle"}
ACCESS_CODE_WORDS = {"code", "access-code", "zugangscode"}


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
    target, rest = split_first(args)  # a group name may be quoted, as in every command that takes one
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
    hashed = await asyncio.gather(*[asyncio.to_thread(hash_all, part) for part in slices])
    return [digest for part in hashed for digest in part]


def hash_all(values: list[str]) -> list[str]:
    """One slice's hashes, in order (run in a thread)."""
    return [rules.hash_secret(v) for v in values]


async def bulk_targets(ctx: Context, target: str) -> tuple[str, list[tuple[Member, Person]]]:
    """The members of a group, or all members: (what was meant, rows)."""
    query = select(Member, Person).join(Person, Person.id == Member.person_id)
    if target.lower() in ALL:
        label = target.lower()
    else:
        group = await account_group(ctx, target)
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


async def bulk_split(ctx: Context, rows: list[tuple[Member, Person]]) -> tuple[list[tuple[Member, Person]],
                                                                            list[tuple[Member, Person]]]:
    """Activated members who may get credentials, and the others (not activated, or locked awaiting a reset)."""
    locked = set((await ctx.session.scalars(select(Credential.person_id).where(
        Credential.locked_at.is_not(None), Credential.reset_requested_at.is_(None)))).all())
    ready: list[tuple[Member, Person]] = []
    skipped: list[tuple[Member, Person]] = []
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
    header: object = ctx.word("accounts.csv_header")  # this word is a TOML list: the column names
    if not isinstance(header, list):
        raise TypeError("accounts.csv_header must be a list of column names")
    return rules.csv_file(header, lines)


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
    if attempts is None:  # the credential was deleted since it was read: nothing left to count
        return None
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
        reset = cast(CursorResult, await uow.session.execute(
            update(Credential).where(Credential.id == credential.id, Credential.locked_at.is_(None))
            .values(failed_attempts=0).execution_options(synchronize_session="fetch")))
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
    conversation = ctx.conversation  # the router calls this step only while the reset is open
    member = await ctx.session.get(Member, conversation.data.get("person_id")) if conversation is not None else None
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
