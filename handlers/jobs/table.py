"""Scheduling jobs: one row per reason, so a job is never there twice (kind + key are unique)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete

from handlers.context import table
from storage.db import UnitOfWork
from storage.dialect import insert_ignoring_conflicts
from storage.models import Job


@dataclass(frozen=True)
class Due:
    """A job as the code that runs it sees it."""

    id: int
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int  # this try included


async def schedule(uow: UnitOfWork, kind: str, key: str, due_at: datetime, now: datetime,
                   payload: dict[str, Any] | None = None) -> bool:
    """Add a job unless one with this kind and key exists (done or not); True when it was added."""
    statement = insert_ignoring_conflicts(uow.dialect, table(Job), ["kind", "key"]).returning(table(Job).c.id)
    added = await uow.session.scalar(statement, dict(
        kind=kind, key=key, due_at=due_at, payload=payload or {}, attempts=0, created_at=now))
    return added is not None


async def drop(uow: UnitOfWork, kind: str, key_prefix: str) -> int:
    """Forget the jobs of a kind whose key starts with `key_prefix` and that have not run; how many went."""
    jobs = table(Job).c
    gone = cast(CursorResult, await uow.session.execute(delete(table(Job)).where(
        jobs.kind == kind, jobs.key.startswith(key_prefix, autoescape=True),
        jobs.done_at.is_(None), jobs.failed_at.is_(None))))
    return gone.rowcount
