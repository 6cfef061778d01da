"""One sender's messages one at a time, also across workers sharing one database; first messages at once.

Each test runs two desks, each with its own Store (engine and pool) on the same database, as two
processes would. On SQLite every transaction begins with BEGIN IMMEDIATE; on PostgreSQL the desk
takes the sender's advisory lock before it reads or makes the speaker.
"""
from __future__ import annotations

import asyncio
import email.policy
import logging
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import func, select

from bot.mail.intake import EmailEdge, Incoming
from handlers import identity, welcome
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.router import Desk
from storage.db import Store
from storage.models import Address, Conversation, Person
from templates import render
from tests.conftest import inbound, make_store

PAUSE = 0.02  # inside the transaction, between reading the count and writing it back


async def count(ctx, args: str) -> list[Reply]:
    """Read the sender's count, give the others a chance to run, write it back one higher."""
    seen = (ctx.conversation.data or {}).get("n", 0) if ctx.conversation is not None else 0
    await asyncio.sleep(PAUSE)
    await ctx.start_flow("count", "n", {"n": seen + 1})
    return [Reply(str(seen + 1))]


COUNTING = Handlers(commands=[Command("count", count, safe=True)])


def make_desk(store: Store, config, clock) -> Desk:
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), COUNTING), clock)


async def two_desks(store_and_url, config, clock):
    store, url = store_and_url
    other = Store.from_url(url)
    return make_desk(store, config, clock), make_desk(other, config, clock), other


async def counted(store: Store, sender: str) -> int:
    async with store.uow() as uow:
        data = await uow.session.scalar(select(Conversation.data).where(Conversation.address == sender))
    return data["n"]


async def test_one_senders_messages_on_two_workers_each_see_the_one_before(store_and_url, config, clock):
    first, second, other = await two_desks(store_and_url, config, clock)
    try:
        sender = "telegram:7001"
        await first.handle(inbound(sender, "/help", clock=clock))
        desks = [first, second] * 4
        answers = await asyncio.gather(*(desk.handle(inbound(sender, "/count", clock=clock)) for desk in desks))
    finally:
        await other.dispose()
    # Every message saw what the one before committed: no lost count, no error.
    assert sorted(int(replies[0].text) for replies in answers) == list(range(1, len(desks) + 1))
    assert await counted(first.store, sender) == len(desks)


@pytest.fixture
async def postgres_store_and_url(tmp_path):
    """PostgreSQL only: on SQLite one writer at a time enters the database, whoever the sender, so there
    is nothing to show there (skipped, with the reason, only when no server answers)."""
    store, url, cleanup = await make_store("postgresql", tmp_path)
    yield store, url
    await cleanup()


async def test_another_sender_on_another_worker_does_not_wait_for_a_held_turn(postgres_store_and_url, config, clock):
    """PostgreSQL: a sender whose message is still in its transaction holds up only their own next ones."""
    first, second, other = await two_desks(postgres_store_and_url, config, clock)
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold(ctx, args: str) -> list[Reply]:
        entered.set()  # the handler runs with the sender's turn held
        await release.wait()
        return await count(ctx, args)

    holding = Desk(first.store, config, Handlers.combine(COUNTING, Handlers(commands=[Command("hold", hold)])), clock)
    try:
        await first.handle(inbound("telegram:7100", "/help", clock=clock))  # known: no new row to wait for
        held = asyncio.create_task(holding.handle(inbound("telegram:7100", "/hold", clock=clock)))
        await asyncio.wait_for(entered.wait(), 30)
        [answer] = await asyncio.wait_for(second.handle(inbound("telegram:7101", "/count", clock=clock)), 30)
        same_sender = asyncio.create_task(second.handle(inbound("telegram:7100", "/count", clock=clock)))
        await asyncio.sleep(0.2)
        waited = not same_sender.done() and not held.done()
        release.set()
        held_answer, same_answer = await asyncio.wait_for(asyncio.gather(held, same_sender), 30)
    finally:
        release.set()
        await other.dispose()
    assert answer.text == "1" and waited
    assert (held_answer[0].text, same_answer[0].text) == ("1", "2")


async def test_first_messages_of_a_new_sender_at_once_are_all_answered(store_and_url, config, clock):
    """A new sender's first messages at the same moment on two workers: one person, one address, one
    conversation, and every message answered (not the generic error)."""
    first, second, other = await two_desks(store_and_url, config, clock)
    error = render("error", "en").text
    asked = render("ask_email", "en").text
    try:
        senders = [f"telegram:{7200 + i}" for i in range(8)]
        texts = ["/help", "/email", "/email", "/email"]
        for sender in senders:
            answers = await asyncio.gather(*(desk.handle(inbound(sender, text, clock=clock))
                                             for desk, text in zip([first, second] * 2, texts)))
            assert [r.text for replies in answers for r in replies if r.text == error] == []
            assert [replies[0].text for replies in answers[1:]] == [asked] * 3
    finally:
        await other.dispose()
    async with first.store.uow() as uow:
        people = await uow.session.scalar(select(func.count()).select_from(Person))
        addresses = (await uow.session.scalars(select(Address.address).order_by(Address.address))).all()
        flows = (await uow.session.scalars(select(Conversation.flow).where(Conversation.address.in_(senders)))).all()
    assert people == len(senders) and addresses == sorted(senders)
    assert flows == ["email"] * len(senders)


def counting_mail(sender: str) -> Incoming:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "desk@physio.example", "COUNT"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("Sent from a test.")
    return Incoming(msg.as_bytes(policy=email.policy.SMTP))


async def test_one_senders_mails_on_two_intakes_each_see_the_one_before(store_and_url, config, clock):
    first, second, other = await two_desks(store_and_url, config, clock)
    edges = [EmailEdge(first, first.store, clock), EmailEdge(second, second.store, clock)]
    try:
        statuses = await asyncio.gather(*(edges[i % 2].take(counting_mail("kim@example.org")) for i in range(6)))
    finally:
        await other.dispose()
    assert statuses == ["processed"] * 6
    assert await counted(first.store, "email:kim@example.org") == 6


async def test_two_intakes_taking_batches_of_the_same_senders_need_no_second_try(
        store_and_url, config, clock, caplog):
    """Batches hold their senders in one fixed order: crossing batches wait for each other, never deadlock."""
    first, second, other = await two_desks(store_and_url, config, clock)
    edges = [EmailEdge(first, first.store, clock), EmailEdge(second, second.store, clock)]
    kim, uli = "kim@example.org", "uli@example.org"
    try:
        with caplog.at_level(logging.INFO, logger="bot.mail.intake"):
            results = await asyncio.gather(*(
                edges[i % 2].take_all([counting_mail(a), counting_mail(b)])
                for i, (a, b) in enumerate([(kim, uli), (uli, kim)] * 3)))
    finally:
        await other.dispose()
    assert results == [["processed", "processed"]] * 6
    assert "one by one" not in caplog.text
    assert await counted(first.store, f"email:{kim}") == 6
    assert await counted(first.store, f"email:{uli}") == 6
