"""Housekeeping against a real store (SQLite and PostgreSQL): what time alone changes."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.housekeeping import Housekeeping, Swept
from storage.models import Choice, Conversation, Member, Person, TelegramUpdate


async def test_a_round_drops_old_buttons_and_conversations_and_leaves_invitations_to_their_jobs(store, clock):
    now = clock.now()
    async with store.uow() as uow:
        late, waiting = Person(name="Late", created_at=now), Person(name="Waiting", created_at=now)
        uow.session.add_all([late, waiting])
        await uow.session.flush()
        uow.session.add_all([
            Member(person_id=late.id, status="pending", invitation_expires_at=now - timedelta(minutes=1)),
            Member(person_id=waiting.id, status="pending", invitation_expires_at=now + timedelta(days=1)),
            Choice(key="old", address="telegram:5", command="help", created_at=now - timedelta(days=31)),
            Choice(key="new", address="telegram:5", command="help", created_at=now - timedelta(days=29)),
            Conversation(address="telegram:5", flow="book", step="day", data={}, expires_at=now),
            Conversation(address="telegram:6", flow="book", step="day", data={}, expires_at=now + timedelta(hours=1)),
        ])
        await uow.commit()

    assert await Housekeeping(store, clock).run_once() == Swept(choices=1, conversations=1)

    async with store.uow() as uow:
        statuses = dict((await uow.session.execute(select(Person.name, Member.status).join(Member))).all())
        assert statuses == {"Late": "pending", "Waiting": "pending"}  # tests/integration/test_jobs.py
        assert (await uow.session.scalars(select(Choice.key))).all() == ["new"]
        assert (await uow.session.scalars(select(Conversation.address))).all() == ["telegram:6"]
    assert await Housekeeping(store, clock).run_once() == Swept(0, 0)  # nothing twice


async def test_the_rounds_go_on_until_stopped(store, clock):
    stop = asyncio.Event()
    task = asyncio.create_task(Housekeeping(store, clock).run(stop, interval=0.01))
    await asyncio.sleep(0.05)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_handled_telegram_updates_go_after_two_days_and_waiting_ones_stay(store, clock):
    now = clock.now()
    async with store.uow() as uow:
        uow.session.add_all([
            TelegramUpdate(update_id=1, sender="telegram:5", body={}, received_at=now - timedelta(days=3),
                           handled_at=now - timedelta(days=2, minutes=1)),
            TelegramUpdate(update_id=2, sender="telegram:5", body={}, received_at=now - timedelta(days=1),
                           handled_at=now - timedelta(days=1)),
            TelegramUpdate(update_id=3, sender="telegram:6", body={"update_id": 3},
                           received_at=now - timedelta(days=3)),
        ])
        await uow.commit()
    assert await Housekeeping(store, clock).run_once() == Swept(0, 0, updates=1)
    async with store.uow() as uow:
        assert sorted(await uow.session.scalars(select(TelegramUpdate.update_id))) == [2, 3]
