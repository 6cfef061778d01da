"""The webhook's durable inbox: each update is stored before Telegram hears 200, and any worker may claim it.

A worker claims the oldest unhandled update of a sender that has no older unhandled update and no other
live claim, with a lease; it marks the update handled in the transaction that holds the desk's answer. A
crash before that commit leaves the claim to run out and another worker handles the update; a crash after
it cannot answer twice. Telegram's redelivery of a stored update_id is stored once (ON CONFLICT DO NOTHING).

A claim is its update's count of claims: only a new claim (after the lease ran out) changes it, so the worker
that holds it renews it (bot/telegram/lease.py) and settles it by that count, whatever the renewals made of
its claimed_until. Once answered, the sender's claim is held by its claimed_until, shared with the outbox
rows the answer queued, and renewed with them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from handlers.context import Clock
from handlers.router import Stale
from storage.db import Store, UnitOfWork
from storage.dialect import insert_ignoring_conflicts
from storage.models import Outbox, TelegramUpdate

LEASE = timedelta(seconds=60)  # renewed while an update is answered: a claim that runs out is taken over
MAX_CLAIMS = 5  # an update whose workers died this often is dropped: it would block its sender for good


@dataclass(frozen=True)
class Claimed:
    """An update this worker may handle until `claimed_until`."""

    update_id: int
    sender: str
    body: dict[str, Any]
    claimed_until: datetime  # as claimed; renewals move it on
    claims: int  # this claim included: it tells this claim from any later one


def update_sender(body: dict[str, Any]) -> str:
    """Whose turn an update waits for, read from its JSON: its user (as the desk names the sender), else its
    chat; updates with neither share one line."""
    for value in body.values():
        if not isinstance(value, dict):
            continue
        user, chat = value.get("from"), value.get("chat")
        if isinstance(user, dict) and isinstance(user.get("id"), int):
            return f"telegram:{user['id']}"
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return f"chat:{chat['id']}"
    return "update"


class UpdateInbox:
    """The telegram_update table: store, claim, settle."""

    def __init__(self, store: Store, clock: Clock, lease: timedelta = LEASE):
        self.store = store
        self.clock = clock
        self.lease = lease

    async def take(self, body: dict[str, Any]) -> None:
        """Store an update unless its update_id is stored already; committed when this returns."""
        async with self.store.uow() as uow:
            await uow.session.execute(
                insert_ignoring_conflicts(uow.dialect, TelegramUpdate, ["update_id"]).values(
                    update_id=body["update_id"], sender=update_sender(body), body=body,
                    received_at=self.clock.now(), claims=0))
            await uow.commit()

    async def claim(self) -> Claimed | None:
        """Claim the oldest update whose sender has nothing older waiting and nothing else claimed, or None."""
        now = self.clock.now()
        row, other = aliased(TelegramUpdate), aliased(TelegramUpdate)
        free = or_(row.claimed_until.is_(None), row.claimed_until < now)
        # An answered update stays claimed until its answer is sent: the next one's answer must come after it.
        waits = exists().where(other.sender == row.sender, or_(
            and_(other.handled_at.is_(None), other.update_id < row.update_id), other.claimed_until >= now))
        # SKIP LOCKED: on PostgreSQL a worker passes over an update another one is claiming right now (SQLite
        # has one writer at a time anyway); the UPDATE checks again that it is free: that update is the claim.
        first = (select(row.update_id).where(row.handled_at.is_(None), free, ~waits)
                 .order_by(row.update_id).limit(1).with_for_update(skip_locked=True))
        table = TelegramUpdate
        async with self.store.uow() as uow:
            found = (await uow.session.execute(
                update(table).where(table.update_id == first.scalar_subquery(), table.handled_at.is_(None),
                                    or_(table.claimed_until.is_(None), table.claimed_until < now))
                .values(claimed_until=now + self.lease, claims=table.claims + 1)
                .returning(table.update_id, table.sender, table.body, table.claimed_until, table.claims))).first()
            await uow.commit()
        return None if found is None else Claimed(*found)

    async def settle(self, uow: UnitOfWork, claimed: Claimed, sending: bool = True) -> datetime | None:
        """Mark the update handled and empty its body, in the caller's transaction; Stale if the claim was
        taken over meanwhile (then nothing of this handling may be kept). While its answer is `sending`, the
        sender stays claimed for another lease, until `release`; the time that claim ends is returned."""
        table = TelegramUpdate
        until = self.clock.now() + self.lease if sending else None
        result = cast(CursorResult, await uow.session.execute(
            update(table).where(table.update_id == claimed.update_id, table.handled_at.is_(None),
                                table.claims == claimed.claims)
            .values(handled_at=self.clock.now(), claimed_until=until, body={})
            .execution_options(synchronize_session=False)))
        if result.rowcount != 1:
            raise Stale(f"update {claimed.update_id}: the claim ran out and was taken over")
        return until

    async def renew(self, claimed: Claimed) -> bool:
        """Extend the claim on an update not answered yet by another lease from now; False if another worker
        claimed it meanwhile (and then nothing changes). An update this worker's answer settled meanwhile is
        left as the settlement made it: its sender's claim is renewed by `renew_sending`."""
        table = TelegramUpdate
        async with self.store.uow() as uow:
            result = cast(CursorResult, await uow.session.execute(
                update(table).where(table.update_id == claimed.update_id, table.handled_at.is_(None),
                                    table.claims == claimed.claims)
                .values(claimed_until=self.clock.now() + self.lease).execution_options(synchronize_session=False)))
            if result.rowcount == 1:
                await uow.commit()
                return True
            claims = await uow.session.scalar(select(table.claims).where(table.update_id == claimed.update_id))
        return claims == claimed.claims

    async def renew_sending(self, update_id: int, until: datetime,
                            rows: list[int]) -> tuple[datetime, set[int]] | None:
        """Extend the sender's claim that ends at `until` (an answered update's) by another lease from now, and
        with it the claim of the outbox `rows` queued under it, in one transaction: the new end and the rows
        extended (one sent or taken by another worker is left alone). None if the sender's claim ran out or is
        not this one any more: another worker may have taken the sender's next update; nothing changes then."""
        now = self.clock.now()
        later = now + self.lease
        table = TelegramUpdate
        async with self.store.uow() as uow:
            result = cast(CursorResult, await uow.session.execute(
                update(table).where(table.update_id == update_id, table.claimed_until == until,
                                    table.claimed_until >= now)
                .values(claimed_until=later).execution_options(synchronize_session=False)))
            if result.rowcount != 1:
                return None
            extended: set[int] = set()
            if rows:
                extended = set((await uow.session.scalars(
                    update(Outbox).where(Outbox.id.in_(rows), Outbox.status == "pending",
                                         Outbox.claimed_until == until)
                    .values(claimed_until=later).returning(Outbox.id)
                    .execution_options(synchronize_session=False))).all())
            await uow.commit()
        return later, extended

    async def release(self, update_id: int, until: datetime | None) -> None:
        """Let the sender's next update be claimed: this one's answer went out (or was left to the outbox)."""
        if until is None:
            return
        table = TelegramUpdate
        async with self.store.uow() as uow:
            await uow.session.execute(
                update(table).where(table.update_id == update_id, table.claimed_until == until)
                .values(claimed_until=None).execution_options(synchronize_session=False))
            await uow.commit()
