"""Addresses and codes: `email ADDRESS` sends a code, `confirm CODE` (or the bare digits) proves it."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select, update

from handlers.context import Context, Refusal
from handlers.customers import record_email_change
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.rules import codes
from handlers.rules.addresses import normalise_email
from handlers.rules.roles import effective_roles
from storage.dialect import serialize
from storage.models import Address, Code, Role

VERIFY_EMAIL = "verify_email"
EMAIL_COMMAND = "email_command"  # a command that arrived by email and waits for its round trip
MAX_TARGET = 340  # width of code.target, where the waiting command is kept
# After the code went out the conversation waits under a flow name no handler routes, so the next
# text is not taken for an address; it only keeps what to offer once the address is proven.
CODE_SENT = "email_sent"
# Channels whose sender address is only claimed: a mail's From: line, the address typed into the booking page.
UNPROVEN_CHANNELS = frozenset({"email", "web"})

# What a correct code completes, by purpose; other modules add theirs (e.g. booking).
Completion = Callable[[Context, Code], Awaitable[list[Reply]]]


async def ask_email(ctx: Context, args: str) -> list[Reply]:
    """Take an address now, or open a conversation that waits for one."""
    if not args.strip():
        then = continuation(ctx)
        await ctx.start_flow("email", "address", {"then": then} if then else None)
        return [ctx.say("ask_email")]
    return await send_email_code(ctx, args)


async def ask_email_first(ctx: Context, command: str, template: str, label: str) -> None:
    """Wait for an address; once it is proven, offer `command` as one tap (reply `template`, button `label`)."""
    await ctx.start_flow("email", "address", {"then": {"command": command, "template": template, "label": label}})


def continuation(ctx: Context) -> dict | None:
    """What the open email conversation should offer after verification, if anything."""
    if ctx.conversation is None or ctx.conversation.flow not in ("email", CODE_SENT):
        return None
    return (ctx.conversation.data or {}).get("then")


async def keep_waiting_or_end(ctx: Context) -> None:
    """Close the email conversation, or keep its continuation until the code comes back."""
    then = continuation(ctx)
    if then:
        await ctx.start_flow(CODE_SENT, "code", {"then": then})
    else:
        await ctx.end_flow()


async def send_email_code(ctx: Context, text: str) -> list[Reply]:
    """Mail a verification code to the address (code in the subject and the body)."""
    email = normalise_email(text)
    code = await issue_code(ctx, VERIFY_EMAIL, email)
    await ctx.mail(email, "code_mail", code=code, expires_at=ctx.now + ctx.config.code_ttl)
    await ctx.audit("code_sent", f"email:{email}", purpose=VERIFY_EMAIL)
    await keep_waiting_or_end(ctx)
    return [ctx.say("code_sent", email=email, expires_at=ctx.now + ctx.config.code_ttl)]


async def issue_code(ctx: Context, purpose: str, target: str, retire_older: bool = True) -> str:
    """Store a fresh code's HMAC, retiring older ones of the same kind (unless `retire_older` is False: each
    of them proves only its own target); rate-limited per sender and target."""
    # Count, then insert: only safe while no other transaction issues a code for the same sender or target.
    await serialize(ctx.session, f"code:{purpose}:{ctx.sender}", f"code:{purpose}:{target}")
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
    if retire_older and ctx.inbound.channel not in UNPROVEN_CHANNELS:
        # A From: line (or an address typed into the booking page) proves nothing: it must not void what the
        # mailbox's owner is waiting for. There the older codes stay valid (each proves only its own target);
        # the hourly limit bounds them.
        await ctx.session.execute(
            update(Code)
            .where(Code.address == ctx.sender, Code.purpose == purpose, Code.used_at.is_(None),
                   Code.expires_at > ctx.now)
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
    typed = codes.typed_code(args)
    if not codes.CODE_PATTERN.match(typed):
        raise Refusal("code_malformed", value=args.strip()[:20])
    pending = (await ctx.session.scalars(
        select(Code).where(
            Code.address.in_(await code_addresses(ctx)), Code.used_at.is_(None), Code.expires_at > ctx.now,
            open_to(ctx),
        ).order_by(Code.created_at.desc())
    )).all()
    if not pending:
        return [ctx.say("code_none")]
    for row in pending:
        if codes.matches(ctx.config.secret_key, row.purpose, row.target, typed, row.digest):
            return await redeem(ctx, row)
    # Every pending code was a candidate, so the miss counts against each: asking for codes of
    # other kinds must not buy more guesses at an older one.
    return await count_wrong_attempt(ctx, list(pending))


def open_to(ctx: Context):
    """A code still takes tries from this sender: under the limit of its own address's tries, and, from
    another address of the person, under the limit of the tries from elsewhere."""
    limit = ctx.config.code_max_attempts
    return (Code.attempts < limit) & ((Code.address == ctx.sender) | (Code.other_attempts < limit))


async def code_addresses(ctx: Context) -> list[str]:
    """Whose codes this sender may redeem: their own, and, from a proven address, those of all the person's
    proven addresses (a booking code asked for in Telegram but mailed to the customer is returned by email)."""
    own = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
    if own is None or not own.verified:
        return [ctx.sender]
    rows = await ctx.session.scalars(
        select(Address.address).where(Address.person_id == ctx.person.id, Address.verified))
    return sorted({ctx.sender, *rows})


async def redeem(ctx: Context, row: Code) -> list[Reply]:
    """Mark the code used, atomically, so two racing confirmations cannot both succeed."""
    claimed = await ctx.session.execute(
        update(Code)
        .where(Code.id == row.id, Code.used_at.is_(None), open_to(ctx), Code.expires_at > ctx.now)
        .values(used_at=ctx.now)
    )
    if claimed.rowcount != 1:
        return [ctx.say("code_none")]
    return await ctx.desk.completions[row.purpose](ctx, row)


async def count_wrong_attempt(ctx: Context, rows: list[Code]) -> list[Reply]:
    """Count a wrong try against every pending code that was checked; at the limit a code is void.

    Only tries from the address that asked for a code use it up (and undo what it holds, such as a
    booking hold). Tries from the person's other addresses count apart: mail is easy to forge, so five
    mails under a customer's From: line close the code to mail but leave their Telegram hold alone.
    """
    own = [row for row in rows if row.address == ctx.sender]
    elsewhere = [row for row in rows if row.address != ctx.sender]
    counted = await count_against(ctx, [row.id for row in own], Code.attempts)
    counted_elsewhere = await count_against(ctx, [row.id for row in elsewhere], Code.other_attempts)
    ctx.desk.observer.code_refused()
    for row in rows:
        await ctx.audit("code_wrong", row.target, purpose=row.purpose, from_elsewhere=row in elsewhere,
                        attempts=counted.get(row.id, counted_elsewhere.get(row.id)))
    if not counted and not counted_elsewhere:
        # A concurrent try used the last attempts up; it has already run what the last try undoes.
        return [ctx.say("code_exhausted")]
    limit = ctx.config.code_max_attempts
    tries = {**counted, **counted_elsewhere}
    used_up = [row for row in own if counted.get(row.id, 0) >= limit]
    closed = [row for row in elsewhere if counted_elsewhere.get(row.id, 0) >= limit]
    live = [limit - n for n in tries.values() if n < limit]
    replies = await exhaust(ctx, used_up)
    if closed:
        replies.append(ctx.say("code_closed_here"))
    if live:
        replies.append(ctx.say("code_wrong", left=min(live)))
    return replies


async def count_against(ctx: Context, ids: list[int], column) -> dict[int, int]:
    """Add one try in `column` to each of these codes still open to this sender, in one conditional UPDATE;
    return {code id: tries now} for those counted (a code another try closed meanwhile is missing)."""
    if not ids:
        return {}
    result = await ctx.session.execute(
        update(Code).where(Code.id.in_(ids), open_to(ctx))
        .values({column: column + 1}).returning(Code.id, column)
        .execution_options(synchronize_session=False)
    )
    return dict(result.all())


async def exhaust(ctx: Context, rows: list[Code]) -> list[Reply]:
    """Run what the last try undoes for each code that just reached the limit (a plain notice once)."""
    replies: list[Reply] = []
    plain = False
    for row in rows:
        undo = ctx.desk.exhaustions.get(row.purpose)
        if undo:
            replies += await undo(ctx, row)
        elif not plain:
            plain = True
            replies.append(ctx.say("code_exhausted"))
    return replies


async def email_verified(ctx: Context, row: Code) -> list[Reply]:
    """Attach the proven address; a proven address that already belongs to someone links this chat to them."""
    address = f"email:{row.target}"
    existing = await ctx.session.scalar(select(Address).where(Address.address == address))
    await record_email_change(ctx, row.target, existing)  # a second verified email waits for an admin
    if existing is None:
        ctx.session.add(Address(address=address, kind="email", person_id=ctx.person.id, verified=True,
                                created_at=ctx.now))
    elif existing.person_id == ctx.person.id or not existing.verified:
        existing.person_id, existing.verified = ctx.person.id, True
    else:
        sender = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
        sender.person_id = existing.person_id
        await ctx.audit("address_linked", address, person=existing.person_id)
    await ctx.audit("email_verified", address)
    replies = [ctx.say("email_verified", email=row.target)]
    then = continuation(ctx)
    if then:
        await ctx.end_flow()
        replies.append(ctx.say(then["template"], choices=[ctx.choice(then["label"], then["command"])]))
    return replies


async def ask_round_trip(ctx: Context, command: str) -> list[Reply]:
    """Answer a state-changing email command with a code; the command runs when the code comes back."""
    if len(command) > MAX_TARGET:
        raise Refusal("mail_command_too_long", limit=MAX_TARGET)
    code = await issue_code(ctx, EMAIL_COMMAND, command)
    await ctx.audit("round_trip_asked", command[:200])
    # The code goes in the subject (every code mail has it there) and must not start with a command word,
    # or a careless autoresponder's "Re: …" would confirm it.
    word, _, rest = command.partition(" ")
    rendered = ctx.render("mail_command_code", code=code, command=f"{word.upper()} {rest}".strip(),
                          expires_at=ctx.now + ctx.config.code_ttl)
    return [Reply(rendered.text, subject=rendered.subject, template="mail_command_code")]


async def email_command_confirmed(ctx: Context, row: Code) -> list[Reply]:
    """The round-trip code came back: the sender holds the mailbox, so run what was asked."""
    if row.address == ctx.sender:
        await prove_sender(ctx)
    await ctx.audit("round_trip_confirmed", row.target[:200])
    return await ctx.desk.run_proven(ctx, row.target)


async def prove_sender(ctx: Context) -> None:
    """Mark the sender's address verified (a code reached it) and give the speaker their person's roles."""
    address = await ctx.session.scalar(select(Address).where(Address.address == ctx.sender))
    if address is not None and not address.verified:
        address.verified = True
        await ctx.audit("email_verified", ctx.sender, by="round_trip")
    granted = (await ctx.session.scalars(select(Role.role).where(Role.person_id == ctx.person.id))).all()
    ctx.roles = effective_roles(set(granted))


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
        completions={VERIFY_EMAIL: email_verified, EMAIL_COMMAND: email_command_confirmed},
        round_trip=ask_round_trip,
    )
