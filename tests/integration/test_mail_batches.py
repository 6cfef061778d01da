"""A batch of mails in one transaction (SQLite and PostgreSQL): one claim for all, support read once unless a
command came between, each mail still with its own acknowledgement cap; plain mails go without a savepoint,
and a refusal has the batch taken one by one."""
from __future__ import annotations

from sqlalchemy import select

from bot.mail.intake import EmailEdge, Incoming
from handlers import identity, tickets, welcome
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.router import Desk
from handlers.rules.mailthread import normal_id
from storage.models import Address, Audit, MailIntake, Outbox, Person, Role, Ticket, TicketMessage
from tests.helpers import Statements, raw_mail

NEWCOMER = "new.support@example.com"


async def add_person(store, clock, address: str, role: str | None) -> int:
    async with store.uow() as uow:
        person = Person(name=None, language="en", created_at=clock.now())
        uow.session.add(person)
        await uow.session.flush()
        uow.session.add(Address(address=address, kind="email", person_id=person.id, verified=True,
                                created_at=clock.now()))
        if role:
            uow.session.add(Role(person_id=person.id, role=role, scope=""))
        await uow.commit()
        return person.id


async def make_support(ctx, args: str) -> list[Reply]:
    """A stand-in for any command that changes who answers tickets."""
    person = await ctx.session.scalar(select(Address.person_id).where(Address.address == f"email:{NEWCOMER}"))
    ctx.session.add(Role(person_id=person, role="support", scope=""))
    await ctx.session.flush()
    return [Reply("done")]


def make_edge(store, config, clock) -> EmailEdge:
    handlers = Handlers.combine(welcome.handlers(), identity.handlers(), tickets.handlers(),
                                Handlers(commands=[Command("makesupport", make_support, safe=True)]))
    return EmailEdge(Desk(store, config, handlers, clock), store, clock)


def question(n: int, sender: str | None = None) -> Incoming:
    raw = raw_mail(f"Do you open on Saturday? ({n})", subject=f"Question {n}",
                   sender=sender or f"Customer {n} <c{n}@example.org>", headers={"Message-ID": f"<q{n}@example.org>"})
    return Incoming(raw, uid=n)


async def notified(store, address: str) -> int:
    async with store.uow() as uow:
        return len((await uow.session.scalars(select(Outbox.id).where(Outbox.recipient == address))).all())


async def test_a_batch_is_claimed_in_one_insert_and_reads_support_once(store, config, clock):
    await add_person(store, clock, "email:staff@example.com", "support")
    edge = make_edge(store, config, clock)
    assert await edge.take(question(1)) == "processed"  # recorded before: a duplicate in the batch
    with Statements(store) as seen:
        statuses = await edge.take_all([question(2), question(1), question(3), question(2)])
    assert statuses == ["processed", "duplicate", "processed", "duplicate"]
    assert len([s for s in seen if s.startswith("INSERT INTO mail_intake")]) == 1
    assert len([s for s in seen if "FROM person JOIN address" in s and "role" in s]) == 1
    async with store.uow() as uow:
        rows = (await uow.session.execute(select(MailIntake.message_id, MailIntake.uid)
                                          .order_by(MailIntake.id))).all()
    assert [tuple(row) for row in rows] == [("<q1@example.org>", 1), ("<q2@example.org>", 2),
                                            ("<q3@example.org>", 3)]
    assert await notified(store, "staff@example.com") == 3


async def test_a_command_in_a_batch_makes_the_next_mail_read_support_anew(store, config, clock):
    await add_person(store, clock, "email:staff@example.com", "support")
    await add_person(store, clock, f"email:{NEWCOMER}", None)
    await add_person(store, clock, "email:boss@example.com", "owner")
    edge = make_edge(store, config, clock)
    command = Incoming(raw_mail("MAKESUPPORT", subject="", sender="Boss <boss@example.com>",
                                headers={"Message-ID": "<cmd@example.org>"}), uid=10)
    assert await edge.take_all([question(1), command, question(2)]) == ["processed"] * 3
    assert await notified(store, NEWCOMER) == 1  # told of the second question only
    assert await notified(store, "staff@example.com") == 2


async def test_mails_of_one_sender_in_a_batch_are_capped_as_if_taken_one_by_one(store, config, clock):
    await add_person(store, clock, "email:staff@example.com", "support")
    edge = make_edge(store, config, clock)
    mails = [question(n, sender="Kim <kim@example.org>") for n in range(1, 8)]
    assert await edge.take_all(mails) == ["processed"] * 7
    assert await notified(store, "kim@example.org") == 5 + 1  # five acknowledgements, then one notice


async def count(store, model, *where) -> int:
    async with store.uow() as uow:
        return len((await uow.session.scalars(select(model.id).where(*where))).all())


async def test_plain_mails_in_a_batch_go_without_a_savepoint_and_write_each_table_once_a_mail(store, config, clock):
    await add_person(store, clock, "email:staff@example.com", "support")
    edge = make_edge(store, config, clock)
    with Statements(store) as seen:
        assert await edge.take_all([question(1), question(2), question(3)]) == ["processed"] * 3
    assert not [s for s in seen if "SAVEPOINT" in s]
    for table in ("ticket_message", "outbox", "audit"):
        assert len([s for s in seen if s.startswith(f"INSERT INTO {table} ")]) == 3, table
    assert not [s for s in seen if s.startswith("SELECT ticket_message.id FROM ticket_message WHERE")]
    # Each ticket holds the customer's mail, the acknowledgement and the notice to support.
    assert await count(store, TicketMessage) == 9
    assert await count(store, Outbox, Outbox.recipient == "staff@example.com") == 3
    assert await count(store, Audit, Audit.action == "ticket_opened") == 3


async def test_a_refused_mail_in_a_batch_is_taken_on_its_own_and_the_others_once(store, config, clock):
    await add_person(store, clock, "email:staff@example.com", "support")
    edge = make_edge(store, config, clock)
    assert await edge.take(question(1)) == "processed"
    async with store.uow() as uow:
        notice = await uow.session.scalar(select(Outbox.message_id).where(Outbox.recipient == "staff@example.com"))
    empty_answer = Incoming(raw_mail("", subject="Re: Question 1", sender="Staff <staff@example.com>",
                                     headers={"Message-ID": "<r1@example.com>", "In-Reply-To": notice}), uid=20)
    assert await edge.take_all([question(2), empty_answer, question(3)]) == ["processed"] * 3
    assert await count(store, Ticket) == 3  # the batch's tickets rolled back with it, then came once each
    assert await count(store, TicketMessage, TicketMessage.direction == "in") == 3
    assert await count(store, TicketMessage, TicketMessage.direction == "unproven") == 0
    assert await count(store, MailIntake) == 4
    async with store.uow() as uow:
        told = (await uow.session.scalars(select(Outbox.text).where(Outbox.recipient == "staff@example.com",
                                                                    Outbox.message_id != notice))).all()
    assert len([text for text in told if "The answer is empty" in text]) == 1
    assert len(told) == 3  # and the notices of questions 2 and 3


async def test_a_mail_already_on_a_ticket_is_known_in_a_batch(store, config, clock):
    await add_person(store, clock, "email:staff@example.com", "support")
    edge = make_edge(store, config, clock)
    assert await edge.take(question(1)) == "processed"
    async with store.uow() as uow:  # on the ticket, though the intake never claimed it (a copy pasted in by hand)
        ticket = await uow.session.scalar(select(Ticket.id))
        uow.session.add(TicketMessage(ticket_id=ticket, direction="in", author="email:lee@example.org", text="Hi",
                                      message_id=normal_id("<pasted@example.org>"), attachments=[],
                                      created_at=clock.now()))
        await uow.commit()
    copy = Incoming(raw_mail("Do you open on Sunday?", subject="Question", sender="Lee <lee@example.org>",
                             headers={"Message-ID": "<pasted@example.org>"}), uid=30)
    assert await edge.take_all([question(2), copy, question(3)]) == ["processed"] * 3
    assert await count(store, Ticket) == 3
    assert await count(store, Audit, Audit.action == "ticket_mail_repeated") == 1
