"""Helpers the test files share: talking to a desk or to the bot, and reading what the desk wrote."""
from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from handlers.messages import Choice, Reply
from handlers.router import Desk
from handlers.setup import SetupSpec, load_setup
from storage.models import Address, Business, Outbox, Person, Role
from tests.conftest import FakeClock, inbound
from tests.fakebotapi import Call, FakeBotApi

PRACTICE = Path(__file__).resolve().parents[1] / "examples" / "practice.toml"


def practice_setup(holidays: bool = False) -> SetupSpec:
    """The demo practice of examples/practice.toml.

    The dated scenarios run in the week of Tuesday 8 December 2026, a public holiday where the practice is
    (AT-4). They are about booking, hours and calendars, not holidays, so unless asked for, the holiday
    calendar is left out; tests/integration/test_holidays.py runs the practice with it.
    """
    spec = load_setup(PRACTICE)
    if holidays:
        return spec
    return replace(spec, business=replace(spec.business, holidays=None),
                   locations=tuple(replace(location, holidays=None) for location in spec.locations))


# ---- talking to a desk --------------------------------------------------------------------------


def plain(replies: list[Reply]) -> list[Reply]:
    """Babel puts a narrow no-break space before AM/PM; tests read it as a plain space."""
    for reply in replies:
        reply.text = reply.text.replace("\u202f", " ")
    return replies


def key_of(choices: list[Choice], label: str) -> str:
    key = next((c.key for c in choices if c.label == label), None)
    assert key is not None, f"no button {label!r} in {[c.label for c in choices]}"
    return key


class Chat:
    """One person talking to the desk.

    `send` and `tap` (a button of a given reply) return the replies; `say` and `click` (a button of the
    last answer) return their text. Either way the last answer's replies and buttons are remembered.
    """

    def __init__(self, desk: Desk, clock: FakeClock, sender: str, lang: str = "en"):
        self.desk, self.clock, self.sender, self.lang = desk, clock, sender, lang
        self.replies: list[Reply] = []
        self.choices: list[Choice] = []

    async def send(self, text: str) -> list[Reply]:
        return await self._answer(inbound(self.sender, text, clock=self.clock, lang=self.lang))

    async def tap(self, reply: Reply, label: str) -> list[Reply]:
        key = key_of(reply.choices, label)
        return await self._answer(inbound(self.sender, clock=self.clock, choice=key, lang=self.lang))

    async def say(self, text: str) -> str:
        return "\n".join(r.text for r in await self.send(text))

    async def click(self, label: str) -> str:
        key = key_of(self.choices, label)
        replies = await self._answer(inbound(self.sender, clock=self.clock, choice=key, lang=self.lang))
        return "\n".join(r.text for r in replies)

    def labels(self) -> list[str]:
        return [c.label for c in self.choices]

    @property
    def templates(self) -> list[str | None]:
        """Which answers the last message got, by template name."""
        return [r.template for r in self.replies]

    async def _answer(self, message) -> list[Reply]:
        self.replies = plain(await self.desk.handle(message))
        self.choices = [c for r in self.replies for c in r.choices]
        return self.replies


def labels(reply: Reply) -> list[str]:
    return [c.label for c in reply.choices]


def templates(replies: list[Reply]) -> list[str | None]:
    """Which answers were given, by template name."""
    return [r.template for r in replies]


# ---- reading the store --------------------------------------------------------------------------


async def rows(store, model, *where) -> list:
    async with store.uow() as uow:
        return list((await uow.session.scalars(select(model).where(*where))).all())


async def count(store, model, *where) -> int:
    async with store.uow() as uow:
        return await uow.session.scalar(select(func.count()).select_from(model).where(*where))


async def person_of(store, address: str) -> int:
    async with store.uow() as uow:
        return await uow.session.scalar(select(Address.person_id).where(Address.address == address))


async def mails_to(store, recipient: str) -> list[Outbox]:
    """What the outbox holds for `recipient` (a mail address, or a chat address for chat messages), oldest first."""
    async with store.uow() as uow:
        return list(await uow.session.scalars(
            select(Outbox).where(Outbox.recipient == recipient).order_by(Outbox.id)))


async def code_for(store, email: str) -> str:
    """The code of the newest mail to `email` (every code mail's subject begins with it)."""
    return (await mails_to(store, email))[-1].subject.split()[0]


# What the law asks of the seller before any invoice is written; VAT 0 keeps totals as the prices add up.
INVOICE_DATA = dict(address="Hauptstraße 1, 10115 Berlin", tax_id="DE123456789", vat_percent="0",
                    iban="DE89370400440532013000", bic="COBADEFFXXX")


async def set_business(store, **values) -> None:
    """The business (made as "Akademie" in English if there is none) with the invoice data and `values`."""
    async with store.uow() as uow:
        business = await uow.session.get(Business, 1)
        if business is None:
            business = Business(id=1, name="Akademie", timezone="Europe/Berlin", language="en")
            uow.session.add(business)
        for key, value in {**INVOICE_DATA, **values}.items():
            setattr(business, key, value)
        await uow.commit()


async def add_admin(store, address: str, at, name: str = "Ada") -> int:
    """A person with one verified chat address and the admin role; returns their id."""
    async with store.uow() as uow:
        person = Person(name=name, created_at=at)
        uow.session.add(person)
        await uow.session.flush()
        uow.session.add_all([Address(address=address, kind=address.split(":")[0], person_id=person.id,
                                     verified=True, created_at=at), Role(person_id=person.id, role="admin", scope="")])
        await uow.commit()
        return person.id


def make_row(clock, to: str = "kim@example.com", **fields) -> Outbox:
    """An outbox row due now: a mail to `to`, unless `fields` say otherwise."""
    values = dict(
        channel="email", recipient=to, subject="Your appointment", text="See you soon.", html=None,
        headers={"Message-ID": make_msgid(domain="frontdesk.test"), "Auto-Submitted": "auto-generated"},
        attachments=[], status="pending", attempts=0, next_attempt_at=clock.now(), created_at=clock.now(),
    )
    return Outbox(**{**values, **fields})


def ics(mail: Outbox) -> str:
    """The calendar file of a mail with exactly one attachment."""
    [attachment] = mail.attachments
    return base64.b64decode(attachment["data"]).decode()


# ---- talking to the bot through the fake Bot API ------------------------------------------------


def to_chat(chat_id: int) -> Callable[[Call], bool]:
    return lambda call: call.params.get("chat_id") == chat_id


def buttons(call: Call) -> list[list[dict[str, Any]]]:
    return call.params["reply_markup"]["inline_keyboard"]


def button_data(call: Call, label: str) -> str:
    return next(b["callback_data"] for row in buttons(call) for b in row if b["text"] == label)


async def ask(fake: FakeBotApi, user_id: int, text: str, replies: int = 1, lang: str = "en") -> list[Call]:
    """Send a message as `user_id` and wait for the next `replies` messages the bot sends back."""
    before = len(fake.calls_of("sendMessage", to_chat(user_id)))
    fake.push_message(user_id, text, lang)
    calls = await fake.wait_for("sendMessage", to_chat(user_id), count=before + replies)
    return calls[before:]


async def click(fake: FakeBotApi, user_id: int, message: Call, label: str, replies: int = 1) -> list[Call]:
    """Press the button labelled `label` under the bot's message, and wait for the answer."""
    data = button_data(message, label)
    sent = fake.calls_of("sendMessage", to_chat(user_id))
    fake.push_callback(user_id, data, message.result["message_id"])
    calls = await fake.wait_for("sendMessage", to_chat(user_id), count=len(sent) + replies)
    return calls[len(sent):]


# ---- mail -----------------------------------------------------------------------------------------


def raw_mail(body: str = "Hello", subject: str = "Hi", sender: str = "Kim <kim@Example.ORG>", headers=None,
             charset: str = "utf-8") -> bytes:
    """A plain-text mail as it arrives by IMAP, with `headers` added."""
    lines = [f"From: {sender}", f"Subject: {subject}", "MIME-Version: 1.0",
             f"Content-Type: text/plain; charset={charset}", "Content-Transfer-Encoding: 8bit"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body.encode("utf-8")


class Statements:
    """`with Statements(store) as seen:` collects the SQL the store's engine runs in the block (whitespace
    folded), those `keep` takes."""

    def __init__(self, store, keep: Callable[[str], bool] = lambda statement: True):
        self.engine, self.keep, self.seen = store.engine.sync_engine, keep, list[str]()

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self.seen

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *rest) -> None:
        if self.keep(statement):
            self.seen.append(" ".join(statement.split()))
