"""Groups: finding the groups a speaker may see, buying a group's seats, the buyer's link, and listing
groups and their members.

The buyer becomes the group's manager. Seats follow seed 000: a seat once taken stays taken when its
member is removed, even unused; only support or the owner put seats back (`refund`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal
from handlers.members.membership import (
    REASON_EXPIRED,
    bind_chat,
    course_of,
    expire_invitations,
    seats_missing,
    secret_digest,
    take_seats,
)
from handlers.members.orders import (
    GROUP_LINK,
    add_bought,
    invoice_lines,
    invoice_view,
    issue_group_link,
    line_text,
    mail_order,
    money,
    needs_approval,
    order_waits,
    place_order,
)
from handlers.members.rules import (
    ADMINS,
    FULL_ACCESS,
    GROUP_BUTTONS,
    LIST_LIMIT,
    MANAGER,
    MANAGERS,
    MAX_GROUP_NAME,
    deep_link,
    file_slug,
    group_name,
    match_group,
    parse_new_group,
    quote,
    seat_count,
)
from handlers.messages import Attachment, Choice, Reply
from handlers.rules.names import name_key, skeleton
from handlers.rules.profile import csv_bytes
from handlers.rules.roles import OWNERS
from handlers.rules.words import split_words
from storage.dialect import insert_ignoring_conflicts
from storage.models import Address, Code, Member, Membership, Person, Role, SeatGroup, Service
from templates import has_word

# ---- access -------------------------------------------------------------------------------------

async def visible_groups(ctx: Context, full: frozenset[str]) -> list[tuple[int, str]]:
    """Every group for the `full` roles; otherwise the groups the speaker manages (Role scope = group id)."""
    query = select(SeatGroup.id, SeatGroup.name).order_by(SeatGroup.name)
    if not ctx.roles & full:
        scopes = select(Role.scope).where(Role.person_id == ctx.person.id, Role.role == MANAGER)
        query = query.where(cast(SeatGroup.id, String).in_(scopes))
    return [tuple(row) for row in await ctx.session.execute(query)]


async def find_seat_group(ctx: Context, tokens: list[str], whole: bool = True,
                     full: frozenset[str] = ADMINS) -> tuple[SeatGroup, list[str]]:
    """The group named at the start of `tokens` that the speaker may see; unknown and foreign look alike."""
    found = match_group(tokens, await visible_groups(ctx, full))
    if found is None or (whole and found[1]):
        raise Refusal("groups_refused", reason="unknown_group", value=" ".join(tokens)[:MAX_GROUP_NAME])
    group = await ctx.session.get(SeatGroup, found[0], populate_existing=True)
    return group, found[1]



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
    vat = ctx.business.vat_percent if ctx.business and ctx.business.vat_percent not in (None, "0") else None
    return ctx.say("groups_quote", title=name, seats=seats, course=course, unit=money(ctx, lines[0]["unit_price"]),
                   total=money(ctx, total), vat=vat, choices=[ctx.choice("label.groups_buy", f"{base} group"),
                                                     ctx.choice("label.groups_buy_enroll", f"{base} enroll-me")])


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
    order, invoice = await place_order(ctx, group, seats, course, pending)
    await ctx.session.execute(insert_ignoring_conflicts(ctx.uow.dialect, Role, ["person_id", "role", "scope"])
                              .values(person_id=ctx.person.id, role=MANAGER, scope=str(group.id)))
    if invoice is None:
        return await order_waits(ctx, group, order, enroll_me)
    link = await issue_group_link(ctx, group)
    if enroll_me:
        await enroll_buyer(ctx, group)
    mailed = await mail_order(ctx, "groups_bought_mail", group, order, invoice, course, link)
    await ctx.audit("group_bought", f"group:{group.id}", name=name, seats=seats, invoice=order.invoice_number,
                    total=order.total, enrolled_buyer=enroll_me)
    members_button = ctx.choice("label.groups_members", f"members {quote(name)}")
    return [ctx.say("groups_bought", group=group, course=course, order=invoice_view(ctx, order, invoice), mailed=mailed,
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


async def buy_more(ctx: Context, args: str) -> list[Reply]:
    """`seats GROUP +N`: a new order with its own invoice; the seats are free at once."""
    tokens = split_words(args)
    if len(tokens) < 2:
        raise Refusal("groups_usage", word="seats")
    group, _ = await find_seat_group(ctx, tokens[:-1], full=OWNERS)
    seats = seat_count(tokens[-1])
    course = await course_of(ctx, group)
    if needs_approval(ctx, seats):
        pending, _ = await place_order(ctx, group, seats, course, pending=True)
        return await order_waits(ctx, group, pending, False)
    await add_bought(ctx, group.id, seats)
    order, invoice = await place_order(ctx, group, seats, course)
    assert invoice is not None  # an order that needs no approval is invoiced at once
    mailed = await mail_order(ctx, "groups_seats_mail", group, order, invoice, course, None)
    await ctx.session.refresh(group)
    await ctx.audit("seats_bought", f"group:{group.id}", seats=seats, invoice=order.invoice_number, total=order.total)
    return [ctx.say("groups_seats_bought", group=group, order=invoice_view(ctx, order, invoice), mailed=mailed)]



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
    enrolled_at: datetime
    seat_used: bool


async def members(ctx: Context, args: str) -> list[Reply]:
    """`members GROUP`: name, email, status, enrolled at, seat used; a long list also comes as a CSV file."""
    group, _ = await find_seat_group(ctx, split_words(args))
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
        text += ": " + (ctx.word("groups_status.expired_reason") if line.reason == REASON_EXPIRED else line.reason)
    return text
