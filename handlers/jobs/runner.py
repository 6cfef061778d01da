"""The job runner: claims due jobs with one conditional UPDATE, runs each with its completion in one
transaction, retries a failure with backoff and gives up visibly after the last try.

Exactly once: the claim only leases a job (so a crash is retried, and a job that kills its worker still
counts its tries); the run's own transaction first marks the job done with a conditional UPDATE and commits
that together with the job's effect. Two workers that both hold a lease (the first one slow) cannot both
get past that UPDATE: on PostgreSQL the second waits for the first's row lock and then finds the job done,
on SQLite writers take turns.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, bindparam, or_, select, update

from handlers.context import Context, table
from handlers.jobs.table import Due
from handlers.messages import Inbound
from handlers.registry import JobRun
from handlers.router import Desk
from handlers.speaking import reply_language
from storage.db import UnitOfWork
from storage.models import Audit, Business, Job, Person, UTCDateTime

log = logging.getLogger(__name__)

SYSTEM = "system:jobs"
MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=5)
BATCH = 20
ERROR_CHARS = 2000


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 … minutes after the n-th failed try, at most an hour."""
    return timedelta(minutes=min(2 ** (attempts - 1), 60))


def claim_statement(dialect: str):
    """Lease up to BATCH due jobs that nobody holds, in one statement; returns what was leased."""
    jobs = table(Job).c
    due = (select(jobs.id).where(jobs.done_at.is_(None), jobs.failed_at.is_(None), jobs.due_at <= _now(),
                                 or_(jobs.lease_until.is_(None), jobs.lease_until <= _now()))
           .order_by(jobs.due_at, jobs.id).limit(BATCH))
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (update(table(Job)).where(jobs.id.in_(due.scalar_subquery()))
            .values(lease_until=_lease_until(), attempts=jobs.attempts + 1)
            .returning(jobs.id, jobs.kind, jobs.key, jobs.due_at, jobs.payload, jobs.attempts))


def _now():
    return bindparam("now", type_=UTCDateTime())


def _lease_until():
    return bindparam("lease_until", type_=UTCDateTime())


class JobRunner:
    def __init__(self, desk: Desk, kinds: Mapping[str, JobRun], max_attempts: int = MAX_ATTEMPTS,
                 lease: timedelta = LEASE):
        self.desk = desk
        self.kinds = kinds
        self.max_attempts = max_attempts
        self.lease = lease

    async def run_due(self) -> int:
        """Claim what is due now and run it; how many jobs were finished (done, skipped or failed)."""
        finished = 0
        while True:
            claimed = await self.claim()
            for due in claimed:
                finished += await self.run_one(due)
            if len(claimed) < BATCH:
                return finished

    async def claim(self) -> list[Due]:
        now = self.desk.clock.now()
        async with self.desk.store.uow() as uow:
            rows = (await uow.session.execute(claim_statement(uow.dialect),
                                              {"now": now, "lease_until": now + self.lease})).all()
            await uow.commit()
        return [Due(row.id, row.kind, row.key, row.due_at, dict(row.payload or {}), row.attempts) for row in rows]

    async def run_one(self, due: Due) -> int:
        now = self.desk.clock.now()
        try:
            async with self.desk.store.uow() as uow:
                if not await self.mark_done(uow, due, now):
                    return 0  # another worker finished it meanwhile
                run = self.kinds.get(due.kind)
                if run is None:
                    raise LookupError(f"no code runs jobs of kind {due.kind!r}")
                reason = await run(await job_context(uow, self.desk, now), due)
                if reason:
                    await uow.session.execute(update(table(Job)).where(table(Job).c.id == due.id)
                                              .values(outcome=f"skipped: {reason}"[:400]))
                    log.info("job %s %s (%s): nothing to do: %s", due.id, due.kind, due.key, reason)
                await uow.commit()
            return 1
        except Exception as exc:  # noqa: BLE001 - a job's failure is recorded, never lost; the worker goes on
            return await self.record_failure(due, exc)

    async def mark_done(self, uow: UnitOfWork, due: Due, now: datetime) -> bool:
        jobs = table(Job).c
        done = cast(CursorResult, await uow.session.execute(
            update(table(Job)).where(jobs.id == due.id, jobs.done_at.is_(None), jobs.failed_at.is_(None))
            .values(done_at=now, lease_until=None, outcome="done")))
        return done.rowcount == 1

    async def record_failure(self, due: Due, exc: Exception) -> int:
        now = self.desk.clock.now()
        error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        give_up = due.attempts >= self.max_attempts
        jobs = table(Job).c
        async with self.desk.store.uow() as uow:
            values: dict = dict(last_error=error, lease_until=None)
            if give_up:
                values["failed_at"] = now
            else:
                values["due_at"] = now + backoff(due.attempts)
            await uow.session.execute(update(table(Job)).where(
                jobs.id == due.id, jobs.done_at.is_(None), jobs.failed_at.is_(None)).values(**values))
            if give_up:
                await uow.session.execute(table(Audit).insert(), dict(
                    at=now, actor=SYSTEM, person_id=None, channel="system", action="job_failed",
                    subject=f"job:{due.id}", detail={"kind": due.kind, "key": due.key, "error": error}))
            await uow.commit()
        if give_up:
            log.error("job %s %s (%s) gave up after %d tries: %s", due.id, due.kind, due.key, due.attempts, error,
                      exc_info=exc)
            return 1
        log.warning("job %s %s (%s) failed (try %d of %d), again at %s: %s", due.id, due.kind, due.key,
                    due.attempts, self.max_attempts, values["due_at"].isoformat(), error, exc_info=exc)
        return 0


async def job_context(uow: UnitOfWork, desk: Desk, now: datetime) -> Context:
    """A context for work nobody wrote in for: the desk itself speaks, in the business's language."""
    business = await uow.session.get(Business, 1)
    nobody = Person(name=business.name if business else None)  # never added: the desk is no person
    inbound = Inbound(channel="system", sender=SYSTEM, received_at=now)
    ctx = Context(inbound, uow, desk.config, now, nobody, set(), business, None, desk)
    ctx.lang = reply_language(None, business, desk.config.default_language)
    return ctx
