"""Services: the list, adding or bringing one back, who offers it, and deleting it after a question."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from handlers.appointments import live_condition
from handlers.calendar.lookup import active_services, find_service, find_staff
from handlers.calendar.question import FLOW, confirm_choices, settle_pending
from handlers.calendar.rights import actor, require
from handlers.calendar.words import ADD_WORDS, DELETE_WORDS, NOBODY, STAFF_WORDS, Invalid, colour_dot, parse_service_add
from handlers.context import Context, new_key
from handlers.messages import Reply
from handlers.notices import view
from handlers.rules.words import fold, split_words
from storage.models import Appointment, Person, Service, StaffService


@dataclass(frozen=True)
class ServiceLine:
    name: str
    minutes: int
    colour: str | None
    dot: str
    price: str | None
    staff: list[str]


def service_line(row: Service, staff: list[str]) -> ServiceLine:
    """A service as the lists show it, with its coloured dot and who offers it."""
    return ServiceLine(row.name, row.minutes, row.colour, colour_dot(row.colour), row.price, staff)


async def list_services(ctx: Context, args: str) -> list[Reply]:
    """`services`: every bookable service with minutes, colour, price and who offers it."""
    offered = await ctx.session.execute(
        select(StaffService.service_id, Person.name).join(Person, Person.id == StaffService.person_id)
        .order_by(Person.name))
    by_service: dict[int, list[str]] = {}
    for service_id, name in offered:
        by_service.setdefault(service_id, []).append(name or "?")
    lines = [service_line(s, by_service.get(s.id, [])) for s in await active_services(ctx)]
    return [ctx.say("calendar_services", services=lines)]


async def service(ctx: Context, args: str) -> list[Reply]:
    """`service add NAME MINUTES [#colour] [price]` or `service delete NAME`; alone, the list."""
    words = split_words(args)
    if not words:
        return await list_services(ctx, "")
    action, rest = fold(words[0]), words[1:]
    if action in ADD_WORDS:
        return await add_service(ctx, rest)
    if action in DELETE_WORDS:
        return await ask_service_delete(ctx, " ".join(rest))
    if action in STAFF_WORDS:
        return await set_service_staff(ctx, " ".join(rest))
    raise Invalid("form")


async def add_service(ctx: Context, words: list[str]) -> list[Reply]:
    """Add a service, or bring back a deleted one of the same name."""
    require((await actor(ctx)).may("settings"), "settings")
    new = parse_service_add(words)
    same = [s for s in (await ctx.session.scalars(select(Service))).all() if fold(s.name) == fold(new.name)]
    active = [s for s in same if s.deleted_at is None]
    if active:
        raise Invalid("service_exists", value=active[0].name)
    row = same[0] if same else Service(name=new.name)
    row.name, row.minutes, row.colour, row.price, row.deleted_at = new.name, new.minutes, new.colour, new.price, None
    ctx.session.add(row)
    await ctx.session.flush()
    await ctx.audit("service_restored" if same else "service_added", f"service:{row.id}", name=row.name,
                    minutes=row.minutes, colour=row.colour, price=row.price)
    line = service_line(row, [])
    return [ctx.say("calendar_service_added", service=line, restored=bool(same))]


async def set_service_staff(ctx: Context, text: str) -> list[Reply]:
    """`service staff NAME: STAFF, STAFF…`: exactly these staff members offer the service ("nobody": none)."""
    require((await actor(ctx)).may("settings"), "settings")
    name, colon, names = text.partition(":")
    if not colon or not name.strip():
        raise Invalid("form")
    row = find_service(await active_services(ctx), name)
    wanted = [] if fold(names) in NOBODY else [part.strip() for part in names.split(",") if part.strip()]
    if not wanted and fold(names) not in NOBODY:
        raise Invalid("form")
    chosen = {member.id: member for member in [await find_staff(ctx, part) for part in wanted]}
    without = [m.name for m in chosen.values() if not m.has_calendar]
    if without:
        raise Invalid("no_calendar", value=", ".join(without))
    await ctx.session.execute(delete(StaffService).where(StaffService.service_id == row.id))
    if chosen:
        await ctx.session.execute(insert(StaffService), [{"person_id": pid, "service_id": row.id} for pid in chosen])
    staff = sorted(m.name for m in chosen.values())
    await ctx.audit("service_staff_set", f"service:{row.id}", name=row.name, staff=staff)
    line = service_line(row, staff)
    return [ctx.say("calendar_service_staff", service=line)]


async def ask_service_delete(ctx: Context, name: str) -> list[Reply]:
    """Name what deleting would mean (it cannot be undone) and ask to confirm."""
    require((await actor(ctx)).may("settings"), "settings")
    if not name:
        raise Invalid("form")
    row = find_service(await active_services(ctx), name)
    future = [await view(ctx.uow, a) for a in await future_of_service(ctx, row.id)]
    replies = await settle_pending(ctx)
    nonce = new_key()
    await ctx.start_flow(FLOW, "service_delete", {"nonce": nonce, "service_id": row.id})
    return replies + [ctx.say("calendar_service_delete_ask", service=row, appointments=future,
                              choices=confirm_choices(ctx, nonce))]


async def future_of_service(ctx: Context, service_id: int) -> list[Appointment]:
    query = (select(Appointment).where(Appointment.service_id == service_id, Appointment.start_at >= ctx.now,
                                       live_condition(ctx.now)).order_by(Appointment.start_at))
    return list((await ctx.session.scalars(query)).all())


async def confirm_service_delete(ctx: Context, data: dict) -> list[Reply]:
    """Delete the service for booking; its appointments, past and future, keep it."""
    await ctx.end_flow()
    row = await ctx.session.get(Service, data["service_id"])
    if row is None or row.deleted_at is not None:
        return [ctx.say("calendar_question_gone")]
    row.deleted_at = ctx.now
    future = [await view(ctx.uow, a) for a in await future_of_service(ctx, row.id)]
    await ctx.audit("service_deleted", f"service:{row.id}", name=row.name, future_appointments=len(future))
    return [ctx.say("calendar_service_deleted", service=row, appointments=future)]
