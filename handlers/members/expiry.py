"""Invitations run out at their time: the job scheduled for an expiry time fails whoever is still pending."""
from __future__ import annotations

from handlers.context import Context
from handlers.jobs.table import Due
from handlers.members.membership import EXPIRY_JOB, expire_invitations


async def run_expiry(ctx: Context, due: Due) -> str | None:
    if await expire_invitations(ctx.uow, ctx.now):
        return None
    return "every invitation due then was accepted, renewed or had failed already"


JOBS = {EXPIRY_JOB: run_expiry}
