"""Tickets end to end where trust and size matter: mail in through a real IMAP server (pymap), answers out
through a real SMTP server (aiosmtpd), support in Telegram through the real PTB Application and the fake
Bot API. Runs on SQLite and PostgreSQL. Every mail we send is read back with email.policy.strict.
"""
# ruff: noqa: F811 - the fixtures imported below are the tests' parameters
from __future__ import annotations

import email
import email.policy
import random
import re
import sys
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from bot.mail import parse as mailparse
from bot.mail.intake import Incoming
from bot.settings import Settings
from bot.telegram import build_application, start_telegram, stop_telegram
from storage.models import Address, Person, Role, Ticket, TicketMessage
from tests.e2e.test_email import KIM, Rig, mail, rig, text_of  # noqa: F401 - rig is a fixture
from tests.fakebotapi import fake_bot_api  # noqa: F401 - a fixture
from tests.helpers import to_chat
from tests.imap import imap_server  # noqa: F401 - a fixture
from tests.smtp import smtp_server  # noqa: F401 - a fixture

HELP = "help@physio.example"  # a support member who reads mail only
ANNA = 1001  # the owner in Telegram (owners answer tickets too)
CODE_SUBJECT = re.compile(r"^(\d{6}) ")


def strictly(raw: bytes) -> EmailMessage:
    """Parse a mail as email.policy.strict does (it raises on a defect) and check no header has one either."""
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    for part in message.walk():
        assert not part.defects, part.defects
        for name, value in part.items():
            assert not getattr(value, "defects", ()), (name, value.defects)
    return message


def sent_to(rig: Rig, address: str) -> list[EmailMessage]:
    """Every mail the SMTP server took for `address`, strictly parsed, oldest first."""
    pairs = zip(rig.smtp.handler.raw, rig.smtp.messages)
    return [strictly(raw) for raw, message in pairs if message["To"] == address]


async def add_mail_support(rig: Rig) -> None:
    """A support member with a proven mail address and no chat: notices reach them by mail."""
    now = rig.clock.now()
    async with rig.store.uow() as uow:
        person = Person(name="Hanna Help", created_at=now)
        uow.session.add(person)
        await uow.session.flush()
        uow.session.add(Address(address=f"email:{HELP}", kind="email", person_id=person.id, verified=True,
                                created_at=now))
        uow.session.add(Role(person_id=person.id, role="support", scope=""))
        await uow.commit()


async def thread(rig: Rig, ticket_id: int = 1) -> list[TicketMessage]:
    async with rig.store.uow() as uow:
        return list(await uow.session.scalars(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket_id).order_by(TicketMessage.id)))


async def tickets(rig: Rig) -> list[Ticket]:
    async with rig.store.uow() as uow:
        return list(await uow.session.scalars(select(Ticket).order_by(Ticket.id)))


async def customer_writes(rig: Rig, body: str = "My booking shows the wrong time.") -> EmailMessage:
    """Kim opens ticket #T-1; returns the notice mailed to support."""
    await add_mail_support(rig)
    await rig.send(mail("Wrong time", body=body, message_id="<k1@example.org>"))
    await rig.deliver()
    [notice] = sent_to(rig, HELP)
    return notice


@pytest.fixture
async def telegram(rig, fake_bot_api):
    """The rig's desk behind the real PTB Application, talking to the fake Bot API."""
    settings = Settings(_env_file=None, telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        secret_key="x" * 32, telegram_rate_per_second=0, webhook_url="")
    app = build_application(settings, rig.desk)
    await start_telegram(app, settings)
    yield fake_bot_api
    await stop_telegram(app)


# ---- C11: answers by mail and Message-IDs ----------------------------------------------------------------


async def test_a_forged_support_answer_to_a_notice_never_reaches_the_customer(rig):
    notice = await customer_writes(rig)
    # Someone who learnt the notice's Message-ID puts support's address on a mail.
    await rig.send(mail(f"Re: {notice['Subject']}", body="Please send us your card number.",
                        sender=f"Hanna Help <{HELP}>", headers={"In-Reply-To": notice["Message-ID"]}))
    await rig.deliver()
    assert len(sent_to(rig, KIM)) == 1  # the acknowledgement, nothing else
    code_mail = sent_to(rig, HELP)[-1]  # only the real mailbox learns the code
    assert CODE_SUBJECT.match(code_mail["Subject"]) and "#T-1" in code_mail["Subject"]
    assert "Please send us your card number." in text_of(code_mail)
    held = (await thread(rig))[-1]
    assert (held.direction, held.author) == ("unproven", f"email:{HELP}")
    assert (await tickets(rig))[0].status == "open"


async def test_support_answers_a_notice_by_mail_and_it_goes_out_when_the_code_comes_back(rig):
    notice = await customer_writes(rig)
    await rig.send(mail(f"Re: {notice['Subject']}", body="We moved it to 10:00.\n\n> My booking shows",
                        sender=f"Hanna Help <{HELP}>", headers={"In-Reply-To": notice["Message-ID"]}))
    await rig.deliver()
    code_mail = sent_to(rig, HELP)[-1]
    code = CODE_SUBJECT.match(code_mail["Subject"]).group(1)
    await rig.send(mail(f"Re: {code_mail['Subject']}", body=f"CONFIRM {code}", sender=f"Hanna Help <{HELP}>",
                        headers={"In-Reply-To": code_mail["Message-ID"]}))
    await rig.deliver()
    ack, answer = sent_to(rig, KIM)
    assert text_of(answer).startswith("We moved it to 10:00.") and "> My booking" not in text_of(answer)
    assert answer["In-Reply-To"] == "<k1@example.org>" and "[#T-1]" in answer["Subject"]
    assert ack["Message-ID"] in answer["References"] and notice["Message-ID"] not in answer["References"]
    told = text_of(sent_to(rig, HELP)[-1])
    assert "Sent to kim@example.org" in told or "An kim@example.org gesendet" in told
    sent = (await thread(rig))[-1]
    assert (sent.direction, sent.author, sent.message_id) == ("out", f"email:{HELP}", answer["Message-ID"])
    assert (await tickets(rig))[0].status == "pending"
    # the same code again sends nothing twice
    await rig.send(mail(f"Re: {code_mail['Subject']}", body=f"CONFIRM {code}", sender=f"Hanna Help <{HELP}>"))
    await rig.deliver()
    assert len(sent_to(rig, KIM)) == 2


async def test_message_ids_share_nothing_with_each_other_or_pythons_random(rig):
    ids = []
    for _ in range(2):
        random.seed(1234)  # whoever knows the random module's state must learn nothing
        await rig.send(mail("language"))
        await rig.deliver()
        ids.append(rig.smtp.messages[-1]["Message-ID"])
    first, second = (re.fullmatch(r"<([^@]+)@[^>]+>", mid).group(1) for mid in ids)
    assert len(first) >= 32 and len(second) >= 32  # 192 bits, base64url
    assert not set(re.split(r"[.\-_]", first)) & set(re.split(r"[.\-_]", second))  # no pid, no time, no state


def test_one_function_mints_message_ids():
    from pathlib import Path

    root = Path(__file__).parents[2]
    sources = [path for folder in ("bot", "handlers") for path in (root / folder).glob("*.py")]
    minting = [str(path.relative_to(root)) for path in sources if "make_msgid" in path.read_text()]
    assert minting == []


# ---- D13: a huge mail in the chat ----------------------------------------------------------------------


async def test_a_2_mb_mail_is_shown_cut_in_the_chat_and_whole_as_a_text_file(rig, telegram):
    line = "Meine Buchung ist falsch, bitte prüfen. Ünïcödé 🙂\n"
    body = line * (2 * 1024 * 1024 // len(line.encode()))
    await rig.send(mail("Long story", body=body, message_id="<long@example.org>"))
    await rig.deliver()
    telegram.push_message(ANNA, "/ticket 1")
    [document] = await telegram.wait_for("sendDocument", to_chat(ANNA))
    texts = telegram.sent_texts(ANNA)
    assert len(texts) == 1 and 3000 < len(texts[0]) < 4096  # one message, not 491
    assert "ticket-1.txt" in texts[0] and "✂" in texts[0]
    upload = document.params["document"]
    assert upload.filename == "ticket-1.txt"
    whole = upload.data.decode("utf-8")
    assert body.strip() in whole and texts[0].splitlines()[0] in whole


async def test_a_short_thread_comes_whole_without_a_file(rig, telegram):
    await rig.send(mail("Short", body="Just one line.", message_id="<short@example.org>"))
    await rig.deliver()
    telegram.push_message(ANNA, "/ticket 1")
    [message] = await telegram.wait_for("sendMessage", to_chat(ANNA))
    assert "Just one line." in message.params["text"] and "✂" not in message.params["text"]
    assert telegram.calls_of("sendDocument") == []


# ---- D14: mail that cannot be read whole -----------------------------------------------------------------


def nested(depth: int, readable: str) -> bytes:
    """A mail whose parts nest `depth` multiparts deep, with a readable text part at the top."""
    head = (f"From: Kim Ott <{KIM}>\r\nTo: desk@physio.example\r\nSubject: Deep\r\n"
            "Message-ID: <deep@example.org>\r\nMIME-Version: 1.0\r\n").encode()
    opening = [b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n--b0\r\n'
               + f"Content-Type: text/plain; charset=utf-8\r\n\r\n{readable}\r\n--b0\r\n".encode()]
    level = b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n'
    opening += [level % (n, n) for n in range(1, depth)]
    closing = [b"\r\n--b%d--\r\n" % n for n in reversed(range(depth))]
    return head + b"".join(opening) + b"Content-Type: text/plain\r\n\r\ndeepest words\r\n" + b"".join(closing)


async def deliver_deep(rig: Rig, raw: bytes) -> None:
    """Put a deeply nested mail into the IMAP server. pymap parses what it stores recursively, like the
    standard library, so only its append gets room for that; our intake reads it as usual afterwards."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        await rig.send(raw)
    finally:
        sys.setrecursionlimit(limit)


async def test_a_mail_nested_1100_levels_deep_comes_through_imap_as_a_ticket_and_support_is_told(rig):
    await add_mail_support(rig)
    # deep enough for the standard library's parser to give up (pymap needs seconds per thousand levels)
    await deliver_deep(rig, nested(1100, "Please call me back."))
    await rig.deliver()
    [row] = await rig.intake_rows()
    assert row.status == "processed"
    incoming, *notes = [m for m in await thread(rig) if m.direction in ("in", "note")]
    assert incoming.text == "Please call me back."
    [note] = notes
    assert "nested" in note.text or "verschachtelt" in note.text
    [notice] = sent_to(rig, HELP)
    assert "Please call me back." in text_of(notice)
    assert "note on the ticket" in text_of(notice) or "Notiz am Ticket" in text_of(notice)


async def test_a_mail_nested_3000_levels_deep_becomes_a_ticket(rig):
    assert await rig.edge.take(Incoming(nested(3000, "Please call me back."))) == "processed"
    [ticket] = await tickets(rig)
    assert ticket.subject == "Deep"
    assert [m.text for m in await thread(rig) if m.direction == "in"] == ["Please call me back."]


def test_parts_deeper_than_the_limit_are_left_out_and_named():
    parsed = mailparse.parse(nested(mailparse.MAX_DEPTH + 1, "top"))
    assert parsed.body == "top" and parsed.unread == (mailparse.DEEP_PARTS,)
    kept = mailparse.parse(nested(mailparse.MAX_DEPTH, "top"))
    assert kept.unread == () and kept.body == "top"


async def test_a_mail_with_40000_references_continues_its_ticket(rig):
    await add_mail_support(rig)
    await rig.send(mail("Wrong time", body="First.", message_id="<k1@example.org>"))
    await rig.deliver()
    ack = sent_to(rig, KIM)[0]
    # the thread's root first, as RFC 5322 has it; then more ids than PostgreSQL takes in one query
    ids = [ack["Message-ID"], *(f"<r{n}@example.org>" for n in range(40000))]
    references = ("References: " + "\r\n ".join(ids) + "\r\n").encode()  # folded by hand: email's folder is slow
    await rig.send(references + mail("Once more", body="Second."))
    await rig.deliver()
    assert [row.status for row in await rig.intake_rows()] == ["processed", "processed"]
    assert len(await tickets(rig)) == 1
    messages = await thread(rig)
    assert [m.text for m in messages if m.direction == "in"] == ["First.", "Second."]
    [note] = [m for m in messages if m.direction == "note"]
    assert "40001" in note.text and "References" in note.text


# ---- E16: a person's answer is no automatic mail ----------------------------------------------------------


async def test_an_answer_typed_by_support_carries_no_auto_submitted_but_the_acknowledgement_does(rig, telegram):
    await rig.send(mail("Wrong time", body="First.", message_id="<k1@example.org>"))
    await rig.deliver()
    telegram.push_message(ANNA, "/reply 1 We moved it to 10:00.")
    await telegram.wait_for("sendMessage", to_chat(ANNA))
    await rig.worker.drain()
    ack, answer = sent_to(rig, KIM)
    assert ack["Auto-Submitted"] == "auto-replied"
    assert answer["Auto-Submitted"] in (None, "no")
    assert text_of(answer).startswith("We moved it to 10:00.") and answer["In-Reply-To"] == "<k1@example.org>"
    assert (await tickets(rig))[0].status == "pending"
