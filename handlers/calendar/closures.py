"""Closures (sick, vacation, pause): close at once, or list what would be cancelled and ask first."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from handlers.appointments import lock_calendars, release
from handlers.calendar.appoint import live_between
from handlers.calendar.lookup import find_staff
from handlers.calendar.question import FLOW, MESSAGE_TTL, SILENT, confirm_choices, settle_pending
from handlers.calendar.rights import Actor, Member, actor, myself, require
from handlers.calendar.views import ClosureView
from handlers.calendar.words import EVERYONE_WORDS, ClosureRequest, Invalid, closure_window, parse_off, parse_pause
from handlers.context import Context, new_key
from handlers.messages import Reply
from handlers.notices import view
from handlers.rules.words import fold, split_words
from storage.models import Appointment, Closure, Person


async def off(ctx: Context, args: str) -> list[Reply]:
    """`off sick|vacation FROM [TO] [STAFF|all]`: whole days closed for online booking."""
    return await close(ctx, parse_off(split_words(args)))


async def pause(ctx: Context, args: str) -> list[Reply]:
    """`pause DATE HH:MM-HH:MM [STAFF|all]`: hours closed for online booking."""
    return await close(ctx, parse_pause(split_words(args)))


async def close(ctx: Context, request: ClosureRequest) -> list[Reply]:
    """Close at once if nothing is booked inside; else list what would be cancelled and ask first."""
    staff = await closure_target(ctx, await actor(ctx), request.who)
    start, end = closure_window(request, ZoneInfo(ctx.tz))
    if end <= ctx.now:
        raise Invalid("past", value=request.first.isoformat())
    spec = {"kind": request.kind, "staff_id": staff.id if staff else None, "start": start.isoformat(),
            "end": end.isoformat()}
    await lock_calendars(ctx.uow, [staff.id] if staff else None, closing=True)  # holds wait, or are seen
    found = await live_between(ctx, start, end, [staff.id] if staff else None)
    replies = await settle_pending(ctx)
    if not found:
        closure = await create_closure(ctx, spec)
        return replies + [ctx.say("calendar_closed", closure=await closure_view(ctx, closure), cancelled=0)]
    return replies + await ask_closure(ctx, spec, found, changed=False)


async def closure_target(ctx: Context, me: Actor, who: str | None) -> Member | None:
    """A provider closes their own calendar; an admin anyone's, or (with 'all') the whole business."""
    if who is None:
        if not me.has_calendar:
            require(me.admin, "own_calendar")
            raise Invalid("closure_who")
        return myself(ctx, me)
    if fold(who) in EVERYONE_WORDS:
        require(me.admin, "admin")
        return None
    staff = await find_staff(ctx, who)
    require(staff.id == me.person_id or me.admin, "admin")
    if not staff.has_calendar:
        raise Invalid("no_calendar", value=staff.name)
    return staff


async def ask_closure(ctx: Context, spec: dict, found: list[Appointment], changed: bool) -> list[Reply]:
    nonce = new_key()
    await ctx.start_flow(FLOW, "closure", {"nonce": nonce, **spec, "ids": [a.id for a in found]})
    views = [await view(ctx.uow, a) for a in found]
    return [ctx.say("calendar_closure_ask", closure=await spec_view(ctx, spec), appointments=views, changed=changed,
                    choices=confirm_choices(ctx, nonce))]


async def confirm_closure(ctx: Context, data: dict) -> list[Reply]:
    """Cancel what lies inside, close, then ask for the one personal message to the customers."""
    spec = {key: data[key] for key in ("kind", "staff_id", "start", "end")}
    start, end = datetime.fromisoformat(spec["start"]), datetime.fromisoformat(spec["end"])
    staff_ids = None if spec["staff_id"] is None else [spec["staff_id"]]
    await lock_calendars(ctx.uow, staff_ids, closing=True)  # a hold made at this moment is in `found`
    found = await live_between(ctx, start, end, staff_ids, lock=True)
    if {a.id for a in found} - set(data["ids"]):  # booked since the question: show the new list first
        return await ask_closure(ctx, spec, found, changed=True)
    for appointment in found:
        await cancel(ctx, appointment, spec["kind"])
    closure = await create_closure(ctx, spec)
    if not found:
        await ctx.end_flow()
        return [ctx.say("calendar_closed", closure=await closure_view(ctx, closure), cancelled=0)]
    nonce = new_key()
    await ctx.start_flow(FLOW, "closure_message", {"nonce": nonce, "ids": [a.id for a in found]}, ttl=MESSAGE_TTL)
    return [ctx.say("calendar_closed", closure=await closure_view(ctx, closure), cancelled=len(found),
                    choices=[ctx.choice("calendar.no_message", f"{SILENT} {nonce}")])]


async def cancel(ctx: Context, appointment: Appointment, reason: str) -> None:
    """Cancel one appointment for a closure; the row stays, with who and why."""
    await release(ctx.uow, appointment, "cancelled", ctx.sender, reason, ctx.now)
    appointment.sequence += 1  # the CANCEL invitation must outrank the one the customer has
    await ctx.audit("appointment_cancelled", f"appointment:{appointment.id}", reason=reason)


async def create_closure(ctx: Context, spec: dict) -> Closure:
    """Store the closure that keeps online booking out of this time."""
    closure = Closure(staff_id=spec["staff_id"], kind=spec["kind"], start_at=datetime.fromisoformat(spec["start"]),
                      end_at=datetime.fromisoformat(spec["end"]), created_by=ctx.sender, created_at=ctx.now)
    ctx.session.add(closure)
    await ctx.session.flush()
    await ctx.audit("closure_created", f"closure:{closure.id}", kind=closure.kind, staff=closure.staff_id,
                    start=spec["start"], end=spec["end"])
    return closure


async def closure_view(ctx: Context, closure: Closure) -> ClosureView:
    staff = await ctx.session.get(Person, closure.staff_id) if closure.staff_id else None
    return ClosureView(closure.kind, closure.start_at, closure.end_at, staff.name if staff else None)


async def spec_view(ctx: Context, spec: dict) -> ClosureView:
    staff = await ctx.session.get(Person, spec["staff_id"]) if spec["staff_id"] else None
    return ClosureView(spec["kind"], datetime.fromisoformat(spec["start"]), datetime.fromisoformat(spec["end"]),
                       staff.name if staff else None)
