"""The webhook's inbox on SQLite and PostgreSQL: a redelivered update is answered once, two workers never
answer one sender's updates at once and keep their order, and a dead worker's claim is taken over.

Each worker here has its own Store (engine and pool) on the same database, as two processes would; the
answer is queued in the outbox in the transaction that marks the update handled, as bot/telegram/webhook.py
does, so the outbox holds exactly what was answered.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.telegram.inbox import Claimed, UpdateInbox, update_sender
from handlers import identity, welcome
from handlers.messages import Inbound, Reply
from handlers.registry import Command, Handlers
from handlers.router import Desk, Stale
from storage.db import Store, UnitOfWork
from storage.models import Outbox, TelegramUpdate

PAUSE = 0.01  # inside the answer's transaction: time for another worker to barge in, if it could


async def echo(ctx, args: str) -> list[Reply]:
    await asyncio.sleep(PAUSE)
    return [Reply(f"got {args}")]


def make_desk(store: Store, config, clock) -> Desk:
    handlers = Handlers.combine(welcome.handlers(), identity.handlers(),
                                Handlers(commands=[Command("echo", echo, safe=True)]))
    return Desk(store, config, handlers, clock)


def message(update_id: int, user: int, text: str) -> dict:
    """A Telegram update carrying a private message, as the webhook receives it."""
    person = {"id": user, "is_bot": False, "first_name": f"U{user}"}
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 0, "from": person,
                                                "chat": {"id": user, "type": "private"}, "text": text}}


class Worker:
    """One worker's inbox and desk: claim, answer, settle with the answer queued."""

    def __init__(self, store: Store, config, clock, lease: timedelta = timedelta(seconds=30)):
        self.store = store
        self.clock = clock
        self.inbox = UpdateInbox(store, clock, lease)
        self.desk = make_desk(store, config, clock)

    async def answer(self, claimed: Claimed) -> list[Reply]:
        """Answer and queue the answer; the sender stays claimed until it is sent (here: at once)."""
        body = claimed.body["message"]
        inbound = Inbound(channel="telegram", sender=claimed.sender, received_at=self.clock.now(),
                          text=body["text"], language_hint="en")
        held = []

        async def settle(uow: UnitOfWork, replies: list[Reply]) -> None:
            held[:] = [await self.inbox.settle(uow, claimed)]
            now = self.clock.now()
            uow.session.add_all(Outbox(channel="telegram", recipient=claimed.sender, text=r.text, next_attempt_at=now,
                                       created_at=now) for r in replies)

        replies = await self.desk.handle(inbound, settle)
        await self.inbox.release(claimed.update_id, held[0])
        return replies

    async def answer_next(self) -> bool:
        claimed = await self.inbox.claim()
        if claimed is None:
            return False
        await self.answer(claimed)
        return True


async def answers(store: Store) -> dict[str, list[str]]:
    """The queued answers per recipient, in the order they were written."""
    found: dict[str, list[str]] = defaultdict(list)
    async with store.uow() as uow:
        for recipient, text in (await uow.session.execute(
                select(Outbox.recipient, Outbox.text).order_by(Outbox.id))).all():
            found[recipient].append(text)
    return found


async def test_a_redelivered_update_is_stored_once_and_answered_once(store_and_url, config, clock):
    store, url = store_and_url
    other = Store.from_url(url)
    try:
        one, two = Worker(store, config, clock), Worker(other, config, clock)
        update = message(7001, 501, "/echo one")
        await one.inbox.take(update)
        await two.inbox.take(update)  # Telegram posted it again, to the other worker: no 200 had come back
        assert await one.answer_next()
        await two.inbox.take(update)  # and once more after it was answered
        assert not await two.answer_next() and not await one.answer_next()
    finally:
        await other.dispose()
    assert await answers(store) == {"telegram:501": ["got one"]}
    async with store.uow() as uow:
        row = (await uow.session.scalars(select(TelegramUpdate))).one()
    assert row.handled_at is not None and row.body == {}  # the text is not kept once answered


async def test_two_workers_answer_one_senders_updates_one_at_a_time_and_in_order(store_and_url, config, clock):
    store, url = store_and_url
    other = Store.from_url(url)
    users, each = range(601, 605), 6
    busy: set[str] = set()
    overlaps: list[str] = []

    class Watched(Worker):
        async def answer(self, claimed: Claimed) -> list[Reply]:
            if claimed.sender in busy:
                overlaps.append(claimed.sender)
            busy.add(claimed.sender)
            try:
                await asyncio.sleep(PAUSE)  # between the claim and the answer, too
                return await super().answer(claimed)
            finally:
                busy.discard(claimed.sender)

    async def work(worker: Worker) -> None:
        idle = 0
        while idle < 20:
            idle = 0 if await worker.answer_next() else idle + 1
            await asyncio.sleep(0)

    try:
        workers = [Watched(store, config, clock), Watched(other, config, clock)]
        numbers = iter(range(8000, 9000))
        for n in range(each):  # one sender's updates interleaved with the others', as they come
            for user in users:
                await workers[n % 2].inbox.take(message(next(numbers), user, f"/echo {n}"))
        await asyncio.gather(*(work(w) for w in workers for _ in range(3)))
    finally:
        await other.dispose()
    assert overlaps == []
    assert await answers(store) == {f"telegram:{u}": [f"got {n}" for n in range(each)] for u in users}


async def test_a_dead_workers_claim_is_taken_over_after_the_lease_and_its_late_answer_is_dropped(
        store_and_url, config, clock):
    store, url = store_and_url
    other = Store.from_url(url)
    lease = timedelta(seconds=30)
    try:
        dead, alive = Worker(store, config, clock, lease), Worker(other, config, clock, lease)
        await dead.inbox.take(message(9001, 701, "/echo first"))
        await dead.inbox.take(message(9002, 701, "/echo second"))
        await dead.inbox.take(message(9003, 702, "/echo elsewhere"))
        taken = await dead.inbox.claim()
        assert taken is not None and taken.update_id == 9001  # the worker dies now, holding it
        assert await alive.answer_next()  # only the other sender's update is free
        assert not await alive.answer_next()  # 9002 waits behind the claimed 9001
        clock.advance(seconds=29)
        assert not await alive.answer_next()
        clock.advance(seconds=2)
        assert await alive.answer_next() and await alive.answer_next()
        await alive.inbox.take(message(9004, 701, "/echo third"))
        stuck = await alive.inbox.claim()  # this time the worker dies after its answer was committed,
        assert stuck is not None  # before it was sent: the sender stays claimed, for the lease
        async with store.uow() as uow:
            await alive.inbox.settle(uow, stuck)
            await uow.commit()
        await alive.inbox.take(message(9005, 701, "/echo fourth"))
        assert not await alive.answer_next()
        clock.advance(seconds=31)
        assert await alive.answer_next()
        with pytest.raises(Stale):  # the dead worker's answer, had it come back, keeps nothing
            await dead.answer(taken)
    finally:
        await other.dispose()
    assert await answers(store) == {"telegram:702": ["got elsewhere"],
                                    "telegram:701": ["got first", "got second", "got fourth"]}
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(TelegramUpdate).where(
            TelegramUpdate.handled_at.is_(None))) == 0


def test_the_sender_of_an_update_is_its_user_else_its_chat():
    assert update_sender(message(1, 42, "hi")) == "telegram:42"
    press = {"update_id": 2, "callback_query": {"id": "q", "from": {"id": 43}, "data": "k"}}
    assert update_sender(press) == "telegram:43"
    post = {"update_id": 3, "channel_post": {"message_id": 1, "chat": {"id": -100}}}
    assert update_sender(post) == "chat:-100"
    assert update_sender({"update_id": 4}) == "update"


async def test_each_claim_of_an_update_is_counted(store, config, clock):
    inbox = UpdateInbox(store, clock, timedelta(seconds=30))
    await inbox.take(message(9101, 801, "/echo crash"))
    counted = []
    for _ in range(3):  # each worker that took it died
        claimed = await inbox.claim()
        assert claimed is not None and claimed.update_id == 9101
        counted.append(claimed.claims)
        clock.advance(seconds=31)
    assert counted == [1, 2, 3]
