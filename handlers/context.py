"""What a handler gets: the inbound message, the unit of work, who is speaking, and ways to answer."""
from __future__ import annotations

import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, cast

from sqlalchemy import Executable, String, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from handlers.messages import Attachment, Choice, Inbound, Reply
from handlers.observing import Observer
from handlers.refusal import Refusal as Refusal  # re-exported: handlers raise ctx's Refusal
from handlers.rules.roles import effective_roles
from handlers.speaking import chat_address, mail_row, reply_language
from storage.db import UnitOfWork
from storage.dialect import insert_ignoring_conflicts, joined_strings
from storage.models import Address, Audit, Business, Conversation, Outbox, Person, Role
from storage.models import Choice as ChoiceRow
from templates import Rendered, language, render, word


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass(frozen=True)
class DeskConfig:
    secret_key: bytes
    default_language: str = "de"
    default_timezone: str = "Europe/Berlin"
    code_ttl: timedelta = timedelta(minutes=15)
    code_max_per_hour: int = 5
    code_max_attempts: int = 5
    hold_seconds: int = 600
    conversation_ttl: timedelta = timedelta(hours=2)
    mail_domain: str = "frontdesk.local"
    mail_from: str = "frontdesk@localhost"  # the bare address our mail goes out from (FRONTDESK_MAIL_FROM)


@dataclass(frozen=True)
class Queued:
    """An email just queued: what its caller may still need of it."""

    message_id: str
    text: str


def address_kind(address: str) -> str:
    return address.split(":", 1)[0]


class Listed(Protocol):
    """A command as /help lists it."""

    @property
    def word(self) -> str: ...
    @property
    def section(self) -> str: ...


class TypedLine(Protocol):
    """A command line as a mail would carry it."""

    @property
    def typed(self) -> str: ...


class DeskView(Protocol):
    """What handlers use of the desk that runs them (handlers.router.Desk)."""

    @property
    def completions(self) -> Mapping[str, Callable[[Context, Any], Awaitable[list[Reply]]]]: ...
    @property
    def exhaustions(self) -> Mapping[str, Callable[[Context, Any], Awaitable[list[Reply]]]]: ...
    @property
    def start_payloads(self) -> Mapping[str, Callable[[Context, str], Awaitable[list[Reply]]]]: ...
    @property
    def exports(self) -> Mapping[str, Any]: ...  # list name → handlers.registry.ExportList
    @property
    def observer(self) -> Observer: ...

    def allowed_commands(self, roles: set[str]) -> Sequence[Listed]: ...
    async def run_proven(self, ctx: Context, text: str) -> list[Reply]: ...
    async def looks_like(self, uow: UnitOfWork, text: str) -> tuple[Listed, TypedLine | None] | None: ...


@dataclass
class Context:
    inbound: Inbound
    uow: UnitOfWork
    config: DeskConfig
    now: datetime
    person: Person
    roles: set[str]
    business: Business | None
    conversation: Conversation | None
    desk: DeskView  # the router: its commands, code completions and proven runs
    lang: str = "en"
    picked: str | None = None  # what the pressed button (inbound.choice) runs; None: no such button of theirs
    # Rows written later, in one statement per table (see grouped_writes); None: each is written at once.
    later: dict[tuple[Executable, frozenset[str]], list[dict]] | None = field(default=None, repr=False)

    @property
    def session(self):
        return self.uow.session

    @property
    def tz(self) -> str:
        return self.business.timezone if self.business else self.config.default_timezone

    @property
    def sender(self) -> str:
        return self.inbound.sender

    def render(self, name: str, lang: str | None = None, **values) -> Rendered:
        return render(name, lang or self.lang, tz=self.tz, business=self.business, person=self.person, **values)

    def say(self, name: str, choices: list[Choice] | None = None, **values) -> Reply:
        """A reply to the sender from template `name`; the template sees its choices too (to say what they are)."""
        choices = list(choices or [])
        return Reply(self.render(name, choices=choices, **values).text, choices=choices, template=name)

    def word(self, key: str, **values) -> str:
        return word(self.lang, key, **values)

    def choice(self, label_key: str, command: str, **values) -> Choice:
        return Choice(self.word(label_key, **values), command)

    async def write(self, statement: Executable, row: dict) -> None:
        """Run an INSERT of one row now, or, within grouped_writes, together with its kind at the end."""
        if self.later is None:
            await self.session.execute(statement, row)
        else:
            self.later.setdefault((statement, frozenset(row)), []).append(row)

    @asynccontextmanager
    async def grouped_writes(self) -> AsyncIterator[None]:
        """Hold back the rows `write` gets (audit entries, outbox mails, a ticket's messages) and insert them
        at the end, one statement for each table: a new ticket writes five rows, in three statements.
        Only for steps that read none of those rows back before they end; an error drops them with the
        unit of work, which rolls back anyway."""
        if self.later is not None:  # already grouped by an outer step
            yield
            return
        self.later = {}
        try:
            yield
            groups, self.later = self.later, None
            for (statement, _), rows in groups.items():
                await self.session.execute(statement, rows if len(rows) > 1 else rows[0])
        finally:
            self.later = None

    async def audit(self, action: str, subject: str | None = None, **detail) -> None:
        await self.write(AUDIT, dict(
            at=self.now, actor=self.sender, person_id=self.person.id, channel=self.inbound.channel,
            action=action, subject=subject, detail=detail,
        ))

    async def update_person(self, **values: Any) -> None:
        """Change the speaker's own row at once, in one UPDATE: the ORM's flush of a changed attribute costs
        about three times the statement, and every message that sets something of the speaker's pays it."""
        await self.session.execute(person_update(tuple(sorted(values))), dict(values, person_id=self.person.id))
        for key, value in values.items():
            set_committed_value(self.person, key, value)  # loaded as written: nothing left to flush

    def language_for(self, chosen: str | None) -> str:
        """The language to write someone in whose own choice is `chosen` (None: the business's, else ours)."""
        return reply_language(chosen, self.business, self.config.default_language)

    async def mail(self, to: str, name: str, lang: str | None = None, attachments: Sequence[Attachment] = (),
                   headers: dict[str, str] | None = None, **values) -> Queued:
        """Queue an email from template `name` in the same transaction as the change; `headers` add to ours."""
        rendered = self.render(name, lang, **values)
        row = mail_row(self.now, self.config.mail_domain, to, rendered, headers, attachments)
        await self.write(OUTBOX, row)
        return Queued(row["message_id"], rendered.text)

    async def tell(self, person_id: int, name: str, lang: str | None = None, by_mail: bool = True,
                   **values) -> bool:
        """Tell a person where they read: their chat, else (`by_mail`) their confirmed email, never an
        unconfirmed one; in `lang`, else their own language. False if they could not be told."""
        address = await chat_address(self.uow, person_id)
        if address is None or (address.startswith("email:") and not by_mail):
            return False
        if lang is None:
            person = await self.session.get(Person, person_id)
            lang = self.language_for(person.language if person else None)
        if address.startswith("email:"):
            await self.mail(address.split(":", 1)[1], name, lang=lang, **values)
        else:
            await self.notify(address, name, lang=lang, **values)
        return True

    async def notify(self, address: str, name: str, lang: str | None = None, choices: Sequence[Choice] = (),
                     **values) -> None:
        """Queue a chat message to another person's address, with buttons that person may press."""
        rendered = self.render(name, lang, **values)
        await self.queue(channel=address_kind(address), recipient=address, subject=rendered.subject,
                         text=rendered.text, html=None, message_id=None, headers={}, attachments=[],
                         choices=await self.offer(address, choices))

    async def offer(self, address: str, choices: Sequence[Choice]) -> list[dict[str, str]]:
        """Key buttons for someone else's chat, as the router keys a reply's (callback_data is ≤ 64 bytes),
        and remember what each runs when `address` presses it; returns [{label, key}] for the outbox."""
        keys = [new_key() for _ in choices]
        if keys:
            await self.session.execute(insert(ChoiceRow), [
                {"key": key, "address": address, "command": c.command, "created_at": self.now}
                for c, key in zip(choices, keys)])
        return [{"label": c.label, "key": key} for c, key in zip(choices, keys)]

    async def queue(self, **row) -> None:
        """Write one outbox row, due now (a Core INSERT: nothing reads it back in this transaction)."""
        await self.write(OUTBOX, dict(row, status="pending", attempts=0, next_attempt_at=self.now,
                                      created_at=self.now))

    async def start_flow(self, flow: str, step: str, data: dict | None = None, ttl: timedelta | None = None) -> None:
        """Open (or replace) this sender's conversation."""
        expires = self.now + (ttl or self.config.conversation_ttl)
        if self.conversation is None:
            self.conversation = Conversation(address=self.sender, flow=flow, step=step, data=data or {},
                                             expires_at=expires)
            self.session.add(self.conversation)
        else:
            self.conversation.flow, self.conversation.step = flow, step
            self.conversation.data, self.conversation.expires_at = dict(data or {}), expires

    async def end_flow(self) -> None:
        if self.conversation is not None:
            await self.session.execute(delete(Conversation).where(Conversation.address == self.sender))
            self.conversation = None


def table(model: type) -> Table:
    """A model's Table, for Core statements (the declarative base types `__table__` as any FromClause)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]  # set on every mapped class by SQLAlchemy


# Statements built once: building one anew costs more than SQLite takes to run it.
AUDIT = insert(table(Audit))
OUTBOX = insert(table(Outbox))
NEW_PERSON = insert(table(Person)).returning(table(Person).c.id)
_SENDER = select(bindparam("sender", type_=String).label("address")).subquery()
_ROLES = (select(joined_strings(Role.__table__.c.role, ","))
          .where(Role.__table__.c.person_id == Person.id).scalar_subquery())
_PICKED = (select(table(ChoiceRow).c.command)
           .where(table(ChoiceRow).c.key == bindparam("choice", type_=String),
                  table(ChoiceRow).c.address == _SENDER.c.address).scalar_subquery())
# Everything about the speaker in one query, always one row: their person (or None), open conversation
# (or None), the business (or None, before any setup), their roles as "admin,staff" (or None) and what the
# button they pressed runs (or None: no button, or one not theirs or gone). A button press is most steps
# of a walk, and its own statement cost a third of what this one does.
SPEAKER = (select(Person, Conversation, Business, _ROLES, _PICKED).select_from(_SENDER)
           .outerjoin(Address, Address.address == _SENDER.c.address)
           .outerjoin(Person, Person.id == Address.person_id)
           .outerjoin(Conversation, Conversation.address == _SENDER.c.address)
           .outerjoin(Business, Business.id == 1))


@functools.cache
def person_update(columns: tuple[str, ...]):
    """UPDATE person SET those columns WHERE id = :person_id, built once per set of columns."""
    person = table(Person)
    return update(person).where(person.c.id == bindparam("person_id")).values({c: bindparam(c) for c in columns})


@dataclass
class Speaker:
    """Who is writing, as load_context needs them."""

    person: Person
    conversation: Conversation | None
    business: Business | None
    roles: set[str]  # as granted, without the implied ones
    created: bool  # the person was made just now
    picked: str | None = None  # the command of the pressed button (Inbound.choice), if it is theirs


@functools.cache
def address_claim(dialect: str):
    """INSERT an address unless it exists, returning it if it was inserted."""
    return insert_ignoring_conflicts(dialect, Address.__table__, ["address"]).returning(Address.__table__.c.address)


async def load_context(uow: UnitOfWork, inbound: Inbound, config: DeskConfig, now: datetime,
                       desk: DeskView) -> Context:
    """Find (or create) the speaker and everything a handler needs about them."""
    speaker = await find_or_create_speaker(uow, inbound, now)
    conversation = speaker.conversation
    if conversation is not None and conversation.expires_at <= now:
        await uow.session.delete(conversation)
        conversation = None
    ctx = Context(inbound, uow, config, now, speaker.person, effective_roles(speaker.roles), speaker.business,
                  conversation, desk, picked=speaker.picked)
    ctx.lang = pick_language(speaker.person, inbound, speaker.business, config)
    return ctx


def pick_language(person: Person, inbound: Inbound, business: Business | None, config: DeskConfig) -> str:
    """The person's choice, else the client's language, else the business default."""
    if person.language:
        return language(person.language)
    hint = (inbound.language_hint or "")[:2].lower()
    if hint in ("de", "en"):
        return hint
    return reply_language(None, business, config.default_language)


async def find_or_create_speaker(uow: UnitOfWork, inbound: Inbound, now: datetime) -> Speaker:
    """The sender's person with what comes with them; a new sender gets a person and an address."""
    session = uow.session
    person, conversation, business, roles, picked = (await session.execute(
        SPEAKER, {"sender": inbound.sender, "choice": inbound.choice})).one()
    if person is not None:
        return Speaker(person, conversation, business, set(roles.split(",")) if roles else set(), created=False,
                       picked=picked)
    values = dict(name=inbound.display_name, language=None, created_at=now)
    person = Person(id=await session.scalar(NEW_PERSON, values), **values)
    make_transient_to_detached(person)  # the row exists: the session takes it as loaded, with no SELECT
    session.add(person)
    # Chat accounts are proven by the channel itself; an email address needs a code.
    kind = address_kind(inbound.sender)
    claimed = await session.scalar(address_claim(uow.dialect), dict(
        address=inbound.sender, kind=kind, person_id=person.id, verified=kind != "email", created_at=now))
    if claimed is None:  # the same new sender arrived twice at once; the other one won
        await session.delete(person)
        await session.flush()
        return await find_or_create_speaker(uow, inbound, now)
    # someone new holds no roles yet; a button they pressed is still found by their address
    return Speaker(person, conversation, business, set(), created=True, picked=picked)


def new_key() -> str:
    """A short random id for a button (Telegram callback_data holds at most 64 bytes)."""
    return secrets.token_urlsafe(6)
