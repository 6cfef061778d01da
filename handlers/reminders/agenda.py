"""The daily agenda: at the staff member's time, that day's appointments go to their chat (else their
confirmed email), and the next day's agenda is scheduled."""
from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from handlers.calendar.lookup import locations
from handlers.calendar.rights import CALENDAR_KINDS
from handlers.calendar.views import closures_between, entries_between
from handlers.context import Context
from handlers.jobs.table import Due
from handlers.reminders.schedule import schedule_agenda
from handlers.rules.availability import day_bounds
from storage.models import Person, Staff

COLLEAGUES_RIGHT = "book_for_colleagues"


async def run_agenda(ctx: Context, due: Due) -> str | None:
    """Send the day's agenda and schedule the next one; a day already over is skipped, not sent late."""
    staff = await ctx.session.get(Staff, due.payload["staff"])
    if staff is None or staff.agenda_minute is None:
        return "the agenda was turned off"
    tz = ZoneInfo(ctx.tz)
    day = date.fromisoformat(due.payload["day"])
    if staff.agenda_minute != due.payload["minute"] or tz.key != due.payload["tz"]:
        # The setup changed the time as this job was claimed: it schedules the new one; should this job have
        # been scheduled after that, the chain goes on at the new time all the same.
        await schedule_agenda(ctx.uow, staff.person_id, staff.agenda_minute, tz, ctx.now, day)
        return "the agenda's time changed"
    await schedule_agenda(ctx.uow, staff.person_id, staff.agenda_minute, tz, ctx.now, day + timedelta(days=1))
    start, end = day_bounds(day, tz)
    if end <= ctx.now:
        return f"{day.isoformat()} was over before its agenda could go out"
    scope = None if staff.kind not in CALENDAR_KINDS and COLLEAGUES_RIGHT in (staff.rights or []) else [staff.person_id]
    entries = [e for e in await entries_between(ctx, start, end, scope) if e.status != "held"]
    closures = await closures_between(ctx, start, end, scope)
    person = await ctx.session.get_one(Person, staff.person_id)
    told = await ctx.tell(staff.person_id, "agenda", day=day, who=person.name, entries=entries, closures=closures,
                          everyone=scope is None, many_locations=len(await locations(ctx)) > 1)
    return None if told else "the staff member has no chat and no confirmed email address"
