"""A worker's claim on one stored update, renewed from claim to release so that a slow answer keeps it.

Every third of the lease the claim is extended by a conditional UPDATE that only matches the claim this
worker holds: the update's count of claims before it is answered, then the sender's claimed_until, which the
outbox rows its answer queued share; those rows are extended in the same transaction, so the outbox never
finds them free while the sender is still held. A renewal that finds the claim lost says so and stops: another
worker may then answer the update, or send its answer, a second time.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from bot.telegram.inbox import Claimed, UpdateInbox
from storage.models import Outbox

log = logging.getLogger(__package__)  # the whole Telegram edge logs as "bot.telegram"

RENEW_EVERY = 3  # renewals per lease: one that comes late, or fails once, still comes in time


class Lease:
    """This worker's claim on `claimed`, kept while it is answered; `start`, then always `stop`."""

    def __init__(self, inbox: UpdateInbox, claimed: Claimed):
        self.inbox = inbox
        self.claimed = claimed
        # Held by every look at or write of the queued rows' claim here and in the outbox (deliver_claimed),
        # so that a renewal never falls between the two and the rows' claimed_until in memory stays the stored one.
        self.guard = asyncio.Lock()
        self.until: datetime | None = None  # once answered: when the sender's claim (and its rows') ends
        self.rows: list[Outbox] = []
        self._stopped = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep())

    def sending(self, until: datetime | None, queued: list[Outbox | None]) -> None:
        """The answer is settled: renew the sender's claim that ends at `until` from now on, with the rows
        queued under it; with no `until` nothing is left to hold."""
        self.until = until
        self.rows = [row for row in queued if row is not None]
        if until is None:
            self._stopped.set()

    async def stop(self) -> None:
        """Stop renewing: a renewal under way finishes first (it is cancelled with the caller)."""
        self._stopped.set()
        task, self._task = self._task, None
        if task is not None:
            await task

    async def _keep(self) -> None:
        interval = self.inbox.lease.total_seconds() / RENEW_EVERY
        while True:
            try:
                await asyncio.wait_for(self._stopped.wait(), interval)
                return
            except TimeoutError:
                pass
            try:
                if not await self.renew():
                    return
            except Exception:  # noqa: BLE001 - the database is away: the next renewal may still come in time
                log.warning("renewing the claim on Telegram update %s failed", self.claimed.update_id, exc_info=True)

    async def renew(self) -> bool:
        """Extend the claim by another lease from now; False, with a warning, once it is lost."""
        claimed = self.claimed
        if self.until is None:
            if await self.inbox.renew(claimed):
                return True
            log.warning("Telegram update %s of %s: another worker took over its claim while it was being answered;"
                        " that worker answers it again", claimed.update_id, claimed.sender)
            return False
        async with self.guard:
            held = [row for row in self.rows if row.claimed_until == self.until]
            renewed = await self.inbox.renew_sending(claimed.update_id, self.until, [row.id for row in held])
            if renewed is None:
                log.warning("Telegram update %s of %s: the sender's claim ran out before the answer went out;"
                            " another worker may send it again, or answer the next update first",
                            claimed.update_id, claimed.sender)
                return False
            self.until, extended = renewed
            for row in held:
                if row.id in extended:
                    row.claimed_until = self.until
                else:  # still pending, yet another worker's outbox took it: it may go out twice
                    log.warning("outbox row %s (an answer to Telegram update %s) was taken over before it was sent;"
                                " it may be sent twice", row.id, claimed.update_id)
        return True
