"""Group bookings: seats of a course bought as one order with one invoice, managed in chat.

The buyer becomes the group's manager. Managers, admins and owners enrol members (each takes a
seat and gets an invitation), remove them and import lists; a manager manages seats and nothing else:
enrolling an address that is known already never changes that person's data or open invitation.
Seats follow seed 000: a seat once taken stays taken when its member is removed, even unused;
only support or the owner put seats back (`refund`). Orders above the business's limit wait for an
admin's approval, and a buyer's invitations per day are capped: seats were bought to mail strangers.
Seat arithmetic is a conditional UPDATE, so two managers racing for the last seat cannot both win,
and the CHECK on seat_group is the last word (seats never negative, never above what was bought).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.numbers import format_currency
from sqlalchemy import String, bindparam, cast, delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from handlers import codes
from handlers.context import Context, Refusal
from handlers.identity import issue_code, normalise_email
from handlers import uploads
from handlers.imports import MAX_FILE_BYTES, Checked, FileRefused, ImportRow, RowError, row_from_dict
from handlers.messages import Attachment, Choice, Reply, new_message_id
from handlers.profile_rules import csv_bytes
from handlers.router import Command, Handlers, split_command
from handlers.names import name_key, name_problem, skeleton, words
from storage.dialect import insert_ignoring_conflicts, serialize
from storage.models import (
    Address, Audit, Code, ImportBatch, Member, Membership, Outbox, Person, Role, SeatGroup, SeatOrder, Service,
)
from templates import Rendered, has_word

MANAGERS = frozenset({"manager", "admin", "owner"})  # may list, enrol, remove and import
ADMINS = frozenset({"admin", "owner"})  # manage every group, not only their own
FULL_ACCESS = ADMINS | {"support"}  # see every group
OWNERS = frozenset({"owner"})  # of the global roles, only the owner buys seats (DESIGN: roles)
SUPPORT = frozenset({"support", "admin", "owner"})  # see every group
REFUNDERS = frozenset({"support", "owner"})  # seed 000: a refund goes through support ("Erstattung über den Support")
BUYERS = frozenset({"manager", "owner"})  # may buy more seats for a group
LISTERS = MANAGERS | SUPPORT
MANAGER = "manager"
INVITATION = "invitation"  # code purpose: the 6 digits of an invitation mail
GROUP_LINK = "group_link"  # code purpose: the buyer's /start g-… link (stored as a Code, never shown again)
IMPORT_CONFIRM = "import_confirm"  # code purpose: by email, an import runs when the check mail's code comes back
INVITATION_DAYS = 14
CODE_GRACE = timedelta(days=30)  # a late code still finds its invitation, to say that it expired
LINK_DAYS = 30
BATCH_HOURS = 24  # a dry run older than this must be sent again
EXPIRED = "invitation_expired"  # Member.failure_reason as accounts.REASON_EXPIRED (others are shown as stored)
MAX_SEATS = 50_000
MAX_GROUP_NAME = 60  # group names go into other people's mail subjects
DEFAULT_APPROVAL_LIMIT = 20  # [business] max_seats_without_approval
INVITATIONS_PER_DAY = 200  # per buyer (admins and owners are not capped)
SENT = "invitations_sent"  # audit action that counts a buyer's invitation mails
MAX_NAME = 200
LIST_LIMIT = 30
GROUP_BUTTONS = 10
CHUNK = 1_000  # IN lists stay far below SQLite's and asyncpg's parameter limits
CURRENCY = "EUR"
CENT = Decimal("0.01")
NUMBER = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes "²", which int() refuses
SEATS = re.compile(r"\+?[0-9]{1,6}")  # '5' or '+5'; longer is over MAX_SEATS anyway (and int() caps digits)
ENROLL_ME = ("enroll-me", "enrol-me", "enroll_me", "mich", "mich-einschreiben")
GROUP_ONLY = ("group", "gruppe")
CONFIRM = ("confirm", "bestätigen", "bestaetigen")
APPROVE = ("approve", "freigeben", "genehmigen")
REJECT = ("reject", "ablehnen")
NEW = ("new", "neu")
IMPORT_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm", ".xls")


# ---- pure rules ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewGroup:
    """`group new NAME SEATS [COURSE] [group|enroll-me]`, parsed."""

    name: str
    seats: int
    course: str
    option: str | None  # None: ask; "group": buy only; "enroll": buy and enrol the buyer


def quote(name: str) -> str:
    return f'"{name}"'


def parse_new_group(args: str) -> NewGroup:
    """NAME is everything before the first number (quote it if it holds one); refuse anything else."""
    tokens = words(args)
    if not tokens or tokens[0].casefold() not in NEW:
        raise Refusal("groups_usage", word="group")
    tokens = tokens[1:]
    at = next((i for i, t in enumerate(tokens) if i and NUMBER.fullmatch(t)), None)
    if at is None:
        raise Refusal("groups_usage", word="group")
    rest, option = tokens[at + 1:], None
    if rest and rest[-1].casefold() in ENROLL_ME + GROUP_ONLY:
        option = "enroll" if rest.pop().casefold() in ENROLL_ME else "group"
    return NewGroup(" ".join(tokens[:at]), seat_count(tokens[at]), " ".join(rest), option)


def group_name(text: str) -> str:
    """A short printable name without quotes, web or mail addresses, that is not a bare number."""
    name = " ".join(text.split())
    problem = "empty" if not name else name_problem(name, MAX_GROUP_NAME)
    if problem is None and name.lstrip("#+").isdigit():
        problem = "number"
    if problem:
        shown = "".join(c if c.isprintable() else "?" for c in name[:MAX_GROUP_NAME])
        raise Refusal("groups_refused", reason="bad_name", problem=problem, value=shown, limit=MAX_GROUP_NAME)
    return name


def seat_count(value: int | str) -> int:
    """1 … MAX_SEATS seats; '+5' means 5."""
    text = str(value).strip()
    if not SEATS.fullmatch(text) or not 1 <= int(text) <= MAX_SEATS:
        raise Refusal("groups_refused", reason="bad_seats", value=str(value)[:20], limit=MAX_SEATS)
    return int(text)


def invoice_lines(text: str, quantity: int, unit_price: str | None) -> tuple[list[dict], str]:
    """One invoice line and the total, in Decimal (money is never a float), stored as text."""
    unit = Decimal(unit_price or "0").quantize(CENT)
    amount = (unit * quantity).quantize(CENT)
    line = {"text": text, "quantity": quantity, "unit_price": str(unit), "amount": str(amount)}
    return [line], str(amount)


def next_invoice_number(year: int, last: str | None) -> str:
    """R-2026-000042 follows R-2026-000041; numbers restart every year."""
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"R-{year}-{number:06d}"


def missing_seats(needed: int, bought: int, taken: int) -> int:
    return max(0, needed - (bought - taken))


def match_group(tokens: list[str], groups: list[tuple[int, str]]) -> tuple[int, list[str]] | None:
    """The group whose name is the longest leading run of words (any case), or '#ID'; with the rest."""
    if tokens and re.fullmatch(r"#\d{1,9}", tokens[0]):
        wanted = int(tokens[0][1:])
        return next(((gid, tokens[1:]) for gid, _ in groups if gid == wanted), None)
    names = {name_key(name): gid for gid, name in groups}
    for size in range(len(tokens), 0, -1):
        gid = names.get(name_key(" ".join(tokens[:size])))
        if gid is not None:
            return gid, tokens[size:]
    return None


def secret_digest(key: bytes, purpose: str, token: str) -> str:
    """Only an HMAC of a link token is stored: a leaked table opens no invitation."""
    return hmac.new(key, f"{purpose}\x00{token}".encode(), hashlib.sha256).hexdigest()


def file_slug(name: str) -> str:
    return re.sub(r"[^\w-]+", "-", name).strip("-_")[:40] or "group"  # letters of any language stay


# ---- access -------------------------------------------------------------------------------------

async def visible_groups(ctx: Context, full: frozenset[str]) -> list[tuple[int, str]]:
    """Every group for the `full` roles; otherwise the groups the speaker manages (Role scope = group id)."""
    query = select(SeatGroup.id, SeatGroup.name).order_by(SeatGroup.name)
    if not ctx.roles & full:
        scopes = select(Role.scope).where(Role.person_id == ctx.person.id, Role.role == MANAGER)
        query = query.where(cast(SeatGroup.id, String).in_(scopes))
    return [tuple(row) for row in await ctx.session.execute(query)]


async def find_group(ctx: Context, tokens: list[str], whole: bool = True,
                     full: frozenset[str] = ADMINS) -> tuple[SeatGroup, list[str]]:
    """The group named at the start of `tokens` that the speaker may see; unknown and foreign look alike."""
    found = match_group(tokens, await visible_groups(ctx, full))
    if found is None or (whole and found[1]):
        raise Refusal("groups_refused", reason="unknown_group", value=" ".join(tokens)[:MAX_GROUP_NAME])
    group = await ctx.session.get(SeatGroup, found[0], populate_existing=True)
    return group, found[1]


async def course_of(ctx: Context, group: SeatGroup) -> Service | None:
    """The course the group's seats are for, if any."""
    return await ctx.session.get(Service, group.service_id) if group.service_id else None


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


# ---- buying -------------------------------------------------------------------------------------

async def group_command(ctx: Context, args: str) -> list[Reply]:
    """`group new NAME SEATS [COURSE]` quotes and asks; with `group` or `enroll-me` it buys."""
    wanted = parse_new_group(args)
    name, seats = group_name(wanted.name), seat_count(wanted.seats)
    await refuse_taken_name(ctx, name)
    courses = await find_courses(ctx, wanted.course)
    if len(courses) > 1:
        return [ctx.say("groups_pick_course", choices=[
            Choice(c.name, f"group new {quote(name)} {seats} {quote(c.name)}") for c in courses])]
    course = courses[0] if courses else None
    if wanted.option is None:
        return [quote_reply(ctx, name, seats, course)]
    return await buy_seats(ctx, name, seats, course, wanted.option == "enroll")


async def find_courses(ctx: Context, name: str) -> list[Service]:
    """The named course, or every course when none is named; an unknown name is refused with the list."""
    courses = list((await ctx.session.scalars(select(Service).where(
        Service.kind == "course", Service.deleted_at.is_(None)).order_by(Service.name))).all())
    if not name:
        return courses
    match = [c for c in courses if c.name.casefold() == name.casefold()]
    if not match:
        raise Refusal("groups_refused", reason="unknown_course", value=name[:120],
                      courses=", ".join(c.name for c in courses))
    return match


def quote_reply(ctx: Context, name: str, seats: int, course: Service | None) -> Reply:
    """What the purchase would cost, with the two options of the seed: group only, or group and me."""
    lines, total = invoice_lines(line_text(ctx, name, course), seats, course.price if course else None)
    base = f"group new {quote(name)} {seats}" + (f" {quote(course.name)}" if course else "")
    return ctx.say("groups_quote", title=name, seats=seats, course=course, unit=money(ctx, lines[0]["unit_price"]),
                   total=money(ctx, total), choices=[ctx.choice("label.groups_buy", f"{base} group"),
                                                     ctx.choice("label.groups_buy_enroll", f"{base} enroll-me")])


def line_text(ctx: Context, name: str, course: Service | None) -> str:
    return ctx.word("groups.invoice_line", group=name, course=course.name if course else "")


def money(ctx: Context, amount: str) -> str:
    return format_currency(Decimal(amount), CURRENCY, locale=ctx.lang)


async def refuse_taken_name(ctx: Context, name: str) -> None:
    """Group names are unique without regard to case (the database's name_key says so too), and a name
    that looks like another one (same skeleton: "Team Nord", "Team-Nord", "Теам Nord") is refused."""
    names = (await ctx.session.scalars(select(SeatGroup.name))).all()
    if any(name_key(n) == name_key(name) for n in names):
        raise Refusal("groups_refused", reason="name_taken", value=name)
    look = skeleton(name)
    similar = next((n for n in names if skeleton(n) == look), None)
    if similar is not None:
        raise Refusal("groups_refused", reason="name_lookalike", value=name, other=similar)


async def buy_seats(ctx: Context, name: str, seats: int, course: Service | None, enroll_me: bool) -> list[Reply]:
    """Create the group with one order and invoice, make the buyer its manager, and mail them the way in."""
    name, seats = group_name(name), seat_count(seats)
    await refuse_taken_name(ctx, name)
    pending = needs_approval(ctx, seats)
    group = await create_group(ctx, name, 0 if pending else seats, course)
    order = await place_order(ctx, group, seats, course, pending)
    await ctx.session.execute(insert_ignoring_conflicts(ctx.uow.dialect, Role, ["person_id", "role", "scope"])
                              .values(person_id=ctx.person.id, role=MANAGER, scope=str(group.id)))
    if pending:
        return await order_waits(ctx, group, order, enroll_me)
    link = await issue_group_link(ctx, group)
    if enroll_me:
        await enroll_buyer(ctx, group)
    mailed = await mail_order(ctx, "groups_bought_mail", group, order, course, link)
    await ctx.audit("group_bought", f"group:{group.id}", name=name, seats=seats, invoice=order.invoice_number,
                    total=order.total, enrolled_buyer=enroll_me)
    members_button = ctx.choice("label.groups_members", f"members {quote(name)}")
    return [ctx.say("groups_bought", group=group, course=course, order=invoice_view(ctx, order), mailed=mailed,
                    link=deep_link(ctx, link), enrolled=enroll_me, choices=[members_button])]


async def create_group(ctx: Context, name: str, seats: int, course: Service | None) -> SeatGroup:
    """The group row with every seat bought and none taken."""
    group = SeatGroup(name=name, kind="course", service_id=course.id if course else None, seats_bought=seats,
                      seats_taken=0, created_by=ctx.sender, created_at=ctx.now)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(group)
            await ctx.session.flush()
    except IntegrityError:  # the same name bought at the same moment by someone else
        raise Refusal("groups_refused", reason="name_taken", value=name) from None
    return group


def approval_limit(ctx: Context) -> int:
    """The most seats one order buys without an admin's approval (setup file, default 20)."""
    limit = ctx.business.max_seats_without_approval if ctx.business else None
    return DEFAULT_APPROVAL_LIMIT if limit is None else limit


def needs_approval(ctx: Context, seats: int) -> bool:
    """An order above the limit waits for an admin; admins' and the owner's own orders do not."""
    return seats > approval_limit(ctx) and not ctx.roles & ADMINS


async def place_order(ctx: Context, group: SeatGroup, seats: int, course: Service | None,
                      pending: bool = False) -> SeatOrder:
    """One order with its invoice record; a pending one gets its invoice number when it is approved."""
    lines, total = invoice_lines(line_text(ctx, group.name, course), seats, course.price if course else None)
    order = SeatOrder(invoice_number=None, group_id=group.id, buyer_id=ctx.person.id, seats=seats, lines=lines,
                      total=total, created_at=ctx.now, status="pending" if pending else "approved")
    ctx.session.add(order)
    await ctx.session.flush()
    if not pending:
        await number_order(ctx, order)
    return order


async def number_order(ctx: Context, order: SeatOrder) -> None:
    """Give the order the year's next invoice number, retried if a concurrent order took it."""
    year = ctx.now.year
    for _ in range(5):
        last = await ctx.session.scalar(select(func.max(SeatOrder.invoice_number))
                                        .where(SeatOrder.invoice_number.like(f"R-{year}-%")))
        try:
            async with ctx.session.begin_nested():
                await ctx.session.execute(update(SeatOrder).where(SeatOrder.id == order.id).values(
                    invoice_number=next_invoice_number(year, last)).execution_options(synchronize_session=False))
            await ctx.session.refresh(order)
            return
        except IntegrityError:
            continue  # a concurrent order took this number; count again
    raise Refusal("groups_refused", reason="busy", value=str(order.id))


def invoice_view(ctx: Context, order: SeatOrder) -> dict:
    """The invoice record with money formatted for the reader."""
    lines = [{**line, "unit_price": money(ctx, line["unit_price"]), "amount": money(ctx, line["amount"])}
             for line in order.lines]
    return {"number": order.invoice_number, "lines": lines, "total": money(ctx, order.total),
            "seats": order.seats, "created_at": order.created_at}


async def issue_group_link(ctx: Context, group: SeatGroup, buyer_id: int | None = None) -> str:
    """A random `/start g-…` payload for the buyer; its HMAC is kept as a Code, single use for binding."""
    token = secrets.token_urlsafe(18)
    buyer_id = buyer_id or ctx.person.id
    ctx.session.add(Code(address=f"group:{group.id}", purpose=GROUP_LINK, target=f"group:{group.id}:{buyer_id}",
                         digest=secret_digest(ctx.config.secret_key, GROUP_LINK, token), created_at=ctx.now,
                         expires_at=ctx.now + timedelta(days=LINK_DAYS), attempts=0))
    return f"g-{token}"


async def enroll_buyer(ctx: Context, group: SeatGroup) -> None:
    """The seed's "Mich einschreiben": the buyer takes a seat and, being here, is active at once."""
    if not await take_seats(ctx, group.id, 1):
        raise await seats_missing(ctx, group.id, 1)
    member = await ctx.session.get(Member, ctx.person.id)
    if member is None:
        member = Member(person_id=ctx.person.id, status="activated", activated_at=ctx.now, services=[])
        ctx.session.add(member)
    ctx.session.add(Membership(group_id=group.id, person_id=ctx.person.id, holds_seat=True,
                               seat_used=member.status == "activated", enrolled_at=ctx.now, enrolled_by=ctx.sender))
    await ctx.session.flush()


async def buyer_email(ctx: Context, buyer: Person) -> str | None:
    """Where the invoice goes: the mailbox that wrote (if the buyer wrote), else the buyer's verified email."""
    if ctx.inbound.channel == "email" and buyer.id == ctx.person.id:
        return ctx.sender.split(":", 1)[1]
    found = await ctx.session.scalar(select(Address.address).where(
        Address.person_id == buyer.id, Address.kind == "email", Address.verified).order_by(Address.id).limit(1))
    return found.split(":", 1)[1] if found else None


def deep_link(ctx: Context, payload: str) -> dict:
    """`/start PAYLOAD`, and the t.me link when the bot's username is configured."""
    username = getattr(ctx.config, "bot_username", "") or ""
    return {"payload": payload, "command": f"/start {payload}",
            "url": f"https://t.me/{username}?start={payload}" if username else None}


async def mail_order(ctx: Context, template: str, group: SeatGroup, order: SeatOrder, course: Service | None,
                     link: str | None, buyer: Person | None = None, lang: str | None = None) -> str | None:
    """Mail the invoice (and the way into the group) to the buyer; None if no address is known."""
    buyer = buyer or ctx.person
    email = await buyer_email(ctx, buyer)
    if email is not None:
        await ctx.mail(email, template, lang=lang, group=group, course=course, order=invoice_view(ctx, order),
                       link=deep_link(ctx, link) if link else None, buyer=buyer)
    return email


async def buy_more(ctx: Context, args: str) -> list[Reply]:
    """`seats GROUP +N`: a new order with its own invoice; the seats are free at once."""
    tokens = words(args)
    if len(tokens) < 2:
        raise Refusal("groups_usage", word="seats")
    group, _ = await find_group(ctx, tokens[:-1], full=OWNERS)
    seats = seat_count(tokens[-1])
    course = await course_of(ctx, group)
    if needs_approval(ctx, seats):
        return await order_waits(ctx, group, await place_order(ctx, group, seats, course, pending=True), False)
    await add_bought(ctx, group.id, seats)
    order = await place_order(ctx, group, seats, course)
    mailed = await mail_order(ctx, "groups_seats_mail", group, order, course, None)
    await ctx.session.refresh(group)
    await ctx.audit("seats_bought", f"group:{group.id}", seats=seats, invoice=order.invoice_number, total=order.total)
    return [ctx.say("groups_seats_bought", group=group, order=invoice_view(ctx, order), mailed=mailed)]


async def add_bought(ctx: Context, group_id: int, seats: int) -> None:
    await ctx.session.execute(update(SeatGroup).where(SeatGroup.id == group_id)
                              .values(seats_bought=SeatGroup.seats_bought + seats)
                              .execution_options(synchronize_session=False))


# ---- orders waiting for approval ----------------------------------------------------------------

async def order_waits(ctx: Context, group: SeatGroup, order: SeatOrder, enroll_me: bool) -> list[Reply]:
    """Tell the buyer their order waits for an admin; nothing is bought, invoiced or mailed yet."""
    await ctx.audit("seat_order_pending", f"group:{group.id}", order=order.id, seats=order.seats,
                    limit=approval_limit(ctx))
    return [ctx.say("groups_order_pending", group=group, order=order, limit=approval_limit(ctx),
                    enroll_me=enroll_me)]


@dataclass(frozen=True)
class OrderLine:
    id: int
    group: str
    seats: int
    total: str
    buyer: str
    created_at: object


async def list_orders(ctx: Context, args: str) -> list[Reply]:
    """`orders`: seat orders waiting for an admin, oldest first, with buttons to approve or reject."""
    rows = (await ctx.session.execute(
        select(SeatOrder, SeatGroup.name, Person.name).join(SeatGroup, SeatGroup.id == SeatOrder.group_id)
        .join(Person, Person.id == SeatOrder.buyer_id).where(SeatOrder.status == "pending")
        .order_by(SeatOrder.id).limit(LIST_LIMIT + 1))).all()
    lines = [OrderLine(o.id, group, o.seats, money(ctx, o.total), buyer or f"#{o.buyer_id}", o.created_at)
             for o, group, buyer in rows[:LIST_LIMIT]]
    choices = [choice for line in lines[:GROUP_BUTTONS] for choice in (
        ctx.choice("label.groups_order_approve", f"order approve {line.id}", id=line.id),
        ctx.choice("label.groups_order_reject", f"order reject {line.id}", id=line.id))]
    return [ctx.say("groups_orders", orders=lines, more=len(rows) > LIST_LIMIT, choices=choices)]


async def order_command(ctx: Context, args: str) -> list[Reply]:
    """`order approve ID` buys the seats and sends the invoice; `order reject ID [REASON]` drops the order."""
    tokens = words(args)
    action = tokens[0].casefold() if tokens else ""
    if len(tokens) < 2 or action not in APPROVE + REJECT or not re.fullmatch(r"#?[0-9]{1,9}", tokens[1]):
        raise Refusal("groups_usage", word="order")
    order_id, reason = int(tokens[1].lstrip("#")), " ".join(tokens[2:])[:500]
    order = await decide_order(ctx, order_id, "approved" if action in APPROVE else "rejected")
    group = await ctx.session.get(SeatGroup, order.group_id)
    buyer = await ctx.session.get(Person, order.buyer_id)
    if order.status == "approved":
        return await approve_order(ctx, order, group, buyer)
    await tell_buyer(ctx, buyer, "groups_order_rejected_notice", group=group, order=order, reason=reason)
    await ctx.audit("seat_order_rejected", f"group:{group.id}", order=order.id, seats=order.seats, reason=reason)
    return [ctx.say("groups_order_decided", group=group, order=order, reason=reason)]


async def decide_order(ctx: Context, order_id: int, status: str) -> SeatOrder:
    """Move a pending order to `status` in one conditional UPDATE: of two admins deciding at once, one wins."""
    done = await ctx.session.execute(
        update(SeatOrder).where(SeatOrder.id == order_id, SeatOrder.status == "pending")
        .values(status=status, decided_by=ctx.sender, decided_at=ctx.now)
        .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise Refusal("groups_refused", reason="no_pending_order", value=str(order_id))
    return await ctx.session.get(SeatOrder, order_id, populate_existing=True)


async def approve_order(ctx: Context, order: SeatOrder, group: SeatGroup, buyer: Person) -> list[Reply]:
    """The seats are bought now: number the invoice, mail it to the buyer (with the group link if new)."""
    first = not await ctx.session.scalar(select(func.count()).select_from(SeatOrder).where(
        SeatOrder.group_id == group.id, SeatOrder.status == "approved", SeatOrder.id != order.id))
    await add_bought(ctx, group.id, order.seats)
    await number_order(ctx, order)
    await ctx.session.refresh(group)
    course = await course_of(ctx, group)
    link = await issue_group_link(ctx, group, buyer.id) if first else None
    lang = buyer.language or business_language(ctx)
    mailed = await mail_order(ctx, "groups_bought_mail" if first else "groups_seats_mail", group, order, course,
                              link, buyer, lang)
    await tell_buyer(ctx, buyer, "groups_order_approved_notice", group=group, order=invoice_view(ctx, order),
                     mailed=mailed)
    await ctx.audit("seat_order_approved", f"group:{group.id}", order=order.id, seats=order.seats,
                    invoice=order.invoice_number, total=order.total)
    return [ctx.say("groups_order_decided", group=group, order=order, mailed=mailed)]


async def tell_buyer(ctx: Context, buyer: Person, template: str, **values) -> None:
    """A chat message to the buyer where they have a chat (their language, else the business's)."""
    chat = await ctx.session.scalar(select(Address.address).where(
        Address.person_id == buyer.id, Address.kind.in_(("telegram", "console"))).order_by(Address.id).limit(1))
    if chat is not None:
        await ctx.notify(chat, template, lang=buyer.language or business_language(ctx), **values)


# ---- listing ------------------------------------------------------------------------------------

async def list_groups(ctx: Context, args: str) -> list[Reply]:
    """`groups`: the groups the speaker manages (all of them for admins) with bought, taken and free seats."""
    ids = [gid for gid, _ in await visible_groups(ctx, FULL_ACCESS)]
    rows = (await ctx.session.execute(
        select(SeatGroup, Service.name).outerjoin(Service, Service.id == SeatGroup.service_id)
        .where(SeatGroup.id.in_(ids)).order_by(SeatGroup.name))).all() if ids else []
    choices = [ctx.choice("label.groups_members_of", f"members {quote(g.name)}", group=g.name)
               for g, _ in rows[:GROUP_BUTTONS]] if ctx.roles & MANAGERS else []
    return [ctx.say("groups_list", groups=rows, choices=choices)]


@dataclass(frozen=True)
class MemberLine:
    name: str | None
    email: str | None
    status: str
    reason: str | None
    enrolled_at: object
    seat_used: bool


async def members(ctx: Context, args: str) -> list[Reply]:
    """`members GROUP`: name, email, status, enrolled at, seat used; a long list also comes as a CSV file."""
    group, _ = await find_group(ctx, words(args))
    from handlers.accounts import expire_invitations  # here, not on top: accounts imports groups
    await expire_invitations(ctx.uow, ctx.now)
    lines = await member_lines(ctx, group.id)
    shown = [(m, status_text(ctx, m)) for m in lines[:LIST_LIMIT]]
    reply = ctx.say("groups_members", group=group, members=shown, more=len(lines) - LIST_LIMIT,
                    removed=await seats_of_removed(ctx, group))
    if len(lines) > LIST_LIMIT:
        reply.attachments.append(members_file(ctx, group, lines))
    return [reply]


async def seats_of_removed(ctx: Context, group: SeatGroup) -> int:
    """Taken seats no member holds: those of removed members (seed 000: not given back but by a refund)."""
    holders = await ctx.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.group_id == group.id, Membership.holds_seat))
    return max(0, group.seats_taken - holders)


async def member_lines(ctx: Context, group_id: int) -> list[MemberLine]:
    """Every member of the group with one email address each, in the order they were enrolled."""
    email = (select(func.min(Address.address)).where(Address.person_id == Membership.person_id,
                                                     Address.kind == "email").scalar_subquery())
    rows = await ctx.session.execute(
        select(Person.name, email, Member.status, Member.failure_reason, Membership.enrolled_at, Membership.seat_used)
        .join(Person, Person.id == Membership.person_id).outerjoin(Member, Member.person_id == Membership.person_id)
        .where(Membership.group_id == group_id).order_by(Membership.enrolled_at, Membership.id))
    return [MemberLine(name, mail.split(":", 1)[1] if mail else None, status or "none", reason, at, used)
            for name, mail, status, reason, at, used in rows]


def members_file(ctx: Context, group: SeatGroup, lines: list[MemberLine]) -> Attachment:
    """The whole member list as CSV (formulas neutralised), for lists too long for a chat message."""
    header = [ctx.word(f"groups_csv.{key}") for key in ("name", "email", "status", "enrolled_at", "seat_used")]
    zone = ZoneInfo(ctx.tz)
    rows = ([m.name or "", m.email or "", status_text(ctx, m), m.enrolled_at.astimezone(zone).date().isoformat(),
             ctx.word("groups_csv.yes" if m.seat_used else "groups_csv.no")] for m in lines)
    return Attachment(f"members-{file_slug(group.name)}.csv", "text/csv", csv_bytes(header, rows))


def status_text(ctx: Context, line: MemberLine) -> str:
    """The status in the reader's words, with the reason of a failure (other modules may store their own)."""
    key = f"groups_status.{line.status}"
    text = ctx.word(key) if has_word(ctx.lang, key) else line.status
    if line.reason:
        text += ": " + (ctx.word("groups_status.expired_reason") if line.reason == EXPIRED else line.reason)
    return text


# ---- enrolling and invitations ------------------------------------------------------------------

@dataclass(frozen=True)
class Invitee:
    person_id: int
    email: str
    row: ImportRow | None = None  # profile data from an import
    fresh: bool = False  # the person was made by this enrolment: only then does the typed profile count


async def enroll(ctx: Context, args: str) -> list[Reply]:
    """`enroll GROUP NAME EMAIL`: take a free seat and invite the member (pending until they accept)."""
    tokens = words(args)
    if len(tokens) < 3 or "@" not in tokens[-1]:
        raise Refusal("groups_usage", word="enroll")
    email = normalise_email(tokens[-1])
    group, rest = await find_group(ctx, tokens[:-1], whole=False)
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


async def current_membership(ctx: Context, group_id: int, person_id: int | None) -> Membership | None:
    """The person's membership in the group, if any."""
    if person_id is None:
        return None
    return await ctx.session.scalar(select(Membership).where(Membership.group_id == group_id,
                                                             Membership.person_id == person_id))


async def new_person(ctx: Context, name: str, email: str) -> int:
    """A person known only by the address a manager typed: unverified until they accept."""
    person = Person(name=name, created_at=ctx.now)
    ctx.session.add(person)
    await ctx.session.flush()
    ctx.session.add(Address(address=f"email:{email}", kind="email", person_id=person.id, verified=False,
                            created_at=ctx.now))
    await ctx.session.flush()
    return person.id


async def add_memberships(ctx: Context, group: SeatGroup, person_ids: list[int], used: bool | set[int]) -> None:
    """Memberships holding a seat; an already active member uses it at once (as accounts' `member group` does)."""
    await ctx.session.execute(insert(Membership.__table__), [
        {"group_id": group.id, "person_id": pid, "holds_seat": True, "enrolled_at": ctx.now,
         "seat_used": pid in used if isinstance(used, set) else used, "enrolled_by": ctx.sender}
        for pid in person_ids])


async def welcome_members(ctx: Context, group: SeatGroup, invitees: list[Invitee]) -> list[Invitee]:
    """Invite the new and failed; tell the active that they are in, and those with an open invitation that it
    still counts (it is theirs or an admin's: never replaced). Returns the latter. All in bulk."""
    await count_invitations(ctx, len(invitees))
    statuses = await member_statuses(ctx, [i.person_id for i in invitees])
    told = [i for i in invitees if statuses.get(i.person_id) in ("activated", "pending")]
    invited = [i for i in invitees if statuses.get(i.person_id) not in ("activated", "pending")]
    await send_invitations(ctx, group, invited, statuses)
    course = await course_of(ctx, group)
    notices = [outbox_row(ctx, i.email, ctx.render("groups_added_mail", business_language(ctx), group=group,
                                                   course=course, manager=ctx.person,
                                                   pending=statuses[i.person_id] == "pending")) for i in told]
    if notices:
        await ctx.session.execute(insert(Outbox.__table__), notices)
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
    expires = ctx.now + timedelta(days=INVITATION_DAYS)
    mail = InvitationMail(ctx, group, await course_of(ctx, group), expires)
    new_members, updates, code_rows, mails = [], [], [], []
    for invitee in invitees:
        token, code = secrets.token_urlsafe(24), codes.new_code()
        member = invitation_fields(ctx, invitee, token, expires, invitee.person_id not in statuses)
        (updates if invitee.person_id in statuses else new_members).append(member)
        code_rows.append(code_row(ctx, invitee.email, code, expires))
        mails.append(outbox_row(ctx, invitee.email, mail.render(code, f"inv-{token}")))
    await bulk_write(ctx, new_members, updates, code_rows, mails)


class InvitationMail:
    """The invitation rendered once, with markers where each invitee's code and link go.

    Rendering Jinja per invitee costs more than the whole bulk insert of a 10 000-row import;
    the code and the link are plain ASCII, so putting them into the rendered text is safe.
    """

    CODE, PAYLOAD = "\x00CODE\x00", "\x00PAYLOAD\x00"

    def __init__(self, ctx: Context, group: SeatGroup, course: Service | None, expires):
        self.rendered = ctx.render("groups_invitation_mail", business_language(ctx), group=group, course=course,
                                   code=self.CODE, expires_at=expires, link=deep_link(ctx, self.PAYLOAD),
                                   manager=ctx.person)

    def render(self, code: str, payload: str) -> Rendered:
        def fill(text: str | None) -> str | None:
            return text and text.replace(self.CODE, code).replace(self.PAYLOAD, payload)
        return Rendered(fill(self.rendered.subject), fill(self.rendered.text), fill(self.rendered.html))


def invitation_fields(ctx: Context, invitee: Invitee, token: str, expires, new: bool) -> dict:
    """A Member row's invitation columns; a new row also gets the profile an import carried, but only for a
    person this import made (a manager's list never writes over someone known already)."""
    fields = {"person_id": invitee.person_id, "status": "pending", "failure_reason": None, "invited_at": ctx.now,
              "invitation_expires_at": expires,
              "invitation_token": secret_digest(ctx.config.secret_key, INVITATION, token)}
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


def outbox_row(ctx: Context, to: str, rendered: Rendered) -> dict:
    """An outbox mail as a plain row, for bulk inserts (ctx.mail adds one ORM object at a time)."""
    message_id = new_message_id(ctx.config.mail_domain)
    return {"channel": "email", "recipient": to, "subject": rendered.subject, "text": rendered.text,
            "html": rendered.html, "message_id": message_id, "attachments": [], "status": "pending",
            "headers": {"Message-ID": message_id, "Auto-Submitted": "auto-generated"}, "attempts": 0,
            "next_attempt_at": ctx.now, "created_at": ctx.now}


async def bulk_write(ctx: Context, new_members: list, updates: list, code_rows: list, mails: list) -> None:
    """Core inserts with lists of rows, and one executemany for the updates (never row by row)."""
    session = ctx.session
    if new_members:
        await session.execute(insert(Member.__table__), new_members)
    if updates:
        table = Member.__table__
        await session.execute(update(table).where(table.c.person_id == bindparam("pid")).values(
            {k: bindparam(k) for k in updates[0] if k != "person_id"}),
            [{**row, "pid": row["person_id"]} for row in updates])
    if code_rows:
        await session.execute(insert(Code.__table__), code_rows)
    if mails:
        await session.execute(insert(Outbox.__table__), mails)


async def member_statuses(ctx: Context, person_ids: list[int]) -> dict[int, str]:
    rows = await in_chunks(ctx, lambda chunk: select(Member.person_id, Member.status).where(
        Member.person_id.in_(chunk)), person_ids)
    return dict(rows)


def business_language(ctx: Context) -> str:
    """Invitees have not spoken yet: they are written to in the business's language."""
    return ctx.business.language if ctx.business else ctx.config.default_language


# ---- accepting ----------------------------------------------------------------------------------

async def open_invitation(ctx: Context, payload: str) -> list[Reply]:
    """`/start inv-<token>`: accept the invitation and bind this chat to the member."""
    digest = secret_digest(ctx.config.secret_key, INVITATION, payload.partition("-")[2])
    member = await ctx.session.scalar(select(Member).where(Member.invitation_token == digest))
    if member is None:
        return [ctx.say("groups_invitation_invalid")]
    if await expired(ctx, member):
        return [ctx.say("groups_invitation_expired")]
    await bind_chat(ctx, member.person_id)
    return await activate(ctx, member)


async def accept_by_code(ctx: Context, row: Code) -> list[Reply]:
    """A right invitation code (typed, or in a reply to the mail) from the invited mailbox."""
    person_id = await ctx.session.scalar(select(Address.person_id).where(Address.address == f"email:{row.target}"))
    member = await ctx.session.get(Member, person_id) if person_id else None
    if member is None:
        return [ctx.say("groups_invitation_invalid")]
    if await expired(ctx, member):
        return [ctx.say("groups_invitation_expired")]
    return await activate(ctx, member, row.target)


async def expired(ctx: Context, member: Member) -> bool:
    """An invitation past its date cannot be accepted; a pending member fails, with the reason (kept: no refusal)."""
    due = member.invitation_expires_at
    if member.status == "activated" or due is None or due > ctx.now:
        return False
    if member.status == "pending":
        member.status, member.failure_reason = "failed", EXPIRED
        await ctx.audit("invitation_expired", f"person:{member.person_id}")
    return True


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
    """Activate the member, mark their held seats used, and count their invited address as proven."""
    if not await claim_activation(ctx, member):  # a refusal: the chat bound to the member goes back too
        raise Refusal("groups_invitation_invalid")
    pid = member.person_id
    await use_held_seats(ctx.session, pid)
    proven = Address.address == f"email:{email}" if email else Address.kind == "email"
    await ctx.session.execute(update(Address).where(Address.person_id == pid, proven).values(verified=True)
                              .execution_options(synchronize_session=False))
    await void_invitation_codes(ctx, pid)
    names = (await ctx.session.scalars(select(SeatGroup.name).join(Membership).where(Membership.person_id == pid)
                                       .order_by(SeatGroup.name))).all()
    await ctx.audit("invitation_accepted", f"person:{pid}", groups=list(names))
    return [ctx.say("groups_accepted", groups=names)]


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


async def use_held_seats(session, person_id: int) -> int:
    """An accepted member has used the seats they hold (used seats are never refunded automatically)."""
    used = await session.execute(update(Membership).where(
        Membership.person_id == person_id, Membership.holds_seat, Membership.seat_used.is_(False))
        .values(seat_used=True).execution_options(synchronize_session=False))
    return used.rowcount


async def open_group_link(ctx: Context, payload: str) -> list[Reply]:
    """`/start g-<token>`: the buyer's way in from chat; binds this chat to the buyer once."""
    digest = secret_digest(ctx.config.secret_key, GROUP_LINK, payload.partition("-")[2])
    code = await ctx.session.scalar(select(Code).where(Code.purpose == GROUP_LINK, Code.digest == digest))
    if code is None or code.expires_at <= ctx.now:
        return [ctx.say("groups_link_invalid")]
    _, group_id, buyer_id = code.target.split(":")
    if ctx.person.id != int(buyer_id):
        if not await claim_code(ctx, code):  # the link binds one chat; later it only greets the buyer
            return [ctx.say("groups_link_invalid")]
        await bind_chat(ctx, int(buyer_id))
    group = await ctx.session.get(SeatGroup, int(group_id))
    return [ctx.say("groups_link_opened", group=group,
                    choices=[ctx.choice("label.groups_members", f"members {quote(group.name)}")])]


async def claim_code(ctx: Context, code: Code) -> bool:
    """Mark the code used in one conditional UPDATE: of two chats opening the link at once, one wins."""
    claimed = await ctx.session.execute(
        update(Code).where(Code.id == code.id, Code.used_at.is_(None)).values(used_at=ctx.now)
        .execution_options(synchronize_session=False))
    return claimed.rowcount == 1


# ---- removing and refunds -----------------------------------------------------------------------

async def remove(ctx: Context, args: str) -> list[Reply]:
    """`remove GROUP EMAIL`: take the member out; their seat stays taken, used or not (only a refund returns it)."""
    tokens = words(args)
    if len(tokens) < 2:
        raise Refusal("groups_usage", word="remove")
    email = normalise_email(tokens[-1])
    group, _ = await find_group(ctx, tokens[:-1])
    person_id = await ctx.session.scalar(select(Address.person_id).where(Address.address == f"email:{email}"))
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


async def refund(ctx: Context, args: str) -> list[Reply]:
    """`refund GROUP N REASON` (support or the owner): put N seats back by hand, never below the seats held."""
    group, rest = await find_group(ctx, words(args), whole=False, full=REFUNDERS)
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


# ---- bulk import --------------------------------------------------------------------------------

@dataclass
class ImportPlan:
    """Valid rows against the database: new members, rows already in the group, rows that clash."""

    new: list[ImportRow]
    members: list[ImportRow]
    errors: list[RowError]
    persons: dict[str, int]  # email → the person already known by it


async def import_members(ctx: Context, args: str) -> list[Reply]:
    """`import GROUP` with a CSV or XLSX: a dry run; `import GROUP confirm` then imports it."""
    tokens = words(args)
    confirm = bool(tokens) and tokens[-1].casefold() in CONFIRM
    group, _ = await find_group(ctx, tokens[:-1] if confirm else tokens)
    if confirm and ctx.inbound.channel == "email":
        return await ask_import_code(ctx, group)
    if confirm:
        return await confirm_import(ctx, group)
    attachment = pick_attachment(ctx.inbound.attachments)
    if attachment is None:
        raise Refusal("groups_import_no_file", group=group, channel=ctx.inbound.channel)
    if ctx.inbound.channel == "email":
        return await keep_upload(ctx, group, attachment)
    return await dry_run(ctx, group, attachment.name, prepared_list(ctx, uploads.UPLOAD_KEY))


def import_word(desk, text: str) -> bool:
    """Whether a message's text is the import word (the desk reads its attachment before the transaction)."""
    command = desk.words.get(split_command(text or "")[0])
    return command is not None and command.run is import_members


def prepared_list(ctx: Context, key: str) -> Checked:
    """The list the desk read before this transaction; a refusal if it could not be read."""
    result = ctx.inbound.prepared.get(key)
    if isinstance(result, FileRefused):
        raise result
    if result is None:  # only a caller that skipped Desk.prepare gets here
        raise FileRefused("unread")
    return result


async def keep_upload(ctx: Context, group: SeatGroup, attachment: Attachment) -> list[Reply]:
    """By email: keep the list unread and mail a code; it is read only when the code comes back, since
    anyone can write the From: line of an upload."""
    if len(attachment.data) > MAX_FILE_BYTES:
        raise FileRefused("too_big", size=len(attachment.data), limit=MAX_FILE_BYTES)
    # No earlier upload is discarded here: a forged From: must not void the list its owner's code names.
    batch = ImportBatch(group_id=group.id, uploaded_by=ctx.sender, filename=(attachment.name or "")[:255], rows=[],
                        summary={}, status="uploaded", upload=attachment.data, created_at=ctx.now)
    ctx.session.add(batch)
    await ctx.session.flush()
    code = await issue_code(ctx, uploads.IMPORT_UPLOAD, f"batch:{batch.id}")
    await ctx.audit("import_uploaded", f"group:{group.id}", file=batch.filename[:120], size=len(attachment.data))
    reply = ctx.say("groups_import_upload_code", group=group, file=batch.filename, code=code,
                    expires_at=ctx.now + ctx.config.code_ttl)
    reply.subject = ctx.word("groups.import_upload_subject", code=code, group=group.name)
    return [reply]


async def upload_code_confirmed(ctx: Context, row: Code) -> list[Reply]:
    """The code of an emailed list came back: check the list the desk has just read (the dry run)."""
    batch = await ctx.session.get(ImportBatch, int(row.target.split(":", 1)[1]))
    group = await ctx.session.get(SeatGroup, batch.group_id) if batch else None
    if group is None or batch.status != "uploaded":
        raise Refusal("groups_import_nothing", group=None, command="import GROUP")
    if uploads.batch_key(batch.id) not in ctx.inbound.prepared:
        raise FileRefused("unread")  # the code stays good for another try
    batch.status, batch.upload = "discarded", None  # read once; the dry run keeps what it found
    try:
        checked = prepared_list(ctx, uploads.batch_key(batch.id))
    except FileRefused as refused:  # a list that cannot be read is answered, and its code is spent
        return [ctx.say(refused.template, **refused.values)]
    return await dry_run(ctx, group, batch.filename, checked)


def pick_attachment(attachments) -> Attachment | None:
    """The member list among the attachments (a mail may also carry a logo or a signature)."""
    for attachment in attachments:
        if (attachment.name or "").lower().endswith(IMPORT_SUFFIXES) or "csv" in attachment.mime \
                or "spreadsheet" in attachment.mime or "excel" in attachment.mime:
            return attachment
    return attachments[0] if len(attachments) == 1 else None


async def dry_run(ctx: Context, group: SeatGroup, filename: str, checked: Checked) -> list[Reply]:
    """Check every row, keep the valid ones for `confirm`, and answer with a summary and an error file."""
    plan = await classify(ctx, group, checked.valid)
    free = group.seats_bought - group.seats_taken
    summary = {"rows": len(checked.valid) + checked.invalid_rows, "new": len(plan.new), "members": len(plan.members),
               "invalid": checked.invalid_rows + len({e.row for e in plan.errors}), "free": free,
               "missing": missing_seats(len(plan.new), group.seats_bought, group.seats_taken)}
    batch = await store_batch(ctx, group, filename, checked.valid, summary)
    code = await import_code(ctx, batch) if summary["new"] and ctx.inbound.channel == "email" else None
    reply = ctx.say("groups_import_dry_run", group=group, summary=summary, ignored=checked.ignored, code=code,
                    choices=import_choices(ctx, group, summary))
    reply.subject = ctx.word("groups.import_code_subject", code=code, group=group.name) if code else None
    if checked.errors or plan.errors or plan.members:
        reply.attachments.append(error_file(ctx, group, checked.errors + plan.errors, plan.members))
    await ctx.audit("import_checked", f"group:{group.id}", file=(filename or "")[:120], **summary)
    return [reply]


async def import_code(ctx: Context, batch: ImportBatch) -> str:
    """Email is easy to spoof: the import runs when this code, mailed to the sender, comes back."""
    return await issue_code(ctx, IMPORT_CONFIRM, f"batch:{batch.id}")


async def ask_import_code(ctx: Context, group: SeatGroup) -> list[Reply]:
    """`import GROUP confirm` by email: mail a code for the latest check; its return imports."""
    batch = await latest_batch(ctx, group)
    code = await import_code(ctx, batch)
    reply = ctx.say("groups_import_code", group=group, code=code)
    reply.subject = ctx.word("groups.import_code_subject", code=code, group=group.name)
    return [reply]


async def import_code_confirmed(ctx: Context, row: Code) -> list[Reply]:
    """The code of an email import came back from the sender's mailbox: import that very check."""
    batch = await ctx.session.get(ImportBatch, int(row.target.split(":", 1)[1]))
    group = await ctx.session.get(SeatGroup, batch.group_id) if batch else None
    if group is None:
        raise Refusal("groups_import_nothing", group=None, command="import GROUP")
    return await confirm_import(ctx, group, batch.id)


def import_choices(ctx: Context, group: SeatGroup, summary: dict) -> list[Choice]:
    """A confirm button when someone is new, and a buy button for the missing seats (for those who may buy)."""
    choices = []
    if summary["new"]:
        choices.append(ctx.choice("label.groups_import_confirm", f"import {quote(group.name)} confirm",
                                  count=summary["new"]))
    if summary["missing"] and ctx.roles & BUYERS:
        choices.append(ctx.choice("label.groups_buy_more", f"seats {quote(group.name)} +{summary['missing']}",
                                  count=summary["missing"]))
    return choices


async def store_batch(ctx: Context, group: SeatGroup, filename: str, rows: list[ImportRow],
                      summary: dict) -> ImportBatch:
    """Keep the valid rows for `confirm`; an earlier dry run of the same sender and group is discarded,
    except by mail: a From: line proves nothing, so a mail never discards the check its owner's code names."""
    if ctx.inbound.channel != "email":
        await ctx.session.execute(update(ImportBatch).where(
            ImportBatch.group_id == group.id, ImportBatch.uploaded_by == ctx.sender, ImportBatch.status == "dry_run")
            .values(status="discarded").execution_options(synchronize_session=False))
    batch = ImportBatch(group_id=group.id, uploaded_by=ctx.sender, filename=(filename or "")[:255],
                        rows=[r.to_dict() for r in rows], summary=summary, status="dry_run", created_at=ctx.now)
    ctx.session.add(batch)
    await ctx.session.flush()
    return batch


def error_file(ctx: Context, group: SeatGroup, errors: list[RowError], members: list[ImportRow]) -> Attachment:
    """Row number, value and reason for every row not imported (CSV, formulas neutralised)."""
    lines = [(e.row, e.value, ctx.word(f"groups_reason.{e.reason}", row=e.other_row)) for e in errors]
    lines += [(m.row, m.email, ctx.word("groups_reason.already_member")) for m in members]
    header = [ctx.word(f"groups_csv.{key}") for key in ("row", "value", "reason")]
    return Attachment(f"import-errors-{file_slug(group.name)}.csv", "text/csv",
                      csv_bytes(header, sorted(lines, key=lambda line: line[0])))


async def classify(ctx: Context, group: SeatGroup, rows: list[ImportRow]) -> ImportPlan:
    """Sort valid rows into new members and members already in the group (skipped: not charged twice)."""
    persons = await persons_by_email(ctx, [r.email for r in rows])
    in_group = await members_among(ctx, group.id, list(persons.values()))
    phones = await phone_owners(ctx, [r.phone for r in rows if r.phone])
    plan = ImportPlan([], [], [], persons)
    for row in rows:
        person_id = persons.get(row.email)
        if person_id is not None and person_id in in_group:
            plan.members.append(row)
        elif row.phone and phones.get(row.phone, person_id) != person_id:
            plan.errors.append(RowError(row.row, row.phone, "phone_taken"))
        else:
            plan.new.append(row)
    return plan


async def in_chunks(ctx: Context, query_for, values: list) -> list:
    """Run `query_for(chunk)` over the values in chunks and gather the rows."""
    found = []
    for start in range(0, len(values), CHUNK):
        found += (await ctx.session.execute(query_for(values[start:start + CHUNK]))).all()
    return found


async def persons_by_email(ctx: Context, emails: list[str]) -> dict[str, int]:
    rows = await in_chunks(ctx, lambda chunk: select(Address.address, Address.person_id).where(
        Address.address.in_(chunk)), [f"email:{e}" for e in emails])
    return {address.split(":", 1)[1]: person_id for address, person_id in rows}


async def members_among(ctx: Context, group_id: int, person_ids: list[int]) -> set[int]:
    rows = await in_chunks(ctx, lambda chunk: select(Membership.person_id).where(
        Membership.group_id == group_id, Membership.person_id.in_(chunk)), person_ids)
    return {person_id for (person_id,) in rows}


async def phone_owners(ctx: Context, phones: list[str]) -> dict[str, int]:
    """Phone numbers are unique among members (member.phone): who holds each already."""
    rows = await in_chunks(ctx, lambda chunk: select(Member.phone, Member.person_id).where(
        Member.phone.in_(chunk)), phones)
    return dict(rows)


async def confirm_import(ctx: Context, group: SeatGroup, batch_id: int | None = None) -> list[Reply]:
    """Import the last dry run, all or nothing, in this one transaction; too few seats import nothing."""
    batch = await claim_batch(ctx, group, batch_id)
    plan = await classify(ctx, group, [row_from_dict(r) for r in batch.rows])
    if plan.errors:
        raise Refusal("groups_import_changed", group=group)
    if plan.new and not await take_seats(ctx, group.id, len(plan.new)):
        raise await seats_missing(ctx, group.id, len(plan.new))
    try:
        async with ctx.session.begin_nested():
            await create_members(ctx, group, plan)
    except IntegrityError:  # someone enrolled one of these addresses meanwhile
        raise Refusal("groups_import_changed", group=group) from None
    await ctx.audit("import_done", f"group:{group.id}", batch=batch.id, imported=len(plan.new),
                    skipped=len(plan.members))
    await ctx.session.refresh(group)
    return [ctx.say("groups_import_done", group=group, imported=len(plan.new), skipped=len(plan.members))]


async def latest_batch(ctx: Context, group: SeatGroup, batch_id: int | None = None) -> ImportBatch:
    """The sender's latest dry run for the group (or the one a code names), if still fresh."""
    query = select(ImportBatch).where(ImportBatch.group_id == group.id, ImportBatch.status == "dry_run",
                                      ImportBatch.created_at > ctx.now - timedelta(hours=BATCH_HOURS))
    # A code names its check (and proves who asked); otherwise it is the speaker's own latest one.
    query = query.where(ImportBatch.id == batch_id if batch_id else ImportBatch.uploaded_by == ctx.sender)
    batch = await ctx.session.scalar(query.order_by(ImportBatch.id.desc()).limit(1))
    if batch is None:
        raise Refusal("groups_import_nothing", group=group, command=f"import {quote(group.name)}")
    return batch


async def claim_batch(ctx: Context, group: SeatGroup, batch_id: int | None = None) -> ImportBatch:
    """Claim the dry run atomically: a double click imports once."""
    batch = await latest_batch(ctx, group, batch_id)
    claimed = await ctx.session.execute(
        update(ImportBatch).where(ImportBatch.id == batch.id, ImportBatch.status == "dry_run")
        .values(status="imported").execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise Refusal("groups_import_nothing", group=group, command=f"import {quote(group.name)}")
    return batch


async def create_members(ctx: Context, group: SeatGroup, plan: ImportPlan) -> None:
    """People, addresses, memberships, member rows, codes and mails: Core bulk inserts, one list each."""
    fresh = [row for row in plan.new if row.email not in plan.persons]
    person_of = {**plan.persons, **await insert_people(ctx, fresh)}
    ids = [person_of[row.email] for row in plan.new]
    statuses = await member_statuses(ctx, [person_of[row.email] for row in plan.new if row.email in plan.persons])
    await add_memberships(ctx, group, ids, {pid for pid, status in statuses.items() if status == "activated"})
    await welcome_members(ctx, group, [Invitee(person_of[row.email], row.email, row, row.email not in plan.persons)
                                       for row in plan.new])


async def insert_people(ctx: Context, rows: list[ImportRow]) -> dict[str, int]:
    """New persons with their (unverified) addresses, inserted in bulk with ids chosen beforehand."""
    if not rows:
        return {}
    ids = await new_ids(ctx, Person.__table__, len(rows))
    await ctx.session.execute(insert(Person.__table__), [
        {"id": pid, "name": row.name, "created_at": ctx.now} for row, pid in zip(rows, ids)])
    await ctx.session.execute(insert(Address.__table__), [
        {"address": f"email:{row.email}", "kind": "email", "person_id": pid, "verified": False,
         "created_at": ctx.now} for row, pid in zip(rows, ids)])
    return {row.email: pid for row, pid in zip(rows, ids)}


async def new_ids(ctx: Context, table, count: int) -> list[int]:
    """`count` unused ids of `table`, one branch per dialect (STYLE §8).

    Bulk inserts cannot ask for ids back on SQLite without going row by row (RETURNING has no
    order guarantee there, so SQLAlchemy falls back to one INSERT per row: 20x slower).
    """
    if ctx.uow.dialect == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        return list(await ctx.session.scalars(select(func.nextval(sequence)).select_from(
            func.generate_series(1, count))))
    # SQLite: this transaction took the write lock at BEGIN (IMMEDIATE), so no one else inserts meanwhile.
    last = await ctx.session.scalar(select(func.max(table.c.id))) or 0
    return list(range(last + 1, last + 1 + count))


def handlers(parse_seconds: float = uploads.PARSE_SECONDS, parse_memory: int = uploads.PARSE_MEMORY) -> Handlers:
    """Group words, the invitation and import codes, the /start g-… and inv-… deep links, and reading
    an uploaded list before the transaction (at most `parse_seconds` and `parse_memory` bytes)."""
    return Handlers(
        commands=[
            Command("groups", list_groups, allowed=LISTERS, aliases=("gruppen",), section="groups", safe=True),
            Command("group", group_command, aliases=("gruppe",), section="groups"),
            Command("members", members, allowed=MANAGERS, aliases=("mitglieder",), section="groups", safe=True),
            Command("enroll", enroll, allowed=MANAGERS, aliases=("einschreiben", "enrol"), section="groups"),
            Command("remove", remove, allowed=MANAGERS, aliases=("entfernen",), section="groups"),
            # safe: the dry run only reads; by email the import itself waits for its own code (import_code)
            Command("import", import_members, allowed=MANAGERS, aliases=("importieren",), section="groups", safe=True),
            Command("seats", buy_more, allowed=BUYERS, aliases=("plaetze", "plätze"), section="groups"),
            Command("refund", refund, allowed=REFUNDERS, aliases=("erstatten",), section="groups"),
            Command("orders", list_orders, allowed=ADMINS, aliases=("bestellungen",), section="groups", safe=True),
            Command("order", order_command, allowed=ADMINS, aliases=("bestellung",), section="groups"),
        ],
        completions={INVITATION: accept_by_code, IMPORT_CONFIRM: import_code_confirmed,
                     uploads.IMPORT_UPLOAD: upload_code_confirmed},
        preparers=[uploads.import_preparer(parse_seconds, parse_memory)],
        start_payloads={"g": open_group_link, "inv": open_invitation},
    )
