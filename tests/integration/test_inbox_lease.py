"""A claimed update's lease, renewed while it is answered, on SQLite and PostgreSQL: an answer slower than the
lease (slow to make, or slow to send) is answered and sent once and before the sender's next one, though
another worker polls the inbox and its outbox meanwhile; a renewal never takes back a claim another worker
took over; and the renewing stops with the answer, however it ends.

Each worker has its own Store and Application on the same database and the same fake Bot API, as two
processes would; the lease is short and the clock the system's, so that renewals happen as in production.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.telegram.app import build_application
from bot.telegram.inbox import UpdateInbox
from bot.telegram.webhook import InboxWorker
from handlers import identity, welcome
from handlers.context import SystemClock
from handlers.messages import Inbound, Reply
from handlers.registry import Command, Handlers
from handlers.router import Desk
from storage.db import Store
from storage.models import Outbox, TelegramUpdate
from tests.conftest import FakeClock
from tests.e2e.test_telegram import make_settings
from tests.fakebotapi import FakeBotApi, fake_bot_api  # noqa: F401
from tests.helpers import to_chat

LEASE = timedelta(seconds=0.6)  # renewed every 0.2 s
SLOW = 2.0  # seconds: more than three leases
USER = 4901


async def say(ctx, args: str) -> list[Reply]:
    return [Reply(f"said {args}")]


async def dawdle(ctx, args: str) -> list[Reply]:
    """Slow inside the answer's transaction (a slow database); on SQLite every other writer waits meanwhile."""
    await asyncio.sleep(SLOW)
    return [Reply("dawdled")]


async def stall(desk, inbound: Inbound) -> Inbound:
    """Slow work before the answer's transaction (as reading an uploaded list is), for one text only."""
    if inbound.text == "/say slowly":
        await asyncio.sleep(SLOW)
    return inbound


async def start_worker(store: Store, config, fake: FakeBotApi) -> InboxWorker:
    slow = Handlers(commands=[Command("say", say, safe=True), Command("dawdle", dawdle, safe=True)], preparers=[stall])
    handlers = Handlers.combine(welcome.handlers(), identity.handlers(), slow)
    desk = Desk(store, config, handlers, SystemClock())
    app = build_application(make_settings(fake, telegram_typing_after_seconds=30), desk)
    await app.initialize()
    return InboxWorker(app, UpdateInbox(store, desk.clock, LEASE), concurrency=1)


async def poll(worker: InboxWorker, stop: asyncio.Event) -> None:
    """Another worker at work: it claims what it may and sends what its outbox finds due, until `stop`."""
    while not stop.is_set():
        await worker.answer_next()
        await worker.outbox.deliver_due()
        await asyncio.sleep(0.05)


def leases() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("lease on")]


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("bot")]


async def stored(store: Store, update_id: int) -> TelegramUpdate:
    async with store.uow() as uow:
        return (await uow.session.scalars(select(TelegramUpdate).where(TelegramUpdate.update_id == update_id))).one()


SLOW_ANSWERS = {"making": ("/say slowly", "said slowly"), "answering": ("/dawdle", "dawdled"),
                "sending": ("/say first", "said first")}


@pytest.mark.parametrize("slow", list(SLOW_ANSWERS))
async def test_an_answer_slower_than_the_lease_is_answered_once_while_another_worker_polls(
        store_and_url, config, fake_bot_api, caplog, slow):
    store, url = store_and_url
    other = Store.from_url(url)
    one, two = await start_worker(store, config, fake_bot_api), await start_worker(other, config, fake_bot_api)
    if slow == "sending":
        fake_bot_api.slow_method("sendMessage", SLOW, times=1)
    text, said = SLOW_ANSWERS[slow]
    first = fake_bot_api.message_update(USER, text)
    stop = asyncio.Event()
    try:
        await one.inbox.take(first)
        await one.inbox.take(fake_bot_api.message_update(USER, "/say next"))
        answering = asyncio.create_task(one.answer_next())
        polling = asyncio.create_task(poll(two, stop))
        assert await answering
        assert leases() == []  # the renewing ended with the answer
        await fake_bot_api.wait_for("sendMessage", to_chat(USER), count=2, timeout=10)
        stop.set()
        await polling
    finally:
        stop.set()
        await one.app.shutdown()
        await two.app.shutdown()
        await other.dispose()
    assert fake_bot_api.sent_texts(USER) == [said, "said next"]  # once, and before the next answer
    assert (await stored(store, first["update_id"])).claims == 1  # never taken over
    async with store.uow() as uow:
        rows = (await uow.session.execute(select(Outbox.text, Outbox.status, Outbox.claimed_until)
                                          .order_by(Outbox.id))).all()
    assert rows == [(said, "sent", None), ("said next", "sent", None)]
    assert warnings(caplog) == []


async def test_a_renewal_finds_the_claim_taken_over_says_so_and_leaves_it(store_and_url, config, fake_bot_api,
                                                                          caplog):
    store, url = store_and_url
    other = Store.from_url(url)
    one = await start_worker(store, config, fake_bot_api)
    ahead = FakeClock(SystemClock().now() + timedelta(hours=1))  # a clock far ahead: it sees every claim run out
    barging = UpdateInbox(other, ahead, timedelta(hours=1))
    update = fake_bot_api.message_update(USER, "/say slowly")
    try:
        await one.inbox.take(update)
        answering = asyncio.create_task(one.answer_next())
        await asyncio.sleep(LEASE.total_seconds() / 2)
        theirs = await barging.claim()
        assert theirs is not None and theirs.claims == 2
        assert await answering  # its answer is dropped: the claim is the other worker's
        assert leases() == []
    finally:
        await one.app.shutdown()
        await other.dispose()
    row = await stored(store, update["update_id"])
    assert (row.claims, row.claimed_until, row.handled_at) == (2, theirs.claimed_until, None)  # not taken back
    assert fake_bot_api.sent_texts(USER) == []
    found = warnings(caplog)
    assert any("took over its claim" in w and "answers it again" in w for w in found), found
    assert any("answer was dropped" in w for w in found), found


async def test_a_cancelled_answer_stops_renewing_and_its_claim_runs_out(store, config, fake_bot_api):
    one = await start_worker(store, config, fake_bot_api)
    update = fake_bot_api.message_update(USER, "/say slowly")
    try:
        await one.inbox.take(update)
        answering = asyncio.create_task(one.answer_next())
        await asyncio.sleep(LEASE.total_seconds() * 1.5)
        assert await one.inbox.claim() is None  # renewed: still this answer's
        answering.cancel()
        with suppress(asyncio.CancelledError):
            await answering
        assert leases() == []
        await asyncio.sleep(LEASE.total_seconds() * 1.5)
        again = await one.inbox.claim()  # no longer renewed: it ran out, and is claimed anew
        assert again is not None and again.update_id == update["update_id"] and again.claims == 2
    finally:
        await one.app.shutdown()


async def test_the_inbox_renews_only_the_claim_it_holds(store_and_url, clock):
    store, url = store_and_url
    other = Store.from_url(url)
    lease = timedelta(seconds=30)
    one, two = UpdateInbox(store, clock, lease), UpdateInbox(other, clock, lease)
    body = {"update_id": 9601, "message": {"message_id": 1, "date": 0, "chat": {"id": 961, "type": "private"},
                                           "from": {"id": 961, "is_bot": False, "first_name": "A"}, "text": "hi"}}
    try:
        await one.take(body)
        mine = await one.claim()
        assert mine is not None
        clock.advance(seconds=20)
        assert await one.renew(mine)
        clock.advance(seconds=20)  # 40 s after the claim, 20 after the renewal: still held
        assert await two.claim() is None
        clock.advance(seconds=11)  # the renewals stopped (the worker stalled): the claim ran out
        theirs = await two.claim()
        assert theirs is not None and theirs.claims == 2
        assert not await one.renew(mine)
        row = await stored(store, 9601)
        assert (row.claims, row.claimed_until) == (2, theirs.claimed_until)
    finally:
        await other.dispose()


async def test_the_senders_claim_is_renewed_with_its_rows_and_not_once_it_ran_out(store_and_url, clock):
    store, url = store_and_url
    other = Store.from_url(url)
    lease = timedelta(seconds=30)
    one, two = UpdateInbox(store, clock, lease), UpdateInbox(other, clock, lease)

    def message(update_id: int, text: str) -> dict:
        return {"update_id": update_id, "message": {
            "message_id": update_id, "date": 0, "chat": {"id": 962, "type": "private"},
            "from": {"id": 962, "is_bot": False, "first_name": "B"}, "text": text}}

    try:
        await one.take(message(9611, "first"))
        await one.take(message(9612, "second"))
        mine = await one.claim()
        assert mine is not None
        async with store.uow() as uow:
            until = await one.settle(uow, mine)
            assert until is not None
            now = clock.now()
            queued = [Outbox(channel="telegram", recipient="telegram:962", text=t, status="pending", attempts=0,
                             next_attempt_at=now, claimed_until=until, created_at=now) for t in ("a", "b")]
            uow.session.add_all(queued)
            await uow.flush()
            ids = [row.id for row in queued]
            await uow.commit()
        clock.advance(seconds=20)
        renewed = await one.renew_sending(9611, until, ids)
        assert renewed is not None
        later, extended = renewed
        assert later == clock.now() + lease and extended == set(ids)
        assert await one.renew_sending(9611, until, ids) is None  # the old end is no claim any more
        clock.advance(seconds=20)  # 40 s after the answer: the sender is still held, and so are its rows
        assert await two.claim() is None
        async with store.uow() as uow:
            ends = set(await uow.session.scalars(select(Outbox.claimed_until).where(Outbox.id.in_(ids))))
        assert ends == {later}
        clock.advance(seconds=11)  # the renewals stopped: the sender's claim ran out
        theirs = await two.claim()
        assert theirs is not None and theirs.update_id == 9612
        assert await one.renew_sending(9611, later, ids) is None  # not taken back
        async with store.uow() as uow:
            assert (await stored(store, 9611)).claimed_until == later
            ends = set(await uow.session.scalars(select(Outbox.claimed_until).where(Outbox.id.in_(ids))))
        assert ends == {later}
        await one.release(9611, later)  # what the worker does last: the claim ended, nothing else changes
        assert (await stored(store, 9612)).claimed_until == theirs.claimed_until
    finally:
        await other.dispose()
