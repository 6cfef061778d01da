"""The outbox worker: claims due rows, sends them through their channel, retries with backoff.

Sent rows are recorded in groups of up to RECORD_EVERY (one UPDATE and one commit per group), and always
before the next claim. A crash repeats at most the rows sent but not yet recorded: up to RECORD_EVERY (10)
mails per worker, sent again once their claim ran out. A failure is recorded at once, with its own backoff.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, CursorResult, bindparam, or_, select, true, update

from bot.periodic import repeat
from bot.transport import PermanentFailure, Transport
from handlers.bounces import BounceHook, bounced
from handlers.context import Clock, SystemClock, table
from storage.db import Store, UnitOfWork
from storage.models import Outbox

log = logging.getLogger(__name__)

# A claim expires so that a crashed worker's rows are retried by another one.
CLAIM = timedelta(seconds=120)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
MAX_ERROR_CHARS = 2000
# Sent rows recorded per commit: a commit per mail halves throughput, and a crash resends what sent
# rows were not recorded yet, so the group stays small (5 cost a tenth of the throughput on PostgreSQL).
RECORD_EVERY = 10


# One claim holds every row of a batch with the same claimed_until: a row still holding it is still ours.
# On the table, not the class: the ORM's bulk-update layer made a statement that loads nothing cost more.
OUTBOX = table(Outbox).c
SENT = (update(table(Outbox))
        .where(OUTBOX.id.in_(bindparam("ids", expanding=True)), OUTBOX.status == "pending",
               OUTBOX.claimed_until == bindparam("claimed"))
        .values(status="sent", sent_at=bindparam("sent_at"), attempts=OUTBOX.attempts + 1, claimed_until=None,
                last_error=None)
        .returning(OUTBOX.id))


def backoff(attempts: int) -> timedelta:
    """The wait before the next try after `attempts` failed ones: 30 s, 1 min, 2 min, … at most 1 h."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:MAX_ERROR_CHARS]


class OutboxWorker:
    """Delivers outbox rows; any number of workers may run against one database."""

    def __init__(self, store: Store, transports: dict[str, Transport], clock: Clock | None = None,
                 max_attempts: int = 8, batch: int = 100, scope: Callable[[], ColumnElement[bool]] | None = None,
                 bounces: Mapping[str, BounceHook] | None = None):
        """`scope`, asked anew each round, narrows which rows this worker takes (all of its channels' by default);
        `bounces` say what a mail's permanent refusal means to the capability that sent it (handlers/bounces)."""
        self.bounces = bounces or {}
        self.store = store
        self.scope = scope or true
        self.transports = transports
        self.clock = clock or SystemClock()
        self.max_attempts = max_attempts
        self.batch = batch
        self._unrouted: set[str] = set()

    async def deliver_due(self) -> int:
        """Send every row that is due now and not claimed by another worker; return how many went out."""
        return (await self._deliver_batch())[1]

    async def drain(self) -> int:
        """Deliver until nothing is due now; return how many went out."""
        total = 0
        while True:
            claimed, sent = await self._deliver_batch()
            total += sent
            if claimed == 0:
                return total

    async def deliver_claimed(self, rows: list[Outbox], guard: asyncio.Lock | None = None) -> int:
        """Send rows the caller queued already claimed (an answer sent at once, yet safe in the outbox), in
        order; a failure leaves a row to the retries. Return how many went out (and were recorded).
        `guard`, if given, is held whenever the rows' claim is looked at or ended here: whoever renews that
        claim holds it too (bot/telegram/lease.py), so no renewal falls between a look and its write."""
        guard = guard or asyncio.Lock()
        sent: list[Outbox] = []
        try:
            for row in rows:
                async with guard:
                    if row.claimed_until is None or self.clock.now() >= row.claimed_until:
                        break  # the claim ran out: another worker sends this row and the ones after it, in order
                if await self._deliver(row, guard):
                    sent.append(row)
        finally:
            async with guard:
                recorded = await self._record_sent(sent)
        return recorded

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Deliver every `interval` seconds until `stop` is set; an error waits for the next round."""
        await repeat(self.drain, stop, interval, "outbox round")

    async def given_up(self) -> list[Outbox]:
        """Rows that will not be tried again, oldest first."""
        async with self.store.uow() as uow:
            rows = await uow.session.scalars(select(Outbox).where(Outbox.status == "given_up").order_by(Outbox.id))
            return list(rows)

    async def close(self) -> None:
        """Close every transport once."""
        for transport in {id(t): t for t in self.transports.values()}.values():
            await transport.close()

    async def _deliver_batch(self) -> tuple[int, int]:
        rows = await self._claim()
        sent: list[Outbox] = []  # sent, not yet recorded
        recorded = 0
        try:
            for row in rows:
                if row.claimed_until is None or self.clock.now() >= row.claimed_until:
                    continue  # the claim ran out while earlier rows were sent; another worker may own it
                if await self._deliver(row):
                    sent.append(row)
                if len(sent) >= RECORD_EVERY:
                    recorded += await self._record_sent(sent)
                    sent = []
        finally:
            # Before the next claim, and on the way out of a failing round too: the fewer sent rows
            # wait unrecorded, the fewer a crash can repeat.
            recorded += await self._record_sent(sent)
        return len(rows), recorded

    async def _claim(self) -> list[Outbox]:
        """Claim up to `batch` due rows and commit, so no other worker sends them meanwhile."""
        now = self.clock.now()
        async with self.store.uow() as uow:
            await self._warn_unrouted(uow, now)
            # SKIP LOCKED: on PostgreSQL a worker passes over rows another worker is claiming right now
            # (SQLite has one writer at a time anyway). The UPDATE checks again that each row is free:
            # that conditional UPDATE is the claim. MATERIALIZED: as a plain subquery PostgreSQL may run
            # the locking read more than once and claim far more than `batch` rows.
            due = (select(Outbox.id).where(*self._due(now), Outbox.channel.in_(list(self.transports)), self.scope())
                   .order_by(Outbox.next_attempt_at, Outbox.id).limit(self.batch)
                   .with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED"))
            rows = (await uow.session.scalars(
                update(Outbox).where(Outbox.id.in_(select(due.c.id)), *self._due(now))
                .values(claimed_until=now + CLAIM).returning(Outbox)
                .execution_options(synchronize_session=False))).all()
            await uow.commit()
        return sorted(rows, key=lambda row: row.id)

    @staticmethod
    def _due(now: datetime) -> tuple:
        free = or_(Outbox.claimed_until.is_(None), Outbox.claimed_until < now)
        return Outbox.status == "pending", Outbox.next_attempt_at <= now, free

    async def _warn_unrouted(self, uow, now: datetime) -> None:
        """Log once per channel that due rows wait for a transport nobody configured."""
        channels = set(await uow.session.scalars(
            select(Outbox.channel).distinct().where(*self._due(now), Outbox.channel.not_in(list(self.transports)))
        ))
        for channel in channels - self._unrouted:
            log.warning("outbox rows for channel %r stay pending: no transport is configured for it", channel)
        self._unrouted |= channels

    async def _deliver(self, row: Outbox, guard: asyncio.Lock | None = None) -> bool:
        """Send one claimed row; whether it went out. A failure is recorded at once (holding `guard`, if
        given), a success by the caller."""
        try:
            await self.transports[row.channel].send(row)
        except Exception as exc:  # noqa: BLE001 - any failure of one row must not stop the others
            async with guard or contextlib.nullcontext():
                await self._record_failure(row, exc)
            return False
        return True

    async def _record_sent(self, rows: list[Outbox]) -> int:
        """Mark sent rows in one UPDATE and release their claims; a row whose claim was lost meanwhile
        (another worker holds it now) is left alone. Return how many were marked."""
        if not rows:
            return 0
        async with self.store.uow() as uow:
            marked = set((await uow.session.scalars(
                SENT, {"ids": [row.id for row in rows], "claimed": rows[0].claimed_until,
                       "sent_at": self.clock.now()})).all())
            await uow.commit()
        for row in rows:
            if row.id not in marked:
                log.warning("outbox row %s: claim was lost before its outcome was stored", row.id)
            else:
                row.claimed_until = None  # as stored: a renewer of the claim leaves this row alone
        return len(marked)

    async def _record_failure(self, row: Outbox, exc: Exception) -> None:
        """Schedule the next try with backoff, or give up after a permanent failure or too many tries."""
        attempts = row.attempts + 1
        give_up = isinstance(exc, PermanentFailure) or attempts >= self.max_attempts
        if give_up:
            log.warning("outbox row %s (%s to %s) given up after %d attempt(s): %s",
                        row.id, row.channel, row.recipient, attempts, describe(exc))
        else:
            log.info("outbox row %s failed (attempt %d), retrying: %s", row.id, attempts, describe(exc))
        refused = isinstance(exc, PermanentFailure) and row.channel == "email"
        await self._record(row, status="given_up" if give_up else "pending", last_error=describe(exc),
                           next_attempt_at=self.clock.now() + backoff(attempts),
                           then=(lambda uow: self._bounced(uow, row, exc)) if refused else None)

    async def _bounced(self, uow: UnitOfWork, row: Outbox, exc: Exception) -> None:
        """A mail the server refused for good: its sender's hook decides, with the server's answer."""
        code, _, detail = str(exc).partition(" ")
        status, detail = (code, detail) if code.isdigit() else ("refused", str(exc))
        await bounced(uow, self.bounces, row, status, detail, self.clock.now(), "outbox")

    async def _record(self, row: Outbox, then: Callable[[UnitOfWork], Awaitable[None]] | None = None,
                      **values) -> None:
        """Store a row's outcome and release its claim, unless the claim was lost meanwhile; `then` runs in
        the same transaction once the outcome is stored."""
        async with self.store.uow() as uow:
            # an UPDATE's result is a cursor's, which has rowcount
            result = cast(CursorResult, await uow.session.execute(
                update(Outbox)
                .where(Outbox.id == row.id, Outbox.status == "pending", Outbox.claimed_until == row.claimed_until)
                .values(attempts=Outbox.attempts + 1, claimed_until=None, **values)
                .execution_options(synchronize_session=False)
            ))
            if result.rowcount == 1 and then is not None:
                await then(uow)
            await uow.commit()
        if result.rowcount != 1:
            log.warning("outbox row %s: claim was lost before its outcome was stored", row.id)
        else:
            row.claimed_until = None  # as stored: a renewer of the claim leaves this row alone
