"""`jobs`: what the admins see of work that runs at a time: how much waits, and every job that gave up."""
from __future__ import annotations

from typing import cast

from sqlalchemy import CursorResult, func, select, update

from handlers.context import Context, Refusal, table
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.rules.roles import ADMINS
from handlers.rules.words import parse_id, split_first
from storage.models import Job

SHOWN = 20


async def show_jobs(ctx: Context, args: str) -> list[Reply]:
    """`jobs`: waiting and failed jobs; `jobs retry ID` tries a failed one again now."""
    word, rest = split_first(args)
    if word.lower() in ("retry", "wiederholen"):
        return await retry(ctx, rest)
    if word:
        raise Refusal("jobs_usage")
    jobs = table(Job).c
    waiting = await ctx.session.scalar(select(func.count()).where(jobs.done_at.is_(None), jobs.failed_at.is_(None)))
    overdue = await ctx.session.scalar(select(func.count()).where(
        jobs.done_at.is_(None), jobs.failed_at.is_(None), jobs.due_at <= ctx.now))
    failed = (await ctx.session.scalars(select(Job).where(Job.failed_at.is_not(None))
                                        .order_by(Job.failed_at.desc(), Job.id.desc()).limit(SHOWN))).all()
    return [ctx.say("jobs_list", waiting=waiting, overdue=overdue, failed=failed)]


async def retry(ctx: Context, args: str) -> list[Reply]:
    job_id = parse_id(args.strip())
    if job_id is None:
        raise Refusal("jobs_usage")
    jobs = table(Job).c
    again = cast(CursorResult, await ctx.session.execute(update(table(Job)).where(
        jobs.id == job_id, jobs.failed_at.is_not(None)).values(
        failed_at=None, attempts=0, due_at=ctx.now, lease_until=None)))
    if again.rowcount != 1:
        raise Refusal("jobs_not_failed", id=job_id)
    await ctx.audit("job_retried", f"job:{job_id}")
    return [ctx.say("jobs_retried", id=job_id)]


def handlers() -> Handlers:
    return Handlers(commands=[
        Command("jobs", show_jobs, allowed=ADMINS, aliases=("auftraege",), section="admin"),
    ])
