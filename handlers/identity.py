"""Addresses and codes: `email ADDRESS` sends a code, `confirm CODE` (or the bare digits) proves it."""
from __future__ import annotations

import re
from datetime import timedelta
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update

from handlers import codes
from handlers.context import Context, Refusal
from handlers.messages import Reply
from handlers.router import Command, Handlers
from storage.models import Address, Code

EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]{2,}$")
VERIFY_EMAIL = "verify_email"

# What a correct code completes, by purpose; other modules add theirs (e.g. booking).
Completion = Callable[[Context, Code], Awaitable[list[Reply]]]


def normalise_email(text: str) -> str:
    """Check and normalise an address, or refuse with a message naming what was typed."""
    candidate = text.strip().strip("<>").strip()
    if len(candidate) > 254 or not EMAIL.match(candidate):
        raise Refusal("email_invalid", value=text.strip()[:80])
    local, _, domain = candidate.rpartition("@")
    return f"{local}@{domain.lower()}"


async def ask_email(ctx: Context, args: str) -> list[Reply]:
    """Take an address now, or open a conversation that waits for one."""
    if not args.strip():
        await ctx.start_flow("email", "address")
        return [ctx.say("ask_email")]
    return await send_email_code(ctx, args)


async def send_email_code(ctx: Context, text: str) -> list[Reply]:
    """Mail a verification code to the address (code in the subject and the body)."""
    email = normalise_email(text)
    code = await issue_code(ctx, VERIFY_EMAIL, email)
    await ctx.mail(email, "code_mail", code=code, expires_at=ctx.now + ctx.config.code_ttl)
    await ctx.audit("code_sent", f"email:{email}", purpose=VERIFY_EMAIL)
    await ctx.end_flow()
    return [ctx.say("code_sent", email=email, expires_at=ctx.now + ctx.config.code_ttl)]


async def issue_code(ctx: Context, purpose: str, target: str) -> str:
    """Store a fresh code's HMAC, retiring older ones of the same kind; rate-limited per sender and target."""
    issued = (await ctx.session.scalars(
        select(Code.created_at).where(
            Code.purpose == purpose,
            (Code.address == ctx.sender) | (Code.target == target),
            Code.created_at > ctx.now - timedelta(hours=1),
        )
    )).all()
    wait_until = codes.next_issue_allowed(list(issued), ctx.now, ctx.config.code_max_per_hour)
    if wait_until is not None:
        raise Refusal("code_rate_limited", until=wait_until)
    await ctx.session.execute(
        update(Code)
        .where(Code.address == ctx.sender, Code.purpose == purpose, Code.used_at.is_(None), Code.expires_at > ctx.now)
        .values(expires_at=ctx.now)
    )
    code = codes.new_code()
    ctx.session.add(Code(
        address=ctx.sender, purpose=purpose, target=target, created_at=ctx.now,
        expires_at=ctx.now + ctx.config.code_ttl, attempts=0,
        digest=codes.digest(ctx.config.secret_key, purpose, target, code),
    ))
    return code


async def confirm(ctx: Context, args: str) -> list[Reply]:
    """Check a code against this sender's pending codes and complete what it was for."""
    typed = args.strip().replace(" ", "")
    if not codes.CODE_PATTERN.match(typed):
        raise Refusal("code_malformed", value=args.strip()[:20])
    pending = (await ctx.session.scalars(
        select(Code).where(
            Code.address == ctx.sender, Code.used_at.is_(None), Code.expires_at > ctx.now,
            Code.attempts < ctx.config.code_max_attempts,
        ).order_by(Code.created_at.desc())
    )).all()
    if not pending:
        return [ctx.say("code_none")]
    for row in pending:
        if codes.matches(ctx.config.secret_key, row.purpose, row.target, typed, row.digest):
            return await redeem(ctx, row)
    return await count_wrong_attempt(ctx, pending[0])


async def redeem(ctx: Context, row: Code) -> list[Reply]:
    """Mark the code used, atomically, so two racing confirmations cannot both succeed."""
    claimed = await ctx.session.execute(
        update(Code)
        .where(Code.id == row.id, Code.used_at.is_(None), Code.attempts < ctx.config.code_max_attempts)
        .values(used_at=ctx.now)
    )
    if claimed.rowcount != 1:
        return [ctx.say("code_none")]
    completions: dict[str, Completion] = ctx.desk.completions
    return await completions[row.purpose](ctx, row)


async def count_wrong_attempt(ctx: Context, row: Code) -> list[Reply]:
    """Count a wrong try against the newest code; at the limit the code is void."""
    attempts = await ctx.session.scalar(
        update(Code).where(Code.id == row.id, Code.attempts < ctx.config.code_max_attempts)
        .values(attempts=Code.attempts + 1).returning(Code.attempts)
    )
    await ctx.audit("code_wrong", row.target, purpose=row.purpose, attempts=attempts)
    left = ctx.config.code_max_attempts - (attempts or ctx.config.code_max_attempts)
    if left <= 0:
        undo = ctx.desk.exhaustions.get(row.purpose)
        return await undo(ctx, row) if undo else [ctx.say("code_exhausted")]
    return [ctx.say("code_wrong", left=left)]


async def email_verified(ctx: Context, row: Code) -> list[Reply]:
    """Attach the proven address; a proven address that already belongs to someone links this chat to them."""
    address = f"email:{row.target}"
    existing = await ctx.session.scalar(select(Address).where(Address.address == address))
    if existing is None:
        ctx.session.add(Address(address=address, kind="email", person_id=ctx.person.id, verified=True, created_at=ctx.now))
    elif existing.person_id == ctx.person.id or not existing.verified:
        existing.person_id, existing.verified = ctx.person.id, True
    else:
        sender = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
        sender.person_id = existing.person_id
        await ctx.audit("address_linked", address, person=existing.person_id)
    await ctx.audit("email_verified", address)
    return [ctx.say("email_verified", email=row.target)]


async def email_step(ctx: Context, text: str) -> list[Reply]:
    """The open 'email' conversation: the message is the address."""
    return await send_email_code(ctx, text)


def handlers() -> Handlers:
    return Handlers(
        commands=[
            Command("email", ask_email, aliases=("mail", "e-mail")),
            Command("confirm", confirm, aliases=("code", "bestaetigen", "bestätigen")),
        ],
        flows={"email": email_step},
        completions={VERIFY_EMAIL: email_verified},
    )
