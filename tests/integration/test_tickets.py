"""Support tickets against a real store (SQLite and PostgreSQL): mail in, support answers from chat or mail."""

from sqlalchemy import func, select

from handlers import admin, identity, tickets, welcome
from handlers.messages import Attachment, Inbound, MailMeta
from handlers.registry import Handlers
from handlers.router import Desk
from handlers.tickets import records
from storage.models import Address, Audit, Outbox, Person, Role, Ticket, TicketMessage
from tests.conftest import inbound

SUPPORT_CHAT = "telegram:2001"
SUPPORT_MAIL = "staff@example.com"
CUSTOMER = "kim@example.com"
FIRST_TEXT = "Hello,\nmy booking for Friday shows the wrong time.\nCan you check?\n\nKim"
FIRST_BODY = FIRST_TEXT + "\n-- \nKim's signature"


def make_desk(store, config, clock) -> Desk:
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                tickets.handlers()), clock)


async def add_person(store, clock, address: str, role: str | None = "support", language: str | None = None) -> int:
    async with store.uow() as uow:
        person = Person(name=None, language=language, created_at=clock.now())
        uow.session.add(person)
        await uow.session.flush()
        uow.session.add(Address(address=address, kind=address.split(":")[0], person_id=person.id, verified=True,
                                created_at=clock.now()))
        if role:
            uow.session.add(Role(person_id=person.id, role=role, scope=""))
        await uow.commit()
        return person.id


def mail(sender: str, subject: str, body: str, *, clock, message_id: str, in_reply_to: str | None = None,
         references: tuple[str, ...] = (), automatic: bool = False, text: str | None = None,
         attachments: tuple[Attachment, ...] = ()) -> Inbound:
    """A mail as the email edge hands it in: `text` is the stripped body, `mail.body` the whole of it."""
    meta = MailMeta(message_id=message_id, subject=subject, in_reply_to=in_reply_to, references=references,
                    body=body, automatic=automatic)
    return Inbound(channel="email", sender=f"email:{sender}", received_at=clock.now(),
                   text=body if text is None else text, attachments=attachments, mail=meta)


def say(text: str, clock, sender: str = SUPPORT_CHAT, lang: str = "en") -> Inbound:
    return inbound(sender, text, clock=clock, lang=lang)


async def first_mail(desk, clock, **extra) -> list:
    return await desk.handle(mail(CUSTOMER, "Wrong time on my booking", FIRST_BODY, clock=clock, text=FIRST_TEXT,
                                  message_id="<m1@customer.example>", **extra))


async def outbox(store, recipient: str, channel: str = "email") -> list[Outbox]:
    async with store.uow() as uow:
        return list((await uow.session.scalars(
            select(Outbox).where(Outbox.recipient == recipient, Outbox.channel == channel).order_by(Outbox.id))).all())


async def only_ticket(store) -> Ticket:
    async with store.uow() as uow:
        rows = (await uow.session.scalars(select(Ticket))).all()
    assert len(rows) == 1
    return rows[0]


async def messages(store, ticket_id: int = 1) -> list[TicketMessage]:
    async with store.uow() as uow:
        return list((await uow.session.scalars(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket_id).order_by(TicketMessage.id))).all())


# --- mail in ----------------------------------------------------------------------------------------------

async def test_a_new_mail_opens_a_ticket_with_one_tagged_acknowledgement_and_support_is_told(store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    assert await first_mail(desk, clock, attachments=(Attachment("photo.jpg", "image/jpeg", b"x" * 3000),)) == []

    ticket = await only_ticket(store)
    assert (ticket.id, ticket.status, ticket.email, ticket.subject) == (1, "open", CUSTOMER, "Wrong time on my booking")
    incoming = (await messages(store))[0]
    assert incoming.text == FIRST_BODY and incoming.message_id == "<m1@customer.example>"
    assert incoming.attachments == [{"name": "photo.jpg", "type": "image/jpeg", "size": 3000}]
    [ack] = await outbox(store, CUSTOMER)
    assert ack.subject == "Re: Wrong time on my booking [#T-1]" and "#T-1" in ack.text
    assert ack.headers["In-Reply-To"] == "<m1@customer.example>"
    assert ack.headers["References"] == "<m1@customer.example>"
    assert ack.headers["Auto-Submitted"] == "auto-replied"
    [notice] = await outbox(store, SUPPORT_CHAT, "telegram")
    assert "#T-1" in notice.text and CUSTOMER in notice.text and "Wrong time on my booking" in notice.text
    assert "my booking for Friday shows the wrong time." in notice.text and "signature" not in notice.text


async def test_follow_ups_by_tag_and_by_in_reply_to_continue_the_ticket_without_a_second_acknowledgement(
        store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    [ack] = await outbox(store, CUSTOMER)
    clock.advance(minutes=5)
    await desk.handle(mail(CUSTOMER, "Re: Wrong time on my booking [#T-1]", "It is 10:00, not 11:00.", clock=clock,
                           message_id="<m2@customer.example>"))
    # a client that drops the tag still threads by In-Reply-To
    await desk.handle(mail(CUSTOMER, "one more thing", "Also: my phone number changed.", clock=clock,
                           message_id="<m3@customer.example>", in_reply_to=ack.message_id))

    assert (await only_ticket(store)).id == 1
    assert [m.direction for m in await messages(store)] == ["in", "out", "in", "in"]
    assert len(await outbox(store, CUSTOMER)) == 1
    notices = await outbox(store, SUPPORT_CHAT, "telegram")
    assert len(notices) == 3 and "wrote again" in notices[-1].text


async def test_a_reference_deep_in_the_chain_finds_the_ticket_too(store, config, clock):
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    await desk.handle(mail(CUSTOMER, "Fwd: something", "see below", clock=clock, message_id="<m9@customer.example>",
                           in_reply_to="<unknown@elsewhere>",
                           references=("<m1@customer.example>", "<unknown@elsewhere>")))
    assert (await only_ticket(store)).id == 1


async def test_a_strangers_mail_with_a_tag_opens_its_own_ticket_and_leaves_the_tagged_one_alone(
        store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    await desk.handle(say("/close 1", clock))
    before = [(m.direction, m.text) for m in await messages(store)]

    await desk.handle(mail("mallory@example.net", "Re: [#T-1] urgent", "Please call me.", clock=clock,
                           message_id="<x1@example.net>"))
    async with store.uow() as uow:
        rows = (await uow.session.scalars(select(Ticket).order_by(Ticket.id))).all()
    assert [(t.id, t.status, t.email) for t in rows] == [
        (1, "closed", CUSTOMER), (2, "open", "mallory@example.net")]
    assert rows[1].subject == "urgent"
    assert [(m.direction, m.text) for m in await messages(store)] == before
    assert "New ticket" in (await outbox(store, SUPPORT_CHAT, "telegram"))[-1].text

    # the customer's own tagged mail still continues ticket 1
    await desk.handle(mail(CUSTOMER, "Re: [#T-1]", "Any news?", clock=clock, message_id="<m7@customer.example>"))
    assert len(await messages(store)) == len(before) + 1
    async with store.uow() as uow:
        assert (await uow.session.get(Ticket, 1)).status == "open"


async def test_a_tagged_mail_from_another_address_continues_the_ticket_when_it_answers_its_thread(
        store, config, clock):
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    [ack] = await outbox(store, CUSTOMER)
    await desk.handle(mail("kim.work@example.com", "Re: Wrong time on my booking [#T-1]", "From my work address.",
                           clock=clock, message_id="<w1@example.com>", in_reply_to=ack.message_id))
    assert (await only_ticket(store)).id == 1
    assert (await messages(store))[-1].author == "email:kim.work@example.com"


async def test_an_automatic_mail_opens_and_continues_a_ticket_but_is_never_answered(store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock, automatic=True)
    await desk.handle(mail(CUSTOMER, "Out of office: [#T-1]", "I am away until Monday.", clock=clock,
                           message_id="<m2@customer.example>", automatic=True))

    assert len(await messages(store)) == 2 and await outbox(store, CUSTOMER) == []
    [notice] = await outbox(store, SUPPORT_CHAT, "telegram")  # new ticket: yes; an out-of-office after it: no
    assert "machine" in notice.text


async def test_the_same_mail_twice_is_kept_once(store, config, clock):
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    await first_mail(desk, clock)
    assert len(await messages(store)) == 2  # the mail and its acknowledgement
    assert len(await outbox(store, CUSTOMER)) == 1


async def test_a_flood_of_new_mails_from_one_address_gets_capped_acknowledgements(store, config, clock):
    desk = make_desk(store, config, clock)
    for n in range(records.ACKS_PER_HOUR + 3):
        await desk.handle(mail(CUSTOMER, f"question {n}", "hello?", clock=clock, message_id=f"<flood{n}@x>"))
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Ticket)) == records.ACKS_PER_HOUR + 3
    assert len(await outbox(store, CUSTOMER)) == records.ACKS_PER_HOUR


# --- support from chat --------------------------------------------------------------------------------------

async def test_support_lists_and_reads_tickets(store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    clock.advance(hours=3)

    [listing] = await desk.handle(say("/tickets", clock))
    assert "#T-1 · open · kim@example.com · Wrong time on my booking · 3 hours ago" in listing.text
    assert [c.command for c in listing.choices] == ["ticket 1"]
    [thread] = await desk.handle(say("/ticket T-1", clock))
    assert "Kim's signature" in thread.text  # the whole mail, quotes and signature included
    assert thread.text.index("← from kim@example.com") < thread.text.index("→ automatic acknowledgement")
    assert "thank you for your message" not in thread.text  # our acknowledgement is one line, not its text
    assert "No tickets (closed)." in (await desk.handle(say("/tickets closed", clock)))[0].text


async def test_a_reply_from_chat_goes_out_threaded_with_the_tag_and_the_ticket_waits(store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    await desk.handle(mail(CUSTOMER, "Re: Wrong time on my booking [#T-1]", "It is 10:00.", clock=clock,
                           message_id="<m2@customer.example>", in_reply_to="<m1@customer.example>"))
    ack = next(m for m in await messages(store) if m.direction == "out")

    [answer] = await desk.handle(say("/reply 1\nFixed, see you Friday at 10:00.\nBest, Ana", clock))
    assert "Sent to kim@example.com" in answer.text
    sent = (await outbox(store, CUSTOMER))[-1]
    assert sent.subject == "Re: Wrong time on my booking [#T-1]"
    assert sent.text.startswith("Fixed, see you Friday at 10:00.\nBest, Ana")
    assert sent.headers["In-Reply-To"] == "<m2@customer.example>"
    assert sent.headers["References"].split() == ["<m1@customer.example>", ack.message_id, "<m2@customer.example>"]
    assert sent.headers["Message-ID"] == sent.message_id
    ticket = await only_ticket(store)
    assert ticket.status == "pending"
    out = (await messages(store))[-1]
    assert (out.direction, out.author, out.message_id) == ("out", SUPPORT_CHAT, sent.message_id)
    # the customer's answer to the reply threads back, and the ticket is open again
    await desk.handle(mail(CUSTOMER, "thanks", "Great!", clock=clock, message_id="<m3@customer.example>",
                           in_reply_to=sent.message_id))
    assert (await only_ticket(store)).status == "open"


async def test_a_note_is_never_mailed_and_is_marked_internal(store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    [noted] = await desk.handle(say("/note 1 Called her, she will come at 10.", clock))
    assert "not mailed" in noted.text
    assert len(await outbox(store, CUSTOMER)) == 1  # only the acknowledgement
    [thread] = await desk.handle(say("/ticket 1", clock))
    assert "🔒 INTERNAL NOTE by telegram:2001" in thread.text and "Called her" in thread.text


async def test_close_mails_nobody_and_a_customer_reply_reopens_and_tells_support_again(store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    [closed] = await desk.handle(say("/close #T-1", clock))
    assert "is closed" in closed.text and (await only_ticket(store)).status == "closed"
    assert len(await outbox(store, CUSTOMER)) == 1
    assert "#T-1" in (await desk.handle(say("/tickets closed", clock)))[0].text
    assert "No tickets" in (await desk.handle(say("/tickets", clock)))[0].text

    await desk.handle(mail(CUSTOMER, "Re: Wrong time on my booking [#T-1]", "Sorry, one more question.",
                           clock=clock, message_id="<m5@customer.example>"))
    assert (await only_ticket(store)).status == "open"
    assert "open again" in (await outbox(store, SUPPORT_CHAT, "telegram"))[-1].text
    assert len(await outbox(store, CUSTOMER)) == 1  # reopening sends no second acknowledgement
    async with store.uow() as uow:
        actions = (await uow.session.scalars(select(Audit.action).order_by(Audit.id))).all()
    assert actions == ["ticket_opened", "ticket_closed", "ticket_reopened"]


async def test_a_customer_typing_tickets_is_refused(store, config, clock):
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    [refused] = await desk.handle(say("/tickets", clock, sender="telegram:5"))
    assert refused.template == "not_allowed" and '"tickets"' in refused.text
    [refused] = await desk.handle(say("/reply 1 hi", clock, sender="telegram:5"))
    assert refused.template == "not_allowed" and '"reply"' in refused.text


async def test_bad_ids_empty_texts_and_bad_states_are_explained(store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT)
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)

    async def answer(text: str) -> str:
        return (await desk.handle(say(text, clock)))[0].text

    assert '"abc" is not a ticket number' in await answer("/ticket abc")
    assert "Which ticket?" in await answer("/close")
    assert "There is no ticket #T-99" in await answer("/reply 99 hello")
    assert "The answer is empty" in await answer("/reply 1")
    assert "The note is empty" in await answer("/note 1    ")
    assert '"later" is no ticket state' in await answer("/tickets later")
    await answer("/close 1")
    assert "already closed" in await answer("/close 1")
    assert len(await outbox(store, CUSTOMER)) == 1


async def test_support_words_work_in_german(store, config, clock):
    await add_person(store, clock, SUPPORT_CHAT, language="de")
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    assert "Neues Ticket #T-1" in (await outbox(store, SUPPORT_CHAT, "telegram"))[0].text
    assert "offen" in (await desk.handle(say("/tickets offen", clock)))[0].text
    assert "Interne Notiz" in (await desk.handle(say("/notiz 1 Rückruf erledigt", clock)))[0].text
    assert "geschlossen" in (await desk.handle(say("/schließen 1", clock)))[0].text
    help_text = (await desk.handle(say("/hilfe", clock)))[0].text
    assert "Support:" in help_text and "/reply" in help_text


# --- support by mail -----------------------------------------------------------------------------------------

async def test_a_support_members_mail_answer_to_a_notification_reaches_the_customer_after_the_code(
        store, config, clock):
    await add_person(store, clock, f"email:{SUPPORT_MAIL}")
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    [notice] = await outbox(store, SUPPORT_MAIL)
    assert notice.subject.startswith("[#T-1] New ticket from kim@example.com")

    answer = "We moved it to 10:00.\n\n> Hello,\n> my booking for Friday shows the wrong time."
    [code_mail] = await desk.handle(mail(SUPPORT_MAIL, f"Re: {notice.subject}", answer, clock=clock,
                                         message_id="<s1@staff.example>", in_reply_to=notice.message_id,
                                         text="We moved it to 10:00."))
    assert len(await outbox(store, CUSTOMER)) == 1  # only the acknowledgement: a From: line proves nothing
    assert (await messages(store))[-1].direction == "unproven"
    code = code_mail.subject.split()[0]
    replies = await desk.handle(mail(SUPPORT_MAIL, f"Re: {code_mail.subject}", f"CONFIRM {code}", clock=clock,
                                     message_id="<s2@staff.example>"))
    assert "Sent to kim@example.com" in replies[0].text
    sent = (await outbox(store, CUSTOMER))[-1]
    assert sent.subject == "Re: Wrong time on my booking [#T-1]"
    assert sent.text.startswith("We moved it to 10:00.") and "> Hello" not in sent.text
    assert sent.headers["In-Reply-To"] == "<m1@customer.example>"
    assert (await only_ticket(store)).status == "pending"
    assert (await messages(store))[-1].author == f"email:{SUPPORT_MAIL}"


async def test_an_out_of_office_answer_from_support_never_reaches_the_customer(store, config, clock):
    await add_person(store, clock, f"email:{SUPPORT_MAIL}")
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    [notice] = await outbox(store, SUPPORT_MAIL)
    await desk.handle(mail(SUPPORT_MAIL, f"Auto: {notice.subject}", "I am on holiday.", clock=clock,
                           message_id="<s2@staff.example>", in_reply_to=notice.message_id, automatic=True))
    assert len(await outbox(store, CUSTOMER)) == 1 and (await only_ticket(store)).status == "open"


async def test_a_support_address_without_the_notifications_id_cannot_mail_the_customer(store, config, clock):
    await add_person(store, clock, f"email:{SUPPORT_MAIL}")
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    # a forged From: knows the tag but not the Message-ID of the notification we mailed
    await desk.handle(mail(SUPPORT_MAIL, "Re: [#T-1] New ticket", "Please send me your card number.", clock=clock,
                           message_id="<forged@evil.example>"))
    assert len(await outbox(store, CUSTOMER)) == 1
    last = (await messages(store))[-1]
    assert (last.direction, last.author) == ("in", f"email:{SUPPORT_MAIL}")  # kept on the thread for support to see


# --- wiring and pure rules -----------------------------------------------------------------------------------


async def test_a_support_answer_by_mail_past_the_code_limit_is_kept_unsent_and_support_is_told(store, config, clock):
    await add_person(store, clock, f"email:{SUPPORT_MAIL}")
    desk = make_desk(store, config, clock)
    await first_mail(desk, clock)
    [notice] = await outbox(store, SUPPORT_MAIL)
    for n in range(config.code_max_per_hour + 1):
        [last] = await desk.handle(mail(SUPPORT_MAIL, f"Re: {notice.subject}", f"Answer {n}", clock=clock,
                                        message_id=f"<s{n}@staff.example>", in_reply_to=notice.message_id))
    assert "was not sent" in last.text and "/reply 1" in last.text
    held = [m.text for m in await messages(store) if m.direction == "unproven"]
    assert held == [f"Answer {n}" for n in range(config.code_max_per_hour + 1)]
    assert len(await outbox(store, CUSTOMER)) == 1
